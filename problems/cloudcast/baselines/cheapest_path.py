"""Each destination's cheapest path by $/GB (Dijkstra), every partition on it: the ADRS
Leaderboard's starting program (its score, 26.74, reproduces)."""

import networkx as nx


def search_algorithm(src, dsts, G, num_partitions):
    routes = {}
    for dst in dsts:
        path = nx.dijkstra_path(G, src, dst, weight="cost")
        routes[dst] = [list(path) for _ in range(num_partitions)]
    return routes
