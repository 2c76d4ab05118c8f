"""``unet-lite``: a compact U-Net that restores at low resolution and upsamples itself.

Made for the starter model (decrappify-x2: half size + JPEG q10..70 with the number drawn on it)
and for training from scratch on a CPU. It takes the degraded image in [0, 1] at its own size
(B, 3, h, w), h and w multiples of 8, and returns (B, 3, h*scale, w*scale)::

    head   ConvLayer 3 -> nf                                   (h, w)        skip s0
    down   3 levels, each a stride-2 ConvLayer + `blocks` ResBlocks:
           nf (h/2) -> skip s1, 2nf (h/4) -> skip s2, 4nf (h/8)
    middle ResBlock(4nf) [+ SelfAttention(4nf)]
    up     3x: PixelShuffle_ICNR(2) to half the channels, concat skip, two ConvLayers
    tail   ResBlock(nf) at (h, w), PixelShuffle_ICNR(scale) to nf/2 channels at (h*scale, w*scale),
           3x3 conv to 3
    out    bicubic_upsample(x, scale) + tail          (global residual; the tail starts at zero,
                                                        so an untrained model is bicubic)
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .layers import ConvLayer, PixelShuffle_ICNR, ResBlock, SelfAttention
from .registry import Option, register


class _Up(nn.Module):
    """PixelShuffle_ICNR x2 (``ni`` -> ``ni // 2``), concat the skip, two ConvLayers to ``nf``."""

    def __init__(self, ni: int, skip_c: int, nf: int, blur: bool, norm_type: str) -> None:
        super().__init__()
        self.shuf = PixelShuffle_ICNR(ni, ni // 2, blur=blur, norm_type=norm_type)
        self.conv1 = ConvLayer(ni // 2 + skip_c, nf, norm_type=norm_type)
        self.conv2 = ConvLayer(nf, nf, norm_type=norm_type)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(torch.cat([self.shuf(x), skip], dim=1)))


class UnetLite(nn.Module):
    def __init__(self, nf: int = 48, blocks: int = 2, scale: int = 2, self_attention: bool = True,
                 blur: bool = True, norm_type: str = "none") -> None:
        super().__init__()
        self.scale = scale
        chans = (nf, 2 * nf, 4 * nf)
        self.head = ConvLayer(3, nf, norm_type=norm_type)
        downs = []
        c = nf
        for co in chans:
            downs.append(nn.Sequential(ConvLayer(c, co, stride=2, norm_type=norm_type),
                                       *[ResBlock(1, co, co, norm_type=norm_type) for _ in range(blocks)]))
            c = co
        self.down = nn.ModuleList(downs)
        mid: list[nn.Module] = [ResBlock(1, c, c, norm_type=norm_type)]
        if self_attention:
            mid.append(SelfAttention(c))
        self.middle = nn.Sequential(*mid)
        self.up = nn.ModuleList([
            _Up(chans[2], chans[1], chans[1], blur, norm_type),  # h/8 -> h/4
            _Up(chans[1], chans[0], chans[0], blur, norm_type),  # h/4 -> h/2
            _Up(chans[0], nf, nf, blur, norm_type),  # h/2 -> h
        ])
        tail: list[nn.Module] = [ResBlock(1, nf, nf, norm_type=norm_type)]
        hr_c = nf
        if scale > 1:  # half the features at high resolution: that part is memory-bound
            hr_c = nf // 2
            tail.append(PixelShuffle_ICNR(nf, hr_c, scale=scale, blur=blur, norm_type=norm_type))
        self.tail = nn.Sequential(*tail)
        self.to_rgb = nn.Conv2d(hr_c, 3, 3, padding=1)
        nn.init.zeros_(self.to_rgb.weight)
        nn.init.zeros_(self.to_rgb.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, h, w) -> (B, 3, h*s, w*s)
        h = self.head(x)
        skips = [h]
        for down in self.down:
            h = down(h)
            skips.append(h)
        h = self.middle(skips.pop())
        for up in self.up:
            h = up(h, skips.pop())
        out = self.to_rgb(self.tail(h))
        base = x if self.scale == 1 else F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return base + out

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """One group: the whole net trains from scratch."""
        return [list(self.parameters())]


@register(
    "unet-lite",
    description="Compact U-Net restoring at low resolution and upsampling itself (CPU-friendly starter model)",
    kind="restorer",
    options=(
        Option("nf", int, 48, "Features at full resolution (doubled twice going down).", minimum=8, maximum=256),
        Option("blocks", int, 2, "ResBlocks per encoder level.", minimum=0, maximum=8),
        Option("scale", int, 2, "Upsampling factor of the network (1 = same-size restoration).",
               choices=(1, 2, 3, 4)),
        Option("self_attention", bool, True, "Self-attention at the lowest resolution."),
        Option("blur", bool, True, "Blur after each pixel-shuffle upsampling."),
        Option("norm_type", str, "none", "Normalisation of the convolutions.", choices=("none", "weight", "batch")),
    ),
    facts=lambda o: dict(in_channels=3, out_channels=3, scale=o["scale"], model_scale=o["scale"], size_multiple=8,
                         mean=None, std=None),
)
def _factory(**opts: Any) -> UnetLite:
    return UnetLite(**opts)
