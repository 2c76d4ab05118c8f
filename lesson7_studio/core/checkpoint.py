"""Checkpoints that describe themselves and never execute code (DESIGN.md rule 5).

A checkpoint is a ``.safetensors`` file: the model's state dict plus, in the header metadata, one
JSON string under the key ``"lesson7"``::

    {"format_version": 1, "name": "unet-resnet34", "kind": "restorer",
     "options": {...},            # resolved registry options (tuples stored as lists)
     "scale": 2, "model_scale": 1, "size_multiple": 32, "mean": [...], "std": [...],
     "params": 41413534, "dtype": "float32" | "float16",
     "app_version": "0.1.0", "created": "2025-01-01T12:00:00+00:00",
     "info": {...}}               # free-form: training summary, crappify recipe, ...

Loading rebuilds the network from the registry with those options and loads the tensors.
Foreign weights (.pth/.pt/.ckpt) are read only with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from .errors import CheckpointError, DeviceError, Lesson7Error, ModelError, UnsafeFileError
from .images import atomic_write
from .models import registry

FORMAT_VERSION = 1
META_KEY = "lesson7"
FOREIGN_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".pkl")


def _app_version() -> str:
    from lesson7_studio import __version__

    return __version__


def _json_default(o: Any) -> Any:
    if isinstance(o, (tuple, set, frozenset)):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, (_dt.datetime, _dt.date)):
        return o.isoformat()
    if hasattr(o, "item") and callable(o.item):  # numpy / torch scalars
        try:
            return o.item()
        except (TypeError, ValueError, RuntimeError):
            pass
    if hasattr(o, "tolist") and callable(o.tolist):
        return o.tolist()
    if hasattr(o, "to_json") and callable(o.to_json):
        return o.to_json()
    return str(o)


def _jsonable_options(options: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}


def _unwrap(model: nn.Module) -> nn.Module:
    """Restorer -> its net; torch.compile / (Distributed)DataParallel -> the wrapped module."""
    seen = 0
    while seen < 8:
        seen += 1
        if isinstance(model, registry.Restorer):
            model = model.net
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        elif isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
        else:
            break
    return model


_SHAPES_CACHE: dict[tuple[str, str], dict[str, tuple[int, ...]]] = {}


def _expected_shapes(name: str, opts: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of ``name`` built with ``opts`` (built on the meta device, cached)."""
    key = (name, repr(sorted(opts.items())))
    if key not in _SHAPES_CACHE:
        build = {**opts, "pretrained": False} if "pretrained" in opts else opts
        e = registry.entry(name)
        try:
            with torch.device("meta"):
                ref = e.factory(**build).state_dict()
        except ModelError:
            raise
        except Exception:
            ref = e.factory(**build).state_dict()
        _SHAPES_CACHE[key] = {k: tuple(v.shape) for k, v in ref.items()}
    return _SHAPES_CACHE[key]


def _check_matches(name: str, opts: dict[str, Any], sd: Mapping[str, torch.Tensor]) -> None:
    """The options must rebuild a network with exactly these tensor names and shapes."""
    ref = _expected_shapes(name, opts)
    missing = sorted(set(ref) - set(sd))
    unexpected = sorted(set(sd) - set(ref))
    bad_shape = sorted(k for k in set(ref) & set(sd) if ref[k] != tuple(sd[k].shape))
    if missing or unexpected or bad_shape:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:3])}{' ...' if len(unexpected) > 3 else ''}")
        if bad_shape:
            k = bad_shape[0]
            parts.append(f"shape of {k} is {tuple(sd[k].shape)}, expected {ref[k]}")
        raise ModelError(f"The weights are not those of '{name}' with options {opts}: {'; '.join(parts)}.")


