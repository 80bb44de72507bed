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


def search_algorithm(src, dsts, G, num_partitions):
    nodes = list(G.nodes)
    dist, path = {}, {}
    for v, (d, p) in nx.all_pairs_dijkstra(G, weight="cost"):
        dist[v], path[v] = d, p
    inf = float("inf")
    k = len(dsts)
    full = (1 << k) - 1
    best = [None] * (full + 1)
    how = [None] * (full + 1)      # how[S][v] = (u, A): path v -> u, then subtrees A and S - A
    for i, t in enumerate(dsts):
        best[1 << i] = {v: dist[v].get(t, inf) for v in nodes}
        how[1 << i] = {v: (t, 0) for v in nodes}
    for subset in range(1, full + 1):
        if subset & (subset - 1) == 0:
            continue
        merged, split = {}, {}
        for u in nodes:
            value, choice = inf, 0
            part = (subset - 1) & subset
            while part:
                if part < subset ^ part:
                    cost = best[part][u] + best[subset ^ part][u]
                    if cost < value:
                        value, choice = cost, part
                part = (part - 1) & subset
            merged[u], split[u] = value, choice
        best[subset], how[subset] = {}, {}
        for v in nodes:
            u = min(nodes, key=lambda w: dist[v].get(w, inf) + merged[w])
            best[subset][v] = dist[v].get(u, inf) + merged[u]
            how[subset][v] = (u, split[u])

    edges = set()

    def collect(subset, v):
        u, part = how[subset][v]
        edges.update(pairwise(path[v][u]))
        if part:
            collect(part, u)
            collect(subset ^ part, u)

    collect(full, src)
    # The collected paths could meet; a cheapest-path tree inside them costs no more.
    tree = nx.DiGraph()
    tree.add_edges_from((u, v, {"cost": G[u][v]["cost"]}) for u, v in edges)
    _, tree_paths = nx.single_source_dijkstra(tree, src, weight="cost")
    return {dst: [list(tree_paths[dst]) for _ in range(num_partitions)] for dst in dsts}
