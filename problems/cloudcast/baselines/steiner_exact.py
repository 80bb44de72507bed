"""The minimum-cost Steiner arborescence by $/GB, exact (Dreyfus & Wagner, 1971), every
partition on it.

best[S][v] is the cheapest tree rooted at region v that reaches the destinations in subset S,
on cheapest-path distances: a single destination is a cheapest path; a larger S walks a cheapest
path v -> u and splits there into two subtrees. Egress is the tree's $/GB x 300 GB, the least any
routing can pay (every partition must reach every destination), so only the instance cost (the
transfer time) is left to improve.
"""

from itertools import pairwise

import networkx as nx
import numpy as np


def search_algorithm(src, dsts, G, num_partitions):
    nodes = list(G.nodes)
    index = {name: i for i, name in enumerate(nodes)}
    dist = np.full((len(nodes), len(nodes)), np.inf)
    np.fill_diagonal(dist, 0.0)
    for u, v, cost in G.edges(data="cost"):
        dist[index[u], index[v]] = min(dist[index[u], index[v]], cost)
    for k in range(len(nodes)):       # Floyd-Warshall: cheapest $/GB between every pair
        np.minimum(dist, dist[:, k:k + 1] + dist[k:k + 1, :], out=dist)
    full = (1 << len(dsts)) - 1
    best = np.full((full + 1, len(nodes)), np.inf)
    via = np.zeros((full + 1, len(nodes)), dtype=int)     # v -> via[S][v] on a cheapest path
    split = np.zeros((full + 1, len(nodes)), dtype=int)   # ... then subtrees split[S][u], S - it
    for i, t in enumerate(dsts):
        best[1 << i] = dist[:, index[t]]
        via[1 << i] = index[t]
    for subset in range(1, full + 1):
        if subset & (subset - 1) == 0:
            continue
        merged = np.full(len(nodes), np.inf)
        part = (subset - 1) & subset
        while part:
            if part < subset ^ part:
                cost = best[part] + best[subset ^ part]
                better = cost < merged
                merged[better] = cost[better]
                split[subset][better] = part
            part = (part - 1) & subset
        total = dist + merged[None, :]
        via[subset] = total.argmin(axis=1)
        best[subset] = total.min(axis=1)

    edges = set()

    def collect(subset, v):
        u = via[subset][v]
        if u != v:
            edges.update(pairwise(nx.dijkstra_path(G, nodes[v], nodes[u], weight="cost")))
        part = split[subset][u]
        if subset & (subset - 1):
            collect(int(part), u)
            collect(subset ^ int(part), u)

    collect(full, index[src])
    # The collected paths could meet; a cheapest-path tree inside them costs no more.
    tree = nx.DiGraph()
    tree.add_edges_from((u, v, {"cost": G[u][v]["cost"]}) for u, v in edges)
    _, tree_paths = nx.single_source_dijkstra(tree, src, weight="cost")
    return {dst: [list(tree_paths[dst]) for _ in range(num_partitions)] for dst in dsts}
