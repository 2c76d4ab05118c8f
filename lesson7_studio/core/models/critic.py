"""fastai v2 ``gan_critic``: the patch critic of lesson 7's GAN (fastai/vision/gan.py, 2.8).

Spectral-normed ConvLayers with LeakyReLU(0.2), dropout, a dense res_block, self-attention after
the first downsampling block, and a final 4x4 conv whose patch map is flattened to (B, n_patches).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from torch import nn

from .layers import ConvLayer, Flatten, SelfAttention, res_block
from .registry import Option, register

_CONV_ARGS = dict(act_cls=partial(nn.LeakyReLU, negative_slope=0.2), norm_type="spectral")


def _conv(ni: int, nf: int, ks: int = 3, stride: int = 1, self_attention: bool = False) -> ConvLayer:
    return ConvLayer(ni, nf, ks=ks, stride=stride, xtra=SelfAttention(nf) if self_attention else None, **_CONV_ARGS)


def gan_critic(n_channels: int = 3, nf: int = 128, n_blocks: int = 3, p: float = 0.15) -> nn.Sequential:
    """(B, n_channels, H, W) -> (B, (H/16 - 3) * (W/16 - 3)) logits, one per patch."""
    layers: list[nn.Module] = [
        _conv(n_channels, nf, ks=4, stride=2),
        nn.Dropout2d(p / 2),
        res_block(nf, dense=True, **_CONV_ARGS),
    ]
    nf *= 2  # the dense block concatenates
    for i in range(n_blocks):
        layers += [nn.Dropout2d(p), _conv(nf, nf * 2, ks=4, stride=2, self_attention=(i == 0))]
        nf *= 2
    layers += [ConvLayer(nf, 1, ks=4, bias=False, padding=0, norm_type="spectral", act_cls=None), Flatten()]
    return nn.Sequential(*layers)


@register(
    "gan-critic",
    description="fastai gan_critic: spectral-norm patch critic with self-attention (lesson 7's critic)",
    kind="critic",
    options=(
        Option("n_channels", int, 3, "Input channels.", minimum=1, maximum=16),
        Option("nf", int, 128, "Features of the first layer (doubled by each block).", minimum=8,
               maximum=1024),
        Option("n_blocks", int, 3, "Downsampling blocks after the dense res_block.", minimum=1, maximum=6),
        Option("p", float, 0.15, "Dropout.", minimum=0.0, maximum=0.9),
    ),
    facts=lambda o: dict(in_channels=o["n_channels"], out_channels=1, size_multiple=2 ** (o["n_blocks"] + 1)),
)
def _factory(**opts: Any) -> nn.Sequential:
    return gan_critic(**opts)
