"""Normalizing flows on points (zuko NSF and MAF), trained by maximum likelihood.

The model family of Bertrand et al. (2024)'s 2-D experiments: a flow is retrained generation
after generation on real data mixed with its own samples, warm-started from the previous weights.
Flows give an exact ``log_prob``, so the held-out NLL can be tracked next to sample-based metrics.

The flow layers come from zuko (Rozet et al.); this module only adds the loop's protocol:
budgets of samples seen, warm start, a fixed data standardisation, temperature sampling and
exact checkpoints, all from :class:`autophagy.models.families.neural.NeuralModel`.

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

from autophagy.errors import InputError
from autophagy.models.base import density_probes, density_values
from autophagy.models.families.neural import NeuralModel
from autophagy.models.training.trainer import randn

_FLOWS = ("nsf", "maf")
_CHUNK = 65536


def flow_nll(module: nn.Module, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mean negative log-likelihood of ``batch`` under the zuko flow ``module`` (the MLE loss)."""
    return -module().log_prob(batch.reshape(len(batch), -1)).mean()


def _softmax_bounded(x: torch.Tensor) -> torch.Tensor:
    """``softmax(x, dim=-1)`` for logits known to lie in a small interval: exp / sum, no shift."""
    e = x.exp()
    return e / e.sum(dim=-1, keepdim=True)


class RationalQuadraticSpline(zuko.transforms.MonotonicRQSTransform):
    """zuko's monotonic rational-quadratic spline, its bin softmax written out as exp / sum.

    Why: PyTorch's CPU softmax over a last dimension of a few bins costs about 150 ns per row,
    several times the exp and sum it stands for (forward and backward), and it was the largest
    kernel of a batched NSF step (``benchmarks/batched_cells.py``). zuko squashes the logits
    into (-|log slope| / 2, |log slope| / 2) before the softmax (|x| < 3.5 at the default
    slope), so exp cannot overflow and softmax's max shift is not needed. Everything else is
    zuko's (same parameters, same state-dict keys): the same function up to float rounding.
    """

    def __init__(self, widths, heights, derivatives, bound: float = 5.0, slope: float = 1e-3,
                 **kwargs: Any) -> None:
        zuko.transforms.Transform.__init__(self, **kwargs)
        log_slope = math.log(slope)
        widths = widths / (1 + abs(2 * widths / log_slope))
        heights = heights / (1 + abs(2 * heights / log_slope))
        derivatives = derivatives / (1 + abs(derivatives / log_slope))
        widths = torch.nn.functional.pad(_softmax_bounded(widths), (1, 0), value=0)
        heights = torch.nn.functional.pad(_softmax_bounded(heights), (1, 0), value=0)
        derivatives = torch.nn.functional.pad(derivatives, (1, 1), value=0)
        self.horizontal = bound * (2 * torch.cumsum(widths, dim=-1) - 1)
        self.vertical = bound * (2 * torch.cumsum(heights, dim=-1) - 1)
        self.derivatives = torch.exp(derivatives)


def build_flow(
    flow: str, features: int, transforms: int, hidden_features: Sequence[int], bins: int
) -> zuko.flows.Flow:
    """A zuko NSF (rational-quadratic splines on [-5, 5], :class:`RationalQuadraticSpline`) or
    MAF (affine) on ``features`` dims."""
    hidden = tuple(int(h) for h in hidden_features)
    if flow == "nsf":  # zuko.flows.NSF with our spline: the same modules and state-dict keys
        return zuko.flows.MAF(
            features=features, transforms=transforms, hidden_features=hidden,
            univariate=RationalQuadraticSpline, shapes=[(bins,), (bins,), (bins - 1,)],
        )
    if flow == "maf":
        return zuko.flows.MAF(features=features, transforms=transforms, hidden_features=hidden)
    raise InputError(f"flow must be one of {_FLOWS}, got {flow!r}")


