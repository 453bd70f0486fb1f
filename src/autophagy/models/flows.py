"""Normalizing flows on points (zuko NSF and MAF), trained by maximum likelihood.

The model family of Bertrand et al. (2024)'s 2-D experiments: a flow is retrained generation
after generation on real data mixed with its own samples, warm-started from the previous weights.
Flows give an exact ``log_prob``, so the held-out NLL can be tracked next to sample-based metrics.

The flow layers come from zuko (Rozet et al.); this module only adds the loop's protocol:
budgets of samples seen, warm start, a fixed data standardisation, temperature sampling and
exact checkpoints. Training goes through :class:`autophagy.models.training.Trainer`.

References:
    | Neural Spline Flows (Durkan et al., 2019) https://arxiv.org/abs/1906.04032
    | Masked Autoregressive Flow for Density Estimation (Papamakarios et al., 2017)
    | https://arxiv.org/abs/1705.07057
    | On the Stability of Iterative Retraining of Generative Models on their own Data
    | (Bertrand et al., ICLR 2024) https://arxiv.org/abs/2310.00429
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
import zuko
from torch import nn

from autophagy.models.base import check_temperature
from autophagy.models.training import (
    DivergedError,
    TrainConfig,
    Trainer,
    TrainResult,
    torch_generator,
)

_FLOWS = ("nsf", "maf")
_CHUNK = 65536


def flow_nll(module: nn.Module, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mean negative log-likelihood of ``batch`` under the zuko flow ``module`` (the MLE loss)."""
    return -module().log_prob(batch).mean()


def build_flow(
    flow: str,
    features: int,
    transforms: int,
    hidden_features: Sequence[int],
    bins: int,
) -> zuko.flows.Flow:
    """A zuko NSF (rational-quadratic splines on [-5, 5]) or MAF (affine) on ``features`` dims."""
    hidden = tuple(int(h) for h in hidden_features)
    if flow == "nsf":
        return zuko.flows.NSF(
            features=features, transforms=transforms, hidden_features=hidden, bins=bins
        )
    if flow == "maf":
        return zuko.flows.MAF(features=features, transforms=transforms, hidden_features=hidden)
    raise ValueError(f"flow must be one of {_FLOWS}, got {flow!r}")


