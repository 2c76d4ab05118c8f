"""One registry names every model (DESIGN.md rule 6).

Each model family registers a factory with typed options and facts about its inputs and
outputs. The GUI's model panel, the CLI and checkpoints all use these names::

    from lesson7_studio.core import models
    net = models.create("unet-resnet34", pretrained=False, self_attention=True)
    info = models.describe("unet-resnet34")     # ModelInfo: params, channels, scale, ...
    restorer = models.restorer("unet-resnet34", pretrained=False)  # [0,1] LR in, [0,1] HR out
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn
import torch.nn.functional as F

from ..errors import ModelError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Option:
    """One typed option of a model factory (what the GUI turns into a widget)."""

    name: str
    type: type  # int, float, bool, str, tuple
    default: Any
    help: str = ""
    choices: tuple | None = None  # allowed values for str/int options
    minimum: float | None = None
    maximum: float | None = None

    def coerce(self, model: str, value: Any) -> Any:
        try:
            if self.type is bool and isinstance(value, str):
                low = value.strip().lower()
                if low not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(value)
                value = low in ("1", "true", "yes", "on")
            elif self.type is tuple:
                if value is not None:
                    if isinstance(value, str):
                        value = tuple(float(v) for v in value.strip("()[] ").split(","))
                    value = tuple(value)
            elif value is not None and self.type is not type(None):
                if self.type is int and isinstance(value, float) and not value.is_integer():
                    raise ValueError(value)
                value = self.type(value)
        except (TypeError, ValueError):
            raise ModelError(
                f"Option '{self.name}' of model '{model}' must be {self.type.__name__}, got {value!r}."
            ) from None
        if self.choices is not None and value not in self.choices:
            raise ModelError(
                f"Option '{self.name}' of model '{model}' must be one of "
                f"{', '.join(map(repr, self.choices))}; got {value!r}."
            )
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.minimum is not None and value < self.minimum:
                raise ModelError(f"Option '{self.name}' of model '{model}' must be >= {self.minimum}; got {value}.")
            if self.maximum is not None and value > self.maximum:
                raise ModelError(f"Option '{self.name}' of model '{model}' must be <= {self.maximum}; got {value}.")
        return value


@dataclass(frozen=True)
class ModelInfo:
    """Facts about a built model (spandrel-style descriptor)."""

    name: str
    description: str
    kind: str  # "restorer" | "critic" | "generator" | "classifier"
    options: dict[str, Any]  # fully resolved options
    params: int
    in_channels: int
    out_channels: int
    scale: int  # task scale: output pixels per degraded-input pixel (per side)
    model_scale: int  # what the network itself upsamples; input is resized by scale/model_scale first
    size_multiple: int  # network input H and W must be multiples of this
    mean: tuple[float, ...] | None  # input normalisation (None: inputs in [0, 1])
    std: tuple[float, ...] | None
    uses_pretrained: str | None = None  # name of the weights file it would load, if any

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return d


@dataclass
class Entry:
    name: str
    description: str
    kind: str
    factory: Callable[..., nn.Module]
    options: tuple[Option, ...]
    # (resolved options) -> dict of ModelInfo fields: in_channels, out_channels, scale,
    # model_scale, size_multiple, mean, std, uses_pretrained
    facts: Callable[[dict[str, Any]], dict[str, Any]]


_REGISTRY: dict[str, Entry] = {}


def register(
    name: str,
    *,
    description: str,
    kind: str,
    options: tuple[Option, ...] | list[Option],
    facts: Callable[[dict[str, Any]], dict[str, Any]],
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register ``factory(**options) -> nn.Module`` under ``name``."""

    def deco(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise RuntimeError(f"model {name!r} registered twice")
        _REGISTRY[name] = Entry(name, description, kind, factory, tuple(options), facts)
        return factory

    return deco


def _ensure_loaded() -> None:
    # Importing the package registers every family (see models/__init__.py).
    from . import _families  # noqa: F401


def entry(name: str) -> Entry:
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ModelError(
            f"Unknown model '{name}'. Known models: {', '.join(sorted(_REGISTRY))}."
        ) from None


def names(kind: str | None = None) -> list[str]:
    """Registered model names, in registration order (optionally of one kind)."""
    _ensure_loaded()
    return [n for n, e in _REGISTRY.items() if kind is None or e.kind == kind]


def resolve_options(name: str, **options: Any) -> dict[str, Any]:
    """Defaults filled in, types checked; unknown options raise ModelError listing valid ones."""
    e = entry(name)
    valid = {o.name: o for o in e.options}
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ModelError(
            f"Unknown option(s) {', '.join(unknown)} for model '{name}'. "
            f"Valid options: {', '.join(valid) or 'none'}."
        )
    out = {}
    for o in e.options:
        out[o.name] = o.coerce(name, options[o.name]) if o.name in options else o.default
    return out


def create(name: str, **options: Any) -> nn.Module:
    """Build the bare network ``name`` with ``options``."""
    e = entry(name)
    opts = resolve_options(name, **options)
    return e.factory(**opts)


_PARAMS_CACHE: dict[tuple[str, str], int] = {}


def _count_params(e: Entry, opts: dict[str, Any]) -> int:
    """Parameter count of ``e`` built with ``opts``, without weights: the net is built on the
    meta device (no memory, no init cost), falling back to a real build if a factory cannot."""
    key = (e.name, repr(sorted(opts.items())))
    if key not in _PARAMS_CACHE:
        build_opts = {**opts, "pretrained": False} if "pretrained" in opts else opts  # never needs weights
        try:
            with torch.device("meta"):
                model = e.factory(**build_opts)
        except ModelError:
            raise
        except Exception:
            model = e.factory(**build_opts)
        _PARAMS_CACHE[key] = sum(p.numel() for p in model.parameters())
    return _PARAMS_CACHE[key]


def describe(name: str, model: nn.Module | None = None, **options: Any) -> ModelInfo:
    """Parameter count, channels, scale, size multiple and description of a model.

    Pass ``model`` when it is already built to avoid building it again.
    """
    e = entry(name)
    opts = resolve_options(name, **options)
    if model is None:
        params = _count_params(e, opts)
    else:
        params = sum(p.numel() for p in model.parameters())
    facts = e.facts(opts)
    return ModelInfo(
        name=name,
        description=e.description,
        kind=e.kind,
        options=opts,
        params=params,
        in_channels=facts["in_channels"],
        out_channels=facts["out_channels"],
        scale=int(facts.get("scale", 1)),
        model_scale=int(facts.get("model_scale", 1)),
        size_multiple=int(facts.get("size_multiple", 1)),
        mean=tuple(facts["mean"]) if facts.get("mean") is not None else None,
        std=tuple(facts["std"]) if facts.get("std") is not None else None,
        uses_pretrained=facts.get("uses_pretrained"),
    )


class Restorer(nn.Module):
    """A restoration network behind one convention: degraded [0,1] RGB in, restored [0,1] out.

    It resizes the input by ``scale / model_scale`` (bicubic; the lesson's U-Nets restore at
    the input's size, so they get the upsampled image), normalises with the model's mean/std,
    runs the network and maps the output back to [0,1]. Training, restoring, evaluation and
    ONNX export all go through it. Outputs are clamped to [0,1] in eval mode only. Inputs must
    already be padded so that the resized size is a multiple of ``info.size_multiple``.
    """

    def __init__(self, net: nn.Module, info: ModelInfo) -> None:
        super().__init__()
        self.net = net
        self.info = info
        self.pre_scale = info.scale // info.model_scale if info.scale >= info.model_scale else 1
        if info.scale % info.model_scale:
            raise ModelError(f"Model scale {info.model_scale} does not divide task scale {info.scale}.")
        if info.mean is not None:
            self.register_buffer("mean", torch.tensor(info.mean).view(1, -1, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(info.std).view(1, -1, 1, 1), persistent=False)
        else:
            self.mean = None
            self.std = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, h, w) -> (B, C, h*scale, w*scale)
        if self.pre_scale != 1:
            x = F.interpolate(x, scale_factor=self.pre_scale, mode="bicubic", align_corners=False)
        if self.mean is not None:
            x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        y = self.net(x)
        if self.mean is not None:
            y = y * self.std.to(y.dtype) + self.mean.to(y.dtype)
        if not self.training:
            y = y.clamp(0, 1)
        return y


def restorer(name: str, net: nn.Module | None = None, **options: Any) -> Restorer:
    """Build (or wrap an already built ``net``) a :class:`Restorer` for a restorer model."""
    e = entry(name)
    if e.kind != "restorer":
        raise ModelError(f"Model '{name}' is a {e.kind}, not an image restorer.")
    if net is None:
        net = create(name, **options)
    return Restorer(net, describe(name, model=net, **options))


def options_of(name: str) -> tuple[Option, ...]:
    return entry(name).options
