import definitely_not_a_module_xyz


def solve(xs):
    return definitely_not_a_module_xyz.sort(xs)
