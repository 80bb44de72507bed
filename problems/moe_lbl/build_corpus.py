"""Build the vendored multi-domain corpus (`data/corpus.json.gz`) from the Python standard library.

Run once by a maintainer (`python -m problems.moe_lbl.build_corpus`); the evaluator only reads the
result, so a machine without the stdlib's `test` package still evaluates the same bytes. Every
choice is seeded and every file list sorted, so re-running on the same Python version reproduces
the file byte for byte (gzip's timestamp is fixed to 0).

Domains (each capped at `DOMAIN_BYTES`):
- code:    stdlib modules with their comments and docstrings removed,
- prose:   the same modules' docstrings and comments (English),
- email:   the RFC 822 / MIME messages of `test/test_email/data`,
- numeric: the IBM General Decimal Arithmetic test vectors of `test/decimaltestdata`.
"""

from __future__ import annotations

import ast
import gzip
import io
import json
import random
import sys
import sysconfig
import tokenize
from pathlib import Path

DOMAIN_BYTES = 256 * 1024
SEED = 20250101
OUT = Path(__file__).parent / "data" / "corpus.json.gz"


def _docstring_lines(tree: ast.AST) -> set[int]:
    """1-based line numbers covered by module/class/function docstrings."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                lines.update(range(body[0].lineno, (body[0].end_lineno or body[0].lineno) + 1))
    return lines


def split_module(source: str) -> tuple[str, str]:
    """(code without comments/docstrings, English prose from docstrings and comments)."""
    tree = ast.parse(source)
    doc_lines = _docstring_lines(tree)
    prose: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                prose.append(doc)
    comment_cols: dict[int, int] = {}
    comment_block: list[str] = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comment_cols[tok.start[0]] = tok.start[1]
            text = tok.string.lstrip("#!").strip()
            if text and not text.startswith(("-*-", "type:", "noqa", "XXX")):
                comment_block.append(text)
        elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            if comment_block:
                prose.append(" ".join(comment_block))
                comment_block = []
    if comment_block:
        prose.append(" ".join(comment_block))
    code_lines: list[str] = []
    for number, line in enumerate(source.splitlines(), start=1):
        if number in doc_lines:
            continue
        if number in comment_cols:
            line = line[:comment_cols[number]]
        line = line.rstrip()
        if line or (code_lines and code_lines[-1]):
            code_lines.append(line)
    return "\n".join(code_lines).strip() + "\n", "\n\n".join(prose).strip() + "\n"


def _take(parts: list[str], limit: int) -> str:
    out: list[str] = []
    size = 0
    for part in parts:
        size += len(part.encode())
        out.append(part)
        if size >= limit:
            break
    text = "".join(out).encode()[:limit]
    return text.decode("utf-8", errors="ignore")


def build(stdlib: Path) -> dict[str, str]:
    rng = random.Random(SEED)
    modules = sorted(p for p in stdlib.glob("*.py") if not p.name.startswith("_"))
    rng.shuffle(modules)
    code_parts, prose_parts = [], []
    for path in modules:
        try:
            code, prose = split_module(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, tokenize.TokenError):
            continue
        code_parts.append(f"# file: {path.name}\n{code}\n")
        prose_parts.append(prose + "\n")
    emails = sorted((stdlib / "test" / "test_email" / "data").glob("msg_*.txt"))
    email_parts = [p.read_text(encoding="utf-8", errors="replace") + "\n" for p in emails]
    dec_files = sorted((stdlib / "test" / "decimaltestdata").glob("*.decTest"))
    rng.shuffle(dec_files)
    numeric_parts = []
    for path in dec_files:
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines()
                 if ln.strip() and not ln.lstrip().startswith("--")]
        numeric_parts.append("\n".join(lines) + "\n")
    return {
        "code": _take(code_parts, DOMAIN_BYTES),
        "prose": _take(prose_parts, DOMAIN_BYTES),
        "email": _take(email_parts, DOMAIN_BYTES),
        "numeric": _take(numeric_parts, DOMAIN_BYTES),
    }


def main() -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    if not (stdlib / "test" / "decimaltestdata").is_dir():
        sys.exit(f"{stdlib} has no test package; run this with a full CPython install")
    domains = build(stdlib)
    payload = {
        "source": f"CPython {sys.version.split()[0]} standard library ({stdlib.name})",
        "seed": SEED,
        "domains": domains,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    raw = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()
    with open(OUT, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
        gz.write(raw)
    sizes = ", ".join(f"{k}={len(v.encode())}" for k, v in domains.items())
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes gzipped; {sizes})")


if __name__ == "__main__":
    main()
