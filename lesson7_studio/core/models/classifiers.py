"""The small from-scratch MNIST classifiers of lesson 7's resnet-mnist notebook.

``conv2(ni, nf)`` is a stride-2 ConvLayer (conv, BatchNorm, ReLU); each stage is ``conv2``
followed by a ``res_block``. The notebook's channels are 8, 16, 32, 16 and a last ``conv2`` to
the classes, flattened: a 28x28 input ends at 1x1, giving (B, n_classes) logits. The dense
variant concatenates in its res_blocks, so each next stage sees twice the channels.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .layers import ConvLayer, Flatten, res_block
from .registry import Option, register

STAGES = (8, 16, 32, 16)


def conv2(ni: int, nf: int) -> ConvLayer:
    return ConvLayer(ni, nf, stride=2)


def mnist_resnet(n_in: int = 1, n_classes: int = 10, dense: bool = False) -> nn.Sequential:
    """(B, n_in, 28, 28) -> (B, n_classes)."""
    layers: list[nn.Module] = []
    c = n_in
    for nf in STAGES:
        layers.append(nn.Sequential(conv2(c, nf), res_block(nf, dense=dense)))
        c = nf * 2 if dense else nf
    layers += [conv2(c, n_classes), Flatten()]
    return nn.Sequential(*layers)


_OPTIONS = (
    Option("n_in", int, 1, "Input channels (1 for MNIST).", minimum=1),
    Option("n_classes", int, 10, "Number of classes.", minimum=2),
)


def _facts(o: dict[str, Any]) -> dict[str, Any]:
    return dict(in_channels=o["n_in"], out_channels=o["n_classes"], size_multiple=1)


@register("resnet-classifier", kind="classifier", options=_OPTIONS, facts=_facts,
          description="Lesson 7 resnet-mnist: stride-2 conv layers + res_blocks, 28x28 digits -> classes")
def _resnet(n_in: int, n_classes: int) -> nn.Module:
    return mnist_resnet(n_in, n_classes, dense=False)


@register("densenet-classifier", kind="classifier", options=_OPTIONS, facts=_facts,
          description="Lesson 7 resnet-mnist, dense variant: res_blocks concatenate instead of add")
def _densenet(n_in: int, n_classes: int) -> nn.Module:
    return mnist_resnet(n_in, n_classes, dense=True)
