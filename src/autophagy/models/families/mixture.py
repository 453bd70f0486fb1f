"""Gaussian mixture fitted by EM (scikit-learn), warm-started from the previous generation.

scikit-learn does the EM; we keep only what the loop needs on top of it: warm start from the
previous means, weights and precisions (sklearn's own ``warm_start``), sampling with our RNG and
a temperature, and a state dict of plain arrays for checkpoints.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as _SkGMM

from autophagy.errors import InputError
from autophagy.theory.sampling import check_temperature, safe_cholesky


class GaussianMixture:
    """A mixture of ``n_components`` full-covariance Gaussians.

    ``max_iter`` bounds the EM iterations of one generation (the "budget" of a closed-form-ish
    model); ``reg_covar`` keeps components from collapsing onto single points, which fully
    synthetic retraining otherwise does.

    Example:
        >>> gmm = GaussianMixture(n_components=8).fit(x, rng=np.random.default_rng(0))
    """

    identifiable = True  # up to the order of its components, matched at each measurement

    def __init__(
        self,
        n_components: int = 8,
        covariance_type: str = "full",
        max_iter: int = 200,
        reg_covar: float = 1e-6,
        n_init: int = 1,
        tol: float = 1e-4,
    ):
        if int(n_components) < 1:
            raise InputError(f"n_components must be >= 1, got {n_components}")
        self.n_components = int(n_components)
        self.covariance_type = covariance_type
        self.max_iter = int(max_iter)
        self.reg_covar = float(reg_covar)
        self.n_init = int(n_init)
        self.tol = float(tol)
        self.gmm_: _SkGMM | None = None

    def _new_estimator(self, seed: int) -> _SkGMM:
        return _SkGMM(
            n_components=self.n_components,
            covariance_type=self.covariance_type,
            max_iter=self.max_iter,
            reg_covar=self.reg_covar,
            n_init=self.n_init,
            tol=self.tol,
            random_state=seed,
        )

    def fit(self, data, *, warm_start=False, budget=None, rng) -> GaussianMixture:
        x = np.asarray(data, dtype=np.float64).reshape(len(data), -1)
        if x.shape[0] < self.n_components:
            raise InputError(
                f"n_components={self.n_components} needs at least that many training points, "
                f"got {x.shape[0]}"
            )
        seed = int(
            rng.integers(2**31 - 1)
        )  # drawn either way: warm and cold runs use the RNG alike
        if warm_start and self.gmm_ is not None:
            gmm = self.gmm_.set_params(warm_start=True, random_state=seed)
        else:
            gmm = self._new_estimator(seed)
        if budget is not None:
            gmm.set_params(max_iter=max(1, int(budget)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gmm.fit(x)
        self.gmm_ = gmm
        return self

    @property
    def weights_(self) -> np.ndarray:
        return self.gmm_.weights_

    @property
    def means_(self) -> np.ndarray:
        return self.gmm_.means_

    @property
    def covariances_(self) -> np.ndarray:
        """Full covariances, whatever the covariance type, shape (k, d, d)."""
        g = self.gmm_
        d = g.means_.shape[1]
        c = g.covariances_
        if g.covariance_type == "full":
            return c
        if g.covariance_type == "tied":
            return np.broadcast_to(c, (self.n_components, d, d))
        if g.covariance_type == "diag":
            return np.einsum("ki,ij->kij", c, np.eye(d))
        return c[:, None, None] * np.eye(d)

    def sample(self, n, *, rng, temperature=1.0) -> np.ndarray:
        """Draw with our RNG (sklearn's ``sample`` takes only its own seed).

        Temperature tau tempers each component (covariance times tau) and the weights
        (proportional to w ** (1 / tau)): exact for well-separated components.
        """
        t = check_temperature(temperature)
        w = self.weights_ ** (1.0 / t)
        w = w / w.sum()
        counts = rng.multinomial(int(n), w)
        chol = safe_cholesky(self.covariances_)
        out = np.empty((int(n), self.means_.shape[1]))
        start = 0
        for k, c in enumerate(counts):
            z = rng.standard_normal((c, self.means_.shape[1]))
            out[start : start + c] = self.means_[k] + np.sqrt(t) * z @ chol[k].T
            start += c
        return out[rng.permutation(int(n))]

    def log_prob(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        return self.gmm_.score_samples(x)

    def state_dict(self) -> dict[str, Any]:
        g = self.gmm_
        return {
            "weights": g.weights_.copy(),
            "means": g.means_.copy(),
            "covariances": np.asarray(g.covariances_).copy(),
            "precisions_cholesky": np.asarray(g.precisions_cholesky_).copy(),
            "converged": bool(g.converged_),
            "n_iter": int(g.n_iter_),
            "lower_bound": float(g.lower_bound_),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        g = self._new_estimator(0)
        g.weights_ = np.asarray(state["weights"])
        g.means_ = np.asarray(state["means"])
        g.covariances_ = np.asarray(state["covariances"])
        g.precisions_cholesky_ = np.asarray(state["precisions_cholesky"])
        g.precisions_ = _precisions(g.precisions_cholesky_, self.covariance_type)
        g.converged_ = state["converged"]
        g.n_iter_ = state["n_iter"]
        g.lower_bound_ = state["lower_bound"]
        g.n_features_in_ = g.means_.shape[1]
        self.gmm_ = g


def _precisions(prec_chol: np.ndarray, covariance_type: str) -> np.ndarray:
    if covariance_type == "full":
        return np.einsum("kij,klj->kil", prec_chol, prec_chol)
    if covariance_type == "tied":
        return prec_chol @ prec_chol.T
    return prec_chol**2
