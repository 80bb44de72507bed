"""Compare the deterministic contents of two run archives (a refactor's "same seed, same archive").

    python scripts/archive_compare.py RUN_DIR_A RUN_DIR_B     # exit 0 = identical, 1 = differ
    python scripts/archive_compare.py RUN_DIR                 # print its fingerprint only
    python scripts/archive_compare.py A B --ignore-metric runtime_s   # a metric that is a timing

What is compared is what tests/engine/test_determinism.py calls the archive's contents: every
program keyed by proposal key (code, diff, parent, island, generation, operator, mutation,
status, score, metrics, feedback, errors, inspirations), its stage evaluations, its LLM calls
(prompt, response, tokens, cost) and the migrations. Ids, timestamps and latencies are left out:
they follow commit order and the clock, not the seed. A problem whose evaluator reports a timing
as a metric (circle_packing's runtime_s) names it with --ignore-metric.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from db import Archive


def _without(metrics: dict[str, Any] | None, ignored: set[str]) -> dict[str, Any] | None:
    if metrics is None:
        return None
    return {k: v for k, v in metrics.items() if k not in ignored}


def contents(run_dir: Path, ignored: set[str] = frozenset()) -> dict[str, Any]:
    with Archive.open(run_dir / "archive.sqlite", create=False) as archive:
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
                "score": p.score, "valid": p.valid, "metrics": _without(p.metrics, ignored),
                "feedback": p.feedback, "error_kind": p.error_kind, "error_text": p.error_text,
                "inspirations": sorted(key_of[i] for i in p.inspiration_ids),
                "evaluations": [[e.stage, e.score, e.valid, _without(e.metrics, ignored), e.feedback, e.failure,
                                 e.reason, e.stdout, e.stderr]
                                for e in archive.evaluations(p.id)],
                "llm_calls": sorted([c.model, c.purpose, c.prompt, c.response, c.tokens_in,
                                     c.tokens_out, c.cost_usd, c.error]
                                    for c in archive.llm_calls(program_id=p.id)),
            }
        migrations = sorted((e.data["program_id"] and key_of[e.data["program_id"]],
                             e.data["source"], e.data["target"])
                            for e in archive.events(run_row.id, kind="migration"))
        return {"seed": run_row.seed, "problem": run_row.problem, "programs": rows,
                "migrations": [list(m) for m in migrations]}


def fingerprint(data: dict[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Compare two run archives' deterministic contents.")
    parser.add_argument("run_dirs", nargs="+", type=Path, help="one or two run directories")
    parser.add_argument("--ignore-metric", action="append", default=[],
                        help="a metric that is a timing, left out (repeatable)")
    args = parser.parse_args(argv)
    if len(args.run_dirs) > 2:
        parser.error("give one or two run directories")
    argv = [str(p) for p in args.run_dirs]
    found = [contents(p, set(args.ignore_metric)) for p in args.run_dirs]
    for path, data in zip(argv, found, strict=True):
        print(f"{path}: {len(data['programs'])} programs, fingerprint {fingerprint(data)}")
    if len(found) == 1:
        return 0
    a, b = found
    differing = sorted(k for k in set(a["programs"]) | set(b["programs"])
                       if a["programs"].get(k) != b["programs"].get(k))
    for key in differing[:10]:
        print(f"differs: proposal {key}")
    if a["migrations"] != b["migrations"]:
        print("differs: migrations")
    same = a == b
    print("identical" if same else "DIFFERENT")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
