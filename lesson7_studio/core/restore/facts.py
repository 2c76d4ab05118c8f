"""What tiling needs to know about a model (its scale and size constraints), and the per-model
cache of decisions made once (precision verdict, memory estimate, channels_last, bf16 copy)."""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import Any

from ..errors import ModelError

# Per-model cache: precision decisions and the activation-memory estimate, keyed by model.
MODEL_CACHE: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def model_cache(model: Any) -> dict:
    """The cache entry of ``model`` (a fresh, unkept dict for models that cannot be weakly referenced)."""
    try:
        return MODEL_CACHE.setdefault(model, {})
    except TypeError:  # not weak-referenceable: no caching
        return {}


@dataclass(frozen=True)
class ModelFacts:
    """What tiling needs to know about a model."""

    scale: int  # output px per input px (per side)
    pre_scale: int  # the model's own bicubic resize before its network (scale / model_scale)
    size_multiple: int  # network input H, W multiple
    lr_multiple: int  # LR tile H, W multiple: size_multiple / gcd(size_multiple, pre_scale)
    min_size: int  # smallest LR tile side the model accepts
    square: bool = False  # tiles must be square (some foreign architectures)


def model_facts(model: Any) -> ModelFacts:
    """Scale and size constraints of a Restorer-like model (reads ``model.info``)."""
    info = getattr(model, "info", None)
    if info is None or not hasattr(info, "scale"):
        raise ModelError(
            f"{type(model).__name__} does not describe itself (no .info.scale); "
            "wrap the network with models.restorer(name, net=...) or load it with load_any_model()."
        )
    scale = int(info.scale)
    model_scale = int(getattr(info, "model_scale", scale) or scale)
    pre = scale // model_scale if scale >= model_scale else 1
    m = max(1, int(getattr(info, "size_multiple", 1) or 1))
    lr_mult = m // math.gcd(m, pre)
    min_size = int(getattr(model, "min_size", 0) or 0)
    min_lr = max(1, -(-min_size // pre)) if min_size else 1
    return ModelFacts(
        scale=scale, pre_scale=pre, size_multiple=m, lr_multiple=lr_mult, min_size=min_lr,
        square=bool(getattr(model, "square", False)),
    )
