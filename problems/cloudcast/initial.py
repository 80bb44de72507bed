"""Multi-cloud broadcast: choose, for every destination and partition, the route from the source.

`search_algorithm(src, dsts, G, num_partitions)` gets a networkx.DiGraph of regions whose edges
carry `cost` ($/GB) and `throughput` (Gbit/s) and returns {destination: [route per partition]},
each route a list of regions from src to that destination. The evaluator simulates the overlay
(the union of all routes) and charges egress per partition per edge plus instance time.
"""

from itertools import pairwise

import networkx as nx

# EVOLVE-BLOCK-START
# An edge's weight in the path search: its $/GB plus THROUGHPUT_WEIGHT / its Gbit/s; an edge an
# earlier destination's path already uses weighs REUSE_FACTOR times as much. At 0.0 and 1.0 each
# destination gets its cheapest path by $/GB alone (the leaderboard's starting point).
THROUGHPUT_WEIGHT = 0.0
REUSE_FACTOR = 1.0


def search_algorithm(src, dsts, G, num_partitions):
    """Route every partition of each destination along its cheapest path."""
    used = set()

    def weight(u, v, data):
        w = data["cost"] + THROUGHPUT_WEIGHT / data["throughput"]
        return w * REUSE_FACTOR if (u, v) in used else w

    routes = {}
    for dst in dsts:
        path = nx.dijkstra_path(G, src, dst, weight=weight)
        used.update(pairwise(path))
        routes[dst] = [list(path) for _ in range(num_partitions)]
    return routes
# EVOLVE-BLOCK-END
