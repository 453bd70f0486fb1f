"""Verified retraining (Feng et al., 2024): a verifier passes or rejects each synthetic sample.

Each generation the policy draws from the previous model until ``floor(lambda n)`` samples (n
fully synthetic, ``lambda = inf``) have passed its verifier, drawing at most ``max_draws`` times
that count: a verifier that passes too little stops the cell with one line naming it and its
acceptance rate, never a loop without end. The acceptance rate of every generation is kept in the
policy state and recorded as the metric ``acceptance_rate``.

Verifiers (``verifier:``; default ``discriminator``, which needs nothing of the dataset):

- ``oracle``: the setting of Feng et al.: the truth decides (for a dataset that knows its modes,
  a sample is right when within 3 standard deviations of a mode; for a Gaussian, when its
  Mahalanobis distance is inside the 99% ellipsoid), and the verifier errs at the rates
  ``false_accept`` (a wrong sample passes) and ``false_reject`` (a right one is refused);
- ``discriminator``: a classifier of real against synthetic samples (scikit-learn's
  histogram gradient boosting), retrained every generation on the n real points and n fresh
  draws; a sample passes when its probability of being real is at least ``threshold``;
- ``likelihood``: the log-density of generation 0 (the model fitted to the real data): a sample
  passes when it is above the ``quantile`` of the real points' own log-densities; needs a model
  with ``log_prob``;
- ``module:function``: your ``fn(x, real) -> (n,)`` booleans (samples in the dataset's shape,
  the real training set), tried on real samples before the run starts.

Reference:
    | Feng, Dohmatob, Yang, Charton, Kempe. Beyond Model Collapse: Scaling Up with Synthesized
    | Data Requires Verification (2024). https://arxiv.org/abs/2406.07515
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from autophagy.errors import InputError, VerifierStarved
from autophagy.metrics.base import as_rows
from autophagy.metrics.tails import MODE_RADIUS
from autophagy.policies.base import Policy, parameter
from autophagy.signatures import ArgumentError

BUILT_IN = ("oracle", "discriminator", "likelihood")
CHECK_SAMPLES = 64
"""Real samples a user's verifier is tried on before a run starts."""
ORACLE_LEVEL = 0.99
"""A Gaussian's right samples: inside the ellipsoid holding this much of its mass."""


def truth_test(dataset: Any) -> Callable[[np.ndarray], np.ndarray]:
    """``right(x) -> (n,) bool`` from what ``dataset`` knows of its truth (its ``params``)."""
    params = getattr(dataset, "params", {}) or {}
    if "centres" in params and "std" in params:
        centres, std = np.asarray(params["centres"]), float(params["std"])

        def on_a_mode(x: np.ndarray) -> np.ndarray:
            d = np.linalg.norm(as_rows(x)[:, None, :] - centres[None], axis=2).min(axis=1)
            return d <= MODE_RADIUS * std

        return on_a_mode
    if "mean" in params and "cov" in params:
        from scipy.stats import chi2

        mean, cov = np.asarray(params["mean"]), np.asarray(params["cov"])
        prec, limit = np.linalg.inv(cov), chi2.ppf(ORACLE_LEVEL, len(mean))

        def inside(x: np.ndarray) -> np.ndarray:
            z = as_rows(x) - mean
            return np.einsum("ni,ij,nj->n", z, prec, z) <= limit

        return inside
    name = getattr(dataset, "name", "this dataset")
    raise InputError(f"verifier 'oracle' needs a dataset that knows its truth (modes, or a "
                     f"Gaussian's mean and cov): long_tail, eight_gaussians, gaussian; "
                     f"{name!r} does not")


@dataclass
class Oracle:
    """Feng et al.'s oracle: the truth's verdict, flipped at the given error rates."""

    right: Callable[[np.ndarray], np.ndarray]
    false_accept: float
    false_reject: float

    def prepare(self, real, draw, model, state, rng) -> dict[str, Any]:
        return {}

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        good = self.right(x)
        u = rng.random(len(x))
        return np.where(good, u >= self.false_reject, u < self.false_accept)


