"""Theory curves to draw beside a cell's measured curves.

Why per cell: the Gaussian closed forms are expectations *given generation 0's fit* (its
covariance sets the scale of the mean's random walk), so each cell gets its own expected curve,
written to its folder with its metrics; the report averages them over seeds like the measurements.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from autophagy.policies import Policy
from autophagy.theory.gaussian import expected_gaussian_trajectory

OVERLAY_POLICIES = ("mixed", "fully_synthetic", "accumulate")
"""Policies with a closed form given generation 0 (fresh_real's fixed point is the truth)."""


def gaussian_overlay(
    model: Any,
    policy: Policy,
    *,
    n: int,
    generations: int,
    reference: dict[str, Any],
    temperature: float = 1.0,
) -> pd.DataFrame | None:
    """Expected ``cov_trace_ratio`` and ``mean_shift_sq`` per generation for a Gaussian MLE cell,
    or ``None`` when no closed form applies (another model family, policy, or no reference)."""
    from autophagy.models.gaussian import GaussianMLE

    if not isinstance(model, GaussianMLE) or policy.name not in OVERLAY_POLICIES:
        return None
    cov0 = reference.get("cov")
    if cov0 is None:
        return None
    traj = expected_gaussian_trajectory(
        n=n,
        generations=generations,
        policy=policy,
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