class NormalizingFlow:
    """A normalizing flow fitted by maximum likelihood, warm-startable across generations.

    ``fit`` minimises -log p on the data for a budget of samples seen: ``initial_budget`` when
    training from scratch (generation 0), ``budget`` when fine-tuning (``warm_start=True``, as in
    the paper), unless ``fit`` is given a budget. Weights, AdamW moments and EMA carry over between
    warm-started generations.

    Standardisation (``standardize=True``): the per-feature mean and standard deviation of the data
    of the *first* (cold) fit are stored (``shift_``, ``scale_``) and kept fixed afterwards, so a
    warm-started flow keeps working in the same coordinates. The flow models u = (x - shift) / scale
    and ``log_prob`` adds the Jacobian: log p(x) = log p_u(u) - sum(log scale). NSF splines act on
    [-5, 5] only, so standardising matters for data of other scales.

    Temperature: ``sample(n, temperature=tau)`` draws the base noise from N(0, tau I) and pushes it
    through the inverse flow. For a Gaussian (an affine flow) that is exactly p^(1/tau); for a
    non-linear flow it is the usual approximation (reduced-temperature sampling, as in Glow);
    tau = 1 is exact sampling.

    Arguments:
        flow: ``"nsf"`` (Durkan et al., 2019) or ``"maf"`` (Papamakarios et al., 2017).
        transforms: number of autoregressive transforms.
        hidden_features: widths of each transform's masked MLP.
        bins: spline bins (NSF only).
        lr, batch_size, budget, initial_budget, warmup, grad_clip, ema, weight_decay, device:
            see :class:`autophagy.models.training.TrainConfig` (budgets in samples seen).
        standardize: fit a fixed per-feature affine standardisation at the first fit.

    Example:
        >>> model = NormalizingFlow("nsf").fit(x, rng=np.random.default_rng(0))
        >>> model.sample(100, rng=np.random.default_rng(1)).shape
        (100, 2)
        >>> model.log_prob(x[:5]).shape
        (5,)
    """

    def __init__(
        self,
        flow: Literal["nsf", "maf"] = "nsf",
        transforms: int = 3,
        hidden_features: Sequence[int] = (64, 64),
        bins: int = 8,
        *,
        lr: float = 1e-3,
        batch_size: int = 256,
        budget: int = 8192,
        initial_budget: int | None = 256_000,
        warmup: int = 0,
        grad_clip: float | None = 1.0,
        ema: float = 0.0,
        weight_decay: float = 0.0,
        device: str = "auto",
        standardize: bool = True,
    ):
        self.flow = flow
        self.transforms = transforms
        self.hidden_features = hidden_features
        self.bins = bins
        self.lr = lr
        self.batch_size = batch_size
        self.budget = budget
        self.initial_budget = initial_budget
        self.warmup = warmup
        self.grad_clip = grad_clip
        self.ema = ema
        self.weight_decay = weight_decay
        self.device = device
        self.standardize = standardize

    # ---------------------------------------------------------------- helpers
    def _config(self) -> TrainConfig:
        return TrainConfig(
            lr=self.lr,
            batch_size=self.batch_size,
            budget=self.budget,
            initial_budget=self.initial_budget,
            warmup=self.warmup,
            grad_clip=self.grad_clip,
            ema=self.ema,
            weight_decay=self.weight_decay,
            device=self.device,
        )

    def _validate(self) -> None:
        if self.flow not in _FLOWS:
            raise ValueError(f"flow must be one of {_FLOWS}, got {self.flow!r}")
        if int(self.transforms) < 1:
            raise ValueError(f"transforms must be >= 1, got {self.transforms!r}")
        if self.flow == "nsf" and int(self.bins) < 2:
            raise ValueError(f"bins must be >= 2 for an NSF, got {self.bins!r}")

    def _make_trainer(self, features: int) -> Trainer:
        flow, transforms, hidden, bins = self.flow, int(self.transforms), self.hidden_features, int(
            self.bins
        )

        def build() -> nn.Module:
            return build_flow(flow, features, transforms, hidden, bins)

        return Trainer(build, self._config())

    def _check_fitted(self) -> Trainer:
        trainer = getattr(self, "trainer_", None)
        if trainer is None or not trainer.initialized:
            raise RuntimeError("this NormalizingFlow is not fitted yet: call fit() first")
        return trainer

    def _flat(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return x.reshape(len(x), -1)

    # ------------------------------------------------------------------- API
    @property
    def features_(self) -> int:
        """Number of scalar features the flow models."""
        return int(np.prod(self.shape_))

    def fit(
        self,
        data: np.ndarray,
        *,
        warm_start: bool = False,
        budget: int | None = None,
        rng: np.random.Generator,
    ) -> NormalizingFlow:
        """Maximum-likelihood training for ``budget`` samples seen (see the class docstring).

        A warm start on an unfitted model is a cold start. Raises :class:`DivergedError` when the
        loss stops being finite.
        """
        self._validate()
        x = self._flat(data)
        if not np.all(np.isfinite(x)):
            raise ValueError("data contains NaN or inf")
        g = torch_generator(rng)
        trainer = getattr(self, "trainer_", None)
        cold = not warm_start or trainer is None or not trainer.initialized
        if not cold and x.shape[1] != self.features_:
            raise ValueError(f"data has {x.shape[1]} features, the flow has {self.features_}")
        if cold:
            self.shape_ = tuple(int(s) for s in np.shape(data)[1:])
            if self.standardize:
                shift = x.mean(axis=0)
                scale = np.maximum(x.std(axis=0), 1e-6)
            else:
                shift, scale = np.zeros(x.shape[1]), np.ones(x.shape[1])
            self.shift_ = shift.astype(np.float32)
            self.scale_ = scale.astype(np.float32)
            trainer = self._make_trainer(x.shape[1])
            trainer.reset(g)
            self.trainer_ = trainer
        else:
            trainer.config = self._config()
        assert trainer is not None
        n_seen = trainer.config.budget_for(cold) if budget is None else int(budget)
        u = torch.as_tensor((x - self.shift_) / self.scale_, dtype=torch.float32)
        self.last_train_: TrainResult = trainer.train(u, n_seen, g, flow_nll)
        return self

    @torch.no_grad()
    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """Exact log-density of each row of ``x`` (change of variables through the flow)."""
        trainer = self._check_fitted()
        module = trainer.eval_module
        u = (self._flat(x) - self.shift_) / self.scale_
        log_det = float(np.log(self.scale_.astype(np.float64)).sum())
        out = []
        for start in range(0, len(u), _CHUNK):
            chunk = torch.as_tensor(u[start : start + _CHUNK], dtype=torch.float32)
            lp = module().log_prob(chunk.to(trainer.device))
            out.append(lp.double().cpu().numpy())
        if not out:
            return np.empty(0)
        return np.concatenate(out) - log_det

    @torch.no_grad()
    def sample(
        self, n: int, *, rng: np.random.Generator, temperature: float = 1.0
    ) -> np.ndarray:
        """``n`` samples: base noise N(0, temperature * I) through the inverse flow."""
        trainer = self._check_fitted()
        tau = check_temperature(temperature)
        g = torch_generator(rng)
        module = trainer.eval_module
        n = int(n)
        z = torch.randn((n, self.features_), generator=g, dtype=torch.float32) * math.sqrt(tau)
        out = []
        for start in range(0, n, _CHUNK):
            u = module().transform.inv(z[start : start + _CHUNK].to(trainer.device))
            out.append(u.double().cpu().numpy())
        u = np.concatenate(out) if out else np.empty((0, self.features_))
        if not np.all(np.isfinite(u)):
            raise DivergedError("the flow produced non-finite samples")
        x = u * self.scale_.astype(np.float64) + self.shift_.astype(np.float64)
        return x.reshape((n, *self.shape_))

    # --------------------------------------------------------- checkpointing
    def state_dict(self) -> dict[str, Any]:
        """Standardisation, sample shape and the trainer's state (weights, EMA, AdamW, step)."""
        trainer = getattr(self, "trainer_", None)
        if trainer is None or not trainer.initialized:
            return {"fitted": False}
        return {
            "fitted": True,
            "shape": list(self.shape_),
            "shift": self.shift_.copy(),
            "scale": self.scale_.copy(),
            "trainer": trainer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the constructor arguments must match the saved model's."""
        if not state.get("fitted", False):
            self.trainer_ = None
            return
        self._validate()
        self.shape_ = tuple(int(s) for s in state["shape"])
        self.shift_ = np.asarray(state["shift"], dtype=np.float32).copy()
        self.scale_ = np.asarray(state["scale"], dtype=np.float32).copy()
        trainer = self._make_trainer(self.features_)
        trainer.load_state_dict(state["trainer"])
        self.trainer_ = trainer
