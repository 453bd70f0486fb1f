"""EDM's DDPM++ / NCSN++ UNet (``SongUNet``), ``net(x, c)`` with ``c = c_noise = log(sigma) / 4``.

Karras et al. (2022) train their published CIFAR-10 and FFHQ-64 models (``edm-*-uncond-vp.pkl``)
with the DDPM++ architecture of Song et al. (2021) behind the EDM preconditioning. This module is
our implementation of that network, written so that its ``state_dict`` keys and tensor shapes are
those of NVlabs/edm's ``SongUNet`` (``map_layer0.weight``, ``enc.32x32_block0.conv0.weight``, ...):
the tensors of an EDM pickle (read by :mod:`autophagy.models.nets.edm_pickle`, no code of theirs
runs) load into it one to one, and :func:`autophagy.models.families.diffusion.edm_denoise` plays
the part of
``EDMPrecond`` (c_skip, c_out, c_in, c_noise of EDM Table 1).

The architecture, as in the paper's Appendix F.2 (config "DDPM++"):

* noise embedding: sinusoidal features of ``c_noise`` (``[sin, cos]``, frequencies
  ``10000^(-k / (K - 1))``) or random Fourier features (NCSN++), then two linear layers with SiLU;
* encoder: a 3x3 convolution, then per level ``num_blocks`` residual blocks (GroupNorm, SiLU,
  3x3 conv, the embedding added, GroupNorm, SiLU, dropout, 3x3 conv; skip and output scaled by
  sqrt(1/2)), one residual block with a [1, 1] box-filter downsampling between levels, one-head
  self-attention at ``attn_resolutions``;
* decoder: mirrored, each block fed the matching encoder activation; at the full resolution a
  GroupNorm, SiLU and 3x3 convolution give the output.

Weights are initialised as EDM does (Xavier uniform; the last convolution of each block and of the
output scaled by 1e-5, attention qkv by sqrt(0.2)).

References:
    | Elucidating the Design Space of Diffusion-Based Generative Models (Karras et al., NeurIPS
    | 2022) https://arxiv.org/abs/2206.00364, Appendix F.2
    | Score-Based Generative Modeling through Stochastic Differential Equations (Song et al.,
    | ICLR 2021) https://arxiv.org/abs/2011.13456
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from autophagy.errors import InputError

EMBEDDINGS = ("positional", "fourier")
ENCODERS = ("standard", "skip", "residual")
DECODERS = ("standard", "skip")


def _xavier(shape: Sequence[int], fan_in: int, fan_out: int, gain: float = 1.0) -> torch.Tensor:
    return gain * math.sqrt(6 / (fan_in + fan_out)) * (torch.rand(*shape) * 2 - 1)


class Linear(nn.Module):
    """``y = x W^T + b`` with EDM's parameter names and Xavier-uniform initialisation."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, gain: float = 1.0):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(_xavier((out_features, in_features), in_features,
                                           out_features, gain))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight.to(x.dtype),
                        None if self.bias is None else self.bias.to(x.dtype))