def save_model(path: str | os.PathLike, model: nn.Module, name: str, options: Mapping[str, Any] | None = None,
               info: Mapping[str, Any] | None = None, half: bool = False) -> Path:
    """Write ``model`` (a registered net, or a Restorer wrapping one) to ``path`` atomically.

    ``options`` are the registry options it was built with (missing ones take their defaults).
    ``half`` stores floating tensors as float16 (they load back as float32).
    """
    path = Path(path)
    from safetensors.torch import save_file

    net = _unwrap(model)
    opts = registry.resolve_options(name, **dict(options or {}))
    sd = net.state_dict()
    _check_matches(name, opts, sd)
    desc = registry.describe(name, model=net, **opts)
    tensors: dict[str, torch.Tensor] = {}
    seen: set[tuple[int, int]] = set()
    for k, v in sd.items():
        t = v.detach().to("cpu")
        if half and t.is_floating_point():
            t = t.to(torch.float16)
        t = t.contiguous()
        key = (t.untyped_storage().data_ptr(), t.storage_offset())
        if key in seen or t.untyped_storage().nbytes() != t.numel() * t.element_size():
            t = t.clone()  # safetensors refuses tensors that share memory
        seen.add((t.untyped_storage().data_ptr(), t.storage_offset()))
        tensors[k] = t
    meta = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "kind": desc.kind,
        "options": _jsonable_options(opts),
        "scale": desc.scale,
        "model_scale": desc.model_scale,
        "size_multiple": desc.size_multiple,
        "mean": list(desc.mean) if desc.mean is not None else None,
        "std": list(desc.std) if desc.std is not None else None,
        "params": desc.params,
        "dtype": "float16" if half else "float32",
        "app_version": _app_version(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "info": dict(info or {}),
    }
    try:
        header = {META_KEY: json.dumps(meta, default=_json_default), "format": "pt"}
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"Checkpoint info for {path} cannot be stored as JSON: {err}") from None
    try:
        with atomic_write(path) as tmp:
            save_file(tensors, str(tmp), metadata=header)
    except OSError as err:
        raise CheckpointError(f"Cannot write checkpoint {path}: {err}") from None
    return path


