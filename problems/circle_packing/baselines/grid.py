"""Circle packing baseline: a 5 x 5 square grid of equal circles plus one circle in a gap."""

import math


# EVOLVE-BLOCK-START
def pack_circles(n: int = 26) -> list[tuple[float, float, float]]:
    side = 5
    r = 1 / (2 * side) * (1 - 1e-9)
    circles = [((2 * i + 1) * 0.1, (2 * j + 1) * 0.1, r) for i in range(side) for j in range(side)]
    # The 26th circle sits where four grid circles leave a gap: corner point (0.2, 0.2).
    gap = (math.sqrt(2) * 0.1 - 0.1) * (1 - 1e-6)
    circles.append((0.2, 0.2, gap))
    return circles[:n]
# EVOLVE-BLOCK-END
