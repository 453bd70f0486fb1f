"""Conditional flow matching with independent or minibatch optimal-transport couplings.

Flow matching (Lipman et al., 2023) learns a velocity field v(x, t) whose ODE carries noise x0 ~
N(0, I) at t = 0 to data x1 at t = 1, by regressing v on the velocity of a simple conditional path:
the straight line x_t = (1 - t) x0 + t x1 (+ sigma * noise), whose velocity is x1 - x0. With the
*independent* coupling, (x0, x1) are drawn independently (I-CFM); with the *minibatch OT* coupling
of Tong et al. (2024) (also Pooladian et al., 2023) each batch of noise is paired with the batch of
data by an exact optimal-transport plan for the squared Euclidean cost, which straightens the
paths and makes the ODE cheaper to integrate.

The equations are small pure functions (:func:`couple`, :func:`cfm_loss`, :func:`integrate`);
:class:`FlowMatching` wires them to the loop's protocol through
:class:`~autophagy.models.families.neural.NetworkModel`; the network is an MLP for points or a UNet
(``network="unet"``) for images, the setting of the paper's CIFAR-10 runs with OT-CFM.

References:
    | Flow Matching for Generative Modeling (Lipman et al., ICLR 2023)
    | https://arxiv.org/abs/2210.02747
    | Improving and generalizing flow-based generative models with minibatch optimal transport
    | (Tong et al., TMLR 2024) https://arxiv.org/abs/2302.00482
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import ot
import torch
from torch import nn
from torchdiffeq import odeint

from autophagy.errors import InputError
from autophagy.models.families.neural import NetworkModel
from autophagy.models.training.trainer import randn

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # v(x, t), t of shape (n,)
COUPLINGS = ("independent", "ot")
SOLVERS = ("euler", "heun", "dopri5")


def ot_permutation(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """Indices ``j`` such that (x0[i], x1[j[i]]) is an exact OT pairing (squared Euclidean cost).

    Solves the discrete OT problem between the two uniform empirical measures with the network
    simplex (POT ``ot.emd``); for equal sizes an optimal plan is a permutation matrix.
    """
    a = x0.detach().reshape(len(x0), -1).double().cpu().numpy()
    b = x1.detach().reshape(len(x1), -1).double().cpu().numpy()
    if len(a) != len(b):
        raise InputError(f"OT pairing needs batches of equal size, got {len(a)} and {len(b)}")
    cost = ot.dist(a, b, metric="sqeuclidean")
    plan = ot.emd(np.full(len(a), 1 / len(a)), np.full(len(b), 1 / len(b)), cost)
    return torch.as_tensor(plan.argmax(axis=1), device=x1.device)


def couple(
    x0: torch.Tensor, x1: torch.Tensor, coupling: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pair a batch of noise ``x0`` with a batch of data ``x1``: ``"independent"`` or ``"ot"``."""
    if coupling == "independent":
        return x0, x1
    if coupling == "ot":
        return x0, x1[ot_permutation(x0, x1)]
    raise InputError(f"coupling must be one of {COUPLINGS}, got {coupling!r}")


def cfm_loss(
    velocity: Velocity,
    x0: torch.Tensor,
    x1: torch.Tensor,
    t: torch.Tensor,
    eps: torch.Tensor,
    sigma: float = 0.0,
) -> torch.Tensor:
    """Conditional flow matching loss on the straight path (Lipman et al., 2023, eq. 23):

    x_t = (1 - t) x0 + t x1 + sigma * eps,   u_t = x1 - x0,   loss = mean |v(x_t, t) - u_t|^2.

    ``t`` of shape (n,) gives the loss; (K, n), with the others (K, n, ...), the K losses of K
    stacked minibatches (each one's numbers as alone).
    """
    tt = t.reshape(*t.shape, *([1] * (x1.ndim - t.ndim)))
    xt = (1 - tt) * x0 + tt * x1 + sigma * eps
    target = x1 - x0
    return (velocity(xt, t) - target).pow(2).flatten(t.ndim).sum(-1).mean(-1)


@torch.no_grad()
def integrate(
    velocity: Velocity,
    x0: torch.Tensor,
    *,
    solver: str = "heun",
    steps: int = 100,
    atol: float = 1e-5,
    rtol: float = 1e-5,
) -> torch.Tensor:
    """Solve dx/dt = v(x, t) from t = 0 to 1: fixed-step ``euler`` or ``heun`` (``steps`` steps,
    2 evaluations each for Heun), or adaptive ``dopri5`` (torchdiffeq, ``atol``/``rtol``)."""
    if solver not in SOLVERS:
        raise InputError(f"solver must be one of {SOLVERS}, got {solver!r}")
    ones = torch.ones(len(x0), device=x0.device, dtype=x0.dtype)
    if solver == "dopri5":
        times = torch.tensor([0.0, 1.0], device=x0.device, dtype=x0.dtype)
        return odeint(lambda t, x: velocity(x, t * ones), x0, times, method="dopri5",
                      atol=atol, rtol=rtol)[-1]
    if int(steps) < 1:
        raise InputError(f"steps must be >= 1, got {steps!r}")
    x, h = x0, 1.0 / int(steps)
    for i in range(int(steps)):
        t = i * h
        d = velocity(x, t * ones)
        if solver == "euler":
            x = x + h * d
        else:
            x_next = x + h * d
            x = x + 0.5 * h * (d + velocity(x_next, (t + h) * ones))
    return x


