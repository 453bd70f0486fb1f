"""The one interface every model family implements.

Why a protocol and not a base class: a researcher's own model should plug into the loop by having
the right methods, with no import from autophagy. The shape follows scikit-learn (hyper-parameters
in ``__init__``, ``fit`` returns ``self``, randomness passed in) so that closed-form models
(Gaussian MLE, KDE) and neural ones (flows, diffusion: trained for a ``budget`` of samples seen,
warm-started from the previous generation's weights) share one loop.
"""

from __future__ import annotations

import math
from typing import Any, Protocol, runtime_checkable

import numpy as np

from autophagy.errors import (
    DivergedError,  # noqa: F401
    InputError,
)
from autophagy.theory.sampling import check_temperature  # noqa: F401


@runtime_checkable
class GenerativeModel(Protocol):
    """A generative model the retraining loop can fit, sample and checkpoint.

    - ``fit(data, *, warm_start, budget, rng)``: train on ``data`` (an array of shape (n, ...)).
      ``warm_start=True`` starts from the current parameters (the paper fine-tunes each
      generation); ``budget`` is the number of training samples to see (``None``: the model's
      own default; closed-form models ignore it). Returns ``self``.
    - ``sample(n, *, rng, temperature=1.0)``: ``n`` samples as a numpy array. ``temperature`` < 1
      sharpens the distribution (samples from about ``p ** (1 / temperature)``).
    - ``state_dict()`` / ``load_state_dict(state)``: everything needed to continue the loop, as
      nested dicts of arrays and plain values (no code), so checkpoints can be written and resumed.
    - ``log_prob(x)`` (optional): per-sample log-density; enables the held-out NLL metric.

    A family describes its theory in class variables, read by the analysis layer (never by
    matching its name): ``closed_form`` (``"gaussian"``, ``"regression"``, or ``None``: the
    closed form whose expected curves are drawn beside its cells), ``identifiable`` (whether its
    parameters determine its distribution one to one, so a distance between parameter vectors
    is a distance between models) and ``sampling_temperature`` (:func:`temperature_support`).
    """

    def fit(
        self,
        data: np.ndarray,
        *,
        warm_start: bool = False,
        budget: int | None = None,
        rng: np.random.Generator,
    ) -> GenerativeModel: ...

    def sample(
        self, n: int, *, rng: np.random.Generator, temperature: float = 1.0
    ) -> np.ndarray: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def closed_form(model: object) -> str | None:
    """The closed form a family declares (class variable ``closed_form``), or ``None``."""
    return getattr(model, "closed_form", None)


def identifiable(model: object) -> bool:
    """Whether a family declares identifiable parameters (class variable ``identifiable``;
    default ``False``: networks are not, their weights drift along directions that change
    nothing the model does)."""
    return bool(getattr(model, "identifiable", False))


FUNCTION_PROBES = 512
"""Probe points of the function-space distance, at most (fewer for large samples, below)."""
FUNCTION_VALUES = 1 << 18
"""At most this many scalars a generation (probes times the values each gives): images get fewer
probes, so the state the loop checkpoints stays a few megabytes."""


def function_space(model: object) -> bool:
    """Whether a family declares a function-space embedding (class variable ``function_space``
    with methods ``function_probes(rng, held_out, samples)`` and ``function_values(probes)``):
    what the model *does* on fixed probes, flat and Euclidean, so distances between generations
    mean something even when its parameters are not identifiable."""
    return bool(getattr(model, "function_space", False))