class Conv2d(nn.Module):
    """A square convolution (``kernel`` 0: none) with optional 2x up- or downsampling by a
    separable ``resample_filter`` (stored as the buffer ``resample_filter``, as in EDM)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        *,
        up: bool = False,
        down: bool = False,
        resample_filter: Sequence[int] = (1, 1),
        fused_resample: bool = False,
        gain: float = 1.0,
    ):
        super().__init__()
        if up and down:
            raise InputError("a convolution resamples up or down, not both")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.up, self.down, self.fused_resample = up, down, fused_resample
        fan_in, fan_out = in_channels * kernel * kernel, out_channels * kernel * kernel
        self.weight = (nn.Parameter(_xavier((out_channels, in_channels, kernel, kernel), fan_in,
                                            fan_out, gain)) if kernel else None)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if kernel else None
        f = torch.as_tensor([float(v) for v in resample_filter])
        f = torch.outer(f, f)[None, None] / f.sum() ** 2
        self.register_buffer("resample_filter", f if up or down else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = None if self.weight is None else self.weight.to(x.dtype)
        f = None if self.resample_filter is None else self.resample_filter.to(x.dtype)
        w_pad = 0 if w is None else w.shape[-1] // 2
        f_pad = 0 if f is None else (f.shape[-1] - 1) // 2
        if self.fused_resample and self.up and w is not None:
            x = F.conv_transpose2d(x, (4 * f).tile(self.in_channels, 1, 1, 1),
                                   groups=self.in_channels, stride=2, padding=w_pad + f_pad)
            x = F.conv2d(x, w)
        elif self.fused_resample and self.down and w is not None:
            x = F.conv2d(x, w, padding=w_pad + f_pad)
            x = F.conv2d(x, f.tile(self.out_channels, 1, 1, 1), groups=self.out_channels,
                         stride=2)
        else:
            if self.up:
                x = F.conv_transpose2d(x, (4 * f).tile(self.in_channels, 1, 1, 1),
                                       groups=self.in_channels, stride=2, padding=f_pad)
            if self.down:
                x = F.conv2d(x, f.tile(self.in_channels, 1, 1, 1), groups=self.in_channels,
                             stride=2, padding=f_pad)
            if w is not None:
                x = F.conv2d(x, w, padding=w_pad)
        if self.bias is not None:
            x = x + self.bias.to(x.dtype).reshape(1, -1, 1, 1)
        return x


class GroupNorm(nn.Module):
    """GroupNorm with at most 32 groups and at least 4 channels a group (EDM's rule)."""

    def __init__(self, num_channels: int, eps: float = 1e-6):
        super().__init__()
        self.num_groups = min(32, num_channels // 4)
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x, self.num_groups, self.weight.to(x.dtype), self.bias.to(x.dtype),
                            self.eps)


class Block(nn.Module):
    """DDPM++ residual block (EDM's ``UNetBlock`` with ``adaptive_scale=False``, one head)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        emb_channels: int,
        *,
        up: bool = False,
        down: bool = False,
        attention: bool = False,
        dropout: float = 0.0,
        resample_filter: Sequence[int] = (1, 1),
    ):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.dropout = float(dropout)
        self.attention = bool(attention)
        resample = {"up": up, "down": down, "resample_filter": resample_filter}
        self.norm0 = GroupNorm(in_channels)
        self.conv0 = Conv2d(in_channels, out_channels, 3, **resample)
        self.affine = Linear(emb_channels, out_channels)
        self.norm1 = GroupNorm(out_channels)
        self.conv1 = Conv2d(out_channels, out_channels, 3, gain=1e-5)
        self.skip = None
        if out_channels != in_channels or up or down:
            self.skip = Conv2d(in_channels, out_channels, 1, **resample)
        if self.attention:
            self.norm2 = GroupNorm(out_channels)
            self.qkv = Conv2d(out_channels, 3 * out_channels, 1, gain=math.sqrt(0.2))
            self.proj = Conv2d(out_channels, out_channels, 1, gain=1e-5)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        skip_scale = math.sqrt(0.5)
        h = self.conv0(F.silu(self.norm0(x)))
        h = h + self.affine(emb)[:, :, None, None].to(h.dtype)
        h = F.silu(self.norm1(h))
        h = self.conv1(F.dropout(h, p=self.dropout, training=self.training))
        h = (h + (x if self.skip is None else self.skip(x))) * skip_scale
        if self.attention:
            n, c, height, width = h.shape
            q, k, v = self.qkv(self.norm2(h)).reshape(n, c, 3, -1).unbind(2)
            # softmax(q^T k / sqrt(c)) in float32, as EDM's AttentionOp
            w = torch.einsum("ncq,nck->nqk", q.float(), k.float() / math.sqrt(c)).softmax(2)
            a = torch.einsum("nqk,nck->ncq", w.to(v.dtype), v).reshape(n, c, height, width)
            h = (self.proj(a) + h) * skip_scale
        return h


class PositionalEmbedding(nn.Module):
    """``[sin(c w_k), cos(c w_k)]`` with ``w_k = (1 / 10000)^(k / (K - 1))`` (no parameters)."""

    def __init__(self, num_channels: int, max_positions: int = 10_000):
        super().__init__()
        self.num_channels, self.max_positions = num_channels, max_positions

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        half = self.num_channels // 2
        freqs = (1 / self.max_positions) ** (
            torch.arange(half, dtype=torch.float32, device=c.device) / (half - 1))
        angles = torch.outer(c.float(), freqs)
        return torch.cat([angles.sin(), angles.cos()], dim=1)  # EDM swaps cos/sin


class FourierEmbedding(nn.Module):
    """Random Fourier features ``[sin(2 pi c f), cos(2 pi c f)]``, ``f ~ N(0, 16^2)`` (NCSN++)."""

    def __init__(self, num_channels: int, scale: float = 16.0):
        super().__init__()
        self.register_buffer("freqs", torch.randn(num_channels // 2) * scale)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        angles = torch.outer(c.float(), 2 * math.pi * self.freqs)
        return torch.cat([angles.sin(), angles.cos()], dim=1)


class SongUNet(nn.Module):
    """EDM's ``SongUNet`` (DDPM++ by default) as a network ``net(x, c)`` for (C, H, W) images.

    ``c`` is EDM's ``c_noise`` (``log(sigma) / 4`` from :func:`~autophagy.models.families.diffusion.
    edm_denoise`), used as is. Level ``i`` works at resolution ``H / 2^i`` with
    ``model_channels * channel_mult[i]`` channels.

    Arguments:
        shape: one sample's shape ``(C, H, W)``, H = W.
        model_channels, channel_mult, channel_mult_emb, num_blocks, attn_resolutions, dropout:
            as NVlabs/edm (CIFAR-10 DDPM++: 128, (2, 2, 2), 4, 4, (16,), 0.13; FFHQ-64: channel
            multipliers (1, 2, 2, 2), dropout 0.05).
        augment_dim: size of the augmentation labels' embedding (9 in the published pickles,
            trained with augmentation; unused when ``forward`` gets no labels).
        embedding_type, channel_mult_noise, encoder_type, decoder_type, resample_filter:
            ``"positional"``, 1, ``"standard"``, ``"standard"``, (1, 1) for DDPM++;
            ``"fourier"``, 2, ``"residual"``, ``"standard"``, (1, 3, 3, 1) for NCSN++.
        label_dim: must be 0 (class-conditional networks are not supported).

    Example:
        >>> net = SongUNet((3, 8, 8), model_channels=16, channel_mult=(1, 2), num_blocks=1,
        ...                attn_resolutions=(4,))
        >>> net(torch.randn(2, 3, 8, 8), torch.zeros(2)).shape
        torch.Size([2, 3, 8, 8])
    """

    def __init__(
        self,
        shape: Sequence[int],
        model_channels: int = 128,
        channel_mult: Sequence[int] = (2, 2, 2),
        channel_mult_emb: int = 4,
        num_blocks: int = 4,
        attn_resolutions: Sequence[int] = (16,),
        dropout: float = 0.10,
        augment_dim: int = 0,
        embedding_type: str = "positional",
        channel_mult_noise: int = 1,
        encoder_type: str = "standard",
        decoder_type: str = "standard",
        resample_filter: Sequence[int] = (1, 1),
        label_dim: int = 0,
    ):
        super().__init__()
        channels, height, width = _square_image(shape)
        for name, value, allowed in (("embedding_type", embedding_type, EMBEDDINGS),
                                     ("encoder_type", encoder_type, ENCODERS),
                                     ("decoder_type", decoder_type, DECODERS)):
            if value not in allowed:
                raise InputError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        if int(label_dim):
            raise InputError(f"label_dim must be 0 (unconditional), got {label_dim!r}")
        mults = [int(m) for m in channel_mult]
        if not mults or height % 2 ** (len(mults) - 1):
            raise InputError(f"channel_mult: {len(mults)} levels do not fit {height}x{width} "
                             "images (the resolution halves between levels)")
        mc = int(model_channels)
        if mc < 4 or any((mc * m) % 4 for m in [1, *mults]):
            raise InputError(f"model_channels={mc} times each channel_mult must be a multiple "
                             "of 4 (GroupNorm groups)")
        emb_channels = mc * int(channel_mult_emb)
        noise_channels = mc * int(channel_mult_noise)
        attn = {int(r) for r in attn_resolutions}
        block = {"emb_channels": emb_channels, "dropout": float(dropout),
                 "resample_filter": tuple(resample_filter)}
        self.map_noise = (PositionalEmbedding(noise_channels) if embedding_type == "positional"
                          else FourierEmbedding(noise_channels))
        self.map_augment = (Linear(int(augment_dim), noise_channels, bias=False)
                            if augment_dim else None)
        self.map_layer0 = Linear(noise_channels, emb_channels)
        self.map_layer1 = Linear(emb_channels, emb_channels)

        self.enc = nn.ModuleDict()
        cout, caux = channels, channels
        for level, mult in enumerate(mults):
            res = height >> level
            if level == 0:
                cout = mc
                self.enc[f"{res}x{res}_conv"] = Conv2d(channels, cout, 3)
            else:
                self.enc[f"{res}x{res}_down"] = Block(cout, cout, down=True, **block)
                if encoder_type == "skip":
                    self.enc[f"{res}x{res}_aux_down"] = Conv2d(
                        caux, caux, 0, down=True, resample_filter=resample_filter)
                    self.enc[f"{res}x{res}_aux_skip"] = Conv2d(caux, cout, 1)
                if encoder_type == "residual":
                    self.enc[f"{res}x{res}_aux_residual"] = Conv2d(
                        caux, cout, 3, down=True, resample_filter=resample_filter,
                        fused_resample=True)
                    caux = cout
            for idx in range(int(num_blocks)):
                cin, cout = cout, mc * mult
                self.enc[f"{res}x{res}_block{idx}"] = Block(cin, cout, attention=res in attn,
                                                            **block)
        skips = [b.out_channels for name, b in self.enc.items() if "aux" not in name]

        self.dec = nn.ModuleDict()
        for level, mult in reversed(list(enumerate(mults))):
            res = height >> level
            if level == len(mults) - 1:
                self.dec[f"{res}x{res}_in0"] = Block(cout, cout, attention=True, **block)
                self.dec[f"{res}x{res}_in1"] = Block(cout, cout, **block)
            else:
                self.dec[f"{res}x{res}_up"] = Block(cout, cout, up=True, **block)
            for idx in range(int(num_blocks) + 1):
                cin, cout = cout + skips.pop(), mc * mult
                self.dec[f"{res}x{res}_block{idx}"] = Block(
                    cin, cout, attention=idx == int(num_blocks) and res in attn, **block)
            if decoder_type == "skip" or level == 0:
                if decoder_type == "skip" and level < len(mults) - 1:
                    self.dec[f"{res}x{res}_aux_up"] = Conv2d(
                        channels, channels, 0, up=True, resample_filter=resample_filter)
                self.dec[f"{res}x{res}_aux_norm"] = GroupNorm(cout)
                self.dec[f"{res}x{res}_aux_conv"] = Conv2d(cout, channels, 3, gain=1e-5)

    def forward(
        self, x: torch.Tensor, c: torch.Tensor, augment_labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        emb = self.map_noise(c.reshape(-1)).to(x.dtype)
        if self.map_augment is not None and augment_labels is not None:
            emb = emb + self.map_augment(augment_labels.to(x.dtype))
        emb = F.silu(self.map_layer1(F.silu(self.map_layer0(emb))))

        skips: list[torch.Tensor] = []
        aux = x
        for name, block in self.enc.items():
            if "aux_down" in name:
                aux = block(aux)
            elif "aux_skip" in name:
                x = skips[-1] = x + block(aux)
            elif "aux_residual" in name:
                x = skips[-1] = aux = (x + block(aux)) / math.sqrt(2)
            else:
                x = block(x, emb) if isinstance(block, Block) else block(x)
                skips.append(x)

        out: torch.Tensor | None = None
        tmp = x
        for name, block in self.dec.items():
            if "aux_up" in name:
                out = block(out)
            elif "aux_norm" in name:
                tmp = block(x)
            elif "aux_conv" in name:
                tmp = block(F.silu(tmp))
                out = tmp if out is None else tmp + out
            else:
                if x.shape[1] != block.in_channels:
                    x = torch.cat([x, skips.pop()], dim=1)
                x = block(x, emb)
        assert out is not None
        return out


def _square_image(shape: Sequence[int]) -> tuple[int, int, int]:
    dims = tuple(int(s) for s in shape)
    if len(dims) != 3 or dims[1] != dims[2]:
        raise InputError(f"network 'songunet' needs square images (C, H, H), got {dims}")
    return dims  # type: ignore[return-value]
