"""How each generation's training set is built from real data and the previous model's samples.

Each policy is a small frozen dataclass that describes itself: its dataclass fields declared with
:func:`parameter` are its parameters (name in configs, default, whether a list in a config sweeps
it), and its class variables say what it needs (``needs_pool``) and how the report draws it
(``color``, ``order``). Grid expansion, cell ids, store columns, parsing and legends are generic
over these, so a new policy is one file and one :data:`POLICIES` registration.

A policy says how many synthetic samples it wants (:meth:`Policy.n_synthetic`) and builds the next
training set from arrays (:meth:`Policy.next_training_set`). Anything it must remember between
generations (the accumulated synthetic sets) lives in an explicit ``state`` dict that the loop
checkpoints, so a resumed run continues exactly.

Three meanings of "lambda" exist in the literature; here ``lam`` (config key ``lambda``) is always
Bertrand et al.'s synthetic-to-real *ratio* (lambda = 1: half of the training set is synthetic).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from autophagy.registry import Registry

State = dict[str, Any]
PARAM = "autophagy.parameter"


@dataclass(frozen=True)
class Parameter:
    """A policy parameter: its config ``key``, dataclass ``field``, default and cell-id ``tag``."""

    key: str
    field: str
    default: Any
    sweep: bool
    tag: str
    help: str


def parameter(default: Any, *, key: str | None = None, sweep: bool = True, tag: str | None = None,
              help: str = "") -> Any:
    """Declare a policy parameter (a dataclass field with metadata).

    ``key`` is its name in configs (defaults to the field name; ``lam`` is ``lambda``), ``sweep``
    whether a list of values in a config makes one cell per value, ``tag`` its short form in cell
    ids (``mixed-lam0.5-seed0``).
    """
    return dataclasses.field(
        default=default, metadata={PARAM: {"key": key, "sweep": sweep, "tag": tag, "help": help}}
    )


@dataclass(frozen=True)
class Policy:
    """Base of every policy; subclasses are frozen dataclasses registered in :data:`POLICIES`."""

    name: ClassVar[str] = ""
    needs_pool: ClassVar[bool] = False
    """Whether it draws fresh real samples from the dataset's held-back pool."""
    color: ClassVar[str | None] = None
    """Report colour: a hex colour (shaded per setting) or a matplotlib colormap name."""
    order: ClassVar[int] = 50
    """Position in legends and tables (fully synthetic comes last)."""

    # -- self-description ------------------------------------------------------------------
    @classmethod
    def parameters(cls) -> list[Parameter]:
        out = []
        for f in dataclasses.fields(cls):
            meta = f.metadata.get(PARAM)
            if meta is None:
                continue
            key = meta["key"] or f.name
            out.append(Parameter(key, f.name, f.default, meta["sweep"], meta["tag"] or key,
                                 meta["help"]))
        return out

    @classmethod
    def from_params(cls, **params: Any) -> Policy:
        """Build from config keys (``lambda=0.5``); unknown keys raise a ValueError naming them."""
        fields = {p.key: p.field for p in cls.parameters()}
        unknown = sorted(set(params) - set(fields))
        if unknown:
            accepted = ", ".join(fields) or "none"
            raise ValueError(
                f"policy {cls.name!r}: unknown parameter {unknown[0]!r}; accepted: {accepted}"
            )
        return cls(**{fields[k]: v for k, v in params.items()})

    @property
    def params(self) -> dict[str, Any]:
        """Parameter values by config key."""
        return {p.key: getattr(self, p.field) for p in self.parameters()}

    @property
    def cell_tag(self) -> str:
        """The policy's part of a cell id: ``mixed-lam0.5``, ``fully_synthetic``."""
        parts = [self.name] + [
            f"{p.tag}{getattr(self, p.field):g}" for p in self.parameters() if p.sweep
        ]
        return "-".join(parts)

    @property
    def label(self) -> str:
        """Legend text: the name and each parameter's value."""
        values = " ".join(f"{k}={v:g}" for k, v in self.params.items())
        return f"{self.name} {values}".strip()

    @property
    def lam(self) -> float:
        """The synthetic-to-real ratio where the policy has one (theory overlays), else NaN."""
        return math.nan

    # -- behaviour ---------------------------------------------------------------------------
    def n_synthetic(self, n_real: int) -> int:
        """How many samples to draw from the previous generation."""
        raise NotImplementedError

    def next_training_set(
        self,
        real: np.ndarray,
        synthetic: np.ndarray,
        state: State,
        *,
        rng: np.random.Generator,
        pool: np.ndarray | None = None,
    ) -> tuple[np.ndarray, State]:
        """Return (training set for this generation, updated state)."""
        raise NotImplementedError

    def pool_size(self, n_real: int) -> int:
        """Held-back real samples the dataset should provide when the config leaves it to us."""
        return 0

    def check(self, n_real: int, pool: np.ndarray | None) -> None:
        """Raise ``ValueError`` if the policy cannot run on this data."""

    @property
    def needs(self) -> frozenset[str]:
        """What the experiment must prepare before workers start (``"classifier"``)."""
        return frozenset()

    def bind(self, dataset: Any) -> Policy:
        """This policy made ready for ``dataset`` (the loop calls it once per cell, the config
        check too, so what it resolves from the data fails before anything runs). Default: self.
        The curated policy builds its reward here (a class reward needs the dataset's classifier).
        """
        return self

    def extra_metrics(self) -> tuple[Any, ...]:
        """Metric names or objects the loop adds to every generation's evaluation (the curated
        policy's reward mean and variance); default none."""
        return ()