@dataclass
class Discriminator:
    """Real against synthetic, retrained every generation; passes ``P(real | x) >= threshold``."""

    threshold: float
    clf: Any = None

    def prepare(self, real, draw, model, state, rng) -> dict[str, Any]:
        from sklearn.ensemble import HistGradientBoostingClassifier

        fake = draw(len(real))
        x = np.concatenate([as_rows(real), as_rows(fake)])
        y = np.r_[np.ones(len(real)), np.zeros(len(fake))]
        seed = int(rng.integers(2**31 - 1))
        self.clf = HistGradientBoostingClassifier(max_iter=100, random_state=seed).fit(x, y)
        return {}

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.clf.predict_proba(as_rows(x))[:, 1] >= self.threshold


@dataclass
class Likelihood:
    """Passes samples whose generation-0 log-density is above the real points' ``quantile``."""

    quantile: float
    gen0: Any = None

    def prepare(self, real, draw, model, state, rng) -> dict[str, Any]:
        if self.gen0 is None:
            if not callable(getattr(model, "log_prob", None)):
                raise InputError(f"verifier 'likelihood' needs a model with log_prob; "
                                 f"{type(model).__name__} has none (gmm, gaussian, kde, flows "
                                 f"have it)")
            self.gen0 = copy.deepcopy(model)
            if "verifier_gen0" in state:  # resumed: generation 0 is in the checkpoint
                self.gen0.load_state_dict(state["verifier_gen0"])
        if "loglik_threshold" in state:
            return {}
        scores = np.asarray(self.gen0.log_prob(real), dtype=np.float64)
        return {"verifier_gen0": self.gen0.state_dict(),
                "loglik_threshold": float(np.quantile(scores, self.quantile))}

    def __call__(self, x: np.ndarray, rng: np.random.Generator, *, threshold: float = -np.inf):
        return np.asarray(self.gen0.log_prob(x), dtype=np.float64) >= threshold


@dataclass
class UserVerifier:
    """A user's ``fn(x, real) -> (n,)`` booleans, checked at every call."""

    spec: str
    fn: Callable[..., Any]
    real: np.ndarray

    def prepare(self, real, draw, model, state, rng) -> dict[str, Any]:
        return {}

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        try:
            out = np.asarray(self.fn(x, self.real))
        except Exception as err:
            raise InputError(f"verifier {self.spec!r} raised {type(err).__name__}: {err}") \
                from None
        if out.shape != (len(x),) or not (out.dtype == bool or np.isin(out, (0, 1)).all()):
            raise InputError(f"verifier {self.spec!r} must return one boolean per sample, shape "
                             f"({len(x)},); got shape {out.shape}, dtype {out.dtype}")
        return out.astype(bool)


