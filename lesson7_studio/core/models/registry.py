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
import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from ..errors import ModelError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# The most parameters a network may have (6 GB of float32 weights): every option is bounded on
# its own, and this bounds their product (e.g. a critic's nf doubled by each of n_blocks).
MAX_PARAMS = 1_500_000_000


NO_LEGACY = object()  # Option.legacy when the option has been there since the first checkpoint


@dataclass(frozen=True)
class Option:
    """One typed option of a model factory (what the GUI turns into a widget).

    Every int and float option is bounded (``minimum`` and ``maximum``, or ``choices``), and so
    is every element of a tuple option (which also has a fixed ``length``): :func:`register`
    refuses an option without bounds, so a checkpoint's metadata can never ask for a network
    of absurd size.
    """

    name: str
    type: type  # int, float, bool, str, tuple
    default: Any
    help: str = ""
    choices: tuple | None = None  # allowed values for str/int options
    minimum: float | None = None
    maximum: float | None = None
    length: int | None = None  # tuple options: number of elements
    # The value a checkpoint saved before this option existed was built with (its stored options
    # lack the name); NO_LEGACY: such checkpoints take the default (see resolve_stored_options).
    legacy: Any = NO_LEGACY

    def _fail(self, model: str, what: str, value: Any) -> ModelError:
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        return ModelError(f"Option '{self.name}' of model '{model}' must be {what}; got {shown}.")

    def _bounded(self, model: str, value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            raise self._fail(model, "a finite number", value)
        if self.minimum is not None and value < self.minimum:
            raise self._fail(model, f">= {self.minimum}", value)
        if self.maximum is not None and value > self.maximum:
            raise self._fail(model, f"<= {self.maximum}", value)
        return value

    def _number(self, model: str, value: Any, kind: type) -> Any:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, str)):
            raise self._fail(model, kind.__name__, value)
        try:
            if isinstance(value, numbers.Integral):  # numpy integers too
                value = int(value)
            elif not isinstance(value, str):
                value = float(value)
            if kind is int:
                if isinstance(value, str):
                    value = float(value.strip()) if any(c in value for c in ".eE") else int(value.strip())
                if isinstance(value, float):
                    if not value.is_integer():
                        raise ValueError(value)
                    value = int(value)
            else:
                value = float(value)
        except (TypeError, ValueError, OverflowError):
            raise self._fail(model, kind.__name__, value) from None
        return value

    def coerce(self, model: str, value: Any) -> Any:
        if self.type is bool:
            if isinstance(value, str):
                low = value.strip().lower()
                if low not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise self._fail(model, "true or false", value)
                value = low in ("1", "true", "yes", "on")
            elif isinstance(value, (bool, np.bool_)) or (isinstance(value, numbers.Integral) and value in (0, 1)):
                value = bool(value)
            else:
                raise self._fail(model, "true or false", value)
        elif self.type is tuple:
            if value is None:
                return None
            if isinstance(value, str):
                try:
                    value = tuple(float(v) for v in value.strip("()[] ").split(","))
                except ValueError:
                    raise self._fail(model, "numbers separated by commas", value) from None
            if not isinstance(value, (list, tuple)):
                raise self._fail(model, "a list of numbers", value)
            if self.length is not None and len(value) != self.length:
                raise self._fail(model, f"{self.length} numbers", value)
            value = tuple(self._bounded(model, self._number(model, v, float)) for v in value)
        elif self.type in (int, float):
            value = self._bounded(model, self._number(model, value, self.type))
        elif self.type is str:
            if not isinstance(value, str):
                raise self._fail(model, "text", value)
        if self.choices is not None and value not in self.choices:
            raise self._fail(model, f"one of {', '.join(map(repr, self.choices))}", value)
        return value

    def check_bounded(self, model: str) -> None:
        """RuntimeError unless this option's values are bounded (a programming error)."""
        numeric = self.type in (int, float, tuple)
        if numeric and self.choices is None and (self.minimum is None or self.maximum is None):
            raise RuntimeError(f"option {self.name!r} of model {model!r} needs a minimum and a maximum")
        if self.type is tuple and self.length is None:
            raise RuntimeError(f"tuple option {self.name!r} of model {model!r} needs a length")
        if self.type is str and self.choices is None:
            raise RuntimeError(f"str option {self.name!r} of model {model!r} needs choices")


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
        for o in options:
            o.check_bounded(name)
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


