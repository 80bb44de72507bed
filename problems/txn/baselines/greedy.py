"""Transaction scheduling: order a workload's transactions to minimise the makespan.

`schedule(workload)` returns a permutation of range(len(workload)). The evaluator computes the
makespan itself. `workload` offers: `transactions` (text, e.g. 'r-5 w-3 * w-7'), `ops` (per
transaction, (slot offset, key, is_write) tuples), `lengths`, `makespan(order)` for a full or
partial order, and `placement()`, an incremental placer with `end_if_added(txn)` and `add(txn)`
where `txn = workload.txn(i)`.
"""


# EVOLVE-BLOCK-START
def schedule(workload):
    """Greedy: repeatedly append the transaction that increases the makespan least."""
    remaining = list(range(len(workload)))
    placement = workload.placement()
    order = []
    while remaining:
        best = min(remaining, key=lambda i: placement.end_if_added(workload.txn(i)))
        placement.add(workload.txn(best))
        order.append(best)
        remaining.remove(best)
    return order
# EVOLVE-BLOCK-END
