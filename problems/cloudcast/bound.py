"""A lower bound on a job's total cost under the simulation's rules (README.md, "Bound").

Egress. Every partition reaches every destination along a route from the source, so the edges
that carry partition p contain an arborescence rooted at the source that spans the destinations,
and each edge's egress counts p once: egress >= num_partitions x partition GB x the cheapest
such arborescence = data_vol x (the min-cost Steiner arborescence by $/GB). That arborescence
is computed exactly, by the Dreyfus-Wagner dynamic programme over subsets of destinations on the
metric closure (shortest $/GB paths), which holds for directed graphs rooted at the source.

Instances. The overlay holds the source and every destination. After the simulation's capping
no node's incoming flows sum above its ingress limit x VMs (nor its outgoing above the egress
limit), so the P partitions that enter a destination d over in-edges j (c_j partitions each,
sum c_j >= P) take at least max_j c_j x g / f_j >= P x g / sum_j f_j >= data_vol x 8 / cap_d
seconds, where cap_d = min(ingress limit x VMs, sum of d's in-edge throughputs); the same at the
source with its egress. Rounding to 0.01 s is monotone, so the instance cost is at least
(1 + destinations) x VMs x $/VM-h x round(that time).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from problems.cloudcast.network import INSTANCE_COST_PER_HOUR, NUM_VMS, Edge, Job, provider


@dataclass(frozen=True)
class JobBound:
    steiner_cost_per_gb: float   # the min-cost Steiner arborescence, $/GB summed over its edges
    egress_cost: float
    time_s: float
    instance_cost: float

    @property
    def total_cost(self) -> float:
        return self.egress_cost + self.instance_cost


def shortest_costs(edges: list[Edge]) -> tuple[list[str], np.ndarray]:
    """Node names and the matrix of cheapest $/GB from each node to each (Floyd-Warshall)."""
    nodes = sorted({u for u, *_ in edges} | {v for _, v, *_ in edges})
    index = {name: i for i, name in enumerate(nodes)}
    dist = np.full((len(nodes), len(nodes)), np.inf)
    np.fill_diagonal(dist, 0.0)
    for u, v, cost, _ in edges:
        dist[index[u], index[v]] = min(dist[index[u], index[v]], cost)
    for k in range(len(nodes)):
        np.minimum(dist, dist[:, k:k + 1] + dist[k:k + 1, :], out=dist)
    return nodes, dist


def steiner_arborescence_cost(src: str, dsts: tuple[str, ...], nodes: list[str],
                              dist: np.ndarray) -> float:
    """Exact min-cost arborescence rooted at src reaching every dst (Dreyfus-Wagner)."""
    index = {name: i for i, name in enumerate(nodes)}
    terminals = [index[d] for d in dsts]
    full = (1 << len(terminals)) - 1
    # best[S][v]: cheapest arborescence rooted at v reaching the terminals of subset S.
    best = np.full((full + 1, len(nodes)), np.inf)
    for bit, t in enumerate(terminals):
        best[1 << bit] = dist[:, t]
    for subset in range(1, full + 1):
        if subset & (subset - 1) == 0:
            continue
        merged = np.full(len(nodes), np.inf)
        part = (subset - 1) & subset
        while part:
            if part < subset ^ part:      # each split once
                np.minimum(merged, best[part] + best[subset ^ part], out=merged)
            part = (part - 1) & subset
        # Root the merged tree anywhere reachable: v -> u on a cheapest path, then split at u.
        best[subset] = (dist + merged[None, :]).min(axis=1)
    return float(best[full, index[src]])


def transfer_time_bound(job: Job, edges: list[Edge], num_vms: int = NUM_VMS) -> float:
    out_tput: dict[str, float] = {}
    in_tput: dict[str, float] = {}
    for u, v, _, throughput in edges:
        out_tput[u] = out_tput.get(u, 0.0) + throughput
        in_tput[v] = in_tput.get(v, 0.0) + throughput
    gbit = job.data_vol * 8
    caps = [min(job.egress_limit[provider(job.src)] * num_vms, out_tput[job.src])]
    caps += [min(job.ingress_limit[provider(d)] * num_vms, in_tput[d]) for d in job.dsts]
    return max(gbit / cap for cap in caps)


def job_bound(job: Job, edges: list[Edge], num_vms: int = NUM_VMS) -> JobBound:
    nodes, dist = shortest_costs(edges)
    steiner = steiner_arborescence_cost(job.src, job.dsts, nodes, dist)
    time_s = round(transfer_time_bound(job, edges, num_vms), 2)
    instance = (1 + len(job.dsts)) * num_vms * INSTANCE_COST_PER_HOUR / 3600 * time_s
    return JobBound(steiner_cost_per_gb=steiner, egress_cost=job.data_vol * steiner,
                    time_s=time_s, instance_cost=instance)
