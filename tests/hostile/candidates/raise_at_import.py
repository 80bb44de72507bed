import errno

if "__EXC__" == "PermissionError":
    raise PermissionError(errno.EACCES, "Permission denied", "/srv/secret")
raise MemoryError()


def solve(xs):
    return sorted(xs)
