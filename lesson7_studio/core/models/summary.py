"""What a front end shows of the registry: the catalogue grouped by kind, a model's size
(parameters, weights and the activations of one image, measured on the meta device: shapes
only, no memory, no weights loaded) and the status of its pretrained weights.

The Model panel calls these from its workers; the CLI and a notebook can too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import nn

from ..events import CancelToken, EventCallback, check
from . import registry

KIND_ORDER = ("restorer", "critic", "generator", "classifier", "language-model")
LESSON_KINDS = ("classifier", "language-model")  # small enough to list with their parameter counts
FLOAT32_BYTES = 4


@dataclass(frozen=True)
class CatalogEntry:
    """One registry model as a list shows it."""

    name: str
    kind: str
    description: str
    options: tuple[registry.Option, ...]
    params: int | None = None  # with the default options; only for the small lesson models

    def defaults(self) -> dict[str, Any]:
        return {o.name: o.default for o in self.options}


def catalog() -> list[CatalogEntry]:
    """Every registry model: the restorers first (in registration order), then the others by
    kind (critics, generators, classifiers, language models)."""
    restorers = registry.names("restorer")

    def rank(n: str) -> int:
        kind = registry.entry(n).kind
        return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)

    order = restorers + sorted((n for n in registry.names() if n not in restorers), key=rank)
    out = []
    for n in order:
        e = registry.entry(n)
        params = registry.describe(n).params if e.kind in LESSON_KINDS else None
        out.append(CatalogEntry(n, e.kind, e.description, tuple(e.options), params))
    return out


def resolve_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with the defaults filled in and checked (ModelError naming a bad one)."""
    return registry.resolve_options(name, **options)


@dataclass(frozen=True)
class ModelSize:
    """The size of a model for one input: ``act_bytes`` is None where a layer refuses the meta
    device (no estimate then)."""

    name: str
    kind: str
    params: int
    weights_bytes: int
    act_bytes: int | None
    per: str  # what the activations are for: "one 256×256 image", "one row of 20 tokens" ...


def _is_leaf(m: nn.Module) -> bool:
    """A layer with no sub-layers; a weight-normed or spectral-normed one counts (its only child
    holds the parametrization of its weight, whose output is a weight, not an activation)."""
    return all(name == "parametrizations" for name, _ in m.named_children())


def activation_bytes(net: nn.Module, x: torch.Tensor) -> int | None:
    """Bytes (float32) of every leaf module's output on input ``x``, per item of its batch: what
    training keeps for the backward pass. Run on meta tensors by :func:`estimate`; None when
    the forward pass fails (some layers refuse meta tensors)."""
    total = [0]

    def hook(_m, _i, out):
        if isinstance(out, torch.Tensor):
            total[0] += out.numel()
        elif isinstance(out, (tuple, list)):
            total[0] += sum(o.numel() for o in out if isinstance(o, torch.Tensor))

    hooks = [m.register_forward_hook(hook) for name, m in net.named_modules()
             if _is_leaf(m) and "parametrizations" not in name.split(".")]
    try:
        with torch.no_grad():
            net(x)
    except Exception:  # noqa: BLE001 - a layer that refuses meta tensors: no estimate
        return None
    finally:
        for h in hooks:
            h.remove()
    return total[0] * FLOAT32_BYTES // x.shape[0]


def _probe(name: str, info: registry.ModelInfo, size: int) -> tuple[torch.Tensor, str]:
    """A meta input for ``name`` and what it stands for."""
    if info.kind == "generator":
        return torch.empty(1, info.in_channels, 1, 1, device="meta"), "one image"
    if info.kind == "language-model":  # token ids: two rows of the lesson's bptt (batch norm needs two)
        bptt = 3 if name == "rnn-model0" else 20
        return torch.zeros(2, bptt, dtype=torch.long, device="meta"), f"one row of {bptt} tokens"
    if info.kind == "classifier":  # the lesson's nets take 28x28 digits; two, for batch norm at 1x1
        return torch.empty(2, info.in_channels, 28, 28, device="meta"), "one 28×28 image"
    side = max(size // max(info.model_scale, 1), 1)
    m = max(info.size_multiple, 1)
    side = max(m, (side + m - 1) // m * m)
    return torch.empty(1, info.in_channels, side, side, device="meta"), f"one {size}×{size} image"


def estimate(name: str, options: dict[str, Any], size: int, *, on_event: Optional[EventCallback] = None,
             cancel: Optional[CancelToken] = None) -> ModelSize:
    """Parameters, weights and activation memory of ``name`` for one ``size`` x ``size`` output
    image (the lesson models: one digit, one row of tokens). Built on the meta device."""
    opts = dict(options)
    if "pretrained" in opts:
        opts["pretrained"] = False
    check(cancel)
    with torch.device("meta"):
        net = registry.create(name, **opts)
    info = registry.describe(name, model=net, **opts)
    x, per = _probe(name, info, size)
    check(cancel)
    act = activation_bytes(net, x)
    return ModelSize(name=name, kind=info.kind, params=info.params, weights_bytes=info.params * FLOAT32_BYTES,
                     act_bytes=act, per=per)


def weights_report(name: str, options: dict[str, Any], *, on_event: Optional[EventCallback] = None,
                   cancel: Optional[CancelToken] = None) -> dict[str, Any] | None:
    """Where the pretrained encoder weights of a model with a ``pretrained`` option are, and
    whether they are there (may look at the network); None for a model without such weights."""
    from .. import weights

    arch = name.removeprefix("unet-")
    if "pretrained" not in options or arch not in weights.ARCHS:
        return None
    check(cancel)
    return {
        "arch": arch,
        "status": weights.weights_status(arch),
        "file": weights.weights_filename(arch),
        "path": str(weights.weights_path(arch)),
        "dir": str(weights.weights_dir()),
        "url": weights.weights_url(arch),
        "wanted": bool(options.get("pretrained")),
    }