def _read_header(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} does not exist.")
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as err:  # SafetensorError and friends: not a safetensors file
        raise CheckpointError(f"{path} is not a readable .safetensors checkpoint: {err}") from None


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint's ``lesson7`` metadata (no tensors are loaded).

    Raises CheckpointError if the file is not a Lesson7 Studio checkpoint.
    """
    path = Path(path)
    header = _read_header(path)
    raw = header.get(META_KEY)
    if raw is None:
        raise CheckpointError(f"{path} is not a Lesson7 Studio checkpoint (no '{META_KEY}' metadata).",
                              hint="Weights from elsewhere can be imported with load_foreign_state_dict.")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path} has damaged metadata: {err}") from None
    if not isinstance(meta, dict) or "name" not in meta or "format_version" not in meta:
        raise CheckpointError(f"{path} has metadata of an unknown format.")
    if not isinstance(meta["format_version"], int) or meta["format_version"] > FORMAT_VERSION:
        raise CheckpointError(f"{path} uses checkpoint format {meta['format_version']!r}; this version of "
                              f"Lesson7 Studio reads format {FORMAT_VERSION}.", hint="Update Lesson7 Studio.")
    return meta


def is_lesson7_checkpoint(path: str | os.PathLike) -> bool:
    """True when ``path`` is a .safetensors file with Lesson7 Studio metadata."""
    try:
        read_metadata(path)
    except CheckpointError:
        return False
    return True


@dataclass
class LoadedModel:
    """A checkpoint rebuilt: the net (eval mode), its registry name/options and descriptor."""

    net: nn.Module
    name: str
    options: dict[str, Any]
    info: registry.ModelInfo
    meta: dict[str, Any]
    path: Path

    def restorer(self) -> registry.Restorer:
        if self.info.kind != "restorer":
            raise ModelError(f"{self.path} holds a {self.info.kind} ('{self.name}'), not an image restorer.")
        r = registry.Restorer(self.net, self.info)
        first = next(self.net.parameters(), None)
        if first is not None:
            r = r.to(first.device)
        r.train(self.net.training)
        return r


def _build_and_load(name: str, opts: dict[str, Any], sd: dict[str, torch.Tensor], path: Path) -> nn.Module:
    build = {**opts, "pretrained": False} if "pretrained" in opts else opts
    e = registry.entry(name)
    net = None
    try:  # meta build + assign: no init cost for big nets
        with torch.device("meta"):
            net = e.factory(**build)
        net.load_state_dict(sd, strict=True, assign=True)
        if any(t.is_meta for t in list(net.parameters()) + list(net.buffers())):
            net = None
    except RuntimeError:
        net = None
    except Lesson7Error:
        raise
    except Exception:
        net = None
    if net is None:
        net = e.factory(**build)
        try:
            net.load_state_dict(sd, strict=True)
        except RuntimeError as err:
            first = str(err).strip().splitlines()
            raise CheckpointError(f"{path}: the weights do not fit '{name}' with its stored options "
                                  f"({first[1].strip() if len(first) > 1 else first[0]}).") from None
    return net


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the model stored in ``path`` (eval mode, float32, on ``device``)."""
    from safetensors.torch import load_file

    path = Path(path)
    meta = read_metadata(path)
    name = meta["name"]
    if name not in registry.names():
        raise CheckpointError(f"{path} holds an unknown architecture '{name}'. "
                              f"Known: {', '.join(registry.names())}.", hint="It may need a newer Lesson7 Studio.")
    try:
        opts = registry.resolve_options(name, **dict(meta.get("options") or {}))
    except ModelError as err:
        raise CheckpointError(f"{path}: stored options do not fit '{name}': {err.message}") from None
    try:
        sd = load_file(str(path), device="cpu")
    except Exception as err:
        raise CheckpointError(f"{path}: cannot read the tensors: {err}") from None
    # Fresh, aligned float32 copies (safetensors buffers may be unaligned, which changes kernel
    # paths and so the last bits of outputs), one at a time to keep the peak memory low.
    for k in list(sd):
        v = sd.pop(k)
        sd[k] = (v.float() if v.is_floating_point() else v).clone()
        del v
    net = _build_and_load(name, opts, sd, path)
    try:
        net = net.to(device)
    except (RuntimeError, AssertionError) as err:
        raise DeviceError(f"Cannot move the model to {device}: {err}") from None
    net.eval()
    info = registry.describe(name, model=net, **opts)
    return LoadedModel(net=net, name=name, options=opts, info=info, meta=meta, path=path)


_CONTAINER_KEYS = ("state_dict", "model", "params_ema", "params", "net", "model_state_dict", "generator", "g")


def _flatten_state_dict(obj: Any) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
        if tensors and len(tensors) >= len(obj) / 2:
            return tensors
        for key in _CONTAINER_KEYS:
            if key in obj and isinstance(obj[key], Mapping):
                inner = _flatten_state_dict(obj[key])
                if inner:
                    return inner
        return tensors
    return {}


def load_foreign_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a foreign weights file, read safely.

    ``.safetensors`` via safetensors; anything else via ``torch.load(weights_only=True)``, which
    refuses pickled code (-> UnsafeFileError; nothing is executed). Common containers
    (``{"state_dict": ...}``, fastai's ``{"model": ...}``, ``{"params_ema": ...}``) are unwrapped
    and a ``module.`` prefix (DataParallel) is stripped.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Weights file {path} does not exist.")
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        try:
            sd = load_file(str(path), device="cpu")
        except Exception as err:
            raise CheckpointError(f"{path} is not a readable .safetensors file: {err}") from None
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            if "weights only" in str(err).lower() or "unsupported global" in str(err).lower():
                raise UnsafeFileError(
                    f"Refused {path}: it contains pickled Python objects besides tensors, and loading them "
                    "could run code. Nothing was executed.",
                    hint="Re-save it as a plain state dict (or .safetensors) in a trusted environment.",
                ) from None
            raise CheckpointError(f"{path} is not a readable PyTorch weights file: {err}") from None
        except Exception as err:
            raise CheckpointError(f"{path} is not a readable PyTorch weights file: {type(err).__name__}: {err}") from None
        sd = _flatten_state_dict(obj)
    if not sd:
        raise CheckpointError(f"{path} holds no tensors.")
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd
