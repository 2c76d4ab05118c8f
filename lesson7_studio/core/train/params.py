"""Parameters for the optimizer: layer groups (discriminative learning rates), which parameters
get no weight decay (norm layers, biases), and fastai's AdamW."""

from __future__ import annotations

import contextlib
from typing import Any, Sequence

import torch
from torch import nn

NORM_TYPES = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.LayerNorm,
    nn.GroupNorm,
)




def norm_bias_params(model: nn.Module) -> set[int]:
    """ids of normalisation-layer parameters and of biases (fastai: no weight decay on them)."""
    out: set[int] = set()
    for m in model.modules():
        if isinstance(m, NORM_TYPES):
            out.update(id(p) for p in m.parameters(recurse=False))
        b = getattr(m, "bias", None)
        if isinstance(b, nn.Parameter):
            out.add(id(b))
    return out


def norm_params(model: nn.Module) -> list[nn.Parameter]:
    return [p for m in model.modules() if isinstance(m, NORM_TYPES) for p in m.parameters(recurse=False)]


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside DDP / Restorer wrappers that exposes ``layer_groups``."""
    m = getattr(model, "module", model)  # DDP
    return m


@contextlib.contextmanager
def unclamped(model: nn.Module):
    """A Restorer's eval-mode clamp off: validation scores the output training optimizes."""
    clamps = getattr(model, "clamp_eval", None)
    if clamps:
        model.clamp_eval = False
    try:
        yield
    finally:
        if clamps:
            model.clamp_eval = True


def layer_groups_of(model: nn.Module) -> list[list[nn.Parameter]]:
    """Parameter groups for discriminative learning rates: ``net.layer_groups()`` when present.

    Parameters the groups miss go to the last group, so nothing is left out of the optimizer.
    """
    m = unwrap(model)
    net = getattr(m, "net", m)
    groups: list[list[nn.Parameter]]
    if hasattr(net, "layer_groups"):
        groups = [list(g) for g in net.layer_groups()]
        groups = [g for g in groups if g]
    else:
        groups = [list(m.parameters())]
    seen = {id(p) for g in groups for p in g}
    rest = [p for p in m.parameters() if id(p) not in seen]
    if rest:
        groups[-1] = groups[-1] + rest
    return groups


def make_optimizer(
    groups: Sequence[Sequence[nn.Parameter]],
    model: nn.Module,
    *,
    lr: float = 1e-3,
    wd: float = 1e-2,
    wd_bn_bias: bool = False,
    betas: tuple[float, float] = (0.9, 0.99),
    eps: float = 1e-5,
    device: torch.device | None = None,
) -> torch.optim.Optimizer:
    """AdamW (decoupled "true" weight decay) with fastai's defaults.

    Two torch param groups per layer group: with and without weight decay (norm layers and
    biases get none unless ``wd_bn_bias``). Each group dict carries ``layer_group`` so that
    schedules can give every layer group its own learning rate.
    """
    no_wd = set() if wd_bn_bias else norm_bias_params(model)
    pgs = []
    for i, g in enumerate(groups):
        decay = [p for p in g if id(p) not in no_wd]
        nodecay = [p for p in g if id(p) in no_wd]
        if decay:
            pgs.append({"params": decay, "weight_decay": wd, "layer_group": i, "lr": lr})
        if nodecay:
            pgs.append({"params": nodecay, "weight_decay": 0.0, "layer_group": i, "lr": lr})
    kw: dict[str, Any] = {}
    if device is not None and device.type in ("cpu", "cuda"):
        kw["fused"] = True
    else:
        kw["foreach"] = True
    try:
        return torch.optim.AdamW(pgs, lr=lr, betas=betas, eps=eps, **kw)
    except (RuntimeError, TypeError):  # fused kernels unavailable for this build/dtype
        return torch.optim.AdamW(pgs, lr=lr, betas=betas, eps=eps, foreach=True)
