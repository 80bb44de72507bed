import ctypes


def solve(xs):
    ctypes.string_at(0)
    return sorted(xs)
