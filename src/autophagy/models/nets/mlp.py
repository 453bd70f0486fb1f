"""The MLP for points: a sample and its noise level's sinusoidal embedding, through SiLU layers.

Written for any leading batch dimensions (``x`` of shape (..., n, *shape), ``c`` of shape
(..., n)), so that K cells' MLPs stacked into one (:func:`~autophagy.models.training.batched.
stack_linear`) take the K cells' minibatches (K, n, *shape) as they are; every operation but the
linear layers is elementwise or along the last dimension, so each cell's numbers are those it
gets alone. Its SiLU is one fused kernel whose derivative is the same under ``torch.func`` as
alone, for the vmap fallback (:mod:`autophagy.models.training.batched`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from autophagy.errors import InputError


class SinusoidalEmbedding(nn.Module):
    """Sinusoidal features of a scalar (Vaswani et al., 2017; the DDPM time embedding).

    ``c`` is multiplied by ``scale`` (1000: a level in [0, 1] behaves like a DDPM step index) and
    mapped to ``[cos(c w_k), sin(c w_k)]`` with frequencies ``w_k`` geometric from 1 to
    ``1 / max_period``; the raw ``c`` is appended so that slow trends stay linear. ``c`` of any
    shape gives features of shape (*c.shape, features + 1).

    Example:
        >>> SinusoidalEmbedding(16)(torch.rand(5)).shape
        torch.Size([5, 17])
    """

    def __init__(self, features: int = 32, *, scale: float = 1000.0, max_period: float = 10_000.0):
        super().__init__()
        if features < 2 or features % 2:
            raise InputError(f"time_features must be an even number >= 2, got {features!r}")
        half = features // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
        self.register_buffer("freqs", freqs, persistent=False)
        self.scale = float(scale)
        self.out_features = features + 1

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        c = c.to(torch.float32)
        angles = (self.scale * c)[..., None] * self.freqs
        return torch.cat([angles.cos(), angles.sin(), c[..., None]], dim=-1)


class _SiLUFunction(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.silu(x)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return torch.ops.aten.silu_backward(grad, x)


class SiLU(nn.Module):
    """``nn.SiLU`` whose derivative is the fused ``silu_backward`` kernel under ``torch.func``
    too: ``torch.func.grad`` otherwise differentiates SiLU through its decomposition, which
    rounds differently (about 1 ulp), and cells trained as one vmapped batch
    (:mod:`autophagy.models.training.batched`) would not get the bits they get alone. Autograd's own
    backward is that same kernel, so training alone is unchanged."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch._C._are_functorch_transforms_active():
            return _SiLUFunction.apply(x)
        # the same kernels, without the signature binding a Function with setup_context costs
        # at every call (about 50 us, more than the kernel at the MLP's sizes)
        return torch.nn.functional.silu(x)


_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "silu": SiLU,
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "elu": nn.ELU,
}


class MLP(nn.Module):
    """A fully connected network ``f(x, c)`` for point data: the velocity or denoiser of a toy.

    The sample (flattened) and a sinusoidal embedding of ``c`` are concatenated and passed through
    ``hidden_features`` layers with ``activation``; the output has the shape of ``x``.

    Arguments:
        shape: shape of one sample, e.g. ``(2,)``.
        hidden_features: widths of the hidden layers.
        time_features: size of the sinusoidal embedding of ``c`` (even).
        activation: ``"silu"``, ``"relu"``, ``"gelu"`` or ``"elu"``.
        time_scale: ``c`` is multiplied by this before the embedding (see
            :class:`SinusoidalEmbedding`).

    Example:
        >>> net = MLP((2,), hidden_features=(64, 64))
        >>> net(torch.randn(5, 2), torch.rand(5)).shape
        torch.Size([5, 2])
    """

    def __init__(
        self,
        shape: Sequence[int],
        hidden_features: Sequence[int] = (128, 128, 128),
        time_features: int = 32,
        activation: str = "silu",
        time_scale: float = 1000.0,
    ):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise InputError(
                f"activation must be one of {', '.join(_ACTIVATIONS)}, got {activation!r}"
            )
        self.shape = tuple(int(s) for s in shape)
        features = math.prod(self.shape)
        self.embedding = SinusoidalEmbedding(int(time_features), scale=float(time_scale))
        widths = [features + self.embedding.out_features, *(int(h) for h in hidden_features)]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(a, b), _ACTIVATIONS[activation]()]
        layers.append(nn.Linear(widths[-1], features))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``x`` of shape (..., n, *shape) and ``c`` with ``n`` values per leading index."""
        lead = x.shape[: x.ndim - len(self.shape)]
        h = torch.cat([x.reshape(*lead, -1), self.embedding(c.reshape(lead))], dim=-1)
        return self.net(h).reshape(x.shape)
