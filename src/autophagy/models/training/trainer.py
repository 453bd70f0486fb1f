"""One small training core for every torch model family (flows, flow matching, diffusion).

Why one trainer: the retraining loop compares families under the same rules. Every neural family
is trained for a *budget* of samples seen per generation (the paper counts images seen,
``num_mimg``), warm-started from the previous generation's weights *and optimizer state*
(Bertrand et al., 2024, fine-tune each generation), with the same learning-rate warm-up, gradient
clipping, EMA of the weights and divergence check. A family subclasses :class:`NeuralModel` (the
loop's protocol, in :mod:`autophagy.models.families.neural`) and only supplies a module factory and
a loss
``loss_fn(module, batch, generator) -> scalar``.

Determinism: all randomness (initial weights, minibatch order, any noise the loss draws) comes from
one ``torch.Generator`` derived from the numpy ``rng`` handed to ``fit`` (:func:`torch_generator`),
so one seed gives the same numbers, and a checkpoint (:meth:`Trainer.state_dict`) taken between
generations resumes bit-for-bit on CPU.

Batched training later: the trainable state is a plain set of tensors (module parameters, EMA copy,
optimizer moments, a step counter) and the loss a function of (module, batch, generator); nothing
lives in globals, so an executor can stack many cells' modules with ``torch.func`` and ``vmap``
the same loss.
"""

from __future__ import annotations

import collections
import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from autophagy.errors import InputError
from autophagy.models.base import DivergedError

LossFn = Callable[[nn.Module, torch.Tensor, torch.Generator], torch.Tensor]
Progress = Callable[[int, int, float], None]  # (step, total, loss)


