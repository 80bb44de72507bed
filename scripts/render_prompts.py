"""Write docs/prompts.md: the prompts a run sends, for each mutation kind, rendered by the real
prompt builder and templates for the circle_packing problem.

Every program in them is real and so is every figure: the initial program, the `grid` baseline
and three variants of the initial program (one better, one that leaves the checks, one no
different from a program seen before) are scored by the problem's own evaluator, in this
process, and their results go through the same validation, history and view code as in a run.
Only the model's words (the change summaries, the scratchpad's advice) are written here.

    .venv/bin/python scripts/render_prompts.py           # rewrite docs/prompts.md
    .venv/bin/python scripts/render_prompts.py --check   # exit 1 when it is not current
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evaluators.validate import validate_returned  # noqa: E402
from evolve.config import NoveltyConfig, PromptConfig  # noqa: E402
from evolve.engine.committed import Committed  # noqa: E402
from evolve.engine.history import recent_attempts  # noqa: E402
from evolve.patch.mutation import MutationError, child_from_reply  # noqa: E402
from evolve.patch.novelty import NoveltyFilter, code_hash  # noqa: E402
from evolve.problem.spec import ProblemSpec, load_problem  # noqa: E402
from evolve.prompting import ProgramView, PromptBuilder  # noqa: E402

DOC = ROOT / "docs" / "prompts.md"
PROBLEM = ROOT / "problems" / "circle_packing"

# Variants of the initial program, each a change a model might make, with its summary.
BETTER = ("INNER_RADIUS = 0.22", "INNER_RADIUS = 0.26",
          "Move the inner ring out to 0.26 so the centre circle can grow.")
OVERLAP = ("return [r * (1 - 1e-9) for r in radii]", "return [r * 1.001 for r in radii]",
           "Grow every radius by 0.1% after the shrinking pass to fill the gaps.")
SAME = ("OUTER_PHASE = 0.10", "OUTER_PHASE = 0.10  # turns the outer ring off the inner's axes",
        "Explain the outer ring's phase.")
TIPS = ["Centres on a near-hexagonal grid beat the two rings: try 5-6 rows of alternating "
        "offsets.",
        "Keep the 1e-9 safety shrink of the radii: the exact check rejects any overlap."]
# A reply that quotes the program inexactly, for the retry message's real error.
BAD_REPLY = ("Shrink less.\n<<<<<<< SEARCH\n    return [r * (1 - 1e-8) for r in radii]\n=======\n"
             "    return [r * (1 - 1e-12) for r in radii]\n>>>>>>> REPLACE\n")

COMPARISON = """\
## Compared with OpenEvolve and ShinkaEvolve

What each system's default prompts give the model, point by point (OpenEvolve: its
`prompt/templates.py` and `prompt/sampler.py`; ShinkaEvolve: its `prompts/prompts_*.py`).

