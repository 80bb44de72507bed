"""The problem-plugin interface: what a problem folder holds and how `problem.toml` is validated.

A problem is a folder with `problem.toml`, the initial program, `evaluate.py`, `baselines/` and a
README (see DESIGN.md). This module only reads and validates that folder; discovery (built in,
a path, or an installed entry point) lives in `evolve/problem/discovery.py`.
"""

from __future__ import annotations

import importlib.util
import re
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

EVOLVE_BLOCK_START = "EVOLVE-BLOCK-START"
EVOLVE_BLOCK_END = "EVOLVE-BLOCK-END"


class ProblemError(ValueError):
    """A problem folder that cannot be used; the message names file, key and problem."""


class GpuNeed(StrEnum):
    NONE = "none"
    OPTIONAL = "optional"
    REQUIRED = "required"


class _Strict(BaseModel):
    # Unknown keys are errors: a typo in problem.toml must not be silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProblemSection(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
    description: str = Field(min_length=1, description="task statement shown to the LLM")
    language: str = "python"
    initial: str = "initial.py"
    evaluator: str = "evaluate.py"
    # Modules the evaluator needs beyond the core install, by import name ("torch"); the problem
    # is still listed, but reported unusable while one is missing.
    requires: list[str] = []
    # Hidden evaluation data (test traces, held-out inputs, optimum tables), relative to the
    # problem folder: never mounted in the sandbox; the evaluator reads them at import through
    # `evaluators.harness_api.hidden_file`.
    hidden: list[str] = []

    @field_validator("hidden")
    @classmethod
    def _relative_inside(cls, hidden: list[str]) -> list[str]:
        for rel in hidden:
            path = Path(rel)
            if path.is_absolute() or ".." in path.parts or not path.parts:
                raise ValueError(f"hidden file '{rel}' must be a path inside the problem folder")
        return hidden


class FunctionSection(_Strict):
    name: str
    signature: str
    contract: str = ""


class StageSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    timeout_s: float = Field(default=60.0, gt=0)
    # A stage whose score is below its threshold (or that is invalid) stops the cascade.
    threshold: float | None = None
    description: str = ""


class ResourceSpec(_Strict):
    memory_mb: int = Field(default=2048, gt=0)
    cpu_seconds: int = Field(default=120, gt=0)
    gpu: GpuNeed = GpuNeed.NONE
    gpus_per_job: int = Field(default=1, ge=0)
    max_processes: int = Field(default=64, gt=0)
    max_file_mb: int = Field(default=64, gt=0)
    max_open_files: int = Field(default=256, gt=0)
    max_output_kb: int = Field(default=256, gt=0)
    # Candidates may not use frames, gc, ctypes, sys.modules, eval/exec and similar escape
    # hatches that read or patch the evaluator (evaluators.source_check / audit_guard) unless
    # the problem sets this.
    allow_introspection: bool = False


class MetricAbout(_Strict):
    """What a shown metric means, for the system prompt: the model reads figures it can act on
    only when it knows what they measure and which way is better."""

    meaning: str = Field(min_length=1)
    better: Literal["higher", "lower", "neither"] = "neither"


class MetricsSection(_Strict):
    # Metrics shown to the LLM in prompts (all metrics are stored regardless).
    shown: list[str] = []
    # Metrics that span a MAP-Elites grid when that option is on.
    features: list[str] = []
    # Meaning and direction of shown metrics, by name: `sum_radii = { meaning = "...",
    # better = "higher" }`.
    about: dict[str, MetricAbout] = {}

    @model_validator(mode="after")
    def _about_shown_metrics(self) -> MetricsSection:
        unknown = [name for name in self.about if name not in self.shown]
        if unknown:
            raise ValueError(f"metrics.about describes {', '.join(map(repr, unknown))}, which "
                             f"is not in metrics.shown {self.shown}: add it there or fix the name")
        return self


class ScoreSection(_Strict):
    """What a program's result is once its cascade ran to the end. Left out: the last stage's
    score and metrics, as before this section existed. A cheap stage is then a gate only, and a
    noisy late stage can report figures without being the thing the search optimises."""

    # The stage whose score is the program's score ...
    stage: str | None = None
    # ... or a weighted sum of stage scores, {stage: weight}.
    weights: dict[str, float] = {}
    # The stages whose metrics (and feedback) the final result carries, merged in this order
    # (a later stage's metric of the same name wins). Empty: the last stage's only.
    metrics_from: list[str] = []

    @model_validator(mode="after")
    def _one_rule(self) -> ScoreSection:
        if self.stage is not None and self.weights:
            raise ValueError("score: give either 'stage' or 'weights', not both")
        return self


