"""Run configuration: pydantic models, layered sources and clear errors.

Sources, later wins: built-in defaults < a TOML file (`--config`) < `--set dotted.key=value`.
Every model forbids unknown keys, so a typo is an error naming the key path (a known pain in
other tools, which ignore it silently).
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ConfigError(ValueError):
    """A configuration that cannot be used. The CLI prints it and exits with code 2."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(_Section):
    """One LLM operator, named as litellm spells it (`openai/gpt-4.1-mini`, `ollama/qwen3`...)."""

    name: str
    api_base: str | None = None
    api_key_env: str | None = Field(default=None, description="env var holding the API key")
    temperatures: list[float] = Field(default_factory=lambda: [0.7])
    max_tokens: int = Field(default=4096, gt=0)
    timeout_s: float = Field(default=120.0, gt=0)
    weight: float = Field(default=1.0, ge=0)


class PriceConfig(_Section):
    """USD per million tokens; overrides or fills gaps in litellm's price data."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


class LLMConfig(_Section):
    retries: int = Field(default=3, ge=0)
    backoff_base_s: float = Field(default=1.0, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
    # Hard wall-clock limit for one proposal, retries included: one stuck call never hangs a run.
    proposal_deadline_s: float = Field(default=300.0, gt=0)
    prices: dict[str, PriceConfig] = Field(default_factory=dict)
    # A model whose first calls all fail (bad key, unknown model, no server) stops the run after
    # this many failed proposals in a row; later in a run, this many failures in a row bench it.
    fail_fast_after: int = Field(default=3, ge=1)
    bench_after: int = Field(default=8, ge=1)
    # OpenAI-compatible endpoints (openai/, hosted_vllm/, local/) are called through the openai
    # SDK directly, with litellm's parameter mapping and prices (a third of litellm's CPU per
    # call); false sends them through litellm like every other provider.
    openai_sdk: bool = True


class OperatorsConfig(_Section):
    # Empty list = default resolution (configured model, key in env, local Ollama, offline).
    models: list[ModelConfig] = Field(default_factory=list)
    # Built-in non-LLM operators: "optimise" (constants tuned by a model-based optimiser over
    # the archive's trials), "tune" (random constant perturbations), "swap" (structural swaps),
    # "reshape" (neutral scales/offsets on comparisons for `optimise` to tune, guards moved),
    # "structure" (swap + reshape as one arm).
    offline: list[Literal["optimise", "tune", "swap", "reshape", "structure"]] = Field(
        default_factory=lambda: ["optimise", "structure"])
    # auto: offline operators only when no LLM is available; always: mix them with LLMs.
    use_offline: Literal["auto", "always", "never"] = "auto"


class BanditConfig(_Section):
    algorithm: Literal["ucb", "thompson", "fixed"] = "ucb"
    exploration: float = Field(default=1.0, ge=0, description="UCB exploration constant")
    decay: float = Field(default=0.99, gt=0, le=1)
    epsilon: float = Field(default=0.05, ge=0, le=1)
    # Values are always per attempt (LLM call): a proposal pays for every call it used. True
    # also divides by each attempt's dollar price (for models of known, differing prices).
    cost_aware: bool = False
    # Only for algorithm = "fixed": weights by arm label "operator:mutation".
    weights: dict[str, float] = Field(default_factory=dict)


class ConcurrencyConfig(_Section):
    proposals: int = Field(default=4, ge=1, description="LLM proposals in flight (N)")
    evaluations: int | None = Field(default=None, ge=1, description="sandboxes at once (M); None = cores")


class IslandsConfig(_Section):
    count: int = Field(default=4, ge=1)
    migration_interval: int = Field(default=10, ge=1, description="generations between migrations")
    migration_rate: float = Field(default=0.1, ge=0, le=1)


class SamplingConfig(_Section):
    parent_selection: Literal["weighted", "power_law", "hill_climbing", "uniform"] = "weighted"
    power_law_alpha: float = Field(default=1.0, gt=0)
    inspirations_top: int = Field(default=2, ge=0)
    inspirations_diverse: int = Field(default=2, ge=0)
    elite_archive_size: int = Field(default=20, ge=1)
    map_elites: bool = False
    map_elites_bins: int = Field(default=8, ge=1)
    # "weighted" selection: sigmoid(sharpness * (score - island median) / spread) / (1 + children).
    weighted_sharpness: float = Field(default=2.0, gt=0)


class MutationConfig(_Section):
    # Relative weights of the mutation kinds; "repair" is used for invalid parents.
    mix: dict[Literal["diff", "full", "crossover"], float] = Field(
        default_factory=lambda: {"diff": 0.7, "full": 0.2, "crossover": 0.1})
    repair_invalid_parents: bool = True
    max_code_chars: int = Field(default=40_000, gt=0)
    max_resample: int = Field(default=3, ge=0, description="tries after a rejected proposal")
    # Share of proposals that repair a recent invalid program (using its error) when one exists.
    repair_rate: float = Field(default=0.1, ge=0, le=1)


class NoveltyConfig(_Section):
    enabled: bool = True
    similarity_threshold: float = Field(default=0.95, gt=0, le=1)
    shingle_size: int = Field(default=5, ge=1)
    embedding_model: str | None = None
    # Base URL of an OpenAI-compatible server for the embedding model (None = the provider's).
    embedding_api_base: str | None = None
    judge_model: str | None = None


class ScratchpadConfig(_Section):
    enabled: bool = True
    interval: int = Field(default=20, ge=1, description="evaluations between summaries")
    model: str | None = None
    max_recommendations: int = Field(default=5, ge=1, le=5)


class PromptConfig(_Section):
    token_budget: int = Field(default=12_000, gt=0)
    output_excerpt_chars: int = Field(default=2_000, ge=0)
    # Recent attempts from the same parent (else its island) shown with their outcome; 0 = none.
    history: int = Field(default=5, ge=0)
    # A folder with replacement templates (same file names as prompts/); None = the built-in ones.
    templates_dir: str | None = None


class BudgetConfig(_Section):
    max_programs: int | None = Field(default=100, ge=1)
    max_usd: float | None = Field(default=None, ge=0)
    max_minutes: float | None = Field(default=None, gt=0)
    target_score: float | None = None
    # LLM calls at most (all purposes). The only budget that bounds models of unknown price.
    max_calls: int | None = Field(default=None, ge=1)
    # max_programs counts evaluated programs; this many proposals in a row without one
    # (duplicates, rejected replies) stop the run: nothing new can be proposed.
    stall_after: int = Field(default=50, ge=1)


class SandboxConfig(_Section):
    isolation: Literal["auto", "bwrap", "unshare", "rlimits"] = "auto"
    # Overrides of the problem's own resource limits (None = the problem's value).
    memory_mb: int | None = Field(default=None, gt=0)
    cpu_seconds: int | None = Field(default=None, gt=0)
    timeout_factor: float = Field(default=1.0, gt=0, description="multiplies stage timeouts")
    warm_start: bool = Field(default=True, description="fork each evaluation from a pre-imported "
                             "interpreter inside the same sandbox (needs root; else cold)")


class ExecutorConfig(_Section):
    """Where evaluations run: this machine's sandboxes, or Ray tasks on a cluster (the same
    sandbox on each node; needs the `ray` extra)."""

    # auto: Ray when `ray_address` or the RAY_ADDRESS environment variable is set, else local.
    kind: Literal["local", "ray", "auto"] = "local"
    # host:port of the cluster's head (None = RAY_ADDRESS, else a Ray started on this machine).
    ray_address: str | None = None
    # Custom Ray resources every evaluation also asks for, e.g. {"evaluator_node" = 1}.
    resources: dict[str, float] = Field(default_factory=dict)
    retries: int = Field(default=1, ge=0, description="re-runs after a worker or node dies")


class ArchiveConfig(_Section):
    # None = sqlite file RUN_DIR/archive.sqlite; any SQLAlchemy URL otherwise.
    url: str | None = None


class EvolveConfig(_Section):
    problem: str = "circle_packing"
    run_dir: str | None = None
    seed: int = 0
    operators: OperatorsConfig = Field(default_factory=OperatorsConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    bandit: BanditConfig = Field(default_factory=BanditConfig)
    concurrency: ConcurrencyConfig = Field(default_factory=ConcurrencyConfig)
    islands: IslandsConfig = Field(default_factory=IslandsConfig)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    mutation: MutationConfig = Field(default_factory=MutationConfig)
    novelty: NoveltyConfig = Field(default_factory=NoveltyConfig)
    scratchpad: ScratchpadConfig = Field(default_factory=ScratchpadConfig)
    prompts: PromptConfig = Field(default_factory=PromptConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    archive: ArchiveConfig = Field(default_factory=ArchiveConfig)


def _expected_type(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """The annotation at a key path, as text, for error messages."""
    current: Any = model
    annotation: Any = None
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return "?"
            annotation = field.annotation
            current = annotation
        else:
            # Inside a list or dict: keep the element type we already have.
            args = getattr(current, "__args__", ())
            if args:
                current = args[-1]
                annotation = current
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    return text or str(annotation).replace("typing.", "")


def _format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = err["loc"]
        path = ".".join(str(p) for p in loc)
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown key '{path}'")
        else:
            lines.append(f"key '{path}': expected {_expected_type(EvolveConfig, loc)}, "
                         f"{err['msg'].lower()} (got {err.get('input')!r})")
    return "invalid configuration: " + "; ".join(lines)


def _parse_value(text: str) -> Any:
    """An override value: parsed as a TOML value when it is one, else taken as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _key_parts(assignment: str, key: str) -> list[str]:
    """Split a dotted key the way TOML does, so quoted parts may hold dots:
    `llm.prices."openai/gpt-4.1-mini".input_per_mtok`."""
    try:
        node: Any = tomllib.loads(f"{key} = 0") if key else None
    except tomllib.TOMLDecodeError:
        node = None
    if not isinstance(node, dict):
        raise ConfigError(f"override '{assignment}' must look like dotted.key=value "
                          f"(e.g. --set budget.max_programs=50)")
    parts = []
    while isinstance(node, dict):
        ((part, node),) = node.items()
        parts.append(part)
    return parts


