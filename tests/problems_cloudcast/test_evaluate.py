"""The cloudcast evaluator: the baselines' published figures, the bound, and every route check
(with the job, destination and partition named), on the real data."""

from __future__ import annotations

import textwrap

import pytest

from evolve.problem.spec import load_problem
from problems.cloudcast import evaluate as ev
from problems.cloudcast.network import JOB_NAMES
from problems.cloudcast.routes import InvalidRoutes, check_routes, copy_routes
from problems.cloudcast.simulate import edge_table
from tests.problems_sched.conftest import PROBLEMS

SPEC = load_problem(PROBLEMS / "cloudcast")


@pytest.fixture(scope="module")
def full() -> dict[str, dict]:
    programs = {"initial": SPEC.initial_path, **SPEC.baselines()}
    return {name: ev.evaluate(str(path), "full") for name, path in programs.items()}


def test_the_baselines_reproduce_the_leaderboard_and_our_figures(full):
    assert all(r["valid"] for r in full.values()), {n: r["feedback"] for n, r in full.items()}
    figures = {n: (round(r["metrics"]["total_cost"], 2), round(r["score"], 2))
               for n, r in full.items()}
    assert figures == {
        "direct": (1199.17, 0.0),
        "cheapest_path": (1045.86, 26.74),      # the leaderboard's published baseline
        "initial": (1045.86, 26.74),            # the same program, with tunable weights
        "steiner_tm": (773.49, 74.29),
        "steiner_exact": (625.83, 100.0),
    }
    assert full["steiner_exact"]["metrics"]["lower_bound"] == pytest.approx(619.7929, abs=1e-4)


def test_no_baseline_beats_the_bound_on_any_job(full):
    for name, result in full.items():
        for job in JOB_NAMES:
            assert result["metrics"][f"{job}_total_cost"] >= ev.BOUNDS[job] - 1e-9, (name, job)


def test_the_exact_steiner_tree_pays_exactly_the_egress_part_of_the_bound(full):
    metrics = full["steiner_exact"]["metrics"]
    egress = sum(metrics[f"{job}_egress_cost"] for job in JOB_NAMES)
    assert egress == pytest.approx(57 + 99 + 141 + 160.5 + 160.5)


def test_the_quick_stage_runs_two_jobs_and_scores_the_share_of_the_gap(full):
    quick = ev.evaluate(str(SPEC.baselines()["direct"]), "quick")
    assert quick["valid"] and quick["score"] == 0.0
    assert set(k for k in quick["metrics"] if k.endswith("_total_cost")) == {
        "intra_aws_total_cost", "inter_agz_total_cost"}
    tm = ev.evaluate(str(SPEC.baselines()["steiner_tm"]), "quick")
    assert 0 < tm["score"] < 100


def program(tmp_path, body: str) -> str:
    path = tmp_path / "candidate.py"
    path.write_text("import networkx as nx\n\n" + textwrap.dedent(body))
    return str(path)


SOURCE = "aws:ap-northeast-1"      # intra_aws, the first job
FIRST_DST = "aws:me-south-1"


@pytest.mark.parametrize("body, message", [
    # The leaderboard's exploit: a partition sent out of a region that never received it.
    ("""\
     def search_algorithm(src, dsts, G, n):
         return {d: [[dsts[0], d] if d != dsts[0] else [src, d] for _ in range(n)] for d in dsts}
     """, "job intra_aws, destination aws:eu-south-1, partition 0: the route starts at "
          "aws:me-south-1, not at the source aws:ap-northeast-1"),
    ("""\
     def search_algorithm(src, dsts, G, n):
         return {d: [[src, d] for _ in range(n - 1)] + [[src, dsts[0]]] for d in dsts}
     """, "job intra_aws, destination aws:eu-south-1, partition 9: the route ends at "
          "aws:me-south-1, not at the destination aws:eu-south-1"),
    ("""\
     def search_algorithm(src, dsts, G, n):
         return {d: [[src, dsts[1], src, d] for _ in range(n)] for d in dsts}
     """, "job intra_aws, destination aws:me-south-1, partition 0: the route visits "
          "aws:ap-northeast-1 twice"),
    ("""\
     def search_algorithm(src, dsts, G, n):
         return {d: [[src, 'aws:moon-1', d]] * n for d in dsts}
     """, "job intra_aws, destination aws:me-south-1, partition 0: 'aws:moon-1' is not a "
          "region of the network"),
    ("""\
     def search_algorithm(src, dsts, G, n):
         return {d: [[src, d]] * n for d in dsts[1:]}
     """, "job intra_aws: no routes for destination aws:me-south-1"),
    ("""\
     def search_algorithm(src, dsts, G, n):
         return {d: [[src, d]] * (n - 1) for d in dsts}
     """, "job intra_aws, destination aws:me-south-1: expected 10 routes (one per partition), "
          "got 9"),
    ("""\
     def search_algorithm(src, dsts, G, n):
         return {**{d: [[src, d]] * n for d in dsts[1:]}, src: [[src]] * n}
     """, "job intra_aws: routes for 'aws:ap-northeast-1', which is not a destination of this "
          "job"),
    ("""\
     def search_algorithm(src, dsts, G, n):
         return [[src, d] for d in dsts]
     """, "job intra_aws: search_algorithm must return a dict"),
    ("""\
     def search_algorithm(src, dsts, G, n):
         return {d: [tuple([src, d])] * n + [[src, d]] for d in dsts}
     """, "job intra_aws, destination aws:me-south-1: expected a list of 10 routes"),
])
def test_an_invalid_route_makes_the_program_invalid_naming_job_destination_partition(
        tmp_path, body, message):
    result = ev.evaluate(program(tmp_path, body), "full")
    assert not result["valid"] and result["score"] == 0.0
    assert message in result["feedback"], result["feedback"]


