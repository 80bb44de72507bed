"""End-to-end runs through the real archive, sandbox, LLM client and a scripted HTTP server."""

from __future__ import annotations

import json
import re
import time

from tests.engine.engine_support import (
    FIXTURE,
    bump,
    engine_config,
    open_archive,
    parent_value,
    run,
    set_value_diff,
)
from tests.support.llm_server import HTTPError, Reply

VALUES = re.compile(r"^VALUE = (.+)$", re.MULTILINE)


def test_scripted_diffs_improve_and_the_best_program_lands_in_best(tmp_path, server_factory):
    server = server_factory(bump(1.0))
    snapshots: list = []
    outcome = run(engine_config(tmp_path, server, budget={"max_programs": 8}), tmp_path,
                  snapshots=snapshots)
    assert outcome.status == "completed" and outcome.programs == 8
    with open_archive(tmp_path) as archive:
        run_row = archive.runs()[0]
        assert run_row.status == "completed" and run_row.isolation  # sandbox level recorded
        programs = archive.programs(outcome.run_id)
        # The budget counts evaluated programs; duplicates are recorded besides them.
        assert sum(p.status == "evaluated" for p in programs) == 9
        initial = next(p for p in programs if p.proposal_key == "initial")
        best = archive.best(outcome.run_id)[0]
        assert best.score > initial.score
        for p in programs:
            if p.proposal_key != "initial":
                assert (p.status == "evaluated" and p.valid) or p.status == "duplicate", p.status
                assert archive.llm_calls(program_id=p.id), "LLM calls are linked to the program"
                assert p.diff and "VALUE" in p.diff
    assert (tmp_path / "best" / "program.py").read_text() == best.code
    result = json.loads((tmp_path / "best" / "result.json").read_text())
    assert result["score"] == best.score and result["program_id"] == best.id
    assert (tmp_path / "config.toml").is_file()
    events = [s.event for s in snapshots]
    assert events[0] == "start" and events[-1] == "stop"
    assert events.count("program") == len(programs) - 1
    assert snapshots[-1].best_score == best.score


def test_failed_diffs_invalid_programs_and_duplicates_are_recorded_with_reasons(
        tmp_path, server_factory):
    calls = {"n": 0}

    def respond(request):
        calls["n"] += 1
        n = calls["n"]
        old = parent_value(request)
        if n == 1:
            return Reply(set_value_diff(old, repr(old + 1)))                 # seq 0: improves
        if n in (2, 3):
            return Reply(set_value_diff(123.0, "124.0"))                     # seq 1: no match x2
        if n == 4:
            return Reply(set_value_diff(old, 'float("nan")'))                # seq 2: invalid
        if n == 5:
            return Reply(set_value_diff(old, "2.0" if old != 2.0 else "1.0"))  # seq 3: duplicate
        if n in (6, 7):                                                      # seq 4: outside x2
            return Reply('<<<<<<< SEARCH\n"""Fixture: a constant to move towards 10."""\n'
                         '=======\n"""Changed."""\n>>>>>>> REPLACE\n')
        if n == 8:                                                           # seq 5: renamed
            return Reply(f"<<<<<<< SEARCH\nVALUE = {old!r}\n=======\nLEVEL = {old!r}\n"
                         f">>>>>>> REPLACE\n<<<<<<< SEARCH\n    return VALUE\n=======\n"
                         f"    return LEVEL\n>>>>>>> REPLACE\n")
        return HTTPError(400, {"error": {"message": "bad request (scripted)",
                                         "type": "invalid_request_error"}})  # seq 6

    server = server_factory(respond)
    # Two are evaluated: the budget (evaluated programs) is not what stops the run, four
    # proposals in a row without a new program (7:3 .. 7:6) are.
    config = engine_config(tmp_path, server, budget={"max_programs": 7, "stall_after": 4},
                           islands={"count": 1}, concurrency={"proposals": 1, "evaluations": 1},
                           sampling={"parent_selection": "hill_climbing"})
    outcome = run(config, tmp_path)
    assert outcome.status == "completed" and outcome.programs == 2
    with open_archive(tmp_path) as archive:
        by_key = {p.proposal_key: p for p in archive.programs(outcome.run_id)}
        got = {key: (p.status, p.error_kind) for key, p in by_key.items() if key != "initial"}
        assert got == {
            "7:0": ("evaluated", None),
            "7:1": ("rejected", "diff-no-match"),
            "7:2": ("evaluated", "invalid-output"),
            "7:3": ("duplicate", "duplicate"),
            "7:4": ("rejected", "outside-evolve-block"),
            "7:5": ("duplicate", "near-duplicate"),
            "7:6": ("rejected", "llm-error"),
            "7:7": ("rejected", "llm-error"),  # started before 7:6 was in; it finishes
        }, got
        stop = archive.events(outcome.run_id, kind="stop")[-1]
        assert "nothing new can be proposed: the last 4 proposals" in stop.message
        assert "matches nothing" in by_key["7:1"].error_text
        assert "after 2 tries" in by_key["7:1"].error_text
        assert "not a finite number" in (by_key["7:2"].error_text or "") + by_key["7:2"].feedback
        assert "identical" in by_key["7:3"].error_text
        assert "line 1" in by_key["7:4"].error_text
        assert "similarity" in by_key["7:5"].error_text
        assert "400" in by_key["7:6"].error_text or "bad request" in by_key["7:6"].error_text
        for key in ("7:1", "7:3", "7:4", "7:5", "7:6"):  # never evaluated
            assert archive.evaluations(by_key[key].id) == []
        assert len(archive.llm_calls(program_id=by_key["7:1"].id)) == 2
    # The rejected diff was fed back to the model with the precise error.
    retry = server.chat_requests[2].json["messages"]
    assert retry[-2]["role"] == "assistant" and "matches nothing" in retry[-1]["content"]


