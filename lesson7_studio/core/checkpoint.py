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

from .errors import CheckpointError, DeviceError, ModelError, UnsafeFileError
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
    """Tensor names and shapes of ``name`` built with ``opts`` (on the meta device: nothing is
    allocated; the options are bounded and the parameter count capped first; cached)."""
    key = (name, repr(sorted(opts.items())))
    if key not in _SHAPES_CACHE:
        registry.describe(name, **opts)  # ModelError past MAX_PARAMS, from a meta build too
        ref = registry.build_on_meta(name, opts).state_dict()
        _SHAPES_CACHE[key] = {k: tuple(v.shape) for k, v in ref.items()}
    return _SHAPES_CACHE[key]


def _names(keys: list[str], n: int = 3) -> str:
    shown = [k if len(k) <= 60 else k[:57] + "..." for k in keys[:n]]
    return ", ".join(shown) + (", ..." if len(keys) > n else "")


def mismatch_summary(ref: Mapping[str, tuple[int, ...]], got: Mapping[str, tuple[int, ...]]) -> str | None:
    """One line saying how the tensor names and shapes ``got`` differ from the expected ``ref``
    (counts and at most three names of each kind), or None when they match."""
    missing = sorted(set(ref) - set(got))
    unexpected = sorted(set(got) - set(ref))
    bad_shape = sorted(k for k in set(ref) & set(got) if tuple(ref[k]) != tuple(got[k]))
    if not (missing or unexpected or bad_shape):
        return None
    parts = []
    if missing:
        parts.append(f"{len(missing)} of its {len(ref)} tensors missing ({_names(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({_names(unexpected)})")
    if bad_shape:
        k = bad_shape[0]
        more = f" and {len(bad_shape) - 1} more" if len(bad_shape) > 1 else ""
        parts.append(f"{len(bad_shape)} of another shape ({k[:60]} is {tuple(got[k])}, expected "
                     f"{tuple(ref[k])}{more})")
    return "; ".join(parts)


def _shapes(sd: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in sd.items()}


def _check_matches(name: str, opts: dict[str, Any], sd: Mapping[str, torch.Tensor]) -> None:
    """The options must rebuild a network with exactly these tensor names and shapes."""
    diff = mismatch_summary(_expected_shapes(name, opts), _shapes(sd))
    if diff:
        raise ModelError(f"The weights are not those of '{name}' with options {registry.short_options(opts)}: {diff}.")


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


def _file_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the tensors in a .safetensors file, from its header alone."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as err:
        raise CheckpointError(f"{path}: cannot read the tensors: {err}") from None


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
    version = meta["format_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path} has metadata of an unknown format (format_version {version!r}).")
    if version > FORMAT_VERSION:
        made_by = meta.get("app_version")
        raise CheckpointError(
            f"{path} was made by a newer Lesson7 Studio"
            + (f" ({made_by})" if isinstance(made_by, str) and len(made_by) < 40 else "")
            + f": checkpoint format {version}, and this version ({_app_version()}) reads format {FORMAT_VERSION}.",
            hint="Update Lesson7 Studio to load it.")
    return meta


def has_lesson7_metadata(path: str | os.PathLike) -> bool:
    """True when ``path`` is a .safetensors file that claims to be ours (its header has the
    metadata key), whether or not this version can read it: such a file is never handed to a
    foreign-weights loader, so its own error (e.g. "made by a newer Lesson7 Studio") is shown."""
    try:
        return META_KEY in _read_header(Path(path))
    except CheckpointError:
        return False


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


def _check_fits(path: Path, name: str, opts: dict[str, Any], shapes: Mapping[str, tuple[int, ...]]) -> None:
    """CheckpointError (one line) unless the tensors' names and ``shapes`` are exactly those of
    ``name`` with ``opts``, as a build on the meta device shows: nothing real is allocated."""
    try:
        diff = mismatch_summary(_expected_shapes(name, opts), shapes)
    except ModelError as err:
        raise CheckpointError(f"{path}: stored options do not fit '{name}': {err.message}") from None
    if diff:
        raise CheckpointError(f"{path}: the weights do not fit '{name}' with its stored options: {diff}.")


def _build_and_load(name: str, opts: dict[str, Any], sd: dict[str, torch.Tensor], path: Path) -> nn.Module:
    """The net ``name`` with the tensors ``sd``, whose names and shapes are checked first
    (:func:`_check_fits`), so the only real memory is that of the tensors themselves."""
    _check_fits(path, name, opts, _shapes(sd))
    build = {**opts, "pretrained": False} if "pretrained" in opts else opts
    e = registry.entry(name)
    net: nn.Module | None = registry.build_on_meta(name, opts)  # meta build + assign: no init cost
    try:
        net.load_state_dict(sd, strict=True, assign=True)
    except RuntimeError:  # e.g. a dtype the parameter cannot take by assignment
        net = None
    if net is None or any(t.is_meta for t in list(net.parameters()) + list(net.buffers())):
        # non-persistent buffers stay on meta: a real build, of the size the file's tensors showed
        net = e.factory(**build)
        try:
            net.load_state_dict(sd, strict=True)
        except RuntimeError as err:
            first = str(err).strip().splitlines()[-1].strip()
            raise CheckpointError(f"{path}: the weights do not fit '{name}': {first[:200]}") from None
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
    stored = meta.get("options") or {}
    if not isinstance(stored, dict):
        raise CheckpointError(f"{path} has damaged metadata: 'options' is not a JSON object.")
    try:
        opts = registry.resolve_stored_options(name, stored)
    except ModelError as err:
        raise CheckpointError(f"{path}: stored options do not fit '{name}': {err.message}") from None
    _check_fits(path, name, opts, _file_shapes(path))  # before reading any tensor
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


def _first_line(err: BaseException) -> str:
    lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
    text = lines[0] if lines else type(err).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def safe_torch_load(path: str | os.PathLike, what: str = "PyTorch weights file",
                    hint: str = "Re-save it as a plain state dict (or .safetensors) in a trusted environment.") -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU with one-line errors: UnsafeFileError
    when the file holds pickled objects besides tensors (nothing is executed), CheckpointError
    when it cannot be read. ``what`` names the file in the messages."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err).lower()
        if "weights only" in text or "unsupported global" in text or "weights_only" in text:
            raise UnsafeFileError(
                f"Refused {path}: it contains pickled Python objects besides tensors, and loading them "
                f"could run code. Nothing was executed. {hint}".strip()) from None  # one line
        raise CheckpointError(f"{path} is not a readable {what}: {_first_line(err)}") from None
    except FileNotFoundError:
        raise CheckpointError(f"{path} ({what}) does not exist.") from None
    except Exception as err:
        raise CheckpointError(f"{path} is not a readable {what}: {type(err).__name__}: {_first_line(err)}") from None


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
        sd = _flatten_state_dict(safe_torch_load(path))
    if not sd:
        raise CheckpointError(f"{path} holds no tensors.")
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd
