"""The experiment config: YAML or CLI flags, validated in full before anything runs.

A config names a dataset, a model family, the loop (policies, the lambda grid, generations) and
the evaluation. ``lambda`` and ``seed`` accept a list: the grid of cells is their product with the
policies (:mod:`autophagy.run.experiment`). Presets are YAML files shipped in
``autophagy/config/presets``
(the repository's ``configs/`` folder).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from autophagy.errors import ConfigError, InputError

StrictWhole = Annotated[int, Field(strict=True)]


class _Section(BaseModel):
    # ser_json_inf_nan: an infinite value (curated beta: .inf) survives the JSON sent to workers
    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, ser_json_inf_nan="constants"
    )


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
    init_checkpoint: str | None = None
    """Pretrained generation 0 (the neural families' ``init_checkpoint`` option, here for the
    paper's recipe: an EDM pickle, a torchcfm checkpoint, a diffusers folder or a state dict)."""

    @model_validator(mode="after")
    def _checkpoint_into_options(self) -> ModelConfig:
        if self.init_checkpoint is not None:
            self.options = {**self.options, "init_checkpoint": self.init_checkpoint}
            self.init_checkpoint = None
        return self


DEFAULT_POLICIES: dict[str, dict[str, Any]] = {"mixed": {"lambda": [0.0, 0.5, 1.0]},
                                                "fully_synthetic": {}}


class SubFieldError(ValueError):
    """A validator's error about a field below the one it validates (``policies.mixed.lambda``)."""

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path = path


class LoopConfig(_Section):
    policies: dict[str, dict[str, Any]] = Field(default_factory=lambda: dict(DEFAULT_POLICIES))
    """One block per policy with its parameters; a list of values sweeps a parameter:
    ``{mixed: {lambda: [0, 0.5, 1]}, fresh_real: {fraction: [0.25, 0.5]}, fully_synthetic: {}}``.
    Shorthands, folded into ``policies`` when the config is read: ``policy`` (names, with default
    parameters), ``lambda`` and ``fraction`` (set in every chosen policy that has them)."""
    generations: StrictWhole = Field(20, ge=0)
    warm_start: bool = True
    temperature: float = Field(1.0, gt=0)
    """Sampling temperature of the synthetic training data (MAD's sampling-bias knob)."""
    self_guidance: float = Field(0.0, ge=0)
    """SIMS self-guidance weight w (Alemohammad et al. 2024; diffusion and flow-matching
    families): each generation fine-tunes an auxiliary copy on the model's own samples and samples
    with (1 + w) f_base - w f_aux; 0 = off."""

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not {"policy", "lambda", "fraction"} & set(data):
            return data
        data = dict(data)
        names, lam, fraction = (data.pop(k, None) for k in ("policy", "lambda", "fraction"))
        policies = data.get("policies")
        if policies is None:
            policies = {} if names is not None else dict(DEFAULT_POLICIES)
        if not isinstance(policies, dict):
            return data
        if names is not None:
            names = _as_list(names)
            if not names:
                raise SubFieldError("policy", "needs at least one policy")
            for name in names:
                _policy_class(name, "policy")
            policies = {name: dict(policies.get(name) or {}) for name in names}
        if lam is not None:
            _check_lambdas(_as_list(lam))
        for name, params in list(policies.items()):
            keys = {p.key for p in _policy_class(name, f"policies.{name}").parameters()}
            params = dict(params or {})
            for key, value in (("lambda", lam), ("fraction", fraction)):
                if value is not None and key in keys:
                    params[key] = value
            policies[name] = params
        data["policies"] = policies
        return data

    @field_validator("policies")
    @classmethod
    def _known_policies(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        if not value:
            raise InputError("needs at least one policy")
        out = {}
        for name, params in value.items():
            policy = _policy_class(name, "")
            accepted = {p.key: p for p in policy.parameters()}
            clean = {}
            for key, raw in (params or {}).items():
                if key not in accepted:
                    raise SubFieldError(
                        f"{name}", f"unknown parameter {key!r}; accepted: "
                        f"{', '.join(accepted) or 'none'}"
                    )
                clean[key] = _as_list(raw) if accepted[key].sweep else raw
            for key, values in clean.items():  # each value alone: the error names its key
                for v in values if accepted[key].sweep else [values]:
                    try:
                        policy.from_params(**{key: v})
                    except (TypeError, ValueError) as err:
                        raise SubFieldError(f"{name}.{key}", str(err)) from None
            from autophagy.policies import policy_grid

            try:
                policy_grid(name, clean)
            except (TypeError, ValueError) as err:
                raise SubFieldError(name, str(err)) from None
            out[name] = clean
        return out


def _policy_class(name: Any, path: str) -> Any:
    from autophagy.policies import POLICIES, policy_class

    if not isinstance(name, str):
        raise SubFieldError(path, f"a policy name must be a string, got {name!r}")
    try:
        return policy_class(name)
    except ValueError as err:
        message = str(err) if name in POLICIES else (
            f"unknown policy {name!r}; {POLICIES.choices(name)}"
        )
        raise SubFieldError(path, message) from None


def _check_lambdas(values: list[Any]) -> None:
    for lam in values:
        if isinstance(lam, bool) or not isinstance(lam, int | float):
            raise SubFieldError("lambda", f"every lambda must be a number, got {lam!r}")
        if not math.isfinite(lam) or lam < 0:
            raise SubFieldError("lambda", f"every lambda must be a finite number >= 0, got {lam:g}")
    if not values:
        raise SubFieldError("lambda", "needs at least one value")


class DownstreamConfig(_Section):
    classifier: Literal["auto", "logistic", "mlp", "cnn"] = "auto"
    """The downstream classifier: auto = mlp for points, logistic for images; cnn: the project's
    small CNN (images)."""
    labels: Literal["auto", "column", "annotator", "conditional"] = "auto"
    """Labels of generated samples: the dataset's label column (points), the labels a
    class-conditional model (conditional_ddpm) drew them for, or an annotator classifier
    trained once on the real training split (images); auto picks the column, else the
    conditional model's, else the annotator."""


class EvalConfig(_Section):
    metrics: list[str] | None = None
    """Metric names; ``null``: every default metric that applies to the model and data."""
    n_samples: StrictWhole = Field(1000, ge=2)
    """Samples drawn from each generation for evaluation (and saved for the figures)."""
    temperature: float = Field(1.0, gt=0)
    """Sampling temperature of the evaluation samples (1: the model as it is)."""
    compare_to: Literal["test", "train"] = "test"
    """The real data the metrics compare samples with: the held-out split, or the training set
    (the FID reference of the paper's code: the 50k CIFAR-10 training images)."""
    verdict_metric: str = "w2"
    features: Literal["auto", "pixels", "classifier", "inception"] = "auto"
    """Features of fid / kid / precision / recall / density / coverage: auto = raw values for
    points, the dataset's CNN classifier for labelled images, Inception if a file is given."""
    inception: str | None = None
    """Inception TorchScript file (inception-2015-12-05.pt); default $AUTOPHAGY_INCEPTION."""
    downstream: DownstreamConfig = Field(default_factory=DownstreamConfig)
    """How the downstream metrics (tstr_*, trainset_*) train and label."""

    _list_metrics = field_validator("metrics", mode="before")(
        lambda v: v if v is None else _as_list(v)
    )

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: list[str] | None) -> list[str] | None:
        from autophagy.metrics import METRICS

        for name in value or []:
            if name not in METRICS:
                raise InputError(f"unknown metric {name!r}; choose from: {', '.join(METRICS)}")
        return value


class RunConfig(_Section):
    executor: Literal["inline", "processes", "ray"] = "processes"
    workers: StrictWhole | None = Field(None, ge=1)
    """Worker processes (default: one per core, at most one per cell); with ``ray`` and no
    ``address``, the CPUs of the local Ray started for the run."""
    checkpoints: Literal["all", "last"] = "all"
    batch: StrictWhole = Field(1, ge=1)
    """Cells that train together as one batch (neural families on points); they
    share a worker. Whatever the batch, a cell gets the numbers it gets alone."""
    address: str | None = None
    """Ray: a running cluster's address (``host:6379``, ``auto``, ``ray://host:10001``); none
    starts a local Ray for the run."""
    num_cpus: float = Field(1.0, gt=0)
    """Ray: CPUs each cell's task reserves (its torch threads)."""
    num_gpus: float = Field(0.0, ge=0)
    """Ray: GPUs each cell's task reserves (fractions share a GPU)."""
    max_retries: StrictWhole = Field(3, ge=0)
    """Ray: times a cell whose worker died is started again (it resumes from its checkpoint)."""
    tracker: Literal["none", "tensorboard", "mlflow"] = "none"
    """Also send each cell's metrics to an experiment tracker (an optional extra), as each
    generation finishes (:mod:`autophagy.run.trackers`)."""
    tracker_uri: str | None = None
    """TensorBoard: the log folder; MLflow: the tracking URI. Default: a folder inside the run
    directory (``tensorboard/``, ``mlruns/``)."""


class Config(_Section):
    name: str = "default"
    description: str = ""
    seed: list[StrictWhole] = Field(default_factory=lambda: [0])
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    loop: LoopConfig = Field(default_factory=LoopConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    run: RunConfig = Field(default_factory=RunConfig)
    sweep: dict[str, list[Any]] = Field(default_factory=dict)
    """Any other field swept, by its dotted path: ``{data.n_train: [100, 250, 1000],
    model.options.hidden_features: [[32, 32], [64, 64]]}``. Every combination of the values
    makes its own cells (times the policies' grids and the seeds)."""

    _list_seed = field_validator("seed", mode="before")(_as_list)

    @model_validator(mode="after")
    def _check_sweep(self) -> Config:
        for path, values in self.sweep.items():
            if any(path == f or path.startswith(f + ".") for f in NOT_SWEPT):
                raise SubFieldError(
                    f"sweep.{path}", "cannot be swept here; list seeds in seed: [...] and policy "
                    "parameters in loop.policies (e.g. mixed: {lambda: [0, 1]})"
                )
            if not isinstance(values, list) or not values:
                raise SubFieldError(f"sweep.{path}", "needs a non-empty list of values")
            for value in values:
                try:
                    self.with_overrides({path: value})
                except ConfigError as err:
                    message = str(err).removeprefix(f"{path}:").strip()
                    raise SubFieldError(f"sweep.{path}", message) from None
        return self

    def with_overrides(self, overrides: dict[str, Any]) -> Config:
        """This config with ``{dotted.path: value}`` set (and no sweep): one cell's config."""
        data = self.model_dump(by_alias=True, mode="json")
        data["sweep"] = {}
        for path, value in overrides.items():
            _set_path(data, path, value, flag=f"sweep.{path}")
        return validate(data)

    def to_yaml(self) -> str:
        return yaml.safe_dump(
            self.model_dump(by_alias=True, mode="json"), sort_keys=False, allow_unicode=True
        )


NOT_SWEPT = ("name", "description", "seed", "sweep", "run", "loop.policies")
"""Fields a sweep may not name: they are the grid already, or not part of a cell."""


def _format(err: ValidationError) -> str:
    e = err.errors()[0]
    where = ".".join(str(p) for p in e["loc"]) or "config"
    msg = e["msg"].removeprefix("Value error, ")
    cause = e.get("ctx", {}).get("error")
    if isinstance(cause, SubFieldError):
        where = ".".join(p for p in (where if e["loc"] else "", cause.path) if p)
        return f"{where}: {cause}"
    if e["type"] == "extra_forbidden":
        return f"{where}: unknown field; check the spelling (see 'autophagy list')"
    if "input" in e and e["type"] not in ("value_error",) and not isinstance(e["input"], dict):
        return f"{where}: {msg} (got {e['input']!r})"
    return f"{where}: {msg}"


def validate(data: dict[str, Any]) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format(err)) from None


def _set_path(data: dict[str, Any], key: str, value: Any, *, flag: str) -> None:
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{flag}: {key!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value