def test_program_budget_stops_exactly_with_many_in_flight(tmp_path, server_factory):
    server = server_factory(bump(0.5))
    config = engine_config(tmp_path, server, budget={"max_programs": 5},
                           concurrency={"proposals": 4, "evaluations": 2})
    outcome = run(config, tmp_path)
    with open_archive(tmp_path) as archive:
        keys = sorted(p.proposal_key for p in archive.programs(outcome.run_id))
        evaluated = [p for p in archive.programs(outcome.run_id) if p.status == "evaluated"]
    # The budget counts evaluated programs (5 + the initial one); duplicates of siblings make
    # room for more proposals, and every proposal asked exactly once: none beyond the budget.
    assert len(evaluated) == 6
    assert keys == sorted([f"7:{i}" for i in range(len(keys) - 1)] + ["initial"])
    assert len(server.chat_requests) == len(keys) - 1


def test_dollar_budget_stops_proposing_once_reached(tmp_path, server_factory):
    server = server_factory(lambda r: Reply(set_value_diff(parent_value(r), repr(parent_value(r) + 1)),
                                            prompt_tokens=0, completion_tokens=7))
    config = engine_config(
        tmp_path, server, budget={"max_programs": 50, "max_usd": 20.0},
        concurrency={"proposals": 1, "evaluations": 1},
        operators={"models": [{"name": "openai/scripted", "api_base": server.base_url,
                               "max_tokens": 7}]},
        llm={"prices": {"openai/scripted": {"input_per_mtok": 0.0,
                                            "output_per_mtok": 1_000_000.0}}})  # $7 a call
    outcome = run(config, tmp_path)
    with open_archive(tmp_path) as archive:
        spent = archive.cost_so_far(outcome.run_id)
        n = archive.count_programs(outcome.run_id) - 1
        stop = archive.events(outcome.run_id, kind="stop")[-1]
    # A call's worst case is $7 (7 max_tokens): two calls fit in $20, a third could reach $21
    # and is never started.
    assert n == 2 and spent == 14.0 and len(server.chat_requests) == 2
    assert "budget reached: a call to openai/scripted could cost up to $7" in stop.message