def _rate(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise InputError(f"{name} must be a number in [0, 1] for verified, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Verified(Policy):
    """Train on synthetic samples that pass a verifier (Feng et al., 2024), with all real data
    when ``lambda`` is finite; module docstring."""

    keeps_rows: ClassVar[bool] = True

    verifier: str = parameter("discriminator", sweep=False,
                              help="oracle, discriminator, likelihood or module:function")
    false_accept: float = parameter(0.0, tag="fa", help="oracle: chance a wrong sample passes")
    false_reject: float = parameter(0.0, tag="fr", help="oracle: chance a right one is refused")
    threshold: float = parameter(0.5, tag="thr",
                                 help="discriminator: least P(real | x) that passes")
    quantile: float = parameter(0.05, tag="q", help="likelihood: real points' log-density "
                                "quantile under generation 0 that a sample must reach")
    ratio: float = parameter(math.inf, key="lambda", tag="lam",
                             help="passed samples per real one (inf: fully synthetic, n)")
    max_draws: float = parameter(20, sweep=False,
                                 help="draws allowed a generation, in multiples of the count")
    name: ClassVar[str] = "verified"
    color: ClassVar[str] = "cividis"
    order: ClassVar[int] = 32
    draws_more: ClassVar[bool] = True

    def __post_init__(self):
        v = self.verifier
        if not isinstance(v, str) or not (v in BUILT_IN or ":" in v):
            raise InputError(f"verifier must be one of {', '.join(BUILT_IN)} or "
                             f"'module:function', got {v!r}")
        for name in ("false_accept", "false_reject", "threshold", "quantile"):
            _rate(getattr(self, name), name)
        r = self.ratio
        if isinstance(r, bool) or not isinstance(r, int | float) or math.isnan(r) or r <= 0:
            raise InputError(f"lambda must be a number > 0 (inf: fully synthetic) for verified, "
                             f"got {r!r}")
        m = self.max_draws
        if isinstance(m, bool) or not isinstance(m, int | float) or not (1 <= m < math.inf):
            raise InputError(f"max_draws must be a number >= 1 for verified, got {m!r}")

    # -- self-description ----------------------------------------------------------------------
    @property
    def label(self) -> str:
        if self.verifier == "oracle":
            what = f"oracle fa={self.false_accept:g} fr={self.false_reject:g}"
        elif self.verifier == "discriminator":
            what = f"discriminator ≥{self.threshold:g}"
        elif self.verifier == "likelihood":
            what = f"likelihood q={self.quantile:g}"
        else:
            what = self.verifier
        real = "" if math.isinf(self.ratio) else f", λ={self.ratio:g}"
        return f"verified {what}{real}"

    @property
    def lam(self) -> float:
        return float(self.ratio)

    def extra_metrics(self) -> tuple[Any, ...]:
        return ("acceptance_rate",)

    # -- the verifier --------------------------------------------------------------------------
    def bind(self, dataset: Any) -> Verified:
        """A copy holding the verifier built for ``dataset`` (a user's tried on real samples)."""
        bound = dataclasses.replace(self)
        try:
            verifier = self._build(dataset)
        except ValueError as err:
            raise ArgumentError("verifier", str(err)) from None
        object.__setattr__(bound, "_verifier", verifier)
        return bound

    def _build(self, dataset: Any) -> Any:
        if self.verifier == "oracle":
            return Oracle(truth_test(dataset), self.false_accept, self.false_reject)
        if self.verifier == "discriminator":
            return Discriminator(self.threshold)
        if self.verifier == "likelihood":
            return Likelihood(self.quantile)
        from autophagy.registry import import_target

        fn = import_target(self.verifier)
        if not callable(fn):
            raise InputError(f"verifier {self.verifier!r} is not callable")
        user = UserVerifier(self.verifier, fn, np.asarray(dataset.train))
        user(np.asarray(dataset.train[:CHECK_SAMPLES]), np.random.default_rng(0))
        return user

    # -- behaviour -----------------------------------------------------------------------------
    def n_kept(self, n_real: int) -> int:
        return n_real if math.isinf(self.ratio) else max(1, math.floor(self.ratio * n_real))

    def n_synthetic(self, n_real: int) -> int:
        return self.n_kept(n_real)

    def next_training_set(self, real, synthetic, state, *, rng, pool=None, draw=None,
                          model=None):
        verifier = self.__dict__.get("_verifier")
        if verifier is None or draw is None:
            raise InputError("the verified policy runs in the loop (it draws until enough "
                             "samples pass): bind it to the dataset and give it draw=")
        state = {**state, **verifier.prepare(real, draw, model, state, rng)}
        options = {"threshold": state["loglik_threshold"]} if "loglik_threshold" in state else {}
        need = self.n_kept(len(real))
        cap = math.ceil(self.max_draws * need)
        batch, kept, have, drawn = synthetic, [], 0, 0
        while True:
            passed = verifier(batch, rng, **options)
            kept.append(batch[passed])
            have, drawn = have + int(passed.sum()), drawn + len(batch)
            if have >= need:
                break
            if drawn >= cap:
                raise VerifierStarved(
                    f"verifier {self.verifier!r} passed {have} of {drawn} samples (acceptance "
                    f"rate {have / drawn:.3g}) but a generation needs {need}: loosen it, or "
                    f"raise max_draws (now {self.max_draws:g})")
            rate = max(have, 1) / drawn
            batch = draw(min(cap - drawn, max(16, math.ceil(1.2 * (need - have) / rate))))
        accepted = np.concatenate(kept)[:need]
        state["acceptance_rate"] = have / drawn
        train = accepted if math.isinf(self.ratio) else np.concatenate([real, accepted])
        return train, state
