"""Diffusion models on points and images: DDPM (with DDPM and DDIM samplers) and EDM.

As in NVlabs/edm and k-diffusion, the science is a handful of pure functions of tensors, each with
the paper's equations in view: schedules (:func:`ddpm_schedule`, :func:`karras_sigmas`), losses
(:func:`ddpm_loss`, :func:`edm_loss`), the EDM preconditioning (:func:`edm_denoise`) and samplers
(:func:`ddpm_sample`, :func:`ddim_sample`, :func:`edm_sample`). They take the network (or any
denoiser) as an argument, so they can be tested against closed forms with the exact denoiser of a
Gaussian plugged in, no training involved. :class:`DDPM` and :class:`EDM` wire them to the loop's
protocol through :class:`~autophagy.models.families.neural.NetworkModel`; the network is a
swappable part
(:mod:`autophagy.models.nets`: an MLP for points, a UNet for images).

Temperature: samplers scale every Gaussian draw (the initial noise and, for ancestral/DDIM with
eta > 0, the per-step noise) by sqrt(temperature). For Gaussian data and a deterministic sampler
this is exactly p^(1/temperature); otherwise an approximation.

References:
    | Denoising Diffusion Probabilistic Models (Ho et al., NeurIPS 2020)
    | https://arxiv.org/abs/2006.11239
    | Improved Denoising Diffusion Probabilistic Models (Nichol & Dhariwal, 2021) (cosine schedule)
    | Denoising Diffusion Implicit Models (Song et al., ICLR 2021) https://arxiv.org/abs/2010.02502
    | Elucidating the Design Space of Diffusion-Based Generative Models (Karras et al., NeurIPS
    | 2022) https://arxiv.org/abs/2206.00364
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from autophagy.errors import InputError
from autophagy.models.families.neural import NetworkModel
from autophagy.models.training.trainer import randn
from autophagy.signatures import ArgumentError

Net = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # net(x, c) with c of shape (n,)
Noise = Callable[[tuple[int, ...]], torch.Tensor]  # draws standard normal noise of a shape
SCHEDULES = ("linear", "cosine")


def _b(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Broadcast per-sample values (n,) against a batch ``x`` of shape (n, ...); or (K, n)
    against (K, n, ...), K cells' minibatches stacked
    (:mod:`autophagy.models.training.batched`)."""
    return v.reshape(*v.shape, *([1] * (x.ndim - v.ndim)))


# ----------------------------------------------------------------------------------------- DDPM
def ddpm_schedule(schedule: str = "linear", timesteps: int = 1000) -> torch.Tensor:
    """Noise levels beta_1..beta_T (float64): ``"linear"`` from 1e-4 to 0.02 for T = 1000 (Ho et
    al., 2020; both ends times 1000 / T otherwise) or ``"cosine"`` (Nichol & Dhariwal, 2021,
    s = 0.008); both capped at 0.999."""
    T = int(timesteps)
    if T < 1:
        raise InputError(f"timesteps must be >= 1, got {timesteps!r}")
    if schedule == "linear":
        scale = 1000 / T
        return torch.linspace(scale * 1e-4, scale * 0.02, T, dtype=torch.float64).clamp(max=0.999)
    if schedule == "cosine":
        s = 0.008
        f = torch.cos((torch.arange(T + 1, dtype=torch.float64) / T + s) / (1 + s) * math.pi / 2)
        abar = f**2 / f[0] ** 2
        return (1 - abar[1:] / abar[:-1]).clamp(max=0.999)
    raise InputError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")


