"""Closed forms and Monte Carlo for self-consuming generative models (numpy/scipy only).

- :mod:`~autophagy.theory.gaussian`: exact expected moments of a Gaussian MLE retrained under each
  policy (collapse when fully synthetic, a stable fixed point with real data);
- :mod:`~autophagy.theory.kde`: expected spread of a KDE retrained on its own samples;
- :mod:`~autophagy.theory.mitigations`: accumulate-subsample and self-correction, exact for the
  Gaussian MLE;
- :mod:`~autophagy.theory.theorem`: Bertrand et al. (2024)'s stability condition and contraction
  constant, this project's tighter contraction bound, and the distance bound;
- :mod:`~autophagy.theory.simulation`: the Gaussian and KDE loops vectorised over thousands of
  seeds, to check every closed form above by simulation.

- :mod:`~autophagy.theory.mixing`: the schemes the closed forms cover, which policies declare;
- :mod:`~autophagy.theory.sampling`: the exact estimators and samplers the closed forms are
  about, shared with the model families.

Nothing here imports another part of autophagy: the theory is the bottom layer, and the
analysis layer (:mod:`autophagy.analysis`) puts it beside measurements.
"""

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
from autophagy.theory.mixing import Mixing
from autophagy.theory.simulation import (
    GaussianTrajectories,
    simulate_gaussian_loop,
    simulate_kde_loop,
)
from autophagy.theory.theorem import (
    contraction_factor,
    distance_bound,
    empirical_contraction_factor,
    max_stable_lambda,
    paper_contraction_factor,
    stability_condition,
)

__all__ = [
    "Mixing",
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
    "paper_contraction_factor",
    "resolve_policy",
    "simulate_gaussian_loop",
    "simulate_kde_loop",
    "stability_condition",
    "stationary_gaussian_ratios",
    "stationary_mean_variance",
]