class NormalizingFlow(NeuralModel):
    """A normalizing flow fitted by maximum likelihood, warm-startable across generations.

    ``fit`` minimises -log p on the data for a budget of samples seen: ``initial_budget`` when
    training from scratch (generation 0), ``budget`` when fine-tuning (``warm_start=True``, as in
    the paper), unless ``fit`` is given a budget. Weights, AdamW moments and EMA carry over between
    warm-started generations.

    The flow models the standardised data u = (x - shift) / scale (fixed at the first fit, see
    :class:`~autophagy.models.families.neural.NeuralModel`), so ``log_prob`` adds the Jacobian:
    log p(x) = log p_u(u) - sum(log scale). NSF splines act on [-5, 5] only, so standardising
    matters for data of other scales.

    Temperature: ``sample(n, temperature=tau)`` draws the base noise from N(0, tau I) and pushes it
    through the inverse flow. For a Gaussian (an affine flow) that is exactly p^(1/tau); for a
    non-linear flow it is the usual approximation (reduced-temperature sampling, as in Glow);
    tau = 1 is exact sampling.

    Arguments:
        flow: ``"nsf"`` (Durkan et al., 2019) or ``"maf"`` (Papamakarios et al., 2017).
        transforms: number of autoregressive transforms.
        hidden_features: widths of each transform's masked MLP.
        bins: spline bins (NSF only).
        budget, initial_budget, mixed_precision, **options: training, device and scaler options
            of :class:`autophagy.models.families.neural.NeuralModel` (budgets in samples seen; mixed
            precision off by default: a bfloat16 log-density is too coarse for maximum
            likelihood).

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
        budget: int = 8192,
        initial_budget: int | None = 256_000,
        mixed_precision: bool = False,
        **options: Any,
    ):
        super().__init__(budget=budget, initial_budget=initial_budget,
                         mixed_precision=mixed_precision, **options)
        self.flow = flow
        self.transforms = transforms
        self.hidden_features = hidden_features
        self.bins = bins

    def _validate(self) -> None:
        if self.flow not in _FLOWS:
            raise InputError(f"flow must be one of {_FLOWS}, got {self.flow!r}")
        if int(self.transforms) < 1:
            raise InputError(f"transforms must be >= 1, got {self.transforms!r}")
        if self.flow == "nsf" and int(self.bins) < 2:
            raise InputError(f"bins must be >= 2 for an NSF, got {self.bins!r}")

    def _make_module(self, shape: tuple[int, ...]) -> nn.Module:
        features = math.prod(shape)
        return build_flow(
            self.flow, features, int(self.transforms), self.hidden_features, int(self.bins)
        )

    batchable = True  # maximum likelihood draws no noise: cells train as one batch

    def _loss(self, module: nn.Module, batch: torch.Tensor, generator: torch.Generator):
        return flow_nll(module, batch, generator)

    @staticmethod
    def _loss_stacked(module: nn.Module, batch: torch.Tensor, drawn: Any) -> torch.Tensor:
        """The K cells' :func:`flow_nll` at once: ``module`` is K flows stacked
        (:func:`~autophagy.models.training.batched.stack_linear`; zuko's flows take any leading
        batch
        dimensions), ``batch`` has shape (K, n, ...)."""
        return -module().log_prob(batch.flatten(2)).mean(dim=1)

    @property
    def features_(self) -> int:
        """Number of scalar features the flow models."""
        return math.prod(self.shape_)

    @torch.no_grad()
    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """Exact log-density of each row of ``x`` (change of variables through the flow)."""
        module = self.eval_module
        u = self._to_model_space(x).reshape(len(x), -1)
        log_det = float(np.log(self.scale_).sum())
        out = [module().log_prob(u[i : i + _CHUNK]).double().cpu().numpy()
               for i in range(0, len(u), _CHUNK)]
        return (np.concatenate(out) if out else np.empty(0)) - log_det

    function_space = True

    def function_probes(
        self, rng: np.random.Generator, held_out: np.ndarray, samples: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Probe points (real held-out, generation-0 samples) and this model's log-density
        there: :func:`~autophagy.models.base.density_probes`."""
        return density_probes(self, rng, held_out, samples)

    def function_values(self, probes: dict[str, np.ndarray]) -> np.ndarray:
        """Square roots of the density ratio to generation 0 at the probes:
        :func:`~autophagy.models.base.density_values`."""
        return density_values(self, probes)

    def _sample(
        self, module: nn.Module, n: int, generator: torch.Generator, temperature: float
    ) -> torch.Tensor:
        """Base noise N(0, temperature * I) through the inverse flow."""
        z = randn((n, self.features_), generator, self._trainer().device) * math.sqrt(temperature)
        return module().transform.inv(z).reshape((n, *self.shape_))
