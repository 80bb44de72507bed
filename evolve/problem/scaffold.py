"""`evolve problems new NAME`: write a complete, working problem folder to start from.

The example task is small but real (choose many integers below n with no three in arithmetic
progression), so the skeleton shows every duty of an evaluator: load the candidate itself, time
only its call, validate every output independently, and return score, validity, metrics and
feedback. It validates with `load_problem` as written and scores its initial program and baseline.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

from evolve.problem.spec import ProblemError, ProblemSpec, load_problem

NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

PROBLEM_TOML = Template('''\
# The problem plugin's description. Unknown keys are errors; see README.md in ADRS Evolve.

[problem]
name = "$name"
# The task statement the LLM sees: say what to optimise and every rule a valid answer obeys.
description = """
Choose as many integers as possible from 0, 1, ..., n-1 such that no three of them form an
arithmetic progression: there must be no a < b < c in the set with a + c = 2 * b. The score is
the number of integers chosen for n = 2000. The answer is checked exactly."""
language = "python"
initial = "initial.py"
evaluator = "evaluate.py"
# Modules the evaluator needs beyond ADRS Evolve's own, by import name (e.g. ["torch"]).
requires = []
# Hidden evaluation data (held-out inputs, test traces, optimum tables): never in the
# candidate's view. evaluate.py reads them at import with harness_api.hidden_file.
hidden = ["data/sizes.json"]

[function]
name = "solve"
signature = "def solve(n: int) -> list[int]"
contract = """
Return a list of distinct plain ints, each in [0, n), with no three in arithmetic progression.
Deterministic; well under the stage timeout."""

# Stages run in order; a program that is invalid (or below `threshold`) stops early.
[[stages]]
name = "quick"
timeout_s = 10.0
description = "n = 100: a fast check that the program runs and is valid"

[[stages]]
name = "full"
timeout_s = 30.0
description = "n = 2000: the score that counts"

# Without [score] the last stage's score and metrics are the program's. To declare them:
# [score]
# stage = "full"                      # or weights = { quick = 0.2, full = 0.8 }
# metrics_from = ["quick", "full"]    # stages whose metrics the result carries (later wins)

[resources]
memory_mb = 512
cpu_seconds = 30
gpu = "none"            # none | optional | required

[metrics]
shown = ["size", "density", "solve_s"]
features = ["density"]

# What each shown metric means and which way is better (higher | lower | neither): the LLM
# reads this in its system prompt.
[metrics.about]
size = { meaning = "how many integers were chosen: the score", better = "higher" }
density = { meaning = "size / n", better = "higher" }
solve_s = { meaning = "seconds solve() took", better = "lower" }
''')

INITIAL_PY = Template('''\
"""$name: the starting program. Only the code between the EVOLVE-BLOCK markers is evolved."""

# EVOLVE-BLOCK-START
STEP = 2  # multiply by this: powers of STEP never hold three terms in arithmetic progression


def solve(n: int) -> list[int]:
    """Powers of two below n: valid, but far sparser than what is possible."""
    chosen = []
    value = 1
    while value < n:
        chosen.append(value)
        value *= STEP
    return chosen
# EVOLVE-BLOCK-END
''')

EVALUATE_PY = Template('''\
"""Judge for $name.

