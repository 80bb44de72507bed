"""Same seed + same operator replies = the same archive contents, with several in flight."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.engine.engine_support import bump, engine_config, open_archive, run


def archive_contents(run_dir: Path) -> dict[str, Any]:
    """Everything stored, keyed by proposal key; ids, timestamps and latencies left out."""
    with open_archive(run_dir) as archive:
        run_row = archive.runs()[0]
        programs = archive.programs(run_row.id)
        key_of = {p.id: p.proposal_key for p in programs}
        rows = {}
        for p in programs:
            rows[p.proposal_key] = {
                "code": p.code, "code_hash": p.code_hash, "diff": p.diff,
                "parent": key_of.get(p.parent_id), "island": p.island,
                "generation": p.generation, "operator": p.operator,
                "mutation": p.mutation_kind, "status": p.status, "stage": p.stage_reached,
                "score": p.score, "valid": p.valid, "metrics": p.metrics,
                "feedback": p.feedback, "error_kind": p.error_kind, "error_text": p.error_text,
                "inspirations": sorted(key_of[i] for i in p.inspiration_ids),
                "evaluations": [(e.stage, e.score, e.valid, e.metrics, e.feedback, e.failure,
                                 e.reason, e.stdout, e.stderr)
                                for e in archive.evaluations(p.id)],
                "llm_calls": sorted((c.model, c.purpose, c.prompt, c.response, c.tokens_in,
                                     c.tokens_out, c.cost_usd, c.error)
                                    for c in archive.llm_calls(program_id=p.id)),
            }
        return {"seed": run_row.seed, "problem": run_row.problem, "programs": rows,
                "migrations": sorted((e.data["program_id"] and key_of[e.data["program_id"]],
                                      e.data["source"], e.data["target"])
                                     for e in archive.events(run_row.id, kind="migration"))}


def test_same_seed_same_replies_give_the_same_archive(tmp_path, server_factory):
    # +1 from the parent: siblings of one parent propose the same child, so the ordered
    # novelty gate's choice of which one is a duplicate is part of what must be reproducible.
    server = server_factory(bump(1.0))
    contents = []
    for name in ("a", "b"):
        run_dir = tmp_path / name
        config = engine_config(run_dir, server, budget={"max_programs": 12},
                               islands={"count": 2, "migration_interval": 2,
                                        "migration_rate": 0.5},
                               concurrency={"proposals": 3, "evaluations": 2},
                               scratchpad={"enabled": True, "interval": 4},
                               mutation={"mix": {"diff": 1.0}, "repair_rate": 0.0})
        run(config, run_dir)
        contents.append(archive_contents(run_dir))
    a, b = contents
    assert set(a["programs"]) == set(b["programs"])
    # The budget counts evaluated programs: 12 of them besides the initial one.
    assert sum(row["status"] == "evaluated" for row in a["programs"].values()) == 13
    for key in a["programs"]:
        assert a["programs"][key] == b["programs"][key], key
    assert a == b
    statuses = {row["status"] for row in a["programs"].values()}
    assert "duplicate" in statuses  # the gate had something to decide


def test_stopping_and_resuming_gives_the_same_archive_as_one_run(tmp_path, server_factory):
    # A resume rebuilds islands, bandit, novelty and scratchpad by replaying the archive, so
    # the proposals after the break see exactly what they would have seen without one.
    server = server_factory(bump(1.0))

    def config(run_dir: Path, programs: int):
        return engine_config(run_dir, server, budget={"max_programs": programs},
                             islands={"count": 2, "migration_interval": 2,
                                      "migration_rate": 0.5},
                             concurrency={"proposals": 2, "evaluations": 1},
                             scratchpad={"enabled": True, "interval": 3})

    whole, split = tmp_path / "whole", tmp_path / "split"
    run(config(whole, 10), whole)
    run(config(split, 4), split)
    run(config(split, 10), split, resume=True)
    assert archive_contents(split) == archive_contents(whole)