| What the model is told | OpenEvolve | ShinkaEvolve | here |
|---|---|---|---|
| The task, and which code may change | a user-written system message; EVOLVE-BLOCK rules in the diff prompt | a user-written task message; EVOLVE-BLOCK rules in the format section | problem statement, the function's signature and contract, the EVOLVE-BLOCK rules |
| What the score is made of | metric names and values of the current program | the program's metrics and text feedback | the stages in order with time limits and thresholds, the rule that makes the score, each shown metric's meaning and direction (system prompt) |
| The current program's result | metrics, "areas for improvement" | metrics and the evaluator's text feedback | score, shown metrics, the evaluator's feedback, stdout/stderr excerpts; for a broken program its error, stated once |
| What was tried before | previous attempts (changes, metrics, outcome) and top programs | earlier programs of the archive with their scores | recent attempts from the same parent (then its island): the change the model described, its score and change, or its failure kind and first line; the scratchpad's lessons |
| Other programs | top and diverse programs, inspirations | archive inspirations and top-k programs | top and diverse programs of the island with their scores; crossover's parent B is never one of them |
| The reply format | SEARCH/REPLACE format with one worked example; "you can suggest multiple changes" | NAME/DESCRIPTION tags, SEARCH/REPLACE with one worked example, "changes are applied sequentially" | per kind: the exact format, a worked example of a whole answer (two edits for diff and repair, a whole program with its markers for full and crossover), edits apply in the order given |
| A reply that cannot be used | dropped | resampled with the error for some failures | sent back with the exact error (`retry.j2`), up to `mutation.max_resample` times |
"""


def _views(builder: PromptBuilder, problem: ProblemSpec) -> dict[str, Any]:
    """Real programs scored by the problem's evaluator, as the controller would show them."""
    from problems.circle_packing.evaluate import evaluate

    initial = problem.initial_code()
    grid = (problem.baselines_dir / "grid.py").read_text()
    variants = {name: initial.replace(old, new) for name, (old, new, _) in
                (("better", BETTER), ("overlap", OVERLAP), ("same", SAME))}
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, code in {"initial": initial, "grid": grid, **variants}.items():
            path = Path(folder) / f"{name}.py"
            path.write_text(code)
            # The fields a run stores: the same validation as the sandbox's result path.
            results[name] = validate_returned({"status": "returned",
                                               "value": evaluate(str(path), "main")})

    # The novelty gate's verdicts, as in a run (the "same" variant changes a comment only).
    novelty = NoveltyFilter(NoveltyConfig())
    novelty.remember("-1", initial)
    verdicts = {name: novelty.decide(code, code_hash(code), None)
                for name, code in variants.items()}

    def committed(seq: int, name: str, code: str, parent: int | None, summary: str,
                  mutation: str) -> Committed:
        verdict = verdicts.get(name)
        if verdict is not None and not verdict.novel:  # never evaluated
            return Committed(seq=seq, program_id=seq + 2, island=0, code=code,
                             status="duplicate", score=None, valid=False, generation=1,
                             metrics={}, error_kind=verdict.kind, error_text=verdict.reason,
                             parent_seq=parent, mutation=mutation, summary=summary)
        r = results[name]
        return Committed(seq=seq, program_id=seq + 2, island=0, code=code, status="evaluated",
                         score=r.get("score"), valid=bool(r.get("valid")) and not r.get("failure"),
                         generation=1, metrics=r.get("metrics", {}),
                         feedback=r.get("feedback", ""), error_kind=r.get("failure"),
                         error_text=r.get("reason") or None, parent_seq=parent, mutation=mutation,
                         summary=summary)

    # The archive of the example: the initial program (seq -1, parent of everything) and
    # three attempts from it, ingested before the proposal whose prompt is rendered.
    archive = {-1: committed(-1, "initial", initial, None, "", "initial"),
               0: committed(0, "better", variants["better"], -1, BETTER[2], "diff"),
               1: committed(1, "overlap", variants["overlap"], -1, OVERLAP[2], "diff"),
               2: committed(2, "same", variants["same"], -1, SAME[2], "full")}

    def view(item: Committed, label: str) -> ProgramView:
        return builder.view(item.code, score=item.score, valid=item.valid, label=label,
                            metrics=item.metrics, feedback=item.feedback,
                            error=item.error_text or "")

    grid_item = committed(3, "grid", grid, None, "", "initial")
    return {
        "parent": view(archive[-1], "initial program"),
        "better": view(archive[0], "program 0"),
        "grid": view(grid_item, "program 3"),
        "broken": view(archive[1], "program 1"),
        "history": recent_attempts(archive, ingested=3, parent_seq=-1, island=0,
                                   limit=PromptConfig().history),
        "broken_history": recent_attempts(archive, ingested=3, parent_seq=1, island=0,
                                          limit=PromptConfig().history),
        "initial_code": initial,
    }


def _retry_error(parent: str) -> str:
    try:
        child_from_reply("diff", parent, BAD_REPLY, 40_000)
    except MutationError as exc:
        return exc.message
    raise RuntimeError("the example's bad reply was accepted; choose another one")


def _fence(text: str) -> str:
    return f"~~~~text\n{text.rstrip()}\n~~~~\n"


def render() -> str:
    problem = load_problem(PROBLEM)
    builder = PromptBuilder(problem, PromptConfig(), max_code_chars=40_000)
    v = _views(builder, problem)
    kinds = {
        "diff": dict(parent=v["parent"], inspirations=[v["grid"], v["better"]],
                     history=v["history"]),
        "full": dict(parent=v["parent"], inspirations=[v["grid"], v["better"]],
                     history=v["history"]),
        "crossover": dict(parent=v["parent"], second=v["grid"], inspirations=[v["better"]],
                          history=v["history"]),
        "repair": dict(parent=v["broken"], inspirations=[v["better"]],
                       history=v["broken_history"]),
    }
    out = ["# Prompts\n",
           "Generated by `scripts/render_prompts.py` (do not edit by hand; "
           "`tests/engine/test_prompts_doc.py` fails when this file is not current). The "
           "prompts of one proposal on `circle_packing` for each mutation kind, rendered by the "
           "run's own prompt builder and templates (`prompts/*.j2`). The programs are the "
           "problem's initial program, its `grid` baseline and three variants of the initial "
           "program, all scored by the problem's evaluator; the change summaries and the "
           "scratchpad's lessons are written for the example.\n",
           COMPARISON,
           "## System message (the same for every kind)\n", _fence(builder.system)]
    for kind, values in kinds.items():
        messages = builder.mutation_messages(kind, scratchpad=TIPS, **values)
        assert messages[0]["content"] == builder.system
        out += [f"## User message: {kind}\n", _fence(messages[1]["content"])]
    retry = builder.retry_message(_retry_error(v["initial_code"]))
    out += ["## Retry after an unusable reply\n",
            "Sent after the model's reply, in the same conversation, when the reply could not "
            "be applied (here: a SEARCH part that quotes the program inexactly).\n",
            _fence(retry["content"])]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when docs/prompts.md differs from a fresh rendering")
    args = parser.parse_args()
    text = render()
    if args.check:
        if DOC.is_file() and DOC.read_text() == text:
            return 0
        print(f"{DOC.relative_to(ROOT)} is not current: run "
              f"`.venv/bin/python scripts/render_prompts.py` and commit it", file=sys.stderr)
        return 1
    DOC.write_text(text)
    print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