`judge(candidate, stage)` runs in the judge's own sandboxed process; the candidate runs in
another one, under another uid, and is reached only through `candidate`: a proxy whose calls
send plain data and get plain data back. The judge alone holds the hidden inputs, validates
every output independently (the candidate's numbers are never trusted) and times the candidate
by its own CPU time, measured outside its process (`candidate.last_cpu_s`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evaluators.harness_api import Candidate, CandidateError, evaluate_locally, hidden_file

HERE = Path(__file__).resolve().parent
# Held-out inputs, declared `hidden` in problem.toml: read here, while the judge is imported;
# the candidate's process never has the path, the file or this module.
with hidden_file(HERE, "data/sizes.json") as source:
    SIZES = {stage: int(n) for stage, n in json.load(source).items()}


def _invalid(feedback: str, **metrics: Any) -> dict[str, Any]:
    return {"score": 0.0, "valid": False, "metrics": metrics, "feedback": feedback}


def read_answer(raw: Any, n: int) -> list[int]:
    """Copy the answer into plain ints, or raise ValueError saying what is wrong."""
    if type(raw) is not list:  # what arrives is plain data: tuples come as lists
        raise ValueError(f"solve must return a list of ints, got {type(raw).__name__}")
    if len(raw) > n:
        raise ValueError(f"{len(raw)} values cannot be distinct integers in [0, {n})")
    values = []
    for i, value in enumerate(raw):
        if type(value) is not int:  # bool and float are refused
            raise ValueError(f"item {i} is {type(value).__name__}, not int")
        if not 0 <= value < n:
            raise ValueError(f"item {i} = {value} is outside [0, {n})")
        values.append(int(value))
    if len(set(values)) != len(values):
        raise ValueError("the integers are not distinct")
    return values


def find_progression(values: list[int]) -> tuple[int, int, int] | None:
    """A three-term arithmetic progression inside values, or None."""
    chosen = set(values)
    ordered = sorted(chosen)
    for i, a in enumerate(ordered):
        for c in ordered[i + 1:]:
            if (a + c) % 2 == 0 and (a + c) // 2 in chosen:
                return a, (a + c) // 2, c
    return None


def judge(candidate: Candidate, stage: str) -> dict[str, Any]:
    if stage not in SIZES:
        raise ValueError(f"unknown stage {stage!r}; problem.toml names {sorted(SIZES)}")
    n = SIZES[stage]
    try:
        raw = candidate.call("solve", n)
    except CandidateError as exc:  # raised, missing, too slow, not data: a recorded result
        return _invalid(str(exc))
    seconds = candidate.last_cpu_s
    try:
        values = read_answer(raw, n)
    except ValueError as exc:
        return _invalid(str(exc), solve_s=seconds)
    progression = find_progression(values)
    if progression is not None:
        a, b, c = progression
        return _invalid(f"{a}, {b}, {c} form an arithmetic progression", solve_s=seconds)
    size = len(values)
    return {
        "score": float(size),
        "valid": True,
        "metrics": {"size": size, "n": n, "density": size / n, "solve_s": seconds},
        "feedback": f"valid: {size} integers below {n} with no 3-term progression "
                    f"(density {size / n:.3f}) in {seconds:.3f} s",
    }


def evaluate(program_path: str, stage: str) -> dict[str, Any]:
    """The judge against a local, unsandboxed candidate process (for scripts and tests)."""
    return evaluate_locally(judge, program_path, stage)
''')

BASELINE_PY = Template('''\
"""$name baseline: greedy, which gives exactly the numbers with no digit 2 in base 3."""


def solve(n: int) -> list[int]:
    chosen: list[int] = []
    members: set[int] = set()
    for candidate in range(n):
        # candidate would be the top of a progression b - d, b, candidate for some chosen pair
        if all(2 * b - candidate not in members for b in chosen):
            chosen.append(candidate)
            members.add(candidate)
    return chosen
''')

README_MD = Template('''\
# $name

No three in arithmetic progression: choose as many integers as possible below n such that no
three of them satisfy a + c = 2b. This is the example task written by `evolve problems new`;
replace it with your own (keep the layout).

- `problem.toml`: the task statement for the LLM, the evolved function, stages, limits, metrics.
- `initial.py`: the starting program; only the code between `EVOLVE-BLOCK-START` and
  `EVOLVE-BLOCK-END` is changed by evolution.
- `evaluate.py`: the judge, `judge(candidate, stage) -> {"score", "valid", "metrics",
  "feedback"}`. The candidate runs in its own sandboxed process; the judge calls it through
  `candidate.call(...)`, which counts only the candidate's own time, and checks every output.
  `evaluate(program_path, stage)` runs the judge against an unsandboxed candidate process, for
  scripts and tests.
- `baselines/`: human reference programs with the same interface as `initial.py`.
- `data/sizes.json`: the n of each stage, declared `hidden` in `problem.toml`: the candidate
  never sees the file (test traces, held-out inputs and optimum tables belong there too).

## Scores (n = 2000, the `full` stage)
| program | integers chosen |
|---|---|
| `initial.py` (powers of two) | 11 |
| `baselines/greedy.py` (no digit 2 in base 3) | 128 |

Check the folder with `evolve problems check .` and evolve it with `evolve run .`.
''')


def write_skeleton(name: str, parent: str | Path = ".") -> ProblemSpec:
    """Write problem `name` into `parent/name`, then load it back to prove it validates."""
    if not NAME_PATTERN.match(name):
        raise ProblemError(f"problem name '{name}' must be a Python-style identifier "
                           f"(letters, digits, underscores; not starting with a digit)")
    root = Path(parent) / name
    if root.exists() and any(root.iterdir()):
        raise ProblemError(f"{root} already exists and is not empty; choose another name or "
                           f"--dir, or remove it first")
    files = {
        "problem.toml": PROBLEM_TOML,
        "initial.py": INITIAL_PY,
        "evaluate.py": EVALUATE_PY,
        "baselines/greedy.py": BASELINE_PY,
        "README.md": README_MD,
        "data/sizes.json": Template('{"quick": 100, "full": 2000}\n'),
    }
    for rel, template in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.substitute(name=name))
    return load_problem(root, source="path")
