"""How many LLM replies become the program they mean: the reply corpus of
tests/engine/reply_corpus.py through LLMClient -> Proposer -> child_from_reply, against the
scripted OpenAI-compatible server.

    python benchmarks/reply_acceptance.py [--before REV]

Prints, per style: the cases that should be accepted and how many became exactly the intended
program, the cases that should be rejected and how many were rejected for the intended reason,
and false accepts (a program accepted from a reply that must be rejected, or a program other
than the intended one). Target: every should-accept style at 100%, false accepts 0.

`--before REV` also reads every reply with `child_from_reply` as it was at git revision REV
(called directly: before issue 26 the client's finish_reason did not reach it), for comparison
in the same invocation.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
import types
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.engine.reply_corpus import CASES, Case  # noqa: E402
from tests.engine.reply_path import MAX_CODE_CHARS, CorpusServer, propose_all  # noqa: E402

ENTRIES = {"circle_packing": "pack_circles", "spot_single": "Policy"}


def _old_reader(rev: str):
    """`child_from_reply` of evolve/patch/mutation.py at `rev`, loaded as a throwaway module."""
    source = subprocess.run(["git", "show", f"{rev}:evolve/patch/mutation.py"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    module = types.ModuleType(f"mutation_at_{rev}")
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    exec(compile(source, f"{rev}:evolve/patch/mutation.py", "exec"), module.__dict__)
    return module


def _verdict(case: Case, code: str | None, kind: str | None) -> str:
    """as-intended | wrong-program | false-accept | right-reject | wrong-reason | false-reject"""
    if case.should_accept:
        if code is None:
            return "false-reject"
        same = code.rstrip("\n") == (case.intended or "").rstrip("\n")
        return "as-intended" if same else "wrong-program"
    if code is not None:
        return "false-accept"
    return "right-reject" if kind == case.reject else "wrong-reason"


def _old_verdicts(rev: str) -> dict[str, str]:
    module = _old_reader(rev)
    out = {}
    for case in CASES:
        code = kind = None
        for reply in case.replies:
            try:
                code = module.child_from_reply(case.kind, case.parent_code, reply,
                                               MAX_CODE_CHARS)
                break
            except module.MutationError as exc:
                kind = exc.kind
        out[case.name] = _verdict(case, code, kind)
    return out


def _table(title: str, verdicts: dict[str, str]) -> tuple[int, int, int, int]:
    rows: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for case in CASES:
        row = rows[case.style]
        row["accept" if case.should_accept else "reject"] += 1
        row[verdicts[case.name]] += 1
    print(f"\n{title}")
    print(f"{'style':<22}{'accept':>7}{'as intended':>13}{'reject':>8}{'right reason':>14}"
          f"{'false accepts':>15}")
    totals = defaultdict(int)
    for style, row in rows.items():
        false = row["false-accept"] + row["wrong-program"]
        right = row["right-reject"]
        print(f"{style:<22}{row['accept']:>7}{row['as-intended']:>13}{row['reject']:>8}"
              f"{right:>14}{false:>15}")
        for key in ("accept", "as-intended", "reject", "right-reject"):
            totals[key] += row[key]
        totals["false"] += false
    share = totals["as-intended"] / max(1, totals["accept"])
    print(f"{'total':<22}{totals['accept']:>7}{totals['as-intended']:>13}{totals['reject']:>8}"
          f"{totals['right-reject']:>14}{totals['false']:>15}   ({share:.0%} as intended)")
    return totals["accept"], totals["as-intended"], totals["right-reject"], totals["false"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", metavar="REV",
                        help="also read the replies with child_from_reply at this git revision")
    args = parser.parse_args()
    start = time.perf_counter()
    with CorpusServer(CASES) as server:
        outcomes = asyncio.run(propose_all(CASES, server))
    seconds = time.perf_counter() - start
    now = {c.name: _verdict(c, outcomes[c.name].code, outcomes[c.name].error_kind)
           for c in CASES}
    print(f"{len(CASES)} replies ({sum(c.should_accept for c in CASES)} to accept), "
          f"client path on the scripted server, {seconds:.1f}s")
    _table("now (LLMClient -> Proposer -> child_from_reply)", now)
    misses = [f"  {c.name} [{c.style}]: {now[c.name]}: {outcomes[c.name].error_text}"
              for c in CASES if now[c.name] not in ("as-intended", "right-reject")]
    if misses:
        print("\nnot as intended:\n" + "\n".join(misses))
    if args.before:
        _table(f"before: child_from_reply at {args.before} (called directly)",
               _old_verdicts(args.before))


if __name__ == "__main__":
    main()