def ddpm_loss(
    net: Net, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, alphas_bar: torch.Tensor
) -> torch.Tensor:
    """The simple epsilon-prediction loss of Ho et al. (2020, eq. 14), t in 0..T-1 (step t + 1):

    x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps,   loss = mean |eps - eps_net(x_t, t / T)|^2.

    ``t`` of shape (n,) gives the loss; (K, n), with ``x0`` and ``eps`` (K, n, ...), the K
    losses of K stacked minibatches (each one's numbers as alone).
    """
    abar = alphas_bar.to(x0)[t]
    xt = _b(abar.sqrt(), x0) * x0 + _b((1 - abar).sqrt(), x0) * eps
    c = t.to(x0.dtype) / len(alphas_bar)
    return (net(xt, c) - eps).pow(2).flatten(t.ndim).sum(-1).mean(-1)


@torch.no_grad()
def ddim_sample(
    eps_net: Net,
    x: torch.Tensor,
    betas: torch.Tensor,
    noise: Noise,
    *,
    steps: int | None = None,
    eta: float = 0.0,
    clip: float | None = None,
    skip: str = "uniform",
) -> torch.Tensor:
    """Generalised DDIM sampler (Song et al., 2021, eq. 12) from x_T = ``x`` on ``steps`` evenly
    spaced steps (all T when ``None``; ``skip="quadratic"``: steps ``int((i sqrt(0.8 T) / (S -
    1))^2)``, dense at low noise, as DDIM's official code and ddpm-torch's ``--skip-schedule
    quadratic`` that Bertrand et al. sample with). With abar the cumulative products of 1 - beta:

    x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t),
    x_s = sqrt(abar_s) x0_hat + sqrt(1 - abar_s - sigma^2) eps + sigma z,
    sigma = eta sqrt((1 - abar_s) / (1 - abar_t)) sqrt(1 - abar_t / abar_s).

    ``eta = 0`` is the deterministic DDIM; ``eta = 1`` on all T steps is DDPM ancestral sampling
    with the posterior variance beta~ (Ho et al., 2020). ``clip`` clamps x0_hat to [-clip, clip]
    (and re-derives eps from it): schedules that end at abar_T ~ 0, such as the cosine one,
    otherwise amplify the network's error on the first steps by 1 / sqrt(abar_T).
    """
    T = len(betas)
    abar = torch.cumprod(1 - betas, 0)
    n_steps = T if steps is None else int(steps)
    if not 1 <= n_steps <= T:
        raise InputError(f"steps must be in 1..{T}, got {steps!r}")
    if skip == "quadratic":
        ramp = torch.linspace(0, math.sqrt(0.8 * T), n_steps, dtype=torch.float64) ** 2
        ts = ramp.long().flip(0).tolist()
    elif skip == "uniform":
        ts = torch.linspace(T - 1, 0, n_steps, dtype=torch.float64).round().long().tolist()
    else:
        raise InputError(f"skip must be 'uniform' or 'quadratic', got {skip!r}")
    ones = torch.ones(len(x), device=x.device, dtype=x.dtype)
    for i, t in enumerate(ts):
        a_t = abar[t]
        a_s = abar[ts[i + 1]] if i + 1 < len(ts) else torch.tensor(1.0, dtype=torch.float64)
        eps = eps_net(x, ones * (t / T))
        x0 = (x - (1 - a_t).sqrt().item() * eps) / a_t.sqrt().item()
        if clip is not None:
            x0 = x0.clamp(-clip, clip)
            eps = (x - a_t.sqrt().item() * x0) / (1 - a_t).sqrt().item()
        sigma = eta * ((1 - a_s) / (1 - a_t) * (1 - a_t / a_s)).clamp(min=0).sqrt().item()
        x = a_s.sqrt().item() * x0 + math.sqrt(max(float(1 - a_s) - sigma**2, 0.0)) * eps
        if sigma > 0:
            x = x + sigma * noise(tuple(x.shape))
    return x