def test_time_budget_stops_on_time_dropping_in_flight_work(tmp_path, server_factory):
    def slow(request):
        old = parent_value(request)
        return Reply(set_value_diff(old, repr(old + 1)), delay_s=0.4)

    server = server_factory(slow)
    config = engine_config(tmp_path, server, budget={"max_programs": 1000, "max_minutes": 0.04})
    started = time.monotonic()
    outcome = run(config, tmp_path)
    took = time.monotonic() - started
    assert outcome.status == "completed" and 2.4 <= took < 2.4 + 4.0
    with open_archive(tmp_path) as archive:
        assert "time budget" in archive.events(outcome.run_id, kind="stop")[-1].message
        assert 1 <= archive.count_programs(outcome.run_id) - 1 < 20


def test_target_score_stops_the_run(tmp_path, server_factory):
    server = server_factory(bump(1.0))
    config = engine_config(tmp_path, server, budget={"max_programs": 100, "target_score": -6.0},
                           concurrency={"proposals": 1, "evaluations": 1},
                           islands={"count": 1}, sampling={"parent_selection": "hill_climbing"})
    outcome = run(config, tmp_path)
    assert outcome.best_score is not None and outcome.best_score >= -6.0
    with open_archive(tmp_path) as archive:
        seqs = {int(p.proposal_key.split(":")[1]): p.score
                for p in archive.programs(outcome.run_id) if p.proposal_key != "initial"}
        assert "target score" in archive.events(outcome.run_id, kind="stop")[-1].message
    first_hit = min(seq for seq, score in seqs.items() if score is not None and score >= -6.0)
    assert max(seqs) <= first_hit + 2  # only work already in flight (window N + M = 2)


def test_resume_continues_without_re_adding_the_initial_program(tmp_path, server_factory):
    server = server_factory(bump(1.0))
    first = run(engine_config(tmp_path, server, budget={"max_programs": 4}), tmp_path)
    with open_archive(tmp_path) as archive:
        before = {p.id: p for p in archive.programs(first.run_id)}
    config = engine_config(tmp_path, server, budget={"max_programs": 9})
    second = run(config, tmp_path, resume=True)
    assert second.run_id == first.run_id and second.programs == 9
    with open_archive(tmp_path) as archive:
        after = archive.programs(first.run_id)
        keys = [p.proposal_key for p in after]
        assert keys.count("initial") == 1 and len(keys) == len(set(keys))
        assert sum(p.status == "evaluated" for p in after) == 10
        for p in after:
            if p.id in before:
                assert before[p.id].code == p.code and before[p.id].score == p.score
        assert archive.events(first.run_id, kind="resume")


def test_embeddings_and_llm_judge_are_used_and_recorded(tmp_path, server_factory):
    mutations = {"n": 0}

    def respond(request):
        text = request["messages"][-1]["content"]
        if "NOVEL or DUPLICATE" in text:
            return Reply("DUPLICATE\nOnly the variable name changed.")
        mutations["n"] += 1
        old = parent_value(request)
        if mutations["n"] == 1:
            return Reply(set_value_diff(old, repr(old + 1)))
        return Reply(f"Rename.\n<<<<<<< SEARCH\nVALUE = {old!r}\n=======\nLEVEL = {old!r}\n"
                     f">>>>>>> REPLACE\n<<<<<<< SEARCH\n    return VALUE\n=======\n"
                     f"    return LEVEL\n>>>>>>> REPLACE\n")

    server = server_factory(respond)
    config = engine_config(
        tmp_path, server, budget={"max_programs": 2}, islands={"count": 1},
        concurrency={"proposals": 1, "evaluations": 1},
        sampling={"parent_selection": "hill_climbing"},
        novelty={"embedding_model": "openai/embedder", "embedding_api_base": server.base_url,
                 "judge_model": "openai/scripted"})
    outcome = run(config, tmp_path)
    with open_archive(tmp_path) as archive:
        renamed = archive.find_by_proposal_key(outcome.run_id, "7:1")
        assert renamed.status == "duplicate" and renamed.error_kind == "near-duplicate"
        purposes = sorted(c.purpose for c in archive.llm_calls(program_id=renamed.id))
        assert purposes == ["embedding", "mutation", "novelty"]
        judge = next(c for c in archive.llm_calls(program_id=renamed.id)
                     if c.purpose == "novelty")
        assert "DUPLICATE" in judge.response
    assert any(r.path.endswith("/embeddings") for r in server.requests)


