"""`evolve config show` prints every key, including those whose value is None: TOML has no null,
so they appear as comments saying what leaving them unset means."""

from __future__ import annotations

from pydantic import BaseModel

from evolve.config import EvolveConfig, to_toml

# What an unset (None) key means. A key missing here still shows, with its field description.
UNSET_MEANING: dict[str, str] = {
    "run_dir": "runs/PROBLEM-TIMESTAMP",
    "budget.max_programs": "no limit on programs",
    "budget.max_usd": "no dollar limit",
    "budget.max_minutes": "no time limit",
    "budget.target_score": "no target: run until a budget is reached",
    "budget.max_calls": "no limit on LLM calls; the calls of a model of unknown price are "
                        "then bounded only by the program and time budgets",
    "executor.ray_address": "the RAY_ADDRESS environment variable, else a Ray started on "
                            "this machine",
    "concurrency.evaluations": "one sandbox per CPU core",
    "sandbox.memory_mb": "the problem's own memory limit",
    "sandbox.cpu_seconds": "the problem's own CPU-time limit",
    "archive.url": "the SQLite file RUN_DIR/archive.sqlite; any SQLAlchemy URL otherwise",
    "novelty.embedding_model": "no embeddings: near-duplicates by token shingles only",
    "novelty.embedding_api_base": "the embedding provider's own URL",
    "novelty.judge_model": "no LLM judge for near-duplicates",
    "scratchpad.model": "the run's first LLM; offline runs summarise without a model",
    "prompts.templates_dir": "the built-in templates in prompts/",
}


def unset_keys(model: BaseModel, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Key paths whose value is None, in declaration order (sections, not list items)."""
    found = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if value is None:
            found.append(prefix + (name,))
        elif isinstance(value, BaseModel):
            found += unset_keys(value, prefix + (name,))
    return found


def _meaning(config: EvolveConfig, path: tuple[str, ...]) -> str:
    dotted = ".".join(path)
    if dotted in UNSET_MEANING:
        return UNSET_MEANING[dotted]
    owner: BaseModel = config
    for part in path[:-1]:
        owner = getattr(owner, part)
    description = type(owner).model_fields[path[-1]].description
    return description or "unset"


def documented_toml(config: EvolveConfig) -> str:
    """The effective configuration as TOML, each unset key as a comment under its section:
    `# max_usd =   (unset: no dollar limit)`."""
    lines = to_toml(config).splitlines()
    by_section: dict[str, list[str]] = {}
    for path in unset_keys(config):
        section = ".".join(path[:-1])
        by_section.setdefault(section, []).append(
            f"# {path[-1]} =   (unset: {_meaning(config, path)})")
    for section, comments in by_section.items():
        if section == "":
            first_table = next((i for i, line in enumerate(lines) if line.startswith("[")),
                               len(lines))
            lines[first_table:first_table] = comments + [""]
            continue
        header = f"[{section}]"
        if header not in lines:
            lines += ["", header]
        at = lines.index(header) + 1
        while at < len(lines) and lines[at].strip() and not lines[at].startswith("["):
            at += 1
        lines[at:at] = comments
    return "\n".join(lines) + "\n"