class ProblemToml(_Strict):
    problem: ProblemSection
    function: FunctionSection
    stages: list[StageSpec] = Field(min_length=1)
    resources: ResourceSpec = ResourceSpec()
    metrics: MetricsSection = MetricsSection()
    score: ScoreSection = ScoreSection()

    @field_validator("stages")
    @classmethod
    def _unique_stage_names(cls, stages: list[StageSpec]) -> list[StageSpec]:
        names = [s.name for s in stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique, got {names}")
        return stages

    @model_validator(mode="after")
    def _score_names_stages(self) -> ProblemToml:
        known = [s.name for s in self.stages]
        named = ([self.score.stage] if self.score.stage else []) + list(self.score.weights)
        unknown = [n for n in named + self.score.metrics_from if n not in known]
        if unknown:
            raise ValueError(f"score names stage {', '.join(map(repr, unknown))}, which is not "
                             f"among the stages {', '.join(known)}")
        return self


Source = Literal["builtin", "path", "entry-point"]


class ProblemSpec(_Strict):
    """A validated problem, with where it was found."""

    root: Path
    source: Source = "path"
    config: ProblemToml

    @model_validator(mode="after")
    def _files_exist(self) -> ProblemSpec:
        for label, rel in (("problem.initial", self.config.problem.initial),
                           ("problem.evaluator", self.config.problem.evaluator),
                           *(("problem.hidden", h) for h in self.config.problem.hidden)):
            if not (self.root / rel).is_file():
                raise ValueError(f"{label} names '{rel}', which does not exist in {self.root}")
        return self

    # Convenience accessors used across the code base.
    @property
    def name(self) -> str:
        return self.config.problem.name

    @property
    def description(self) -> str:
        return self.config.problem.description

    @property
    def initial_path(self) -> Path:
        return self.root / self.config.problem.initial

    @property
    def evaluator_path(self) -> Path:
        return self.root / self.config.problem.evaluator

    @property
    def baselines_dir(self) -> Path:
        return self.root / "baselines"

    @property
    def stages(self) -> list[StageSpec]:
        return list(self.config.stages)

    @property
    def resources(self) -> ResourceSpec:
        return self.config.resources

    @property
    def gpu(self) -> GpuNeed:
        return self.config.resources.gpu

    def missing_requirements(self) -> list[str]:
        """The `requires` entries that cannot be imported here (checked without importing)."""
        return [req for req in self.config.problem.requires if not _importable(req)]

    @property
    def unusable_reason(self) -> str | None:
        """Why this problem cannot be evaluated on this machine, or None when it can."""
        missing = self.missing_requirements()
        if not missing:
            return None
        names = ", ".join(missing)
        return (f"needs {names}, which cannot be imported here; install it with "
                f"`{install_command(missing)}`")

    @property
    def usable(self) -> bool:
        return self.unusable_reason is None

    def initial_code(self) -> str:
        return self.initial_path.read_text()

    def baselines(self) -> dict[str, Path]:
        """Baseline programs by name (file stem), sorted."""
        if not self.baselines_dir.is_dir():
            return {}
        return {p.stem: p for p in sorted(self.baselines_dir.iterdir())
                if p.is_file() and not p.name.startswith(("_", "."))
                and p.suffix == self.initial_path.suffix}


def install_command(requirements: list[str]) -> str:
    """The pip command that installs `requirements` into this interpreter's environment, each
    at the version our own extras pin (torch of the `torch` extra), else as the problem says."""
    import shlex
    import sys

    pins = _extra_pins()
    wanted = [pins.get(_module_name(req) or "", req) for req in requirements]
    return f"{sys.executable} -m pip install " + " ".join(shlex.quote(w) for w in wanted)


def _extra_pins() -> dict[str, str]:
    """Our optional dependencies by name ("torch" -> "torch==2.13.0"); empty when evolve runs
    from a checkout that was never installed."""
    from importlib.metadata import PackageNotFoundError, requires

    try:
        declared = requires("adrs-evolve") or []
    except PackageNotFoundError:
        return {}
    pins = {}
    for line in declared:
        spec = line.split(";", 1)[0].strip()
        dist = re.match(r"[A-Za-z0-9_.-]+", spec)
        if dist and "extra ==" in line:
            pins[dist.group(0).replace("-", "_")] = spec
    return pins


def _module_name(requirement: str) -> str | None:
    # "torch>=2" or "torch[cuda]" still names the module first.
    match = re.match(r"[A-Za-z0-9_.]+", requirement.strip())
    return match.group(0) if match else None


def _importable(requirement: str) -> bool:
    name = _module_name(requirement)
    if name is None:
        return False
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown key '{loc}'")
        elif err["type"] == "missing":
            lines.append(f"missing key '{loc}'")
        else:
            lines.append(f"key '{loc}': {err['msg']} (got {err.get('input')!r})")
    return "; ".join(lines)


def load_problem(root: str | Path, source: Source = "path") -> ProblemSpec:
    """Read and validate `root/problem.toml`; raise ProblemError naming file, key and problem."""
    root = Path(root).resolve()
    toml_path = root / "problem.toml"
    if not toml_path.is_file():
        raise ProblemError(f"{toml_path}: not found; a problem folder needs a problem.toml "
                           f"(create one with `evolve problems new NAME`)")
    try:
        data = tomllib.loads(toml_path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ProblemError(f"{toml_path}: not valid TOML: {exc}") from exc
    name = data.get("problem", {}).get("name", root.name) if isinstance(data, dict) else root.name
    try:
        config = ProblemToml.model_validate(data)
    except ValidationError as exc:
        raise ProblemError(f"{toml_path} (problem '{name}'): "
                           f"{_format_validation_error(exc)}") from exc
    try:
        return ProblemSpec(root=root, source=source, config=config)
    except ValidationError as exc:
        msgs = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise ProblemError(f"{toml_path} (problem '{name}'): {msgs}") from exc