@dataclass
class TrainConfig:
    """Optimisation settings shared by every torch family.

    Arguments:
        lr: peak learning rate of AdamW.
        batch_size: samples per step (capped at the training-set size).
        warmup: samples over which the learning rate rises linearly from 0 to ``lr``, counted
            from the last (re-)initialisation, so warm-started generations do not repeat it.
        grad_clip: maximal global gradient norm; ``None`` or 0 disables clipping.
        ema: decay of the exponential moving average of the weights (0 = off). When on,
            sampling and log-densities use the EMA weights (as EDM and most diffusion codes do).
        weight_decay: decoupled weight decay of AdamW (Loshchilov & Hutter, 2019); 0 = Adam.
        device: ``"auto"`` (cuda when available), ``"cpu"`` or ``"cuda"``.
        mixed_precision: on CUDA, run the loss (and sampling, see :meth:`Trainer.autocast`) under
            bfloat16 autocast; weights, optimizer and EMA stay float32. Ignored on CPU.
        max_loss: a loss whose absolute value exceeds this counts as diverged.
        restart_warmup: count the warm-up from the start of each :meth:`Trainer.train` call (each
            generation) instead of from the last reset: EDM's transfer learning restarts its
            learning-rate ramp at every fine-tuning run.
        reset_ema: restart the EMA from the current weights at each :meth:`Trainer.train` call
            (EDM re-initialises its EMA for every fine-tuning run); off: the EMA carries over.
        reset_optimizer: fresh AdamW moments at each :meth:`Trainer.train` call (EDM builds a
            new optimizer for every fine-tuning run); off: the moments carry over.
    """

    lr: float = 1e-3
    batch_size: int = 256
    warmup: int = 0
    grad_clip: float | None = 1.0
    ema: float = 0.0
    weight_decay: float = 0.0
    device: Literal["auto", "cpu", "cuda"] | str = "auto"
    mixed_precision: bool = True
    max_loss: float = 1e6
    restart_warmup: bool = False
    reset_ema: bool = False
    reset_optimizer: bool = False

    def __post_init__(self) -> None:
        checks = [
            ("lr", self.lr > 0, "a positive number"),
            ("batch_size", int(self.batch_size) >= 1, "a positive integer"),
            ("warmup", int(self.warmup) >= 0, "a number of samples >= 0"),
            ("ema", 0.0 <= float(self.ema) < 1.0, "a decay in [0, 1)"),
            ("grad_clip", self.grad_clip is None or float(self.grad_clip) >= 0, ">= 0 or None"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise InputError(f"{name} must be {expected}, got {getattr(self, name)!r}")
        resolve_device(self.device)


@dataclass
class TrainResult:
    """What one call of :meth:`Trainer.train` did: steps, samples seen, per-step losses."""

    steps: int
    samples: int
    losses: np.ndarray = field(repr=False)
    seconds: float = 0.0


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> cuda when available, else cpu; other names are checked and passed on."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
        raise InputError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise InputError(
            f"{device!r} was asked for but CUDA is not available on this machine; "
            "use 'auto' or 'cpu'"
        )
    return torch.device(device)


def torch_generator(rng: np.random.Generator) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from one draw of the numpy ``rng``.

    Every fit and sample call derives its own generator this way, so the numpy generator the loop
    checkpoints is the only RNG state there is.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return torch.Generator().manual_seed(int(rng.integers(2**63 - 1)))


def randn(
    shape: tuple[int, ...], generator: torch.Generator, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Standard normal noise drawn from ``generator`` and moved to ``device``.

    Drawn on the generator's device (CPU for :func:`torch_generator`), so the numbers do not
    depend on where the model runs; losses that need noise should use this.
    """
    z = torch.randn(shape, generator=generator, device=generator.device, dtype=torch.float32)
    return z.to(device)


def _seed_from(generator: torch.Generator) -> int:
    return int(torch.randint(0, 2**62, (1,), generator=generator).item())


def _clone_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in state.items()}


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


class MinibatchOrder:
    """Minibatch indices that walk through random permutations of ``n`` points, epoch by epoch
    (every point seen equally often), drawn from ``generator``: the one minibatch order of
    a
    training, alone (:meth:`Trainer.train`) or batched
    (:mod:`autophagy.models.training.batched`).

    The indices are the permutations one after another, cut into minibatches (one may straddle
    two epochs). A fresh permutation is drawn whenever fewer than ``batch_size`` points are left
    of the last ``n`` positions walked, so draws can run ahead of the walk; they stay queued
    (the numbers are those of the first version of this class, which concatenated the queue at
    every draw and so cost a copy of a growing tensor per step).
    """

    def __init__(self, n: int, batch_size: int, generator: torch.Generator, device: Any):
        self.n, self.batch_size, self.generator, self.device = n, batch_size, generator, device
        self.queue = collections.deque([torch.randperm(n, generator=generator).to(device)])
        self.head = 0  # indices of queue[0] already handed out
        self.pos = 0  # indices handed out since the last draw

    def next(self) -> torch.Tensor:
        if self.pos + self.batch_size > self.n:
            self.queue.append(torch.randperm(self.n, generator=self.generator).to(self.device))
            self.pos = 0
        parts, need = [], self.batch_size
        while need > 0:
            first = self.queue[0]
            part = first[self.head : self.head + need]
            parts.append(part)
            need -= len(part)
            self.head += len(part)
            if self.head == len(first):
                self.queue.popleft()
                self.head = 0
        self.pos += self.batch_size
        return parts[0] if len(parts) == 1 else torch.cat(parts)


class Trainer:
    """Owns a torch module, its AdamW optimizer, its EMA copy and a step counter.

    ``build()`` makes a fresh module; :meth:`reset` calls it with the global torch RNG seeded from
    the given generator (inside ``torch.random.fork_rng``, so the global state is restored), which
    makes the initial weights a function of the cell's seed alone. Modules are built on CPU and then
    moved, so initial weights do not depend on the device.

    Warm start (the paper's fine-tuning) is simply calling :meth:`train` again: weights, AdamW
    moments, EMA and the step counter carry over. A cold start is :meth:`reset` then :meth:`train`.

    Example:
        >>> trainer = Trainer(lambda: nn.Linear(2, 1), TrainConfig(device="cpu"))
        >>> g = torch.Generator().manual_seed(0)
        >>> trainer.reset(g)
        >>> loss = lambda m, x, g: m(x).pow(2).mean()
        >>> trainer.train(torch.randn(100, 2), 1000, g, loss).steps
        10
    """

    def __init__(self, build: Callable[[], nn.Module], config: TrainConfig | None = None):
        self.build = build
        self.config = config if config is not None else TrainConfig()
        self.device = resolve_device(self.config.device)
        self.module: nn.Module | None = None
        self.ema_module: nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.step = 0
        self.fit_start = 0

    # ------------------------------------------------------------------ setup
    @property
    def initialized(self) -> bool:
        """Whether a module exists (after :meth:`reset` or :meth:`load_state_dict`)."""
        return self.module is not None

    @property
    def eval_module(self) -> nn.Module:
        """The weights to sample with: the EMA copy when EMA is on, else the raw module."""
        if self.module is None:
            raise RuntimeError("the trainer has no module yet: call reset() or fit() first")
        if self.config.ema > 0:
            if self.ema_module is None:
                self.ema_module = self._make_ema(self.module)
            return self.ema_module
        return self.module

    def _build_seeded(self, seed: int) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = self.build()
        return module.to(device=self.device, dtype=torch.float32)

    @staticmethod
    def _make_ema(module: nn.Module) -> nn.Module:
        ema = copy.deepcopy(module)
        ema.eval()
        ema.requires_grad_(False)
        return ema

    def _make_optimizer(self, module: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.AdamW(
            module.parameters(), lr=self.config.lr, weight_decay=float(self.config.weight_decay)
        )

    def autocast(self) -> torch.autocast:
        """bfloat16 autocast on CUDA when ``mixed_precision`` is on; a no-op context otherwise."""
        on = self.device.type == "cuda" and bool(self.config.mixed_precision)
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=on)

    def reset(self, generator: torch.Generator) -> None:
        """Fresh weights drawn from ``generator``, a fresh optimizer, EMA = weights, step = 0."""
        self.device = resolve_device(self.config.device)
        self.module = self._build_seeded(_seed_from(generator))
        self.optimizer = self._make_optimizer(self.module)
        self.ema_module = self._make_ema(self.module) if self.config.ema > 0 else None
        self.step = 0
        self.fit_start = 0

    # --------------------------------------------------------------- training
    def lr_at(self, step: int) -> float:
        """Learning rate of step ``step`` (0-based since the last reset): linear warm-up, counted
        from the reset or, with ``restart_warmup``, from the start of the current fit."""
        warmup = int(self.config.warmup)
        if warmup <= 0:
            return float(self.config.lr)
        since = step - (self.fit_start if self.config.restart_warmup else 0)
        seen = (since + 1) * int(self.config.batch_size)
        return float(self.config.lr) * min(1.0, seen / warmup)

    def begin_fit(self) -> None:
        """Mark the start of a fit (a generation): where a restarted warm-up counts from, and
        where ``reset_ema`` / ``reset_optimizer`` restart the EMA / the AdamW moments."""
        self.fit_start = self.step
        if self.config.reset_ema and self.config.ema > 0 and self.module is not None:
            self.ema_module = self._make_ema(self.module)
        if self.config.reset_optimizer and self.module is not None:
            self.optimizer = self._make_optimizer(self.module)

    @torch.no_grad()
    def _update_ema(self) -> None:
        assert self.module is not None
        decay = float(self.config.ema)
        if decay <= 0:
            return
        if self.ema_module is None:
            self.ema_module = self._make_ema(self.module)
        for p_ema, p in zip(self.ema_module.parameters(), self.module.parameters(), strict=True):
            p_ema.lerp_(p.detach(), 1.0 - decay)  # ema <- decay * ema + (1 - decay) * p
        for b_ema, b in zip(self.ema_module.buffers(), self.module.buffers(), strict=True):
            b_ema.copy_(b)

    def train(
        self,
        data: torch.Tensor,
        budget: int,
        generator: torch.Generator,
        loss_fn: LossFn,
        progress: Progress | None = None,
    ) -> TrainResult:
        """Run ``ceil(budget / batch_size)`` AdamW steps on minibatches of ``data``.

        ``data`` is moved to the device once and stays there for the whole call. Minibatches walk
        through random permutations of ``data`` drawn from ``generator`` (epoch by epoch, so every
        point is seen equally often). Each step sets the warm-up learning rate, computes the loss
        (under :meth:`autocast`), checks it, clips the gradient norm, steps AdamW and updates the
        EMA.
        ``progress(step, total, loss)`` is called about 20 times (and after the last step).

        Raises:
            DivergedError: the loss is NaN/inf or above ``max_loss`` in absolute value, or the
                gradient norm is not finite.
        """
        if self.module is None or self.optimizer is None:
            self.reset(generator)
        assert self.module is not None and self.optimizer is not None
        self.begin_fit()
        cfg = self.config
        data = torch.as_tensor(data, dtype=torch.float32, device=self.device)
        n = int(data.shape[0])
        if n == 0:
            raise InputError("cannot train on an empty data set")
        bs = min(int(cfg.batch_size), n)
        total = math.ceil(int(budget) / bs) if budget > 0 else 0
        losses = np.empty(total, dtype=np.float64)
        params = [p for p in self.module.parameters() if p.requires_grad]
        clip = float(cfg.grad_clip) if cfg.grad_clip else 0.0
        t0 = time.perf_counter()
        self.module.train()
        order = MinibatchOrder(n, bs, generator, self.device)
        every = max(1, total // 20)
        for i in range(total):
            batch = data[order.next()]
            lr = self.lr_at(self.step)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            with self.autocast():
                loss = loss_fn(self.module, batch, generator).float()
            value = float(loss.detach())
            if not math.isfinite(value) or abs(value) > cfg.max_loss:
                raise DivergedError(
                    f"loss diverged at step {self.step} (value {value!r}, max_loss "
                    f"{cfg.max_loss:g}); try a lower lr or a stronger grad_clip",
                    step=self.step,
                    loss=value,
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip > 0:
                norm = torch.nn.utils.clip_grad_norm_(params, clip)
                if not torch.isfinite(norm):
                    raise DivergedError(
                        f"gradient norm is not finite at step {self.step}",
                        step=self.step,
                        loss=value,
                    )
            self.optimizer.step()
            self.step += 1
            self._update_ema()
            losses[i] = value
            if progress is not None and ((i + 1) % every == 0 or i + 1 == total):
                progress(i + 1, total, value)
        return TrainResult(total, total * bs, losses, time.perf_counter() - t0)

    # ---------------------------------------------------------- checkpointing
    def state_dict(self) -> dict[str, Any]:
        """Module, EMA and optimizer states and the step counter, as CPU tensors and values."""
        if self.module is None or self.optimizer is None:
            return {"initialized": False}
        return {
            "initialized": True,
            "step": int(self.step),
            "module": _clone_state(self.module.state_dict()),
            "ema": None if self.ema_module is None else _clone_state(self.ema_module.state_dict()),
            "optimizer": _to_cpu(self.optimizer.state_dict()),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore exactly what :meth:`state_dict` saved (builds the module when needed)."""
        if not state.get("initialized", False):
            self.module = self.ema_module = self.optimizer = None
            self.step = 0
            return
        self.device = resolve_device(self.config.device)
        if self.module is None:
            self.module = self._build_seeded(0)
        self.module.load_state_dict(state["module"])
        self.optimizer = self._make_optimizer(self.module)
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("ema") is not None:
            self.ema_module = self._make_ema(self.module)
            self.ema_module.load_state_dict(state["ema"])
        else:
            self.ema_module = None
        self.step = int(state["step"])
