"""Fixture: sleep SECONDS, then return it."""

import time

# EVOLVE-BLOCK-START
SECONDS = 1.0


def solve() -> float:
    time.sleep(SECONDS)
    return SECONDS
# EVOLVE-BLOCK-END
