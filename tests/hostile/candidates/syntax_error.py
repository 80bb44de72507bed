def solve(xs)
    return sorted(xs)
