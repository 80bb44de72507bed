"""Baseline: the best of 200 random orders per workload (fixed seed, so it is repeatable)."""

import random


def schedule(workload, tries=200, seed=0):
    rng = random.Random(seed)
    order = list(range(len(workload)))
    best, best_span = list(order), workload.makespan(order)
    for _ in range(tries):
        rng.shuffle(order)
        span = workload.makespan(order)
        if span < best_span:
            best, best_span = list(order), span
    return best
