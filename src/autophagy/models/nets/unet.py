"""A UNet for images, ``net(x, c)``: diffusers' ``UNet2DModel`` behind the networks contract.

The image families of Bertrand et al. (2024) (OT flow matching, DDPM, EDM on CIFAR-10 and FFHQ)
all use a UNet (Ronneberger et al., 2015) in the form of Ho et al. (2020): residual blocks with a
sinusoidal time embedding, optional self-attention at chosen resolutions, one downsampling between
levels. This module wraps ``diffusers.UNet2DModel`` so that DDPM, EDM and flow matching use it with
no change (see :mod:`autophagy.models.nets`): the scalar ``c`` of a family (flow-matching time
in [0, 1], DDPM ``t / T``, EDM ``c_noise = log(sigma) / 4``) is multiplied by ``time_scale`` (1000)
and passed as the UNet's timestep, so DDPM with T = 1000 feeds the integer step index a pretrained
DDPM (``google/ddpm-cifar10-32``) expects.

diffusers is imported when a UNet is built, never at ``import autophagy``.

References:
    | U-Net (Ronneberger et al., MICCAI 2015) https://arxiv.org/abs/1505.04597
    | Denoising Diffusion Probabilistic Models (Ho et al., NeurIPS 2020)
    | https://arxiv.org/abs/2006.11239
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from autophagy.errors import ArgumentError, InputError


def _levels(attention: bool | Sequence[bool], levels: int) -> list[bool]:
    """Per-level attention flags: ``True`` -> the lowest resolution only, a list -> as given."""
    if isinstance(attention, bool):
        return [False] * (levels - 1) + [attention]
    flags = [bool(a) for a in attention]
    if len(flags) != levels:
        raise InputError(
            f"attention must be a bool or one flag per level ({levels}), got {list(attention)!r}"
        )
    return flags


class UNet(nn.Module):
    """An image network ``net(x, c)`` for (C, H, W) samples (diffusers ``UNet2DModel``).

    Level ``i`` has ``block_out_channels[i]`` channels and ``layers_per_block`` residual blocks;
    the resolution halves between levels, so ``L`` levels need H and W divisible by 2^(L - 1)
    (8x8 digits: at most 3 levels, 8 -> 4 -> 2).

    Arguments:
        shape: one sample's shape ``(C, H, W)``.
        block_out_channels: channels per level, e.g. ``(32, 64)``.
        layers_per_block: residual blocks per level (down path; the up path has one more).
        attention: self-attention in the down/up blocks: ``True`` at the lowest resolution, or one
            flag per level; the middle block has attention when any flag is on.
        attention_head_dim: channels per attention head.
        norm_num_groups: GroupNorm groups (must divide every channel count).
        dropout: dropout in the residual blocks.
        time_scale: ``c`` is multiplied by this to give the UNet's timestep.
        num_class_embeds: a class-conditional UNet: this many learned class embeddings, added
            to the time embedding (diffusers' ``num_class_embeds``); the network is then called
            as ``net(x, c, y)`` with integer classes ``y`` (n,).

    Example:
        >>> net = UNet((1, 8, 8), block_out_channels=(16, 32), norm_num_groups=8)
        >>> net(torch.randn(4, 1, 8, 8), torch.rand(4)).shape
        torch.Size([4, 1, 8, 8])
    """

    def __init__(
        self,
        shape: Sequence[int],
        block_out_channels: Sequence[int] = (32, 64),
        layers_per_block: int = 1,
        attention: bool | Sequence[bool] = False,
        attention_head_dim: int = 8,
        norm_num_groups: int = 8,
        dropout: float = 0.0,
        time_scale: float = 1000.0,
        num_class_embeds: int | None = None,
    ):
        super().__init__()
        from diffusers import UNet2DModel

        channels, height, width = _image_shape(shape)
        widths = [int(c) for c in block_out_channels]
        if not widths or min(widths) < 1:
            raise InputError(f"block_out_channels must be positive integers, got {widths!r}")
        factor = 2 ** (len(widths) - 1)
        if height % factor or width % factor:
            raise InputError(
                f"block_out_channels: {len(widths)} levels halve the resolution "
                f"{len(widths) - 1} times, which {height}x{width} images do not allow; "
                "use fewer levels"
            )
        if any(c % int(norm_num_groups) for c in widths):
            raise InputError(
                f"norm_num_groups={norm_num_groups} must divide every block_out_channels {widths}"
            )
        flags = _levels(attention, len(widths))
        self.unet = UNet2DModel(
            sample_size=(height, width),
            in_channels=channels,
            out_channels=channels,
            block_out_channels=tuple(widths),
            layers_per_block=int(layers_per_block),
            down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in flags),
            up_block_types=tuple(
                "AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(flags)
            ),
            add_attention=any(flags),
            attention_head_dim=int(attention_head_dim),
            norm_num_groups=int(norm_num_groups),
            dropout=float(dropout),
            num_class_embeds=None if num_class_embeds is None else int(num_class_embeds),
        )
        self.time_scale = float(time_scale)

    @classmethod
    def from_pretrained(
        cls, path: str | Path, shape: Sequence[int], time_scale: float = 1000.0
    ) -> UNet:
        """A UNet with the architecture and weights of a local diffusers folder (never downloads).

        ``path`` holds ``config.json`` and the weights, as ``UNet2DModel.save_pretrained`` (or a
        downloaded ``google/ddpm-cifar10-32``'s ``unet`` folder) writes them; its channels and
        sample size must match ``shape``.
        """
        channels, height, width = _image_shape(shape)
        unet = _read_diffusers_unet(Path(path))
        size = unet.config.sample_size
        size = tuple(size) if isinstance(size, list | tuple) else (size, size)
        if unet.config.in_channels != channels or unet.config.out_channels != channels or (
            size != (height, width)
        ):
            raise InputError(
                f"init_checkpoint: the UNet in {str(path)!r} takes {unet.config.in_channels} "
                f"channels at {size[0]}x{size[1]}, the data are {channels}x{height}x{width}"
            )
        net = cls.__new__(cls)
        nn.Module.__init__(net)
        net.unet = unet
        net.time_scale = float(time_scale)
        return net

    def forward(
        self, x: torch.Tensor, c: torch.Tensor, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        timestep = (self.time_scale * c.reshape(-1)).to(torch.float32)
        return self.unet(x, timestep, class_labels=y).sample.to(x.dtype)


def _read_diffusers_unet(path: Path) -> Any:
    """``UNet2DModel.from_pretrained`` of a received folder, quietly and in one line on failure.

    Pickled weights (``diffusion_pytorch_model.bin``, when there is no ``.safetensors``) are read
    first by :func:`~autophagy.models.weights_only.load_weights_only`, so a file that asks for
    code is refused in one line naming it; diffusers' notes on its own fallbacks are silenced.
    """
    from diffusers import UNet2DModel
    from diffusers.utils import logging as diffusers_logging

    from autophagy.models.weights_only import first_line, load_weights_only

    if not any(path.glob("*.safetensors")):
        for weights in sorted(path.glob("*.bin")):
            load_weights_only(weights, weights, expected="a diffusers UNet's weights file")
    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    try:
        return UNet2DModel.from_pretrained(str(path), local_files_only=True,
                                           low_cpu_mem_usage=False)
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as err:
        raise ArgumentError("init_checkpoint", f"{str(path)!r} is not a diffusers UNet folder "
                            f"that loads ({type(err).__name__}: {first_line(err)})") from None
    finally:
        diffusers_logging.set_verbosity(verbosity)


def _image_shape(shape: Sequence[int]) -> tuple[int, int, int]:
    dims = tuple(int(s) for s in shape)
    if len(dims) != 3:
        raise InputError(
            f"network 'unet' needs image samples of shape (C, H, W), got {dims}; "
            "use network: mlp for points"
        )
    return dims  # type: ignore[return-value]