@torch.no_grad()
def ddpm_sample(eps_net: Net, x: torch.Tensor, betas: torch.Tensor, noise: Noise) -> torch.Tensor:
    """DDPM ancestral sampling (Ho et al., 2020, Algorithm 2) from x_T = ``x``, all T steps:

    x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t) + sqrt(beta_t) z   (t > 1),

    with the variance sigma_t^2 = beta_t (exact for unit-variance data, which standardised data
    have).
    """
    T = len(betas)
    abar = torch.cumprod(1 - betas, 0)
    ones = torch.ones(len(x), device=x.device, dtype=x.dtype)
    for t in range(T - 1, -1, -1):
        beta, a_t = float(betas[t]), float(abar[t])
        eps = eps_net(x, ones * (t / T))
        x = (x - beta / math.sqrt(1 - a_t) * eps) / math.sqrt(1 - beta)
        if t > 0:
            x = x + math.sqrt(beta) * noise(tuple(x.shape))
    return x


# ------------------------------------------------------------------------------------------ EDM
def edm_denoise(net: Net, x: torch.Tensor, sigma: torch.Tensor, sigma_data: float) -> torch.Tensor:
    """The EDM preconditioned denoiser D(x; sigma) (Karras et al., 2022, eq. 7 and Table 1):

    D = c_skip x + c_out F(c_in x, c_noise),  c_skip = sd^2 / (sigma^2 + sd^2),
    c_out = sigma sd / sqrt(sigma^2 + sd^2),  c_in = 1 / sqrt(sigma^2 + sd^2),
    c_noise = log(sigma) / 4.

    ``sigma`` has one level per sample: shape (n,) for ``x`` (n, ...), or (K, n) for K stacked
    minibatches (K, n, ...).
    """
    sigma = sigma.to(x.dtype)
    s = _b(sigma, x)
    sd2 = sigma_data**2
    c_skip = sd2 / (s**2 + sd2)
    c_out = s * sigma_data / (s**2 + sd2).sqrt()
    c_in = 1 / (s**2 + sd2).sqrt()
    return c_skip * x + c_out * net(c_in * x, sigma.log() / 4)


