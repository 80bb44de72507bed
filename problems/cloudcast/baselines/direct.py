"""Every partition on the direct edge from the source to each destination (score 0)."""


def search_algorithm(src, dsts, G, num_partitions):
    return {dst: [[src, dst] for _ in range(num_partitions)] for dst in dsts}
