def solve(xs):
    return solve(xs)
