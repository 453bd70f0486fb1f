"""Closed forms and Monte Carlo for self-consuming generative models (numpy/scipy only).

- :mod:`~autophagy.theory.gaussian`: exact expected moments of a Gaussian MLE retrained under each
  policy (collapse when fully synthetic, a stable fixed point with real data);
- :mod:`~autophagy.theory.kde`: expected spread of a KDE retrained on its own samples;
- :mod:`~autophagy.theory.stability`: Bertrand et al. (2024)'s stability condition, contraction
  factor and distance bound;
- :mod:`~autophagy.theory.simulation`: the Gaussian and KDE loops vectorised over thousands of
  seeds, to check every closed form above by simulation.

The simulation names load on first use: they import :mod:`autophagy.models`, whose families pull
in scikit-learn, and the closed forms should not pay for that.
"""

from typing import Any

from autophagy.theory.gaussian import (
    GAUSSIAN_POLICIES,
    ExpectedGaussianTrajectory,
    c4,
    expected_gaussian_trajectory,
    expected_gaussian_trajectory_from_truth,
    expected_std_ratio,
    logdet_drift,
    logdet_step_variance,
    mixed_mean_contraction,
    resolve_policy,
    stationary_gaussian_ratios,
    stationary_mean_variance,
)
from autophagy.theory.kde import expected_kde_variance, kde_stationary_variance
from autophagy.theory.stability import (
    contraction_factor,
    distance_bound,
    empirical_contraction_factor,
    max_stable_lambda,
    stability_condition,
)

__all__ = [
    "GAUSSIAN_POLICIES",
    "ExpectedGaussianTrajectory",
    "GaussianTrajectories",
    "c4",
    "contraction_factor",
    "distance_bound",
    "empirical_contraction_factor",
    "expected_gaussian_trajectory",
    "expected_gaussian_trajectory_from_truth",
    "expected_kde_variance",
    "expected_std_ratio",
    "kde_stationary_variance",
    "logdet_drift",
    "logdet_step_variance",
    "max_stable_lambda",
    "mixed_mean_contraction",
    "resolve_policy",
    "simulate_gaussian_loop",
    "simulate_kde_loop",
    "stability_condition",
    "stationary_gaussian_ratios",
    "stationary_mean_variance",
]

_LAZY = {"GaussianTrajectories", "simulate_gaussian_loop", "simulate_kde_loop"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from autophagy.theory import simulation

        return getattr(simulation, name)
    raise AttributeError(f"module 'autophagy.theory' has no attribute {name!r}")