def probe_points(
    rng: np.random.Generator, held_out: np.ndarray, samples: np.ndarray, values_each: int = 1
) -> np.ndarray:
    """Fixed probes for a function-space distance: half real held-out points, half
    generation-0 samples (where the model is fitted and where it puts mass), drawn without
    replacement; :data:`FUNCTION_PROBES` in all, fewer when each probe gives ``values_each``
    scalars (at most :data:`FUNCTION_VALUES` scalars, at least 16 probes)."""
    total = max(16, min(FUNCTION_PROBES, FUNCTION_VALUES // max(int(values_each), 1)))
    parts = []
    for source, want in ((held_out, total - total // 2), (samples, total // 2)):
        source = np.asarray(source)
        take = min(want, len(source))
        parts.append(source[np.sort(rng.choice(len(source), take, replace=False))])
    return np.concatenate(parts)


MAX_LOG_RATIO = math.log(100.0)
"""Density ratios to generation 0 above 100 count as 100 in :func:`density_values` (one probe
cannot dominate the distance)."""


def density_probes(
    model: Any, rng: np.random.Generator, held_out: np.ndarray, samples: np.ndarray
) -> dict[str, np.ndarray]:
    """Probe points (:func:`probe_points`) and ``model``'s log-density at them, as generation 0
    leaves them for :func:`density_values`."""
    x = probe_points(rng, held_out, samples)
    return {"x": x, "log_p0": np.asarray(model.log_prob(x), dtype=np.float64)}


def density_values(model: Any, probes: dict[str, np.ndarray]) -> np.ndarray:
    """``sqrt(p(x_i) / p_0(x_i) / m)`` at the m probes: Hellinger coordinates of a density.

    Why not log p itself: a probe in a tail, where log p is tens of nats below the bulk, moves
    by tens of nats between fine-tunings that change nothing else, and one such probe is the
    whole root mean square. With probes drawn from generation 0 (its samples, and real data it
    was fitted to), ``sum_i (v_i - w_i)^2`` estimates ``2 H^2`` (the squared Hellinger distance,
    at most 2) between the two generations; near the fixed point ``v`` is linear in log p, so the
    contraction factor is the same. Ratios above 100 count as 100 (:data:`MAX_LOG_RATIO`).
    """
    log_ratio = np.asarray(model.log_prob(probes["x"]), dtype=np.float64) - probes["log_p0"]
    return np.exp(0.5 * np.minimum(log_ratio, MAX_LOG_RATIO)) / math.sqrt(len(log_ratio))


def has_log_prob(model: object) -> bool:
    """Whether ``model`` offers an exact (or tractable) log-density."""
    return callable(getattr(model, "log_prob", None))


TEMPERATURE_SUPPORT = ("exact", "approximate", "none")


def temperature_support(model: object) -> str:
    """How ``model`` samples at a temperature tau != 1, one meaning for every family.

    ``sample(n, temperature=tau)`` means "sample from p^(1/tau), normalised". A family says how
    well it does so in the class variable ``sampling_temperature``: ``"exact"`` (Gaussian MLE:
    covariance times tau; categorical: p^(1/tau) on its atoms), ``"approximate"`` (the documented
    approximation: mixtures and KDEs temper each component and the weights; flows, flow matching
    and diffusion scale their Gaussian noise by sqrt(tau), exact for Gaussian data) or
    ``"none"`` (it cannot, and a run at tau != 1 is refused before it starts). A model that does
    not say is ``"none"`` when its ``sample`` takes no ``temperature``, else ``"approximate"``.
    """
    declared = getattr(model, "sampling_temperature", None)
    if declared is not None:
        if declared not in TEMPERATURE_SUPPORT:
            raise InputError(f"sampling_temperature must be one of {TEMPERATURE_SUPPORT}, "
                             f"got {declared!r}")
        return declared
    return "approximate" if _takes_temperature(model) else "none"


def _takes_temperature(model: object) -> bool:
    import inspect

    try:
        params = inspect.signature(model.sample).parameters
    except (TypeError, ValueError, AttributeError):
        return True
    return "temperature" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def check_sampling_temperature(model: object, *temperatures: float) -> None:
    """Raise :class:`~autophagy.signatures.ArgumentError` (``temperature``) when a temperature
    other than 1 is asked of a model that cannot sample at one."""
    from autophagy.signatures import ArgumentError

    for tau in temperatures:
        check_temperature(tau)
        if float(tau) != 1.0 and temperature_support(model) == "none":
            raise ArgumentError(
                "temperature",
                f"model {type(model).__name__} cannot sample at a temperature (asked {tau:g}); "
                "use 1, or a family that can ('autophagy list')",
            )


def sample_at(model: Any, n: int, *, rng: np.random.Generator, temperature: float = 1.0):
    """``model.sample(n, rng=rng, temperature=temperature)``; a model whose ``sample`` takes no
    temperature is called without one at temperature 1."""
    if float(temperature) == 1.0 and not _takes_temperature(model):
        return model.sample(n, rng=rng)
    return model.sample(n, rng=rng, temperature=temperature)


