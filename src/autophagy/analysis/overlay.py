"""Theory curves to draw beside a cell's measured curves.

Why per cell: the closed forms are expectations *given generation 0's fit* (the Gaussian's
covariance sets the scale of the mean's random walk; the regression's design and first error set
its error's), so each cell gets its own expected curve, written to its folder with its metrics;
the report averages them over seeds like the measurements.

Nothing here matches names: a model family declares the closed form it has (``closed_form``
class attribute) and a policy the scheme it follows (:meth:`~autophagy.policies.Policy.mixing`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from autophagy.theory.gaussian import expected_gaussian_trajectory
from autophagy.theory.mixing import Mixing
from autophagy.theory.regression import design_error_constant, regression_error_terms


def gaussian_overlay(
    model: Any,
    policy: Any,
    *,
    n: int,
    generations: int,
    reference: dict[str, Any],
    temperature: float = 1.0,
    **_: Any,
) -> pd.DataFrame | None:
    """Expected ``cov_trace_ratio`` and ``mean_shift_sq`` per generation for a Gaussian MLE cell,
    or ``None`` when no closed form applies (another family or scheme, or no reference)."""
    mixing = policy.mixing()
    cov0 = reference.get("cov")
    if getattr(model, "closed_form", None) != "gaussian" or cov0 is None:
        return None
    if mixing is None:  # a closed form of its own (accumulate_subsample, self_correcting)
        own = getattr(policy, "gaussian_trajectory", None)
        traj = own and own(n=n, generations=generations, cov0=np.asarray(cov0),
                           unbiased=model.unbiased, temperature=temperature)
        if traj is None:
            return None
    elif mixing.anchor == "fresh":  # fresh_real's fixed point is the truth
        return None
    else:
        traj = expected_gaussian_trajectory(
            n=n,
            generations=generations,
            policy=mixing,
            cov0=np.asarray(cov0),
            unbiased=model.unbiased,
            temperature=temperature,
        )
    gens = np.arange(generations + 1)
    return pd.concat(
        [
            pd.DataFrame({"generation": gens, "metric": name, "value": values})
            for name, values in (
                ("cov_trace_ratio", traj.cov_trace_ratio),
                ("mean_shift_sq", traj.mean_shift_sq),
            )
        ],
        ignore_index=True,
    )


def regression_overlay(model: Any, policy: Any, *, dataset: Any, generations: int,
                       metrics: pd.DataFrame, temperature: float = 1.0,
                       **_: Any) -> pd.DataFrame | None:
    """Expected ``test_error`` per generation of a ``linear_regression`` cell given its real
    sample (its design and its measured generation-0 ``test_error`` in ``metrics``), as a frame
    of generation, metric, value; ``None`` where no closed form applies (another family, a
    noise the model estimates, a scheme or lambda without one)."""
    mixing: Mixing | None = policy.mixing()
    if (getattr(model, "closed_form", None) != "regression" or mixing is None
            or model.noise_std is None):
        return None
    first = metrics[(metrics["metric"] == "test_error") & (metrics["generation"] == 0)]
    if first.empty:
        return None
    first_error = float(first["value"].iloc[0])
    lam = mixing.ratio if mixing.anchor != "none" else 1.0
    try:
        a, b = regression_error_terms(mixing.scheme, generations, lam)
    except ValueError:
        return None
    x = np.asarray(dataset.train, dtype=np.float64)[:, :-1]
    cov = dataset.params.get("design_cov")
    c = design_error_constant(x, model.noise_std, cov) * float(temperature)
    return pd.DataFrame({"generation": np.arange(generations + 1), "metric": "test_error",
                         "value": a * float(first_error) + b * c})


OVERLAYS = {"gaussian": gaussian_overlay, "regression": regression_overlay}
"""The overlay of each closed form a family can declare (``closed_form`` class attribute)."""


def theory_overlay(model: Any, policy: Any, *, dataset: Any, generations: int,
                   reference: dict[str, Any], metrics: pd.DataFrame,
                   temperature: float = 1.0) -> pd.DataFrame | None:
    """The expected curves of a finished cell, or ``None`` where its family declares no closed
    form or its policy no scheme the closed form covers."""
    overlay = OVERLAYS.get(getattr(model, "closed_form", None))
    if overlay is None:
        return None
    return overlay(model, policy, n=len(dataset.train), dataset=dataset,
                   generations=generations, reference=reference, metrics=metrics,
                   temperature=temperature)
