"""A cheap stage is a representative gate: spot_multi's quick stage ranks the baselines as the
full stage does, and stops none of them."""

from __future__ import annotations

from evolve.problem.spec import load_problem
from tests.problems_sched.conftest import PROBLEMS


def test_spot_multi_quick_ranks_the_baselines_as_full_does(evaluators):
    spec = load_problem(PROBLEMS / "spot_multi")
    ev = evaluators["spot_multi"]
    quick = {n: ev.evaluate(str(p), "quick") for n, p in spec.baselines().items()}
    full = {n: ev.evaluate(str(p), "full") for n, p in spec.baselines().items()}
    assert all(r["valid"] for r in (*quick.values(), *full.values()))
    by_quick = sorted(quick, key=lambda n: quick[n]["metrics"]["mean_cost"])
    by_full = sorted(full, key=lambda n: full[n]["metrics"]["mean_cost"])
    assert by_quick == by_full
    assert by_full[0] == "uniform_progress_rr" and by_full[-1] == "on_demand"
    threshold = spec.stages[0].threshold
    assert all(r["score"] >= threshold for r in quick.values())      # no baseline is stopped
    # It samples every scenario, not one trace of one scenario.
    groups = {k.removeprefix("mean_cost[").removesuffix("]")
              for k in quick["greedy"]["metrics"] if k.startswith("mean_cost[")}
    assert len(groups) == 6 and quick["greedy"]["metrics"]["runs"] == 17