def _ratio(value: float, name: str) -> None:
    if isinstance(value, bool) or not (isinstance(value, int | float) and math.isfinite(value)
                                       and value >= 0):
        raise ValueError(f"lambda must be a finite number >= 0 for {name}, got {value!r}")


@dataclass(frozen=True)
class Mixed(Policy):
    """All n real samples plus floor(lambda * n) fresh synthetic ones (Bertrand et al., Alg. 1).

    Stable when lambda (1 + L eps / alpha) < 1 and the first model is good enough.
    """

    ratio: float = parameter(1.0, key="lambda", tag="lam", help="synthetic-to-real ratio")
    name: ClassVar[str] = "mixed"
    color: ClassVar[str] = "viridis"
    order: ClassVar[int] = 0

    def __post_init__(self):
        _ratio(self.ratio, self.name)

    @property
    def lam(self) -> float:
        return float(self.ratio)

    @property
    def label(self) -> str:
        return f"mixed λ={self.ratio:g}"

    def n_synthetic(self, n_real: int) -> int:
        return math.floor(self.ratio * n_real)

    def next_training_set(self, real, synthetic, state, *, rng, pool=None):
        return np.concatenate([real, synthetic]), state


@dataclass(frozen=True)
class FullySynthetic(Policy):
    """n samples of the previous model only: the self-consuming loop that collapses."""

    name: ClassVar[str] = "fully_synthetic"
    color: ClassVar[str] = "#d62728"
    order: ClassVar[int] = 100

    @property
    def lam(self) -> float:
        return math.inf

    def n_synthetic(self, n_real: int) -> int:
        return n_real

    def next_training_set(self, real, synthetic, state, *, rng, pool=None):
        return synthetic, state


@dataclass(frozen=True)
class Accumulate(Policy):
    """Real data plus every synthetic set so far (Gerstgrasser et al., 2024): error stays bounded.

    Each generation adds floor(lambda * n) new synthetic samples (lambda = 1 by default).
    """

    ratio: float = parameter(1.0, key="lambda", tag="lam",
                             help="new synthetic samples a generation, per real sample")
    name: ClassVar[str] = "accumulate"
    color: ClassVar[str] = "#ff7f0e"
    order: ClassVar[int] = 10

    def __post_init__(self):
        _ratio(self.ratio, self.name)

    @property
    def lam(self) -> float:
        return float(self.ratio)

    @property
    def label(self) -> str:
        return "accumulate" if self.ratio == 1 else f"accumulate λ={self.ratio:g}"

    def n_synthetic(self, n_real: int) -> int:
        return math.floor(self.ratio * n_real)

    def next_training_set(self, real, synthetic, state, *, rng, pool=None):
        past = state.get("synthetic")
        kept = synthetic if past is None else np.concatenate([past, synthetic])
        return np.concatenate([real, kept]), {**state, "synthetic": kept}


