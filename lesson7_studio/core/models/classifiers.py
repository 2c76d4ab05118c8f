"""The small from-scratch MNIST classifiers of lesson 7's resnet-mnist notebook.

``conv2(ni, nf)`` is the notebook's stride-2 ``conv_layer``: a 3x3 conv without bias, ReLU,
then BatchNorm (fastai v1's order), kaiming-normal initialised. The plain CNN is five of them,
8, 16, 32, 16 channels and a last one to the classes, flattened: a 28x28 input ends at 1x1,
giving (B, n_classes) logits. The ResNet-ish net puts a ``res_block`` (two convs, the second
with zero-initialised BatchNorm, added to the input) after each of the first four; the dense
variant concatenates in its res_blocks, so each next stage sees twice the channels.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .layers import ConvLayer, Flatten, res_block
from .registry import Option, register

STAGES = (8, 16, 32, 16)
INPUT_SIZE = 28  # the nets end at 1x1 for 28x28 inputs (28 -> 14 -> 7 -> 4 -> 2 -> 1)


def conv_layer(ni: int, nf: int, stride: int = 1) -> ConvLayer:
    """fastai v1 ``conv_layer``: conv (no bias), ReLU, BatchNorm; kaiming-normal weights."""
    return ConvLayer(ni, nf, stride=stride, bn_1st=False, init=nn.init.kaiming_normal_)


def conv2(ni: int, nf: int) -> ConvLayer:
    return conv_layer(ni, nf, stride=2)


def mnist_cnn(n_in: int = 1, n_classes: int = 10) -> nn.Sequential:
    """The notebook's refactored plain CNN: (B, n_in, 28, 28) -> (B, n_classes)."""
    layers: list[nn.Module] = []
    c = n_in
    for nf in STAGES:
        layers.append(conv2(c, nf))
        c = nf
    layers += [conv2(c, n_classes), Flatten()]
    return nn.Sequential(*layers)


def mnist_resnet(n_in: int = 1, n_classes: int = 10, dense: bool = False) -> nn.Sequential:
    """(B, n_in, 28, 28) -> (B, n_classes)."""
    layers: list[nn.Module] = []
    c = n_in
    for nf in STAGES:
        block = res_block(nf, dense=dense, bn_1st=False, init=nn.init.kaiming_normal_)
        layers.append(nn.Sequential(conv2(c, nf), block))
        c = nf * 2 if dense else nf
    layers += [conv2(c, n_classes), Flatten()]
    return nn.Sequential(*layers)


_OPTIONS = (
    Option("n_in", int, 1, "Input channels (1 for MNIST).", minimum=1, maximum=4),
    Option("n_classes", int, 10, "Number of classes.", minimum=2, maximum=10000),
)


def _facts(o: dict[str, Any]) -> dict[str, Any]:
    return dict(in_channels=o["n_in"], out_channels=o["n_classes"], size_multiple=1)


@register("cnn-classifier", kind="classifier", options=_OPTIONS, facts=_facts,
          description="Lesson 7 resnet-mnist: the plain CNN, five stride-2 conv layers, 28x28 digits -> classes")
def _cnn(n_in: int, n_classes: int) -> nn.Module:
    return mnist_cnn(n_in, n_classes)


@register("resnet-classifier", kind="classifier", options=_OPTIONS, facts=_facts,
          description="Lesson 7 resnet-mnist: stride-2 conv layers + res_blocks, 28x28 digits -> classes")
def _resnet(n_in: int, n_classes: int) -> nn.Module:
    return mnist_resnet(n_in, n_classes, dense=False)


@register("densenet-classifier", kind="classifier", options=_OPTIONS, facts=_facts,
          description="Lesson 7 resnet-mnist, dense variant: res_blocks concatenate instead of add")
def _densenet(n_in: int, n_classes: int) -> nn.Module:
    return mnist_resnet(n_in, n_classes, dense=True)
