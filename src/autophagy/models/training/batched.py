"""Many cells' trainings as one: stacked parameters, one gradient step for all.

Why: the cells of a grid (lambdas x seeds) of one model family share the network's shape and
the per-generation budget, so they take the same number of optimiser steps whatever their data.
Stacking their parameters turns K small steps into one wide one, which is what a CPU (and even
more a GPU) does well.

Each cell keeps everything of its own: its data and minibatch order (drawn from its own
generator exactly as :meth:`Trainer.train` draws them), its AdamW moments, its gradient clipping
norm and its EMA. The update is the single-tensor AdamW of PyTorch written on the stacked
tensors with the same operations and the same Python scalars, so on CPU a cell trained inside a
batch gets the same bits as trained alone (``tests/models/test_models_batched.py``); anything
else is float rounding. The step function is elementwise across cells, so which cells share a batch
never changes a cell's numbers either, and resume after a kill inside a batch stays exact.

A family opts in with ``batchable``. Its loss is either a function of (module, batch) that
draws no noise (the flows' maximum likelihood), or it comes in two parts: ``draw(batch,
generator)``, which draws the loss's randomness (noise, times, the OT pairing of flow matching,
POT's exact plan) from each cell's own generator, one cell after another, in the order the
unbatched loss draws it, and a pure ``loss_given(module, batch, drawn)``. The family's unbatched
loss is ``loss_given(module, batch, draw(batch, generator))``, so the two paths cannot drift
apart (flow matching, DDPM and EDM with the MLP).

Stacked modules, no vmap (every family on points): where every parameter of a network lives in
a linear layer and the network is written for any leading batch dimensions (zuko's flows are,
and so is :class:`~autophagy.models.nets.mlp.MLP` with its sinusoidal time embedding and SiLU),
the K networks become one (:func:`stack_linear`: each ``nn.Linear`` replaced by a
:class:`StackedLinear` holding the K weights) that takes inputs of shape (K, n, ...) directly,
and a family's ``loss_stacked(module, batch, drawn)`` returns the K losses (for flow matching
and diffusion, ``loss_given`` itself: their losses are written for any leading dimensions, the
draws stacked cell by cell). That is the same operations as one network on K times the data, so
the step costs little more than one cell's plus the K cells' arithmetic (vmap re-dispatches
every operation through its batching rules, which costs more than the operation on small
networks). On CPU its numbers are the bits of the cell trained alone too (``baddbmm`` computes
each matrix of the batch as ``addmm`` computes it alone; every other operation is elementwise or
reduces within a cell), which the tests check for every family. A network that does not stack
(a parameter outside a linear layer, a frozen one) falls back to ``vmap(grad(loss_given))``.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

from autophagy.errors import NotBatchable  # noqa: F401
from autophagy.models.base import DivergedError
from autophagy.models.training.trainer import LossFn, MinibatchOrder, Trainer, TrainResult

Progress = Callable[[int, int, float], None]


Draw = Callable[[torch.Tensor, torch.Generator], dict[str, torch.Tensor]]


class _Loss(nn.Module):
    """``loss_fn(module, batch, drawn)`` as a module's forward, so ``functional_call`` swaps the
    parameters for the whole computation (zuko builds its distribution lazily inside); ``drawn``
    is ``None`` for a loss that draws nothing."""

    def __init__(self, module: nn.Module, loss_fn: LossFn, given: bool):
        super().__init__()
        self.inner = module
        self.loss_fn = loss_fn
        self.given = given

    def forward(self, batch: torch.Tensor, drawn: dict[str, torch.Tensor]) -> torch.Tensor:
        given = drawn if self.given else None
        return self.loss_fn(self.inner, batch, given).float()  # type: ignore[arg-type]


def _same(values: Sequence[Any], what: str) -> Any:
    if any(v != values[0] for v in values[1:]):
        raise NotBatchable(f"the trainings differ in {what}")
    return values[0]


def check_batchable(trainers: Sequence[Trainer], datas: Sequence[torch.Tensor]) -> int:
    """The common batch size of these trainings, or :class:`NotBatchable`."""
    configs = [t.config for t in trainers]
    for field in ("lr", "batch_size", "warmup", "grad_clip", "ema", "weight_decay", "max_loss",
                  "restart_warmup", "reset_ema", "reset_optimizer"):
        _same([getattr(c, field) for c in configs], field)
    _same([t.step for t in trainers], "step count")
    _same([str(t.device) for t in trainers], "device")
    _same([tuple(d.shape[1:]) for d in datas], "sample shape")
    shapes = [[(n, tuple(p.shape)) for n, p in t.module.named_parameters()] for t in trainers]
    _same(shapes, "network shape")
    return _same([min(int(t.config.batch_size), int(d.shape[0])) for t, d in
                  zip(trainers, datas, strict=True)], "batch size (a training set is smaller)")


def _stack(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.stack([t.detach() for t in tensors])


StackedLoss = Callable[[nn.Module, torch.Tensor, dict[str, torch.Tensor] | None], torch.Tensor]


class _StackedLinearFunction(torch.autograd.Function):
    """``baddbmm(bias, x, weight^T)`` whose backward takes each cell's gradients with the
    products ``F.linear``'s backward takes alone (weight: ``grad^T x``, as ``mm_mat2_backward``
    does for a transposed weight; input: ``grad weight``), where bmm's own backward would take
    ``(x^T grad)^T``: the same numbers up to rounding, and here the same bits."""

    @staticmethod
    def forward(ctx, x, weight, bias):  # ctx first, not setup_context: apply then binds no
        ctx.save_for_backward(x, weight)  # signature (inspect costs ~50 us a call); no vmap
        ctx.has_bias = bias is not None
        if bias is None:
            return torch.bmm(x, weight.transpose(1, 2))
        return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_x = torch.bmm(grad, weight) if ctx.needs_input_grad[0] else None
        grad_w = torch.bmm(grad.transpose(1, 2), x) if ctx.needs_input_grad[1] else None
        grad_b = grad.sum(dim=1) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b


class StackedLinear(nn.Module):
    """K linear layers as one, applied to K stacked inputs of shape (K, n, in) by one
    ``baddbmm``: ``nn.Linear`` or zuko's ``MaskedLinear``, whose mask (the same in every cell:
    the flows' variable order is fixed) it keeps. Parameters keep the layer's names, with the
    cell as their first dimension."""

    def __init__(self, layers: Sequence[nn.Linear]):
        super().__init__()
        self.weight = nn.Parameter(_stack([layer.weight for layer in layers]))
        bias = layers[0].bias
        self.bias = None if bias is None else nn.Parameter(_stack([la.bias for la in layers]))
        mask = getattr(layers[0], "mask", None)
        self.register_buffer("mask", None if mask is None else mask.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight if self.mask is None else self.mask * self.weight
        return _StackedLinearFunction.apply(x, weight, self.bias)


def _plain_linear(module: nn.Module) -> bool:
    """A linear layer whose forward is ``nn.Linear``'s or zuko's masked one, nothing else."""
    from zuko.nn import MaskedLinear

    return type(module) is nn.Linear or type(module) is MaskedLinear


def stack_linear(modules: Sequence[nn.Module]) -> nn.Module | None:
    """One module standing for all of ``modules`` (same architecture): a copy of the first
    with every linear layer a :class:`StackedLinear` of theirs. ``None`` when it cannot stand
    for them: a parameter outside a linear layer, another kind of linear layer, or buffers
    that differ between the modules (a mask, an order)."""
    buffers = [dict(m.named_buffers()) for m in modules]
    if any(b.keys() != buffers[0].keys() or any(not torch.equal(v, buffers[0][k])
                                                for k, v in b.items()) for b in buffers[1:]):
        return None
    stacked = copy.deepcopy(modules[0])
    layers = [dict(m.named_modules()) for m in modules]
    for name, parent in list(stacked.named_modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                if not _plain_linear(child):
                    return None
                path = f"{name}.{child_name}" if name else child_name
                setattr(parent, child_name, StackedLinear([own[path] for own in layers]))
    if any(not isinstance(m, StackedLinear) and any(True for _ in m.parameters(recurse=False))
           for m in stacked.modules()):
        return None
    return stacked


def train_batched(
    trainers: Sequence[Trainer],
    datas: Sequence[torch.Tensor],
    budget: int,
    generators: Sequence[torch.Generator],
    loss_fn: LossFn,
    progress: Sequence[Progress | None] | None = None,
    draw: Draw | None = None,
    loss_stacked: StackedLoss | None = None,
) -> list[TrainResult | DivergedError]:
    """Train every trainer on its data for ``budget`` samples seen, as one batch.

    With ``draw``, ``loss_fn`` is the pure ``loss_fn(module, batch, drawn)`` and each step first
    calls ``draw(batch, generator)`` per cell, on its own minibatch and generator; without it,
    ``loss_fn(module, batch, None)`` must draw nothing. With ``loss_stacked`` (the K losses of
    a :func:`stack_linear` module on (K, n, ...) batches), the modules are stacked where
    :func:`stack_linear` can and vmap is not used; elsewhere ``loss_fn`` is vmapped.

    Returns, per trainer, its :class:`TrainResult` or the :class:`DivergedError` that stopped it
    (the others go on). Trainers without a module are reset from their generator first, as
    :meth:`Trainer.train` does. Raises :class:`NotBatchable` before any step if the trainings
    cannot share a batch.
    """
    for trainer, g in zip(trainers, generators, strict=True):
        if trainer.module is None or trainer.optimizer is None:
            trainer.reset(g)
        trainer.begin_fit()
    datas = [torch.as_tensor(d, dtype=torch.float32, device=t.device)
             for t, d in zip(trainers, datas, strict=True)]
    bs = check_batchable(trainers, datas)
    k, cfg, first = len(trainers), trainers[0].config, trainers[0]
    total = math.ceil(int(budget) / bs) if budget > 0 else 0
    t0 = time.perf_counter()
    modules = [t.module for t in trainers]
    names = [n for n, p in modules[0].named_parameters() if p.requires_grad]
    stacked = stack_linear(modules) if loss_stacked is not None else None
    if stacked is not None and [n for n, _ in stacked.named_parameters()] != names:
        stacked = None  # a frozen parameter: vmap handles it
    if stacked is not None:
        params = dict(stacked.named_parameters())
        buffers: dict[str, torch.Tensor] = {}
    else:
        params = {n: _stack([dict(m.named_parameters())[n] for m in modules]) for n in names}
        buffers = {n: _stack([dict(m.named_buffers())[n] for m in modules])
                   for n, _ in modules[0].named_buffers()}
    moments = _adam_moments(trainers, names)
    ema = ({n: _stack([dict(t.ema_module.named_parameters())[n] for t in trainers])
            for n in names} if cfg.ema > 0 and all(t.ema_module is not None for t in trainers)
           else None)
    template = (_Loss(copy.deepcopy(modules[0]), loss_fn, draw is not None).train()
                if stacked is None else None)  # the vmapped loss's module

    def loss(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], x: torch.Tensor,
             drawn: dict[str, torch.Tensor]):
        state = {f"inner.{n}": v for n, v in {**p, **b}.items()}
        return functional_call(template, state, (x, drawn))

    def step_stacked(p, b, x, drawn):
        values = loss_stacked(stacked, x, drawn if draw is not None else None).float()
        grads = torch.autograd.grad(values.sum(), [p[n] for n in names])
        return dict(zip(names, grads, strict=True)), values

    step = (step_stacked if stacked is not None
            else vmap(grad_and_value(loss), in_dims=(0, 0, 0, 0), randomness="error"))
    orders = [MinibatchOrder(len(d), bs, g, t.device)
              for d, g, t in zip(datas, generators, trainers, strict=True)]
    losses = np.zeros((k, total))
    errors: list[DivergedError | None] = [None] * k
    group = first.optimizer.param_groups[0]
    beta1, beta2 = group["betas"]
    clip = float(cfg.grad_clip) if cfg.grad_clip else 0.0
    every = max(1, total // 20)
    if stacked is not None:
        stacked.train()
    for i in range(total):
        rows = [d[o.next()] for d, o in zip(datas, orders, strict=True)]
        draws = ([draw(r, g) for r, g in zip(rows, generators, strict=True)] if draw is not None
                 else [{}])
        drawn = {key: torch.stack([d[key] for d in draws]) for key in draws[0]}
        batch = torch.stack(rows)
        lr = first.lr_at(first.step)
        grads, values = step(params, buffers, batch, drawn)
        values = values.detach().double().numpy()
        for j, value in enumerate(values):
            if errors[j] is None and (not math.isfinite(value) or abs(value) > cfg.max_loss):
                errors[j] = DivergedError(
                    f"loss diverged at step {first.step} (value {value!r}, max_loss "
                    f"{cfg.max_loss:g}); try a lower lr or a stronger grad_clip",
                    step=first.step, loss=float(value))
        losses[:, i] = values
        if clip > 0:
            # each cell's norm as clip_grad_norm_ takes it on CPU: one norm per parameter (the
            # kernel of torch.linalg.vector_norm, looped in C++), then the norm of those
            cells = [grads[n].unbind(0) for n in names]
            norms = torch.stack(torch._foreach_norm([c[j] for j in range(k) for c in cells]))
            total_norm = torch.linalg.vector_norm(norms.view(k, len(names)), dim=1)
            finite = torch.isfinite(total_norm).tolist()
            for j in range(k):
                if errors[j] is None and not finite[j]:
                    errors[j] = DivergedError(f"gradient norm is not finite at step {first.step}",
                                              step=first.step, loss=float(values[j]))
            coef = torch.clamp(clip / (total_norm + 1e-6), max=1.0)
            for n in names:
                grads[n].mul_(coef.view(-1, *([1] * (grads[n].dim() - 1))))
        _adamw_step(params, grads, moments, names, lr=lr, beta1=beta1, beta2=beta2,
                    eps=group["eps"], weight_decay=group["weight_decay"], step=first.step + 1)
        for t in trainers:
            t.step += 1
        if ema is not None:
            with torch.no_grad():
                torch._foreach_lerp_([ema[n] for n in names], [params[n] for n in names],
                                     1.0 - float(cfg.ema))
        for j, report in enumerate(progress or []):
            if report is not None and ((i + 1) % every == 0 or i + 1 == total):
                report(i + 1, total, float(values[j]))
    _write_back(trainers, params, buffers, moments, ema, names)
    seconds = (time.perf_counter() - t0) / max(1, k)
    return [errors[j] or TrainResult(total, total * bs, losses[j], seconds) for j in range(k)]


def _adam_moments(trainers: Sequence[Trainer], names: list[str]) -> dict[str, torch.Tensor]:
    """Stacked AdamW moments (zeros where a trainer has taken no step yet)."""
    out: dict[str, torch.Tensor] = {}
    for key in ("exp_avg", "exp_avg_sq"):
        for n in names:
            rows = []
            for t in trainers:
                p = dict(t.module.named_parameters())[n]
                state = t.optimizer.state.get(p, {})
                rows.append(state[key] if key in state else torch.zeros_like(p))
            out[f"{key}:{n}"] = _stack(rows)
    return out


@torch.no_grad()
def _adamw_step(params, grads, moments, names, *, lr, beta1, beta2, eps, weight_decay, step):
    """PyTorch's single-tensor AdamW, operation for operation, on the stacked tensors (the
    ``_foreach`` forms loop the same per-tensor kernels in C++ on CPU, without Python's cost
    per parameter)."""
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2**0.5
    param = [params[n] for n in names]
    grad = [grads[n] for n in names]
    exp_avg = [moments[f"exp_avg:{n}"] for n in names]
    exp_avg_sq = [moments[f"exp_avg_sq:{n}"] for n in names]
    if weight_decay != 0:
        torch._foreach_mul_(param, 1 - lr * weight_decay)
    torch._foreach_lerp_(exp_avg, grad, 1 - beta1)
    torch._foreach_mul_(exp_avg_sq, beta2)
    torch._foreach_addcmul_(exp_avg_sq, grad, grad, value=1 - beta2)
    denom = torch._foreach_sqrt(exp_avg_sq)
    torch._foreach_div_(denom, bias_correction2_sqrt)
    torch._foreach_add_(denom, eps)
    torch._foreach_addcdiv_(param, exp_avg, denom, value=-step_size)


@torch.no_grad()
def _write_back(trainers, params, buffers, moments, ema, names) -> None:
    """Each trainer's module, AdamW state and EMA from its row of the stacked tensors."""
    for j, t in enumerate(trainers):
        own = dict(t.module.named_parameters())
        for n in names:
            own[n].copy_(params[n][j])
            state = t.optimizer.state[own[n]]
            state["step"] = torch.tensor(float(t.step))
            state["exp_avg"] = moments[f"exp_avg:{n}"][j].clone()
            state["exp_avg_sq"] = moments[f"exp_avg_sq:{n}"][j].clone()
        for n, b in t.module.named_buffers():
            if n in buffers:  # a stacked module shares the cells' (equal) buffers
                b.copy_(buffers[n][j])
        t.optimizer.param_groups[0]["lr"] = t.lr_at(t.step - 1)
        if ema is not None:
            own_ema = dict(t.ema_module.named_parameters())
            for n in names:
                own_ema[n].copy_(ema[n][j])
