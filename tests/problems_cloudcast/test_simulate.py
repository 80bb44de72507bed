"""The overlay simulation and the lower bound on tiny hand-made networks, computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from problems.cloudcast.bound import shortest_costs, steiner_arborescence_cost
from problems.cloudcast.network import Job
from problems.cloudcast.simulate import edge_table, simulate

# s (aws) sends 20 GB in 2 partitions (10 GB = 80 Gbit each) to b (aws) and c (gcp).
EDGES = [("aws:s", "aws:b", 0.02, 4.0), ("aws:s", "gcp:c", 0.09, 8.0),
         ("aws:b", "gcp:c", 0.05, 2.0), ("gcp:c", "aws:s", 0.08, 9.0)]


def job(ingress_gcp: float = 16.0) -> Job:
    return Job(name="tiny", src="aws:s", dsts=("aws:b", "gcp:c"), data_vol=20.0,
               num_partitions=2, ingress_limit={"aws": 10.0, "gcp": ingress_gcp},
               egress_limit={"aws": 5.0, "gcp": 7.0})


RELAY = {"aws:b": [["aws:s", "aws:b"], ["aws:s", "aws:b"]],
         # partition 0 relays through destination b, partition 1 goes direct
         "gcp:c": [["aws:s", "aws:b", "gcp:c"], ["aws:s", "gcp:c"]]}


def test_a_shared_hop_is_paid_once_per_partition_and_the_source_egress_limit_caps_its_edges():
    result = simulate(job(), RELAY, edge_table(EDGES), num_vms=1)
    # s -> b carries {0, 1} (b's two routes and c's partition 0 share it): 2 x 10 GB x 0.02;
    # b -> c carries {0}: 10 x 0.05; s -> c carries {1}: 10 x 0.09.
    assert result.egress_cost == pytest.approx(0.4 + 0.5 + 0.9)
    # s's out-flows 4 + 8 > its egress limit 5: each capped at 5 / 2 = 2.5 Gbit/s.
    # b: s -> b takes 2 partitions x 80 Gbit / 2.5 = 64 s. c: the slowest edge of its routes is
    # s -> b too (64 s; b -> c: 80 / 2 = 40 s, s -> c: 80 / 2.5 = 32 s).
    assert result.destination_time_s == pytest.approx({"aws:b": 64.0, "gcp:c": 64.0})
    assert result.time_s == 64.0
    # 3 regions x 1 VM x $0.54/h x 64 s.
    assert result.instance_cost == pytest.approx(3 * 0.54 / 3600 * 64)
    assert (result.overlay_nodes, result.overlay_edges) == (3, 3)


def test_the_ingress_limit_caps_each_incoming_edge_at_an_equal_share():
    # c's in-flows b -> c (2) and s -> c (2.5 after s's cap) sum to 4.5 > 3: each capped at 1.5.
    result = simulate(job(ingress_gcp=3.0), RELAY, edge_table(EDGES), num_vms=1)
    assert result.edge_flow == pytest.approx({("aws:s", "aws:b"): 2.5, ("aws:b", "gcp:c"): 1.5,
                                              ("aws:s", "gcp:c"): 1.5})
    # c's slowest edge is still s -> b (64 s), its own in-edges now take 80 / 1.5 = 53.3 s.
    assert result.destination_time_s["gcp:c"] == 64.0
    # Two VMs double every limit. s: 4 + 8 > 10, each capped at 5 (s -> b keeps its 4);
    # c: 2 + 5 > 6, each capped at 3 (b -> c keeps its 2).
    doubled = simulate(job(ingress_gcp=3.0), RELAY, edge_table(EDGES), num_vms=2)
    assert doubled.edge_flow == pytest.approx({("aws:s", "aws:b"): 4.0, ("aws:b", "gcp:c"): 2.0,
                                               ("aws:s", "gcp:c"): 3.0})
    assert doubled.destination_time_s == pytest.approx({"aws:b": 2 * 80 / 4.0, "gcp:c": 80 / 2.0})


def test_nodes_apply_their_limits_in_the_order_the_overlay_met_them():
    # Provider p: ingress 10, egress 100; q (region b): egress 4. The same edges, met in two
    # orders: destinations b, d, c with c's relayed partition first, or c first, direct.
    edges = [("p:s", "q:b", 0.02, 9.0), ("p:s", "p:c", 0.02, 8.0),
             ("q:b", "p:c", 0.02, 9.0), ("q:b", "p:d", 0.02, 9.0)]
    limits = {"ingress_limit": {"p": 10.0, "q": 10.0}, "egress_limit": {"p": 100.0, "q": 4.0}}
    routes = {"q:b": [["p:s", "q:b"]] * 2, "p:d": [["p:s", "q:b", "p:d"]] * 2}
    b_first = Job(name="b", src="p:s", dsts=("q:b", "p:d", "p:c"), data_vol=20.0,
                  num_partitions=2, **limits)
    relayed_first = {**routes, "p:c": [["p:s", "q:b", "p:c"], ["p:s", "p:c"]]}
    # s, b, d, c: b's egress (9 + 9 > 4) caps b -> c to 2 before c sums 2 + 8, not over 10.
    flows = simulate(b_first, relayed_first, edge_table(edges), num_vms=1).edge_flow
    assert flows[("p:s", "p:c")] == 8.0 and flows[("q:b", "p:c")] == 2.0
    c_first = Job(name="c", src="p:s", dsts=("p:c", "q:b", "p:d"), data_vol=20.0,
                  num_partitions=2, **limits)
    direct_first = {**routes, "p:c": [["p:s", "p:c"], ["p:s", "q:b", "p:c"]]}
    # s, c, b, d: c sums 8 + 9 > 10 and caps both at 5; then b caps b -> c further, to 2.
    flows = simulate(c_first, direct_first, edge_table(edges), num_vms=1).edge_flow
    assert flows[("p:s", "p:c")] == 5.0 and flows[("q:b", "p:c")] == 2.0


def test_the_job_time_is_rounded_to_a_hundredth_of_a_second_before_billing():
    routes = {"aws:b": [["aws:s", "aws:b"]] * 2, "gcp:c": [["aws:s", "aws:b", "gcp:c"]] * 2}
    result = simulate(job(), routes, edge_table(EDGES), num_vms=1)
    # s has one out-edge (4 < 5): 160 / 4 = 40 s; b -> c carries both: 160 / 2 = 80 s.
    assert result.time_s == 80.0
    odd = [("aws:s", "aws:b", 0.02, 3.0), ("aws:b", "gcp:c", 0.05, 7.0)]
    result = simulate(job(), routes, edge_table(odd), num_vms=1)
    assert result.time_s == round(160 / 3.0, 2) == 53.33
    assert result.instance_cost == pytest.approx(3 * 0.54 / 3600 * 53.33)


def test_the_steiner_arborescence_shares_a_hub_and_passes_through_terminals():
    hub = [("s", "h", 1.0, 1.0), ("h", "a", 1.0, 1.0), ("h", "b", 1.0, 1.0),
           ("s", "a", 3.0, 1.0), ("s", "b", 3.0, 1.0)]
    nodes, dist = shortest_costs(hub)
    assert steiner_arborescence_cost("s", ("a", "b"), nodes, dist) == 3.0   # s-h, h-a, h-b
    chain = [("s", "a", 1.0, 1.0), ("a", "b", 1.0, 1.0), ("s", "b", 5.0, 1.0),
             ("b", "s", 0.1, 1.0)]
    nodes, dist = shortest_costs(chain)
    assert dist[nodes.index("s"), nodes.index("b")] == 2.0
    assert steiner_arborescence_cost("s", ("a", "b"), nodes, dist) == 2.0   # through a
    # Directed: the cheap edge b -> s does not help a tree rooted at b reach s and a cheaply.
    assert steiner_arborescence_cost("b", ("s", "a"), nodes, dist) == pytest.approx(1.1)
    assert np.isinf(steiner_arborescence_cost("h", ("s",), *shortest_costs(hub)))