@dataclass(frozen=True)
class FreshReal(Policy):
    """Each generation: floor(fraction * n) new real samples from a held-back pool, the rest
    synthetic (the "fresh data loop" of Alemohammad et al., 2023)."""

    fraction: float = parameter(0.5, tag="frac", help="share of fresh real samples a generation")
    name: ClassVar[str] = "fresh_real"
    needs_pool: ClassVar[bool] = True
    color: ClassVar[str] = "#8c564b"
    order: ClassVar[int] = 20

    def __post_init__(self):
        if not (0 < self.fraction <= 1):
            raise ValueError(f"fraction must be in (0, 1] for fresh_real, got {self.fraction!r}")

    @property
    def label(self) -> str:
        return f"fresh_real {self.fraction:.0%}"

    def n_fresh(self, n_real: int) -> int:
        return max(1, math.floor(self.fraction * n_real))

    def n_synthetic(self, n_real: int) -> int:
        return n_real - self.n_fresh(n_real)

    def pool_size(self, n_real: int) -> int:
        return 20 * self.n_fresh(n_real)

    def check(self, n_real, pool):
        need = self.n_fresh(n_real)
        have = 0 if pool is None else len(pool)
        if have < need:
            raise ValueError(
                f"fresh_real with fraction {self.fraction:g} draws {need} new real samples a "
                f"generation but the pool holds {have}; give a pool of at least {need} samples"
            )

    def next_training_set(self, real, synthetic, state, *, rng, pool=None):
        self.check(len(real), pool)
        fresh = pool[rng.choice(len(pool), size=self.n_fresh(len(real)), replace=False)]
        return np.concatenate([fresh, synthetic]), state


POLICIES: Registry[type[Policy]] = Registry("policy")
"""Every known policy class by name; add one with ``POLICIES.register(name, cls)``."""
POLICIES.register("mixed", Mixed,
                  description="all real + floor(lambda*n) synthetic samples (the paper's scheme)")
POLICIES.register("fully_synthetic", FullySynthetic,
                  description="n synthetic samples only: the collapsing loop")
POLICIES.register("accumulate", Accumulate,
                  description="real + every earlier synthetic set (floor(lambda*n) added a "
                  "generation)")
POLICIES.register("fresh_real", FreshReal,
                  description="fraction of new real samples from a held-back pool + synthetic")
POLICIES.register("curated", "autophagy.policies_curated:Curated",
                  description="keep one of k model samples by Bradley-Terry choice under a "
                  "reward, real data at share real_weight (Ferbach et al. 2024)")


def policy_class(name: str) -> type[Policy]:
    """The policy class registered as ``name`` (or a ``module:Class`` name)."""
    cls = POLICIES[name]
    if not (isinstance(cls, type) and issubclass(cls, Policy)):
        raise ValueError(f"{name!r} is not a Policy subclass")
    return cls


def make_policy(name: str, **params: Any) -> Policy:
    """Build policy ``name`` from config keys, e.g. ``make_policy("mixed", **{"lambda": 0.5})``."""
    return policy_class(name).from_params(**params)


def policy_grid(name: str, params: dict[str, Any]) -> list[Policy]:
    """One policy per combination of the listed values of its sweepable parameters, in order."""
    cls = policy_class(name)
    sweep = {p.key for p in cls.parameters() if p.sweep}
    combos: list[dict[str, Any]] = [{}]
    for key, value in params.items():
        values = value if key in sweep and isinstance(value, list | tuple) else [value]
        combos = [{**c, key: v} for c in combos for v in values]
    return [cls.from_params(**c) for c in combos]


def parse_policy(spec: str | Policy) -> Policy:
    """Parse ``"mixed:0.5"`` (the first parameter), ``"fresh_real:fraction=0.3"``,
    ``"fully_synthetic"``, ... (or pass a Policy through)."""
    if isinstance(spec, Policy):
        return spec
    name, _, arg = str(spec).partition(":")
    if "." in name:  # a module:Class name, then its parameters
        cls_name, _, arg = arg.partition(":")
        name = f"{name}:{cls_name}"
    cls = policy_class(name)
    if not arg:
        return cls()
    params: dict[str, Any] = {}
    keys = [p.key for p in cls.parameters()]
    for item in arg.split(","):
        key, eq, raw = item.partition("=")
        if not eq:
            if not keys:
                raise ValueError(f"policy {spec!r}: {name} takes no number")
            key, raw = keys[0], item
        if not _is_number(raw):
            raise ValueError(f"policy {spec!r}: {raw!r} must be a number")
        params[key.strip()] = float(raw)
    return cls.from_params(**params)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def __getattr__(name: str) -> Any:
    if name == "Curated":  # defined in its own module, which imports this one
        from autophagy.policies_curated import Curated

        return Curated
    raise AttributeError(f"module 'autophagy.policies' has no attribute {name!r}")
