"""Networks ``f(x, c)`` of a sample and a noise level, for flow matching and diffusion.

The science of a family (its path, loss and sampler) is written against one small contract so that
the network is a swappable part, as in NVlabs/edm: a module called as ``net(x, c)`` with ``x`` of
shape ``(n, *shape)`` and ``c`` of shape ``(n,)`` (flow-matching time in [0, 1], DDPM ``t / T``,
EDM ``c_noise = log(sigma) / 4``), returning a tensor of the shape of ``x``.

Families name their network with ``network`` (a key of :data:`NETWORKS`, or a callable
``builder(shape, **options) -> nn.Module``) and pass its options; points use :class:`MLP`, images
(C, H, W) the ``"unet"`` (:class:`~autophagy.models.nets.unet.UNet`, diffusers' ``UNet2DModel``),
EDM's DDPM++ ``"songunet"`` (:class:`~autophagy.models.nets.songunet.SongUNet`) or the
guided-diffusion UNet of torchcfm, ``"openai_unet"``
(:class:`~autophagy.models.nets.openai_unet.OpenAIUNet`): each keeps its original's state-dict
keys, so the published checkpoints load into it. A plug-in network is one
``NETWORKS.register(name, builder)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import nn

from autophagy.errors import UnknownName
from autophagy.models.nets.mlp import MLP, SiLU, SinusoidalEmbedding  # noqa: F401
from autophagy.models.nets.openai_unet import OpenAIUNet
from autophagy.models.nets.songunet import SongUNet
from autophagy.models.nets.unet import UNet
from autophagy.registry import Registry
from autophagy.signatures import ArgumentError, check_options

NetworkBuilder = Callable[..., nn.Module]


NETWORKS: Registry[NetworkBuilder] = Registry("network")
"""Network builders by name: ``builder(shape, **options) -> nn.Module`` called as ``net(x, c)``."""
NETWORKS.register("mlp", MLP, description="MLP on flattened samples with a sinusoidal embedding")
NETWORKS.register("unet", UNet, description="diffusers' UNet2DModel (images)")
NETWORKS.register("songunet", SongUNet, description="EDM's DDPM++ network (images)")
NETWORKS.register("openai_unet", OpenAIUNet,
                  description="torchcfm's guided-diffusion UNet (images)")
BATCHABLE = ("mlp",)
"""Networks whose K cells stack into one (every parameter in a linear layer, written for any
leading batch dimensions), so cells with them train as one batch
(:mod:`autophagy.models.training.batched`)."""


def check_network(network: str | NetworkBuilder, options: Mapping[str, Any] | None) -> None:
    """Raise ``ValueError`` for an unknown network name or an option its builder does not take."""
    if isinstance(network, str):
        try:
            network = NETWORKS[network]  # a registered name, or a "module:builder" target
        except UnknownName:
            raise ArgumentError("network", f"must be one of {', '.join(NETWORKS)}, "
                                f"got {network!r}") from None
    if not callable(network):
        raise ArgumentError("network", f"must be a name or a callable builder, got {network!r}")
    check_options(network, dict(options or {}), field="network_options", skip=("shape",))


def build_network(
    network: str | NetworkBuilder, shape: Sequence[int], options: Mapping[str, Any] | None = None
) -> nn.Module:
    """Build ``network`` (a name in :data:`NETWORKS` or a builder) for samples of ``shape``."""
    check_network(network, options)
    if isinstance(network, str):
        network = NETWORKS[network]
    return network(tuple(int(s) for s in shape), **dict(options or {}))
