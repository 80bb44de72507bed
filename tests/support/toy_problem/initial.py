# toy objective: maximise 10 - (a - 2.5)^2 - (b - 4)^2
# EVOLVE-BLOCK-START
A = 0.5
B = 1.0


def solve():
    return A, B
# EVOLVE-BLOCK-END
