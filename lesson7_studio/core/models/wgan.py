"""fastai v2 ``basic_generator`` / ``basic_critic``: the DCGAN-style pair of lesson 7's WGAN.

Generator: noise (B, noise_sz) -> image (B, n_channels, in_size, in_size) in [-1, 1] (Tanh).
Critic: image -> (B, 1) score. The critic uses LeakyReLU(0.2) as the WGAN lesson does
(``act_cls=partial(nn.LeakyReLU, negative_slope=0.2)``); parameters are the same as fastai's.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from torch import nn

from ..errors import ModelError
from .layers import AddChannels, ConvLayer, Flatten, init_default
from .registry import Option, register


def _check_size(in_size: int) -> None:
    if in_size < 8 or in_size & (in_size - 1):
        raise ModelError(f"in_size must be a power of two >= 8; got {in_size}.")


class NoiseToImage(nn.Sequential):
    """Sequential that accepts noise as (B, n) or (B, n, 1, 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = x.flatten(1)
        return super().forward(x)


def basic_generator(out_size: int, n_channels: int, in_sz: int = 100, n_features: int = 64,
                    n_extra_layers: int = 0, **kwargs: Any) -> NoiseToImage:
    """Transposed-conv generator from ``in_sz`` noise to ``n_channels`` x ``out_size`` x ``out_size``."""
    _check_size(out_size)
    cur_size, cur_ftrs = 4, n_features // 2
    while cur_size < out_size:
        cur_size *= 2
        cur_ftrs *= 2
    layers: list[nn.Module] = [AddChannels(2), ConvLayer(in_sz, cur_ftrs, 4, 1, transpose=True, **kwargs)]
    cur_size = 4
    while cur_size < out_size // 2:
        layers.append(ConvLayer(cur_ftrs, cur_ftrs // 2, 4, 2, 1, transpose=True, **kwargs))
        cur_ftrs //= 2
        cur_size *= 2
    layers += [ConvLayer(cur_ftrs, cur_ftrs, 3, 1, 1, transpose=True, **kwargs) for _ in range(n_extra_layers)]
    layers += [nn.ConvTranspose2d(cur_ftrs, n_channels, 4, 2, 1, bias=False), nn.Tanh()]
    return NoiseToImage(*layers)


def basic_critic(in_size: int, n_channels: int, n_features: int = 64, n_extra_layers: int = 0,
                 norm_type: str = "batch", **kwargs: Any) -> nn.Sequential:
    """Strided-conv critic for ``n_channels`` x ``in_size`` x ``in_size`` images -> (B, 1)."""
    _check_size(in_size)
    layers: list[nn.Module] = [ConvLayer(n_channels, n_features, 4, 2, 1, norm_type="none", **kwargs)]
    cur_size, cur_ftrs = in_size // 2, n_features
    layers += [ConvLayer(cur_ftrs, cur_ftrs, 3, 1, norm_type=norm_type, **kwargs) for _ in range(n_extra_layers)]
    while cur_size > 4:
        layers.append(ConvLayer(cur_ftrs, cur_ftrs * 2, 4, 2, 1, norm_type=norm_type, **kwargs))
        cur_ftrs *= 2
        cur_size //= 2
    layers += [init_default(nn.Conv2d(cur_ftrs, 1, 4, padding=0)), Flatten()]
    return nn.Sequential(*layers)


_COMMON = (
    Option("in_size", int, 64, "Image size (square, power of two).", choices=(16, 32, 64, 128, 256)),
    Option("n_channels", int, 3, "Image channels.", minimum=1, maximum=16),
)


@register(
    "wgan-generator",
    description="fastai basic_generator: DCGAN generator, noise -> 64x64 image (lesson 7's WGAN)",
    kind="generator",
    options=_COMMON + (
        Option("noise_sz", int, 100, "Length of the noise vector.", minimum=1, maximum=4096),
        Option("n_features", int, 64, "Features of the last hidden layer.", minimum=4, maximum=1024),
        Option("n_extra_layers", int, 1, "Extra 3x3 layers at the last resolution.", minimum=0, maximum=16),
    ),
    facts=lambda o: dict(in_channels=o["noise_sz"], out_channels=o["n_channels"]),
)
def _generator(in_size: int, n_channels: int, noise_sz: int, n_features: int, n_extra_layers: int) -> nn.Module:
    return basic_generator(in_size, n_channels, in_sz=noise_sz, n_features=n_features, n_extra_layers=n_extra_layers)


@register(
    "wgan-critic",
    description="fastai basic_critic: DCGAN critic, 64x64 image -> score (lesson 7's WGAN)",
    kind="critic",
    options=_COMMON + (
        Option("n_features", int, 64, "Features of the first layer.", minimum=4, maximum=1024),
        Option("n_extra_layers", int, 1, "Extra 3x3 layers at the first resolution.", minimum=0, maximum=16),
    ),
    facts=lambda o: dict(in_channels=o["n_channels"], out_channels=1, size_multiple=o["in_size"]),
)
def _critic(in_size: int, n_channels: int, n_features: int, n_extra_layers: int) -> nn.Module:
    return basic_critic(in_size, n_channels, n_features=n_features, n_extra_layers=n_extra_layers,
                        act_cls=partial(nn.LeakyReLU, negative_slope=0.2))