def with_legacy_options(name: str, stored: dict[str, Any]) -> dict[str, Any]:
    """Options read from a checkpoint, plus the ``legacy`` value of each option added after it was
    written (absent from ``stored``), so old files rebuild the network they were trained as."""
    filled = dict(stored)
    for o in entry(name).options:
        if o.name not in filled and o.legacy is not NO_LEGACY:
            filled[o.name] = o.legacy
    return filled


def resolve_stored_options(name: str, stored: dict[str, Any]) -> dict[str, Any]:
    """:func:`resolve_options` for options read from a checkpoint (see :func:`with_legacy_options`)."""
    return resolve_options(name, **with_legacy_options(name, stored))


def create(name: str, **options: Any) -> nn.Module:
    """Build the bare network ``name`` with ``options`` (ModelError past MAX_PARAMS parameters)."""
    e = entry(name)
    opts = resolve_options(name, **options)
    _count_params(e, opts)  # on the meta device: refuses a net too big before allocating it
    return e.factory(**opts)


_PARAMS_CACHE: dict[tuple[str, str], int] = {}


def build_on_meta(name: str, opts: dict[str, Any]) -> nn.Module:
    """``name`` built with resolved ``opts`` on the meta device: shapes only, no memory, no
    weights (``pretrained`` is off). Every registered factory supports it (a test checks)."""
    e = entry(name)
    build_opts = {**opts, "pretrained": False} if "pretrained" in opts else opts
    try:
        with torch.device("meta"):
            return e.factory(**build_opts)
    except ModelError:
        raise
    except Exception as err:  # a factory bug, or options whose combination it rejects
        raise ModelError(f"Model '{name}' cannot be built with options {short_options(opts)}: "
                         f"{type(err).__name__}: {err}") from None


def short_options(opts: dict[str, Any]) -> str:
    """``opts`` as "k=v, ..." for a message, at most 200 characters."""
    text = ", ".join(f"{k}={v!r}" for k, v in opts.items())
    return text if len(text) <= 200 else text[:197] + "..."


def _count_params(e: Entry, opts: dict[str, Any]) -> int:
    """Parameter count of ``e`` built with ``opts``, from a build on the meta device (cached).
    ModelError when it exceeds MAX_PARAMS."""
    key = (e.name, repr(sorted(opts.items())))
    if key not in _PARAMS_CACHE:
        model = build_on_meta(e.name, opts)
        n = sum(p.numel() for p in model.parameters())
        if n > MAX_PARAMS:
            raise ModelError(
                f"Model '{e.name}' with options {short_options(opts)} would have {n / 1e6:,.0f} M parameters "
                f"({n * 4 / 1e9:,.1f} GB); the most allowed is {MAX_PARAMS / 1e6:,.0f} M.",
                hint="Choose smaller options (fewer features or blocks).")
        _PARAMS_CACHE[key] = n
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
    ONNX export all go through it. Outputs are clamped to [0,1] in eval mode only (and not while
    the training loop validates: ``clamp_eval``). Inputs must already be padded so that the
    resized size is a multiple of ``info.size_multiple``.
    """

    # The training loop's validation sets this False, so valid_loss scores the same unclamped
    # output the training loss does (a network whose raw output left [0,1] would otherwise look
    # fine in validation while its training loss soared).
    clamp_eval: bool = True

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
        if not self.training and self.clamp_eval:
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
