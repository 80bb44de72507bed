"""The transaction execution model against hand-computed cases and the published figures."""

from __future__ import annotations

import pytest

from problems.txn.model import (
    Placement,
    Workload,
    check_order,
    load_workloads,
    lower_bound,
    makespan,
    parse_txn,
)
from tests.problems_sched.conftest import PROBLEMS


def span(*texts: str) -> int:
    txns = [parse_txn(f"t{i}", t) for i, t in enumerate(texts)]
    return makespan(txns, range(len(txns)))


def test_reads_of_the_same_key_share_a_time_unit():
    assert span("r-1 r-2", "r-1 r-2") == 2


def test_a_read_waits_for_the_last_write():
    # t1's read of key 1 must run after time 1 (t0's write): start 2, end 3.
    assert span("w-1 *", "r-1 *") == 3


def test_a_write_waits_for_the_last_read_at_its_own_offset():
    # t1 writes key 1 at its second slot: starting at 1 puts it at time 2 > 1, so start 1.
    assert span("r-1 * *", "* w-1") == 3


def test_write_write_conflict():
    assert span("* * w-5", "w-5") == 4


def test_a_write_follows_both_the_latest_read_and_the_latest_write():
    assert span("w-1", "r-1", "w-1") == 3


def test_empty_slots_touch_nothing():
    assert span("w-1 * *", "* * *") == 3
    assert span("w-1 * *", "* * *", "r-1") == 3


def test_placement_start_and_end_if_added_do_not_change_state():
    p = Placement()
    t0, t1 = parse_txn("a", "w-1 w-2"), parse_txn("b", "r-2 *")
    p.add(t0)
    assert p.start_of(t1) == 3 and p.end_if_added(t1) == 4
    assert p.makespan == 2
    assert p.add(t1) == 3 and p.makespan == 4


def test_published_makespans_of_the_given_order_and_the_lower_bound():
    workloads = load_workloads(PROBLEMS / "txn" / "data" / "workloads.json")
    given = [makespan(t, range(len(t))) for t in workloads.values()]
    assert given == [452, 38, 47]
    assert sum(lower_bound(t) for t in workloads.values()) == 46


@pytest.mark.parametrize(("order", "message"), [
    ([0, 1, 1], "appears twice"),
    ([0, 1], "has 2 entries"),
    ([0, 1, 3], "out of range"),
    ([0, 1, True], "bool"),
    ([0, 1, "2"], "transaction indices"),
    ("012", "list of transaction indices"),
    (None, "list of transaction indices"),
    ({0, 1, 2}, "list of transaction indices"),
])
def test_check_order_rejects_what_is_not_a_permutation(order, message):
    with pytest.raises(ValueError, match=message):
        check_order(order, 3)


def test_check_order_accepts_tuples_and_generators():
    assert check_order((2, 0, 1), 3) == [2, 0, 1]
    assert check_order((i for i in (1, 0)), 2) == [1, 0]


def test_workload_helper_matches_the_model():
    workloads = load_workloads(PROBLEMS / "txn" / "data" / "workloads.json")
    w = Workload("workload_3", workloads["workload_3"])
    assert len(w) == 100 and w.makespan(range(100)) == 47
    with pytest.raises(IndexError):
        w.makespan([100])


def test_evaluator_scores_the_given_order_zero_and_recomputes_makespans(evaluators, write_program):
    ev = evaluators["txn"]
    result = ev.evaluate(str(PROBLEMS / "txn" / "baselines" / "given_order.py"), "full")
    assert result["valid"] and result["score"] == 0.0
    assert result["metrics"]["total_makespan"] == 537
    # A candidate that "reports" a tiny makespan gains nothing: only the order is used.
    liar = write_program("def schedule(workload):\n    return {'makespan': 1, 'order': []}\n")
    bad = ev.evaluate(liar, "full")
    assert not bad["valid"] and "list of transaction indices" in bad["feedback"]


@pytest.mark.parametrize("body, fragment", [
    ("return list(range(len(workload))) + [0]", "entries"),
    ("return [0] * len(workload)", "appears twice"),
    ("raise RuntimeError('boom')", "boom"),
])
def test_evaluator_rejects_bad_orders_and_crashes(evaluators, write_program, body, fragment):
    path = write_program(f"def schedule(workload):\n    {body}\n")
    result = evaluators["txn"].evaluate(path, "full")
    assert not result["valid"]
    assert fragment in result["feedback"]


def test_evaluator_rejects_unknown_stage_and_missing_function(evaluators, write_program):
    ev = evaluators["txn"]
    assert not ev.evaluate(write_program("x = 1\n"), "full")["valid"]
    assert "unknown stage" in ev.evaluate(str(PROBLEMS / "txn" / "initial.py"), "nope")["feedback"]
