"""Baseline: the transactions in the order the workload lists them (score 0 by definition)."""


def schedule(workload):
    return list(range(len(workload)))
