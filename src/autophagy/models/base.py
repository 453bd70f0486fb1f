"""The one interface every model family implements.

Why a protocol and not a base class: a researcher's own model should plug into the loop by having
the right methods, with no import from autophagy. The shape follows scikit-learn (hyper-parameters
in ``__init__``, ``fit`` returns ``self``, randomness passed in) so that closed-form models
(Gaussian MLE, KDE) and neural ones (flows, diffusion: trained for a ``budget`` of samples seen,
warm-started from the previous generation's weights) share one loop.
"""

from __future__ import annotations

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