class FlowMatching(NetworkModel):
    """A flow-matching model on points or images (I-CFM, or OT-CFM with ``coupling="ot"``).

    Training regresses a network velocity ``v(x, t)`` (an MLP for points, a UNet for images) on the
    straight-path target of :func:`cfm_loss`, for a budget of samples seen, warm-started across
    generations like every neural family (weights, AdamW moments, EMA). Sampling draws x0 ~ N(0,
    temperature * I) and integrates the ODE with ``solver`` (for a Gaussian the flow is linear, so
    scaling x0 is exactly p^(1/temperature); otherwise an approximation). No ``log_prob``: the
    exact likelihood needs the divergence along the ODE, which is left to later.

    Arguments:
        coupling: ``"independent"`` (Lipman et al., 2023) or ``"ot"`` (minibatch exact OT,
            Tong et al., 2024).
        sigma: width of the conditional path (0: deterministic straight lines).
        solver, steps, atol, rtol: ODE solver for sampling (see :func:`integrate`).
        **options: the network (``network``, ``hidden_features``, ``time_features``,
            ``network_options``, see :class:`~autophagy.models.families.neural.NetworkModel`) and
            the
            training options of :class:`~autophagy.models.families.neural.NeuralModel`.

    Example:
        >>> model = FlowMatching(coupling="ot").fit(x, rng=np.random.default_rng(0))
        >>> model.sample(100, rng=np.random.default_rng(1)).shape
        (100, 2)
    """

    def __init__(
        self,
        coupling: Literal["independent", "ot"] = "independent",
        sigma: float = 0.0,
        solver: Literal["euler", "heun", "dopri5"] = "heun",
        steps: int = 50,
        atol: float = 1e-5,
        rtol: float = 1e-5,
        **options: Any,
    ):
        super().__init__(**options)
        self.coupling = coupling
        self.sigma = sigma
        self.solver = solver
        self.steps = steps
        self.atol = atol
        self.rtol = rtol

    def _validate(self) -> None:
        if self.coupling not in COUPLINGS:
            raise InputError(f"coupling must be one of {COUPLINGS}, got {self.coupling!r}")
        if self.solver not in SOLVERS:
            raise InputError(f"solver must be one of {SOLVERS}, got {self.solver!r}")
        if not float(self.sigma) >= 0:
            raise InputError(f"sigma must be >= 0, got {self.sigma!r}")
        if int(self.steps) < 1:
            raise InputError(f"steps must be >= 1, got {self.steps!r}")

    def _draw(self, batch: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """The loss's randomness for one minibatch: noise x0, times t, path noise eps and, for
        OT, the pairing ``index`` (POT runs in numpy, so outside any vmap)."""
        n = len(batch)
        x0 = randn(tuple(batch.shape), generator, batch.device)
        t = torch.rand(n, generator=generator).to(batch.device)
        eps = (randn(tuple(batch.shape), generator, batch.device) if self.sigma > 0
               else torch.zeros_like(x0))
        drawn = {"x0": x0, "t": t, "eps": eps}
        if self.coupling == "ot":
            drawn["index"] = ot_permutation(x0, batch)
        return drawn

    def _loss_given(self, module: nn.Module, batch: torch.Tensor, drawn: dict[str, torch.Tensor]):
        """:func:`cfm_loss` of one minibatch given its draws: a pure function (of K stacked
        minibatches too, see :meth:`_loss_stacked`)."""
        x1, index = batch, drawn.get("index")
        if index is not None and index.ndim == 1:
            x1 = batch[index]
        elif index is not None:  # (K, n): each of K stacked minibatches its own pairing
            x1 = batch[torch.arange(len(batch), device=batch.device)[:, None], index]
        return cfm_loss(module, drawn["x0"], x1, drawn["t"], drawn["eps"], float(self.sigma))

    def _loss(self, module: nn.Module, batch: torch.Tensor, generator: torch.Generator):
        return self._loss_given(module, batch, self._draw(batch, generator))

    function_space = True

    def _prediction(self, module: nn.Module, batch: torch.Tensor, drawn: dict[str, torch.Tensor]):
        """The velocity v(x_t, t) at the loss's (x_t, t) for data ``batch`` (no OT pairing:
        the probes are fixed points, not a minibatch to couple)."""
        t = drawn["t"]
        tt = t.reshape(-1, *([1] * (batch.ndim - 1)))
        xt = (1 - tt) * drawn["x0"] + tt * batch + float(self.sigma) * drawn["eps"]
        return module(xt, t)

    def _sample(
        self, module: nn.Module, n: int, generator: torch.Generator, temperature: float
    ) -> torch.Tensor:
        """x0 ~ N(0, temperature * I) carried to t = 1 by the learned ODE."""
        x0 = randn((n, *self.shape_), generator, self._trainer().device) * math.sqrt(temperature)
        return integrate(module, x0, solver=self.solver, steps=int(self.steps),
                         atol=float(self.atol), rtol=float(self.rtol))