def _check_sections(assignment: str, parts: list[str]) -> None:
    """Refuse `seed.x=1`: every part but the last must name a section (a model or a table)."""
    current: Any = EvolveConfig
    for depth, part in enumerate(parts[:-1]):
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part)
            if field is None:
                return  # an unknown key: validation names it with the full path
            current = field.annotation
        elif get_origin(current) is dict:
            current = get_args(current)[1]  # `part` is a table key (a model name...)
            continue
        else:
            break
        if not (get_origin(current) is dict
                or (isinstance(current, type) and issubclass(current, BaseModel))):
            prefix = ".".join(parts[:depth + 1])
            raise ConfigError(f"override '{assignment}': '{prefix}' is a value, not a section")


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply one `dotted.key=value` override to a nested dict in place."""
    key, sep, value = assignment.partition("=")
    if not sep:
        raise ConfigError(f"override '{assignment}' must look like dotted.key=value "
                          f"(e.g. --set budget.max_programs=50)")
    parts = _key_parts(assignment, key.strip())
    _check_sections(assignment, parts)
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            prefix = ".".join(parts[:depth + 1])
            raise ConfigError(f"override '{assignment}': '{prefix}' is a value, not a section")
        node = child
    node[parts[-1]] = _parse_value(value.strip())


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                base: dict[str, Any] | None = None) -> EvolveConfig:
    """Defaults < `base` (e.g. a stored run's config) < TOML file < overrides."""
    data: dict[str, Any] = copy.deepcopy(base or {})  # overrides must not edit the caller's dict
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found")
        try:
            file_data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
        data = _deep_merge(data, file_data)
    for assignment in overrides:
        apply_override(data, assignment)
    try:
        return EvolveConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc)) from exc


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def to_toml(config: EvolveConfig) -> str:
    """The effective configuration as TOML (None values are left out: TOML has no null)."""
    return tomli_w.dumps(config.model_dump(mode="json", exclude_none=True))
