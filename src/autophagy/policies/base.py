"""The policy base class: how each generation's training set is built, and how a policy
describes itself.

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

from autophagy.errors import InputError
from autophagy.theory.mixing import Mixing

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
    keeps_rows: ClassVar[bool] = False
    """Whether the training set is made of rows of the real data, the pool, the synthetic
    samples and the state as they are (selection and concatenation only): what else a row
    carries then travels with it, as the label plane of a class-conditional model
    (:mod:`autophagy.models.families.conditional`) does."""
    draws_more: ClassVar[bool] = False
    """Whether :meth:`next_training_set` takes ``draw`` (a function ``m -> m`` more samples of
    the previous model) and ``model`` (the previous model): the verified loop draws until
    enough samples pass its verifier."""

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
            raise InputError(
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

    def mixing(self) -> Mixing | None:
        """The closed-form scheme this policy follows (:class:`autophagy.theory.mixing.Mixing`),
        or ``None``: the theory, overlays and stability tables read this declaration, so a new
        policy with a known scheme gets its theory curves without touching them."""
        return None

    def gaussian_trajectory(self, *, n: int, generations: int, cov0: Any, unbiased: bool = False,
                            temperature: float = 1.0) -> Any:
        """Expected moments of a Gaussian MLE cell (an
        :class:`~autophagy.theory.gaussian.ExpectedGaussianTrajectory`) for a policy with a
        closed form that no :class:`Mixing` scheme covers (accumulate-subsample,
        self-correction), or ``None``; the theory overlays read it when :meth:`mixing` is
        ``None``."""
        return None

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
