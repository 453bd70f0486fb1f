"""The guided-diffusion UNet of torchcfm (Tong et al.), ``net(x, c)`` with ``c`` the flow time.

Bertrand et al. (2024) start their OT-CFM runs from torchcfm's CIFAR-10 checkpoint
(``otcfm_cifar10_weights_step_400000.pt``), a ``torch.save``'d dict ``{'net_model', 'ema_model',
'optim', 'sched', 'step'}`` of state dicts of torchcfm's ``UNetModelWrapper`` -- the UNet of
OpenAI's guided-diffusion (Dhariwal & Nichol, 2021), which torchcfm copied. This module is our
implementation of that architecture with the same module names (``time_embed.0.weight``,
``input_blocks.1.0.in_layers.2.weight``, ``middle_block.1.qkv.weight``, ``out.2.weight``, ...), so
those state dicts load into it one to one; :func:`~autophagy.models.families.neural.load_weights`
picks the
``'ema_model'`` entry.

The architecture: a sinusoidal embedding of the time (``[cos, sin]``, ``num_channels`` features,
of ``t`` itself: torchcfm feeds t in [0, 1], so ``time_scale`` is 1) through two linear layers;
an encoder of ``num_res_blocks`` residual blocks per level (GroupNorm(32), SiLU, 3x3 conv, the
embedding added (or FiLM with ``use_scale_shift_norm``), GroupNorm, SiLU, dropout, 3x3 conv) with
multi-head self-attention at ``attention_resolutions`` and a strided convolution between levels;
a middle block (residual, attention, residual); a decoder of ``num_res_blocks + 1`` blocks per
level fed the matching encoder activations, nearest-neighbour upsampling and a convolution between
levels; GroupNorm, SiLU and a 3x3 convolution out.

torchcfm's CIFAR-10 recipe (``examples/images/cifar10/train_cifar10.py``): ``num_channels=128,
num_res_blocks=2, channel_mult=(1, 2, 2, 2), num_heads=4, num_head_channels=64,
attention_resolutions=(16,), dropout=0.1``, the defaults here.

References:
    | Diffusion Models Beat GANs on Image Synthesis (Dhariwal & Nichol, NeurIPS 2021)
    | https://arxiv.org/abs/2105.05233
    | Improving and generalizing flow-based generative models with minibatch optimal transport
    | (Tong et al., TMLR 2024) https://arxiv.org/abs/2302.00482
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from autophagy.errors import InputError


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """``[cos(t w_k), sin(t w_k)]``, ``w_k = max_period^(-k / (dim / 2))`` (zero-padded if odd)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32,
                                                           device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]
    emb = torch.cat([angles.cos(), angles.sin()], dim=-1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


class GroupNorm32(nn.GroupNorm):
    """GroupNorm computed in float32 (guided-diffusion's ``normalization``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).to(x.dtype)


class EmbedSequential(nn.Sequential):
    """A sequence whose residual blocks also receive the time embedding."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x, emb) if isinstance(layer, ResBlock) else layer(x)
        return x


class ResBlock(nn.Module):
    """Residual block; ``up``/``down`` resample inside it (``resblock_updown``)."""

    def __init__(self, channels: int, emb_channels: int, dropout: float, out_channels: int,
                 *, groups: int, scale_shift: bool, up: bool = False, down: bool = False):
        super().__init__()
        self.scale_shift = scale_shift
        self.in_layers = nn.Sequential(GroupNorm32(groups, channels), nn.SiLU(),
                                       nn.Conv2d(channels, out_channels, 3, padding=1))
        self.updown = up or down
        if up:
            self.h_upd, self.x_upd = Upsample(channels, False), Upsample(channels, False)
        elif down:
            self.h_upd, self.x_upd = Downsample(channels, False), Downsample(channels, False)
        else:
            self.h_upd = self.x_upd = nn.Identity()
        self.emb_layers = nn.Sequential(
            nn.SiLU(), nn.Linear(emb_channels, (2 if scale_shift else 1) * out_channels))
        self.out_layers = nn.Sequential(GroupNorm32(groups, out_channels), nn.SiLU(),
                                        nn.Dropout(p=dropout),
                                        nn.Conv2d(out_channels, out_channels, 3, padding=1))
        nn.init.zeros_(self.out_layers[3].weight)
        nn.init.zeros_(self.out_layers[3].bias)
        self.skip_connection = (nn.Identity() if out_channels == channels
                                else nn.Conv2d(channels, out_channels, 1))

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        if self.updown:
            h = self.in_layers[2](self.h_upd(self.in_layers[:2](x)))
            x = self.x_upd(x)
        else:
            h = self.in_layers(x)
        e = self.emb_layers(emb).to(h.dtype)[:, :, None, None]
        if self.scale_shift:
            scale, shift = e.chunk(2, dim=1)
            h = self.out_layers[1:](self.out_layers[0](h) * (1 + scale) + shift)
        else:
            h = self.out_layers(h + e)
        return self.skip_connection(x) + h


class AttentionBlock(nn.Module):
    """Multi-head self-attention over the pixels (``legacy`` order: heads split before q, k, v)."""

    def __init__(self, channels: int, heads: int, *, groups: int, legacy: bool = True):
        super().__init__()
        self.heads, self.legacy = heads, legacy
        self.norm = GroupNorm32(groups, channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = nn.Conv1d(channels, channels, 1)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, *spatial = x.shape
        x = x.reshape(b, c, -1)
        qkv = self.qkv(self.norm(x))
        n, length = b * self.heads, qkv.shape[-1]
        ch = c // self.heads
        if self.legacy:
            q, k, v = qkv.reshape(n, 3 * ch, length).split(ch, dim=1)
        else:
            q, k, v = (t.reshape(n, ch, length) for t in qkv.chunk(3, dim=1))
        scale = ch ** -0.25
        w = torch.einsum("bct,bcs->bts", q * scale, k * scale).float().softmax(-1).to(q.dtype)
        a = torch.einsum("bts,bcs->bct", w, v).reshape(b, c, length)
        return (x + self.proj_out(a)).reshape(b, c, *spatial)


class Upsample(nn.Module):
    """Nearest-neighbour 2x upsampling, then a 3x3 convolution (``conv``) when ``use_conv``."""

    def __init__(self, channels: int, use_conv: bool):
        super().__init__()
        if use_conv:
            self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.use_conv = use_conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv(x) if self.use_conv else x


class Downsample(nn.Module):
    """2x downsampling: a strided 3x3 convolution (``op``) or average pooling."""

    def __init__(self, channels: int, use_conv: bool):
        super().__init__()
        self.op = (nn.Conv2d(channels, channels, 3, stride=2, padding=1) if use_conv
                   else nn.AvgPool2d(2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class OpenAIUNet(nn.Module):
    """torchcfm's ``UNetModelWrapper`` (guided-diffusion UNet), unconditional, as ``net(x, c)``.

    Arguments:
        shape: one sample's shape ``(C, H, W)``, H = W.
        num_channels: base channels (``model_channels``); level ``i`` has
            ``num_channels * channel_mult[i]``.
        num_res_blocks: residual blocks per level in the encoder (decoder: one more).
        channel_mult: channel multipliers per level.
        attention_resolutions: resolutions (in pixels) with self-attention, e.g. ``(16,)``.
        num_heads, num_head_channels: heads per attention layer; ``num_head_channels > 0``
            overrides ``num_heads`` with ``channels // num_head_channels``.
        dropout: dropout in the residual blocks.
        use_scale_shift_norm, resblock_updown, use_new_attention_order: guided-diffusion's
            options (torchcfm's CIFAR-10 model: all ``False``).
        norm_groups: GroupNorm groups (32 in guided-diffusion; no parameters depend on it).
        time_scale: ``c`` is multiplied by this before the embedding (1: torchcfm's t in [0, 1]).

    Example:
        >>> net = OpenAIUNet((3, 8, 8), num_channels=32, num_res_blocks=1, channel_mult=(1, 2),
        ...                  attention_resolutions=(4,), num_head_channels=-1, num_heads=1)
        >>> net(torch.randn(2, 3, 8, 8), torch.rand(2)).shape
        torch.Size([2, 3, 8, 8])
    """

    def __init__(
        self,
        shape: Sequence[int],
        num_channels: int = 128,
        num_res_blocks: int = 2,
        channel_mult: Sequence[float] = (1, 2, 2, 2),
        attention_resolutions: Sequence[int] = (16,),
        num_heads: int = 4,
        num_head_channels: int = 64,
        dropout: float = 0.1,
        use_scale_shift_norm: bool = False,
        resblock_updown: bool = False,
        use_new_attention_order: bool = False,
        norm_groups: int = 32,
        time_scale: float = 1.0,
    ):
        super().__init__()
        dims = tuple(int(s) for s in shape)
        if len(dims) != 3 or dims[1] != dims[2]:
            raise InputError(f"network 'openai_unet' needs square images (C, H, H), got {dims}")
        channels, size = dims[0], dims[1]
        mults = list(channel_mult)
        if not mults or size % 2 ** (len(mults) - 1):
            raise InputError(f"channel_mult: {len(mults)} levels do not fit {size}x{size} images")
        mc, groups = int(num_channels), int(norm_groups)
        widths = [int(m * mc) for m in mults]
        if any(w % groups for w in widths):
            raise InputError(f"norm_groups={groups} must divide every level's channels {widths}")
        attn_ds = {size // int(r) for r in attention_resolutions}

        def heads(ch: int) -> int:
            if int(num_head_channels) > 0:
                if ch % int(num_head_channels):
                    raise InputError(f"num_head_channels={num_head_channels} must divide the "
                                     f"attention channels {ch}")
                return ch // int(num_head_channels)
            return int(num_heads)

        block = {"groups": groups, "scale_shift": bool(use_scale_shift_norm)}
        legacy = not use_new_attention_order
        emb = 4 * mc
        self.time_scale, self.model_channels = float(time_scale), mc
        self.time_embed = nn.Sequential(nn.Linear(mc, emb), nn.SiLU(), nn.Linear(emb, emb))
        ch = widths[0]
        self.input_blocks = nn.ModuleList([EmbedSequential(nn.Conv2d(channels, ch, 3,
                                                                     padding=1))])
        skips, ds = [ch], 1
        for level, width in enumerate(widths):
            for _ in range(int(num_res_blocks)):
                layers: list[nn.Module] = [ResBlock(ch, emb, dropout, width, **block)]
                ch = width
                if ds in attn_ds:
                    layers.append(AttentionBlock(ch, heads(ch), groups=groups, legacy=legacy))
                self.input_blocks.append(EmbedSequential(*layers))
                skips.append(ch)
            if level != len(widths) - 1:
                down = (ResBlock(ch, emb, dropout, ch, down=True, **block) if resblock_updown
                        else Downsample(ch, True))
                self.input_blocks.append(EmbedSequential(down))
                skips.append(ch)
                ds *= 2
        self.middle_block = EmbedSequential(
            ResBlock(ch, emb, dropout, ch, **block),
            AttentionBlock(ch, heads(ch), groups=groups, legacy=legacy),
            ResBlock(ch, emb, dropout, ch, **block))
        self.output_blocks = nn.ModuleList()
        for level, width in reversed(list(enumerate(widths))):
            for i in range(int(num_res_blocks) + 1):
                layers = [ResBlock(ch + skips.pop(), emb, dropout, width, **block)]
                ch = width
                if ds in attn_ds:
                    layers.append(AttentionBlock(ch, heads(ch), groups=groups, legacy=legacy))
                if level and i == int(num_res_blocks):
                    layers.append(ResBlock(ch, emb, dropout, ch, up=True, **block)
                                  if resblock_updown else Upsample(ch, True))
                    ds //= 2
                self.output_blocks.append(EmbedSequential(*layers))
        self.out = nn.Sequential(GroupNorm32(groups, ch), nn.SiLU(),
                                 nn.Conv2d(widths[0], channels, 3, padding=1))
        nn.init.zeros_(self.out[2].weight)
        nn.init.zeros_(self.out[2].bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        t = self.time_scale * c.reshape(-1)
        if t.numel() == 1:
            t = t.expand(len(x))
        emb = self.time_embed(timestep_embedding(t, self.model_channels).to(x.dtype))
        hs, h = [], x
        for module in self.input_blocks:
            h = module(h, emb)
            hs.append(h)
        h = self.middle_block(h, emb)
        for module in self.output_blocks:
            h = module(torch.cat([h, hs.pop()], dim=1), emb)
        return self.out(h)
