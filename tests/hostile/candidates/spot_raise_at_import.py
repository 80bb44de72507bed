import errno

NONE, SPOT, ON_DEMAND = 0, 1, 2
if "__EXC__" == "PermissionError":
    raise PermissionError(errno.EACCES, "Permission denied", "/srv/secret")
raise MemoryError()


class Policy:
    def __init__(self, scenario):
        pass

    def decide(self, state):
        return ON_DEMAND
