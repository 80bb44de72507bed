"""Which API a problem's evaluator is written against, read from its source without importing
it (the run process never imports a problem's evaluator).

- the judge/candidate API: the file defines a top-level `judge(candidate, stage)`; each
  evaluation is two sandboxed processes (the judge, and the candidate behind a channel);
- the in-process API (older problems): only `evaluate(program_path, stage)`; the candidate is
  imported into the evaluator's own process.
"""

from __future__ import annotations

import ast
import functools
import os
from pathlib import Path


@functools.lru_cache(maxsize=256)
def _defines_judge(path: str, mtime_ns: int, size: int) -> bool:
    try:
        tree = ast.parse(Path(path).read_bytes(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return False  # the harness reports the evaluator's own error when it imports it
    return any(isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "judge"
               for node in tree.body)


def uses_judge(problem_dir: Path, evaluator_file: str) -> bool:
    """Whether the problem's evaluator defines `judge(candidate, stage)` at its top level."""
    path = os.path.join(problem_dir, evaluator_file)
    try:
        info = os.stat(path)
    except OSError:
        return False
    # Asked before every evaluation: a stat, and the parse only when the file changed (not
    # resolved to its real path first: that is a stat per folder of the path each time).
    return _defines_judge(path, info.st_mtime_ns, info.st_size)
