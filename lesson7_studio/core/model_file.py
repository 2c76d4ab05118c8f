"""What a model *file* is: the facts ``lesson7-studio models FILE`` prints, for any file that
:func:`.restore.load_any_model` can load (our .safetensors checkpoints, .onnx exports and
community .pth/.pt/.ckpt/.safetensors weights read through spandrel).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from torch import nn

from .errors import CheckpointError

__all__ = ["describe_model_file"]


def _kind(model: Any) -> str:
    from .export import OnnxRestorer
    from .restore import SpandrelRestorer

    if isinstance(model, OnnxRestorer):
        return "onnx"
    if isinstance(model, SpandrelRestorer):
        return "community (spandrel)"
    return "lesson7 checkpoint"


def _params(model: Any) -> int | None:
    if isinstance(model, nn.Module):
        return sum(p.numel() for p in model.parameters())
    try:  # ONNX: the sizes of the graph's weights
        import onnx

        proto = onnx.load(str(model.path), load_external_data=False)
        return sum(math.prod(t.dims) for t in proto.graph.initializer)
    except Exception:  # noqa: BLE001 - onnx not installed or an unusual file: unknown, not fatal
        return None


def _precisions(model: Any) -> list[str]:
    allowed = getattr(model, "precisions", None)
    if allowed is not None:
        return [p for p in ("fp32", "bf16", "fp16") if p in allowed]
    return ["fp32", "bf16", "fp16"]


def _stored_verdicts(path: Path) -> dict[str, Any]:
    """Verdicts of precision "auto" already known for this file (any device)."""
    from . import precision_cache

    try:
        return precision_cache.verdicts_for(precision_cache.file_hash(path))
    except OSError:
        return {}


def describe_model_file(path: str | os.PathLike) -> dict[str, Any]:
    """Facts about the model in ``path``: format, architecture, scale, parameters, the tiling rules
    restore follows (size multiple, smallest tile, square tiles, whether an ONNX file takes any
    size and carries a memory estimate) and the precisions it runs in. Raises what
    :func:`.restore.load_any_model` raises for a file it cannot load."""
    from .restore import load_any_model, model_facts

    p = Path(path).expanduser()
    if not p.is_file():
        raise CheckpointError(f"Model file not found: {p}", hint="Give the path of a .safetensors, .onnx, .pth or .pt file.")
    model = load_any_model(p, device="cpu")
    info = model.info
    facts = model_facts(model)
    kind = _kind(model)
    out: dict[str, Any] = {
        "file": str(p),
        "bytes": p.stat().st_size,
        "format": kind,
        "architecture": str(getattr(info, "name", type(model).__name__)),
        "description": str(getattr(info, "description", "")),
        "scale": facts.scale,
        "network_scale": int(getattr(info, "model_scale", facts.scale) or facts.scale),
        "parameters": _params(model),
        "tiling": {
            "size_multiple": facts.size_multiple,
            "input_multiple": facts.lr_multiple,
            "min_tile": facts.min_size,
            "square_tiles": facts.square,
        },
        "precisions": _precisions(model),
        "options": dict(getattr(info, "options", {}) or {}),
    }
    if kind == "onnx":
        out["tiling"]["any_size"] = bool(getattr(model, "dynamic_size", False))
        out["tiling"]["memory_estimate"] = getattr(model, "memory_estimate", None) is not None
    meta = getattr(model, "checkpoint_meta", None)
    if isinstance(meta, dict):
        training = meta.get("training") or {}
        out["recipe"] = meta.get("recipe") or (training.get("config") or {}).get("recipe")
        metrics = training.get("metrics") if isinstance(training, dict) else None
        if metrics:
            out["metrics"] = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    verdicts = _stored_verdicts(p)
    if verdicts:
        out["precision_auto_verdicts"] = verdicts
    return out