def edm_loss(
    net: Net,
    y: torch.Tensor,
    z: torch.Tensor,
    eps: torch.Tensor,
    *,
    sigma_data: float = 1.0,
    p_mean: float = -1.2,
    p_std: float = 1.2,
) -> torch.Tensor:
    """EDM training loss (Karras et al., 2022, eq. 8 and Table 1): ln sigma ~ N(P_mean, P_std^2)
    (``sigma = exp(p_mean + p_std z)``), weight lambda = (sigma^2 + sd^2) / (sigma sd)^2,
    loss = mean lambda |D(y + sigma eps; sigma) - y|^2. ``z`` of shape (K, n) with ``y`` and
    ``eps`` (K, n, ...) gives the K losses of K stacked minibatches."""
    sigma = (p_mean + p_std * z).exp()
    weight = (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2
    d = edm_denoise(net, y + _b(sigma, y) * eps, sigma, sigma_data)
    return (weight * (d - y).pow(2).flatten(z.ndim).sum(-1)).mean(-1)


def karras_sigmas(
    steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0
) -> torch.Tensor:
    """The EDM time steps (Karras et al., 2022, eq. 5), ``steps`` levels from sigma_max down to
    sigma_min, equally spaced in sigma^(1/rho), then a final 0 (float64, length steps + 1)."""
    if int(steps) < 1:
        raise InputError(f"steps must be >= 1, got {steps!r}")
    i = torch.arange(int(steps), dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    ramp = i / max(int(steps) - 1, 1)
    sigmas = (hi + ramp * (lo - hi)) ** rho
    return torch.cat([sigmas, torch.zeros(1, dtype=torch.float64)])


@torch.no_grad()
def edm_sample(
    denoiser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    sigmas: torch.Tensor,
) -> torch.Tensor:
    """EDM deterministic sampler (Karras et al., 2022, Algorithm 1): Heun's 2nd-order method on
    the probability-flow ODE dx/dsigma = (x - D(x; sigma)) / sigma, Euler on the last step to 0.

    ``x`` is the initial noise already scaled by ``sigmas[0]``; ``denoiser(x, sigma)`` takes
    sigma of shape (n,).
    """
    ones = torch.ones(len(x), device=x.device, dtype=x.dtype)
    for s_cur, s_next in zip(sigmas[:-1].tolist(), sigmas[1:].tolist(), strict=True):
        d = (x - denoiser(x, s_cur * ones)) / s_cur
        x_next = x + (s_next - s_cur) * d
        if s_next > 0:
            d_next = (x_next - denoiser(x_next, s_next * ones)) / s_next
            x_next = x + (s_next - s_cur) * 0.5 * (d + d_next)
        x = x_next
    return x


# -------------------------------------------------------------------------------------- models
class DDPM(NetworkModel):
    """Denoising diffusion (Ho et al., 2020) with epsilon prediction, DDPM or DDIM sampling.

    Arguments:
        schedule: ``"linear"`` or ``"cosine"`` beta schedule (:func:`ddpm_schedule`).
        timesteps: T, the number of diffusion steps of training.
        sampler: ``"ddpm"`` (ancestral, all T steps) or ``"ddim"`` (Song et al., 2021).
        steps: DDIM steps (``None``: all T); ignored by ``"ddpm"``.
        eta: DDIM stochasticity (0: deterministic).
        clip: DDIM clamps its estimate of the (standardised) data to [-clip, clip] (``None``:
            off), needed with the cosine schedule (see :func:`ddim_sample`); 1 for images.
        skip: DDIM's steps, ``"uniform"`` or ``"quadratic"`` (see :func:`ddim_sample`).
        **options: the network (``network="unet"`` for images) and training options of
            :class:`~autophagy.models.families.neural.NetworkModel`.

    Example:
        >>> model = DDPM(sampler="ddim", steps=50).fit(x, rng=np.random.default_rng(0))
    """

    def __init__(
        self,
        schedule: Literal["linear", "cosine"] = "linear",
        timesteps: int = 1000,
        sampler: Literal["ddpm", "ddim"] = "ddpm",
        steps: int | None = 100,
        eta: float = 0.0,
        clip: float | None = 5.0,
        skip: Literal["uniform", "quadratic"] = "uniform",
        **options: Any,
    ):
        super().__init__(**options)
        self.schedule, self.timesteps, self.sampler, self.steps, self.eta = (
            schedule, timesteps, sampler, steps, eta)
        self.clip, self.skip = clip, skip

    def _validate(self) -> None:
        ddpm_schedule(self.schedule, 1)
        if int(self.timesteps) < 1:
            raise InputError(f"timesteps must be >= 1, got {self.timesteps!r}")
        if self.sampler not in ("ddpm", "ddim"):
            raise InputError(f"sampler must be 'ddpm' or 'ddim', got {self.sampler!r}")
        if getattr(self, "skip", "uniform") not in ("uniform", "quadratic"):
            raise InputError(f"skip must be 'uniform' or 'quadratic', got {self.skip!r}")
        if self.sampler == "ddim" and self.steps is not None and not (
            1 <= int(self.steps) <= int(self.timesteps)
        ):
            raise InputError(f"steps must be in 1..timesteps={self.timesteps}, got {self.steps!r}")

    @property
    def betas_(self) -> torch.Tensor:
        return ddpm_schedule(self.schedule, int(self.timesteps))

    def _pretrained_module(self, path: Path, shape: tuple[int, ...]) -> nn.Module:
        """A diffusers pipeline folder's scheduler must be this model's schedule."""
        check_diffusers_schedule(path, self.betas_)
        return super()._pretrained_module(path, shape)

    def _draw(self, batch: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """The loss's randomness for one minibatch: steps t and noise eps (outside any vmap)."""
        T = int(self.timesteps)
        t = torch.randint(0, T, (len(batch),), generator=generator).to(batch.device)
        return {"t": t, "eps": randn(tuple(batch.shape), generator, batch.device)}

    def _loss_given(self, module: nn.Module, batch: torch.Tensor, drawn: dict[str, torch.Tensor]):
        """:func:`ddpm_loss` of one minibatch given its draws: a pure function (of K stacked
        minibatches too, see :meth:`_loss_stacked`)."""
        return ddpm_loss(module, batch, drawn["t"], drawn["eps"],
                         torch.cumprod(1 - self.betas_, 0))

    def _loss(self, module: nn.Module, batch: torch.Tensor, generator: torch.Generator):
        return self._loss_given(module, batch, self._draw(batch, generator))

    function_space = True

    def _prediction(self, module: nn.Module, batch: torch.Tensor, drawn: dict[str, torch.Tensor]):
        """The noise prediction eps_net(x_t, t / T) at the loss's (x_t, t) for data ``batch``."""
        abar = torch.cumprod(1 - self.betas_, 0).to(batch)[drawn["t"]]
        xt = _b(abar.sqrt(), batch) * batch + _b((1 - abar).sqrt(), batch) * drawn["eps"]
        return module(xt, drawn["t"].to(batch.dtype) / int(self.timesteps))

    def _sample(
        self, module: nn.Module, n: int, generator: torch.Generator, temperature: float
    ) -> torch.Tensor:
        """DDPM ancestral sampling or DDIM from x_T ~ N(0, temperature I)."""
        noise = _noise(generator, temperature, self._trainer().device)
        x = noise((n, *self.shape_))
        if self.sampler == "ddpm":
            return ddpm_sample(module, x, self.betas_, noise)
        clip = None if self.clip is None else float(self.clip)
        return ddim_sample(module, x, self.betas_, noise, steps=self.steps, eta=float(self.eta),
                           clip=clip, skip=str(getattr(self, "skip", "uniform")))


class EDM(NetworkModel):
    """Diffusion in the EDM formulation (Karras et al., 2022): preconditioned denoiser,
    log-normal noise levels in training, Heun sampler on the Karras (rho = 7) schedule.

    Points are standardised, so ``sigma_data = 1`` by default; images in [-1, 1] use the
    paper's 0.5. With the ``"unet"``, ``c_noise = log(sigma) / 4`` is its timestep (times
    ``time_scale``); the ``"songunet"`` (EDM's own DDPM++ network) takes ``c_noise`` as is, and
    ``init_checkpoint`` may then be an NVlabs/edm pickle (``edm-cifar10-32x32-uncond-vp.pkl``):
    its EMA network is read without running its code (:mod:`autophagy.models.nets.edm_pickle`).

    Arguments:
        sigma_data, p_mean, p_std: preconditioning and training noise distribution
            (:func:`edm_denoise`, :func:`edm_loss`).
        steps, sigma_min, sigma_max, rho: the sampler's schedule (:func:`karras_sigmas`);
            ``2 * steps - 1`` network evaluations.
        **options: the network (``network="unet"`` for images) and training options of
            :class:`~autophagy.models.families.neural.NetworkModel`.

    Example:
        >>> model = EDM(steps=18).fit(x, rng=np.random.default_rng(0))
    """

    def __init__(
        self,
        sigma_data: float = 1.0,
        p_mean: float = -1.2,
        p_std: float = 1.2,
        steps: int = 18,
        sigma_min: float = 0.002,
        sigma_max: float = 80.0,
        rho: float = 7.0,
        **options: Any,
    ):
        super().__init__(**options)
        self.sigma_data, self.p_mean, self.p_std = sigma_data, p_mean, p_std
        self.steps, self.sigma_min, self.sigma_max, self.rho = steps, sigma_min, sigma_max, rho

    def _validate(self) -> None:
        if not float(self.sigma_data) > 0:
            raise InputError(f"sigma_data must be positive, got {self.sigma_data!r}")
        if not 0 < float(self.sigma_min) < float(self.sigma_max):
            raise InputError(f"need 0 < sigma_min < sigma_max, got {self.sigma_min!r}, "
                             f"{self.sigma_max!r}")
        karras_sigmas(int(self.steps))

    def _pretrained_module(self, path: Path, shape: tuple[int, ...]) -> nn.Module:
        """An NVlabs/edm pickle (``.pkl``): its EMA network, read without running its code."""
        if path.is_dir():
            return super()._pretrained_module(path, shape)
        if self.network != "songunet":
            raise ArgumentError("network", f"{str(path)!r} holds EDM's SongUNet; set "
                                "network: songunet to load it")
        from autophagy.models.nets.edm_pickle import load_songunet

        return load_songunet(path, shape, sigma_data=float(self.sigma_data),
                             options=self.network_options)

    def _draw(self, batch: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """The loss's randomness for one minibatch: the normal z of the noise levels and the
        noise eps (outside any vmap)."""
        z = randn((len(batch),), generator, batch.device)
        return {"z": z, "eps": randn(tuple(batch.shape), generator, batch.device)}

    def _loss_given(self, module: nn.Module, batch: torch.Tensor, drawn: dict[str, torch.Tensor]):
        """:func:`edm_loss` of one minibatch given its draws: a pure function (of K stacked
        minibatches too, see :meth:`_loss_stacked`)."""
        return edm_loss(module, batch, drawn["z"], drawn["eps"], sigma_data=float(self.sigma_data),
                        p_mean=float(self.p_mean), p_std=float(self.p_std))

    def _loss(self, module: nn.Module, batch: torch.Tensor, generator: torch.Generator):
        return self._loss_given(module, batch, self._draw(batch, generator))

    function_space = True

    def _prediction(self, module: nn.Module, batch: torch.Tensor, drawn: dict[str, torch.Tensor]):
        """The denoiser D(y + sigma eps; sigma) at the loss's noise levels for data ``batch``."""
        sigma = (float(self.p_mean) + float(self.p_std) * drawn["z"]).exp()
        return edm_denoise(module, batch + _b(sigma, batch) * drawn["eps"], sigma,
                           float(self.sigma_data))

    def _sample(
        self, module: nn.Module, n: int, generator: torch.Generator, temperature: float
    ) -> torch.Tensor:
        """x ~ N(0, temperature sigma_max^2 I) integrated down to sigma = 0."""
        noise = _noise(generator, temperature, self._trainer().device)
        sigmas = karras_sigmas(int(self.steps), float(self.sigma_min), float(self.sigma_max),
                               float(self.rho))
        sd = float(self.sigma_data)
        x = noise((n, *self.shape_)) * float(sigmas[0])
        return edm_sample(lambda y, s: edm_denoise(module, y, s, sd), x, sigmas)


def check_diffusers_schedule(path: Path, betas: torch.Tensor) -> None:
    """Raise when the ``scheduler/scheduler_config.json`` beside a diffusers UNet (a pipeline
    folder such as ``google/ddpm-cifar10-32``) trained on another noise schedule than ``betas``."""
    import json

    config = path / "scheduler" / "scheduler_config.json"
    if not config.is_file():
        return
    c = json.loads(config.read_text())
    T, kind = int(c.get("num_train_timesteps", 1000)), c.get("beta_schedule", "linear")
    lo, hi = float(c.get("beta_start", 1e-4)), float(c.get("beta_end", 0.02))
    theirs = torch.linspace(lo, hi, T, dtype=torch.float64) if kind == "linear" else None
    if theirs is None or len(theirs) != len(betas) or not torch.allclose(theirs, betas):
        raise ArgumentError("init_checkpoint", f"{str(path)!r} was trained with {T} steps of a "
                            f"{kind} schedule ({lo:g} to {hi:g}); the model has timesteps="
                            f"{len(betas)} and another schedule")


def _noise(generator: torch.Generator, temperature: float, device: torch.device) -> Noise:
    """Standard normal draws times sqrt(temperature), from ``generator``, on ``device``."""
    scale = math.sqrt(temperature)
    return lambda shape: scale * randn(shape, generator, device)
