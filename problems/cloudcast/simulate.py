"""The leaderboard's overlay simulation, written from its published rules (see README.md).

The union of the routes' edges is the overlay. An edge carries the set of partitions routed over
it, counted once however many destinations share it. Each edge's flow starts at its throughput;
then each node in turn (in the order the overlay first met it) caps its incoming flows at
ingress limit x VMs / number of incoming edges when their sum exceeds that limit, and its
outgoing flows likewise with the egress limit. A destination's time is the slowest edge of its
routes (partitions on the edge x partition GB x 8 / flow); the job's time is the slowest
destination. Cost = egress (partitions on each edge x partition GB x $/GB) + instances (every
overlay node x VMs x $/VM-hour x the job's time rounded to 0.01 s).

Operations follow the rules' order (nodes, edges and sums in the overlay's insertion order), so
the figures match the leaderboard's to the last digit, not only to the cent.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from problems.cloudcast.network import INSTANCE_COST_PER_HOUR, NUM_VMS, Job, provider

Routes = dict[str, list[list[str]]]   # destination -> one route (node list) per partition
EdgeTable = dict[tuple[str, str], tuple[float, float]]  # (u, v) -> ($/GB, Gbit/s)


@dataclass(frozen=True)
class JobResult:
    egress_cost: float
    instance_cost: float
    time_s: float                      # the job's transfer time, rounded to 0.01 s
    destination_time_s: dict[str, float]
    edge_flow: dict[tuple[str, str], float]    # Gbit/s after the limits
    overlay_nodes: int
    overlay_edges: int

    @property
    def total_cost(self) -> float:
        return self.egress_cost + self.instance_cost


def edge_table(edges: list[tuple[str, str, float, float]]) -> EdgeTable:
    return {(u, v): (cost, throughput) for u, v, cost, throughput in edges}


def simulate(job: Job, routes: Routes, table: EdgeTable, num_vms: int = NUM_VMS) -> JobResult:
    """Simulate valid routes (checked beforehand: see routes.check_routes)."""
    succ: dict[str, dict[str, set[int]]] = {}   # insertion-ordered, like a networkx DiGraph
    pred: dict[str, dict[str, None]] = {}
    for dst in job.dsts:
        for partition, route in enumerate(routes[dst]):
            for u, v in pairwise(route):
                for node in (u, v):
                    succ.setdefault(node, {})
                    pred.setdefault(node, {})
                if v not in succ[u]:
                    succ[u][v] = set()
                    pred[v][u] = None
                succ[u][v].add(partition)

    flow = {(u, v): table[(u, v)][1] for u in succ for v in succ[u]}
    for node in succ:
        ingress = job.ingress_limit[provider(node)] * num_vms
        egress = job.egress_limit[provider(node)] * num_vms
        incoming = [(u, node) for u in pred[node]]
        outgoing = [(node, v) for v in succ[node]]
        if sum(flow[e] for e in incoming) > ingress:
            for e in incoming:
                flow[e] = min(flow[e], ingress * (1 / len(incoming)))
        if sum(flow[e] for e in outgoing) > egress:
            for e in outgoing:
                flow[e] = min(flow[e], egress * (1 / len(outgoing)))

    per_partition_gbit = job.partition_vol * 8
    times = {}
    for dst in job.dsts:
        slowest = float("-inf")
        for route in routes[dst]:
            for u, v in pairwise(route):
                slowest = max(slowest, len(succ[u][v]) * per_partition_gbit / flow[(u, v)])
        times[dst] = slowest
    time_s = round(max(times.values()), 2)

    egress_cost = 0.0
    for u in succ:
        for v, partitions in succ[u].items():
            egress_cost += len(partitions) * job.partition_vol * table[(u, v)][0]
    instance_cost = 0.0
    for _node in succ:
        instance_cost += num_vms * (INSTANCE_COST_PER_HOUR / 3600) * time_s
    return JobResult(egress_cost=egress_cost, instance_cost=instance_cost, time_s=time_s,
                     destination_time_s=times, edge_flow=flow, overlay_nodes=len(succ),
                     overlay_edges=len(flow))
