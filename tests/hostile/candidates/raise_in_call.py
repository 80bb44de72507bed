import errno


def solve(xs):
    if "__EXC__" == "PermissionError":
        raise PermissionError(errno.EACCES, "Permission denied", "/srv/secret")
    raise MemoryError()
