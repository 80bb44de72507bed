"""Module and function sizes against the project's targets: no module over 400 lines, no
function over 60 (docs/architecture.md).

    python scripts/sizes.py [FOLDER ...]      # default: evolve; exit 1 when a target is missed
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MODULE_LINES = 400
FUNCTION_LINES = 60


def sizes(folder: Path) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    modules, functions = [], []
    for path in sorted(folder.rglob("*.py")):
        text = path.read_text()
        modules.append((len(text.splitlines()), str(path)))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                functions.append((length, f"{path}:{node.lineno} {node.name}"))
    return modules, functions


def main(folders: list[str]) -> int:
    modules, functions = [], []
    for name in folders or ["evolve"]:
        found = sizes(Path(name))
        modules += found[0]
        functions += found[1]
    big_modules = sorted((m for m in modules if m[0] > MODULE_LINES), reverse=True)
    long_functions = sorted((f for f in functions if f[0] > FUNCTION_LINES), reverse=True)
    print(f"{len(modules)} modules, largest {max(modules)[0]} lines ({max(modules)[1]}); "
          f"{len(functions)} functions, longest {max(functions)[0]} lines ({max(functions)[1]})")
    for lines, where in big_modules:
        print(f"module over {MODULE_LINES} lines: {lines:4d} {where}")
    for lines, where in long_functions:
        print(f"function over {FUNCTION_LINES} lines: {lines:4d} {where}")
    if not big_modules and not long_functions:
        print(f"every module <= {MODULE_LINES} lines, every function <= {FUNCTION_LINES} lines")
    return 1 if big_modules or long_functions else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
