"""The experiment config: YAML or CLI flags, validated in full before anything runs.

A config names a dataset, a model family, the loop (policies, the lambda grid, generations) and
the evaluation. ``lambda`` and ``seed`` accept a list: the grid of cells is their product with the
policies (:mod:`autophagy.experiment`). Presets are YAML files shipped in ``autophagy/presets``
(the repository's ``configs/`` folder).
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

StrictWhole = Annotated[int, Field(strict=True)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _as_list(value: Any) -> Any:
    return value if isinstance(value, list | tuple) else [value]


class DataConfig(_Section):
    name: str = "eight_gaussians"
    n_train: StrictWhole = Field(1000, ge=2)
    n_test: StrictWhole = Field(2000, ge=1)
    n_pool: StrictWhole = Field(0, ge=0)
    seed: StrictWhole | None = None
    """Seed of the real data draw; ``null`` uses each cell's seed (seeds vary data and training)."""
    path: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class ModelConfig(_Section):
    name: str = "gmm"
    options: dict[str, Any] = Field(default_factory=dict)
    budget: StrictWhole | None = Field(None, ge=1)
    """Training samples seen per generation >= 1 (neural families; EM iterations for gmm)."""
    initial_budget: StrictWhole | None = Field(None, ge=1)
    """Budget of generation 0 (defaults to the model's own)."""


class LoopConfig(_Section):
    policy: list[str] = Field(default_factory=lambda: ["mixed", "fully_synthetic"])
    lam: list[float] = Field(default_factory=lambda: [0.0, 0.5, 1.0], alias="lambda")
    """Synthetic-to-real ratio of Bertrand et al. (mixed, accumulate): a number or a list."""
    fraction: float = Field(0.5, gt=0, le=1)
    """Share of fresh real samples a generation (fresh_real)."""
    generations: StrictWhole = Field(20, ge=0)
    warm_start: bool = True
    temperature: float = Field(1.0, gt=0)
    """Sampling temperature of the synthetic training data (MAD's sampling-bias knob)."""

    _list_policy = field_validator("policy", mode="before")(_as_list)
    _list_lam = field_validator("lam", mode="before")(_as_list)

    @field_validator("policy")
    @classmethod
    def _known_policy(cls, value: list[str]) -> list[str]:
        from autophagy.policies import POLICIES

        for name in value:
            if name not in POLICIES:
                raise ValueError(f"unknown policy {name!r}; choose from: {', '.join(POLICIES)}")
        if not value:
            raise ValueError("needs at least one policy")
        return value

    @field_validator("lam")
    @classmethod
    def _non_negative(cls, value: list[float]) -> list[float]:
        for lam in value:
            if not math.isfinite(lam) or lam < 0:
                raise ValueError(f"every lambda must be a finite number >= 0, got {lam:g}")
        if not value:
            raise ValueError("needs at least one value")
        return value


class EvalConfig(_Section):
    metrics: list[str] | None = None
    """Metric names; ``null``: every default metric that applies to the model and data."""
    n_samples: StrictWhole = Field(1000, ge=2)
    """Samples drawn from each generation for evaluation (and saved for the figures)."""
    verdict_metric: str = "w2"
    features: Literal["auto", "pixels", "classifier", "inception"] = "auto"
    """Features of fid / kid / precision / recall / density / coverage: auto = raw values for
    points, the dataset's CNN classifier for labelled images, Inception if a file is given."""
    inception: str | None = None
    """Inception TorchScript file (inception-2015-12-05.pt); default $AUTOPHAGY_INCEPTION."""

    _list_metrics = field_validator("metrics", mode="before")(
        lambda v: v if v is None else _as_list(v)
    )

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: list[str] | None) -> list[str] | None:
        from autophagy.metrics import METRICS

        for name in value or []:
            if name not in METRICS:
                raise ValueError(f"unknown metric {name!r}; choose from: {', '.join(METRICS)}")
        return value


class RunConfig(_Section):
    executor: Literal["inline", "processes"] = "processes"
    workers: StrictWhole | None = Field(None, ge=1)
    """Worker processes (default: one per core, at most one per cell)."""
    checkpoints: Literal["all", "last"] = "all"


class Config(_Section):
    name: str = "default"
    description: str = ""
    seed: list[StrictWhole] = Field(default_factory=lambda: [0])
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    loop: LoopConfig = Field(default_factory=LoopConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    run: RunConfig = Field(default_factory=RunConfig)

    _list_seed = field_validator("seed", mode="before")(_as_list)

    def to_yaml(self) -> str:
        return yaml.safe_dump(
            self.model_dump(by_alias=True, mode="json"), sort_keys=False, allow_unicode=True
        )


DEFAULT_PRESET = "toy-flow"
"""What ``autophagy run`` runs with no options: the paper's 2-D experiment with a flow."""


class ConfigError(ValueError):
    """A config problem, as one line naming the field and the fix."""


def _format(err: ValidationError) -> str:
    e = err.errors()[0]
    where = ".".join(str(p) for p in e["loc"]) or "config"
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        return f"{where}: unknown field; check the spelling (see 'autophagy list')"
    if "input" in e and e["type"] not in ("value_error",) and not isinstance(e["input"], dict):
        return f"{where}: {msg} (got {e['input']!r})"
    return f"{where}: {msg}"


def preset_dir() -> Path:
    return Path(str(resources.files("autophagy") / "presets"))


def preset_names() -> list[str]:
    return sorted(p.stem for p in preset_dir().glob("*.yaml"))


def load_yaml(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"--config: no such file {str(path)!r}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"--config: {str(path)!r} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--config: {str(path)!r} must hold a mapping of fields")
    return data


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply ``key.sub=value`` (value parsed as YAML: ``[0, 0.5]``, ``true``, ``3``)."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError(
            f"--set: expected key=value (e.g. loop.generations=10), got {assignment!r}"
        )
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    node = data
    parts = key.strip().split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set: {key!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def load_config(
    path: Path | None = None, *, preset: str | None = None, overrides: list[str] = ()
) -> Config:
    """Build a validated :class:`Config` from a preset and/or file, then ``--set`` overrides."""
    data: dict[str, Any] = {}
    if preset is not None:
        if preset not in preset_names():
            raise ConfigError(
                f"--preset: unknown preset {preset!r}; choose from: {', '.join(preset_names())}"
            )
        data = load_yaml(preset_dir() / f"{preset}.yaml")
    if path is not None:
        data = _merge(data, load_yaml(path))
    for assignment in overrides:
        apply_override(data, assignment)
    return validate(data)


def validate(data: dict[str, Any]) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format(err)) from None


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        out[key] = (
            _merge(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out
