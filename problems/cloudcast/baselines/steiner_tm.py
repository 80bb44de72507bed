"""Shortest-path Steiner-tree heuristic (Takahashi & Matsuyama, 1980), by $/GB.

Grow a tree from the source: repeatedly attach the destination that is cheapest to reach from
any region already in the tree, along that cheapest path. Every partition follows the tree, so
a hop shared by several destinations is paid once per partition.
"""

from itertools import pairwise

import networkx as nx


def search_algorithm(src, dsts, G, num_partitions):
    parent = {src: None}            # insertion-ordered: the tree's regions
    left = list(dsts)
    while left:
        dist, paths = nx.multi_source_dijkstra(G, list(parent), weight="cost")
        nearest = min(left, key=lambda d: dist[d])
        path = paths[nearest]
        for u, v in pairwise(path):
            parent.setdefault(v, u)
        left = [d for d in left if d not in parent]
    routes = {}
    for dst in dsts:
        route = [dst]
        while route[-1] != src:
            route.append(parent[route[-1]])
        routes[dst] = [route[::-1] for _ in range(num_partitions)]
    return routes
