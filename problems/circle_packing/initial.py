"""Circle packing: place 26 circles in the unit square, maximising the sum of radii."""

import math

# EVOLVE-BLOCK-START
# A centre circle and two concentric rings; radii are then grown as large as the layout allows.
INNER_COUNT = 8
INNER_RADIUS = 0.22
OUTER_RADIUS = 0.40
OUTER_PHASE = 0.10
MARGIN = 0.05


def layout(n: int) -> list[tuple[float, float]]:
    centres = [(0.5, 0.5)]
    for k in range(INNER_COUNT):
        angle = 2 * math.pi * k / INNER_COUNT
        centres.append((0.5 + INNER_RADIUS * math.cos(angle), 0.5 + INNER_RADIUS * math.sin(angle)))
    outer = n - 1 - INNER_COUNT
    for k in range(outer):
        angle = 2 * math.pi * k / outer + OUTER_PHASE
        x = 0.5 + OUTER_RADIUS * math.cos(angle)
        y = 0.5 + OUTER_RADIUS * math.sin(angle)
        centres.append((min(max(x, MARGIN), 1 - MARGIN), min(max(y, MARGIN), 1 - MARGIN)))
    return centres


def max_radii(centres: list[tuple[float, float]], rounds: int = 50) -> list[float]:
    """Largest radii for fixed centres: start at the wall distance, shrink overlapping pairs."""
    radii = [min(x, y, 1 - x, 1 - y) for x, y in centres]
    for _ in range(rounds):
        changed = False
        for i in range(len(centres)):
            for j in range(i + 1, len(centres)):
                d = math.dist(centres[i], centres[j])
                if radii[i] + radii[j] > d:
                    scale = d / (radii[i] + radii[j])
                    radii[i] *= scale
                    radii[j] *= scale
                    changed = True
        if not changed:
            break
    # A small safety margin: the evaluator checks containment and overlap exactly.
    return [r * (1 - 1e-9) for r in radii]


def pack_circles(n: int = 26) -> list[tuple[float, float, float]]:
    centres = layout(n)
    radii = max_radii(centres)
    return [(x, y, r) for (x, y), r in zip(centres, radii, strict=True)]
# EVOLVE-BLOCK-END