def test_full_rewrites_crossover_and_repair(tmp_path, server_factory):
    initial = (FIXTURE / "initial.py").read_text()

    def program(value: str) -> str:
        return "Here it is.\n```python\n" + initial.replace("VALUE = 1.0", f"VALUE = {value}") + "```\n"

    rewrites = {"n": 0}

    def respond(request):
        user = request["messages"][1]["content"]
        values = [float(v) for v in VALUES.findall(user) if v[0].isdigit()]
        if "is invalid" in user:                       # repair: fix the broken program
            return Reply(program("5.0"))
        if "Combine the strengths" in user:            # crossover of parents A and B
            assert "Parent B" in user
            return Reply(program(repr(max(values[:2]) + 1)))
        rewrites["n"] += 1                             # full rewrite; the first one is broken
        return Reply(program('float("nan")' if rewrites["n"] == 1 else repr(values[0] + 2)))

    server = server_factory(respond)
    config = engine_config(tmp_path, server, budget={"max_programs": 8}, islands={"count": 1},
                           concurrency={"proposals": 1, "evaluations": 1},
                           mutation={"mix": {"full": 1.0, "crossover": 1.0}, "repair_rate": 1.0},
                           bandit={"algorithm": "fixed"})
    outcome = run(config, tmp_path)
    with open_archive(tmp_path) as archive:
        programs = {p.id: p for p in archive.programs(outcome.run_id)}
    kinds = {p.mutation_kind for p in programs.values()}
    assert {"full", "crossover", "repair"} <= kinds, kinds
    broken = [p for p in programs.values() if p.error_kind == "invalid-output"]
    assert broken, "the first rewrite was invalid"
    repairs = [p for p in programs.values() if p.mutation_kind == "repair"]
    assert any(programs[p.parent_id].id == broken[0].id and p.valid for p in repairs)
    crosses = [p for p in programs.values() if p.mutation_kind == "crossover"]
    assert all(p.timings.get("second_parent_id") in programs for p in crosses)
    assert all(p.status in ("evaluated", "duplicate") for p in programs.values())


def test_second_ctrl_c_stops_at_once_even_while_a_summary_hangs(tmp_path, server_factory):
    import asyncio
    import os
    import signal

    from evolve.engine.session import run_session
    from tests.support.llm_server import Hang

    def respond(request):
        if "recommendations" in request["messages"][-1]["content"]:
            return Hang(60)  # the scratchpad summary never answers
        old = parent_value(request)
        return Reply(set_value_diff(old, repr(old + 1)))

    server = server_factory(respond)
    config = engine_config(tmp_path, server, budget={"max_programs": 50},
                           scratchpad={"enabled": True, "interval": 2},
                           concurrency={"proposals": 1, "evaluations": 1})
    sent = []

    def on_progress(snapshot):
        if snapshot.event == "program" and snapshot.programs_done == 2 and not sent:
            loop = asyncio.get_running_loop()
            for delay in (0.5, 0.8):  # Ctrl-C twice while the summary hangs
                loop.call_later(delay, os.kill, os.getpid(), signal.SIGINT)
            sent.append(True)

    started = time.monotonic()
    outcome = asyncio.run(run_session(config, tmp_path, on_progress=on_progress,
                                      log=lambda _m: None))
    assert time.monotonic() - started < 20 and outcome.status == "interrupted"
    with open_archive(tmp_path) as archive:
        assert archive.runs()[0].status == "interrupted"


def test_dollar_budget_warns_once_about_a_model_without_a_price(tmp_path, server_factory):
    server = server_factory(bump(1.0))
    logs: list[str] = []
    import asyncio

    from evolve.engine.session import run_session

    config = engine_config(tmp_path, server, budget={"max_programs": 3, "max_usd": 1.0})
    asyncio.run(run_session(config, tmp_path, handle_signals=False, log=logs.append))
    warnings = [line for line in logs if "price of openai/scripted is unknown" in line]
    assert len(warnings) == 1 and 'llm.prices."openai/scripted"' in warnings[0]
    with open_archive(tmp_path) as archive:
        assert len(archive.events(1, kind="warning")) == 1