def test_a_missing_edge_is_named():
    job = ev.JOBS["intra_aws"]
    table = edge_table([(u, v, c, t) for u, v, c, t in ev.EDGES if (u, v) != (SOURCE, FIRST_DST)])
    routes = {d: [[SOURCE, d]] * job.num_partitions for d in job.dsts}
    with pytest.raises(InvalidRoutes, match="job intra_aws, destination aws:me-south-1, "
                                            "partition 0: the route uses the edge "
                                            "aws:ap-northeast-1 -> aws:me-south-1, which does "
                                            "not exist"):
        check_routes(routes, job, table, ev.NODES)


def test_lying_objects_are_refused_or_read_by_their_genuine_value():
    job = ev.JOBS["intra_aws"]

    class Liar(str):
        def __eq__(self, other):
            return True

        __hash__ = str.__hash__

    class AlwaysEqualList(list):
        def __eq__(self, other):
            return True

    # A str subclass is read by its genuine value: a wrong region stays wrong.
    lying = {d: [[Liar("aws:us-east-1"), d]] * job.num_partitions for d in job.dsts}
    routes = copy_routes(lying, job, max_nodes=len(ev.NODES))
    assert all(type(n) is str for r in routes[FIRST_DST] for n in r)
    with pytest.raises(InvalidRoutes, match="starts at aws:us-east-1, not at the source"):
        check_routes(routes, job, ev.TABLE, ev.NODES)
    with pytest.raises(InvalidRoutes, match="partition 0: the route must be a list"):
        copy_routes({d: [AlwaysEqualList([SOURCE, d])] * job.num_partitions for d in job.dsts},
                    job, max_nodes=len(ev.NODES))
    with pytest.raises(InvalidRoutes, match="expected a region name"):
        copy_routes({d: [[SOURCE, 7]] * job.num_partitions for d in job.dsts}, job,
                    max_nodes=len(ev.NODES))
    # A route longer than the network has regions must repeat one: refused before copying.
    with pytest.raises(InvalidRoutes, match="at most 71 items"):
        copy_routes({d: [[SOURCE] * 10**6] * job.num_partitions for d in job.dsts}, job,
                    max_nodes=len(ev.NODES))


def test_each_job_gets_a_fresh_graph_and_the_candidates_cpu_is_timed(tmp_path):
    """candidate_seconds is the CPU time of the candidate's process (the judge/candidate API):
    its work counts, its sleeping does not."""
    body = """\
    import time

    def search_algorithm(src, dsts, G, n):
        assert G.number_of_edges() == 4970, G.number_of_edges()
        assert G[src][dsts[0]]["cost"] > 0
        G.remove_edges_from(list(G.edges))      # a candidate may edit its own copy freely
        end = time.process_time() + 0.1
        while time.process_time() < end:        # 0.1 s of work per job
            pass
        time.sleep(0.2)                         # and 0.2 s asleep
        return {d: [[src, d]] * n for d in dsts}
    """
    result = ev.evaluate(program(tmp_path, body), "full")
    assert result["valid"], result["feedback"]
    assert result["metrics"]["total_cost"] == pytest.approx(1199.169, abs=1e-3)
    assert 0.5 <= result["metrics"]["candidate_seconds"] < 1.4, result["metrics"]


def test_an_exception_in_the_candidate_names_the_job(tmp_path):
    body = """\
    def search_algorithm(src, dsts, G, n):
        if src.startswith('gcp'):
            raise RuntimeError('no route found')
        return {d: [[src, d]] * n for d in dsts}
    """
    result = ev.evaluate(program(tmp_path, body), "full")
    assert not result["valid"]
    assert "search_algorithm raised on job intra_gcp: RuntimeError: no route found" in \
        result["feedback"]
