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

The tail's activations (``tail_act``). With ReLUs there (``"relu"``, the original tail), training
from scratch on small batches kills the tail: the last ReLU before ``to_rgb`` (the
PixelShuffle_ICNR 1x1 conv's; remove it and the ResBlock's dies instead) goes from 43 % active to
0 within ~50 steps and never recovers, and the model stays bicubic. The cause: while the output
is close to bicubic, the tail's gradients are small and mostly noise (small batches, L1's signs;
through a zero-initialised head they are also ~1e-6), but Adam normalises them, so each step
moves a 1x1-conv pre-activation by about ``lr * fan_in * mean(input)`` (its inputs are post-ReLU,
all >= 0, so the steps of a row add up) whatever the gradient's size; with momentum that is a
random walk, and a ReLU is an absorbing state for it (below 0 there is no gradient to bring a
unit back). The warm-up does not prevent it (it happens at lr 1e-4..1e-3), nor does any
head init that starts close to bicubic (small random, zero-mean, or mirrored pairs); only a large
random head, 7 dB worse than bicubic at the start, kept it alive. ``"leaky"`` (LeakyReLU 0.1)
removes the absorbing state: a unit pushed below zero still gets a gradient and comes back. The
option changes no parameter; checkpoints saved before it existed load as ``"relu"``.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from .layers import ConvLayer, PixelShuffle_ICNR, ResBlock, SelfAttention
from .registry import Option, register

TAIL_ACTS = ("leaky", "relu")
LEAKY_SLOPE = 0.1


def tail_activation(tail_act: str) -> Callable[[], nn.Module]:
    """The activation class of the tail for ``tail_act`` ("leaky": LeakyReLU(0.1); "relu")."""
    if tail_act == "leaky":
        return partial(nn.LeakyReLU, LEAKY_SLOPE)
    if tail_act == "relu":
        return nn.ReLU
    raise ValueError(f"tail_act must be one of {TAIL_ACTS}, got {tail_act!r}")


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
                 blur: bool = True, norm_type: str = "none", tail_act: str = "leaky") -> None:
        super().__init__()
        self.scale = scale
        act = tail_activation(tail_act)
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
        tail: list[nn.Module] = [ResBlock(1, nf, nf, norm_type=norm_type, act_cls=act)]
        hr_c = nf
        if scale > 1:  # half the features at high resolution: that part is memory-bound
            hr_c = nf // 2
            tail.append(PixelShuffle_ICNR(nf, hr_c, scale=scale, blur=blur, norm_type=norm_type, act_cls=act))
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
        """[head + encoder, middle + decoder, tail + to_rgb]: for discriminative learning rates
        when fine-tuning (``slice(lo, hi)``); a single float trains all three alike."""
        enc = [*self.head.parameters(), *self.down.parameters()]
        dec = [*self.middle.parameters(), *self.up.parameters()]
        out = [*self.tail.parameters(), *self.to_rgb.parameters()]
        return [enc, dec, out]


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
        Option("tail_act", str, "leaky", "Activations of the output tail: 'leaky' (LeakyReLU 0.1; trains from "
               "scratch) or 'relu' (the original tail, whose units die when trained from scratch on small "
               "batches). Checkpoints saved before this option load as 'relu'.", choices=TAIL_ACTS,
               legacy="relu"),
    ),
    facts=lambda o: dict(in_channels=3, out_channels=3, scale=o["scale"], model_scale=o["scale"], size_multiple=8,
                         mean=None, std=None),
)
def _factory(**opts: Any) -> UnetLite:
    return UnetLite(**opts)
