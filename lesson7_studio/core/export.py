"""ONNX export of our restorers, and restoring with an ONNX file through onnxruntime.

The exported graph is the whole :class:`~.models.Restorer`: bicubic pre-upsampling,
normalisation, network, denormalisation and clamp, so the file alone follows the convention
"RGB in [0,1], NCHW, any height and width that are multiples of ``lr_multiple`` -> RGB in [0,1]
at ``scale`` times the size". The facts a caller needs ride in the model's metadata_props
(keys starting with ``lesson7.``), among them the PyTorch model's activation-memory estimate, so
that :mod:`.restore` cuts an ONNX restore into the same tiles (same size rule, overlap and
blending) as a restore with the PyTorch model, and the two agree (above 50 dB PSNR) on any
image size. The file runs in float32: ``precision`` settings do not apply to it. onnx and
onnxruntime are optional (the ``onnx`` extra).
"""

from __future__ import annotations

import copy
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .errors import CheckpointError, Lesson7Error, ModelError
from .images.atomic import atomic_write

__all__ = ["export_onnx", "OnnxRestorer", "ONNX_INSTALL_HINT"]

ONNX_INSTALL_HINT = 'Install the ONNX extra: pip install "lesson7-studio[onnx]"'
_META_PREFIX = "lesson7."


def _require(module: str):
    try:
        return __import__(module)
    except ImportError:
        raise Lesson7Error(f"The package '{module}' is needed for ONNX files but is not installed.", hint=ONNX_INSTALL_HINT) from None


def _as_restorer(model_or_checkpoint: Any) -> nn.Module:
    if isinstance(model_or_checkpoint, (str, os.PathLike)):
        from . import checkpoint

        path = Path(model_or_checkpoint)
        if path.suffix.lower() != ".safetensors":
            raise CheckpointError(f"Only our .safetensors checkpoints can be exported to ONNX, not {path.name}.")
        return checkpoint.load_model(path, device="cpu").restorer()
    if hasattr(model_or_checkpoint, "restorer") and callable(model_or_checkpoint.restorer):  # LoadedModel
        return model_or_checkpoint.restorer()
    if isinstance(model_or_checkpoint, nn.Module) and hasattr(model_or_checkpoint, "info"):
        return model_or_checkpoint
    raise ModelError(
        "export_onnx needs a Restorer (models.restorer(...)), a loaded checkpoint or a .safetensors path."
    )


def _metadata(restorer: nn.Module) -> dict[str, str]:
    info = restorer.info
    scale = int(info.scale)
    model_scale = int(getattr(info, "model_scale", scale) or scale)
    pre = scale // model_scale if scale >= model_scale else 1
    mult = int(getattr(info, "size_multiple", 1) or 1)
    from lesson7_studio import __version__

    return {
        "name": str(getattr(info, "name", "model")),
        "scale": str(scale),
        "model_scale": str(model_scale),
        "size_multiple": str(mult),
        "lr_multiple": str(mult // math.gcd(mult, pre)),
        "options": json.dumps(getattr(info, "options", {}) or {}, sort_keys=True, default=str),
        "convention": "RGB float32 NCHW in [0,1] at low resolution -> RGB in [0,1] at scale x the size",
        "app_version": __version__,
    }


def _memory_metadata(restorer: nn.Module) -> dict[str, str]:
    """The tiling memory estimate of ``restorer`` (restore.runner.Runner's, measured on a fp32 copy)."""
    from .restore.facts import model_cache
    from .restore.runner import Runner
    from .restore.tiling import probe_tile

    try:
        runner = Runner(copy.deepcopy(restorer), "cpu", "fp32")
        probe = probe_tile(np.zeros((64, 64, 3), dtype=np.float32), runner.facts)
        per_px = runner.bytes_per_net_px(probe)
        attention = model_cache(runner.model).get("attention_per_px", [])
    except Exception:  # noqa: BLE001 - an estimate is an optimisation: without it tiles are fixed
        return {}
    if not per_px:
        return {}
    return {"bytes_per_net_px": repr(float(per_px)), "attention_per_px": json.dumps([float(a) for a in attention])}


def export_onnx(model_or_checkpoint: Any, out_path: str | os.PathLike, opset: int = 17, check: bool = True) -> Path:
    """Write ``out_path`` (.onnx) with dynamic batch, height and width; return its path.

    ``check``: run the file with onnxruntime on a random input whose size differs from the one
    traced and compare with PyTorch (max abs difference below 1e-4, else ModelError; the file is
    then not kept). The write is atomic.
    """
    onnx = _require("onnx")
    from .models.layers import bake_parametrizations

    # a baked copy: plain weights instead of weight/spectral-norm parametrizations (ONNX has no vdot)
    restorer = bake_parametrizations(copy.deepcopy(_as_restorer(model_or_checkpoint)).to("cpu").eval())
    out_path = Path(out_path)
    if out_path.suffix.lower() != ".onnx":
        raise Lesson7Error(f"The export file must end in .onnx, not '{out_path.name}'.")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    meta = _metadata(restorer)
    meta.update(_memory_metadata(restorer))
    q = int(meta["lr_multiple"])
    side = -(-16 // q) * q  # the traced size: 16 px or the next multiple
    example = torch.rand(1, 3, side, side)
    with atomic_write(out_path) as tmp:  # tmp ends in .part; renamed onto out_path when all checks pass
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.no_grad():
                torch.onnx.export(
                    restorer,
                    (example,),
                    str(tmp),
                    dynamo=False,
                    opset_version=opset,
                    input_names=["input"],
                    output_names=["output"],
                    dynamic_axes={
                        "input": {0: "batch", 2: "height", 3: "width"},
                        "output": {0: "batch", 2: "out_height", 3: "out_width"},
                    },
                    do_constant_folding=True,
                )
        proto = onnx.load(str(tmp))
        del proto.metadata_props[:]
        for k, v in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = _META_PREFIX + k, v
        proto.doc_string = f"Lesson7 Studio restorer '{meta['name']}', x{meta['scale']}"
        onnx.save(proto, str(tmp))
        if check:
            onnx.checker.check_model(str(tmp))
            _check_against_torch(restorer, tmp, q)
    return out_path


def _check_against_torch(restorer: nn.Module, path: Path, q: int, tol: float = 1e-4) -> float:
    ort = _require("onnxruntime")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(0)
    # a size other than the traced one proves height and width are dynamic
    x = torch.rand(2, 3, 3 * q, 5 * q, generator=g)
    with torch.no_grad():
        ref = restorer(x).numpy()
    got = sess.run(None, {"input": x.numpy()})[0]
    if got.shape != ref.shape:
        raise ModelError(f"ONNX output shape {got.shape} differs from PyTorch's {ref.shape}.")
    diff = float(np.abs(got - ref).max())
    if not diff < tol:
        raise ModelError(f"ONNX output differs from PyTorch by {diff:.2e} (tolerance {tol:.0e}); the export was not kept.")
    return diff


class _OnnxInfo:
    """ModelInfo-like facts read from an ONNX file's metadata."""

    def __init__(self, meta: dict[str, str], path: Path) -> None:
        self.name = meta.get("name", path.stem)
        self.description = f"ONNX model {path.name}"
        self.kind = "restorer"
        self.scale = int(meta.get("scale", "1"))
        self.model_scale = int(meta.get("model_scale", self.scale))
        self.size_multiple = int(meta.get("size_multiple", "1"))
        try:
            self.options = json.loads(meta.get("options", "{}"))
        except json.JSONDecodeError:
            self.options = {}
        self.mean = None
        self.std = None
        self.in_channels = 3
        self.out_channels = 3
        self.params = 0
        self.uses_pretrained = None

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def _read_memory_estimate(meta: dict[str, str]) -> tuple[float, list[float]] | None:
    """(activation bytes per network pixel, positions per pixel of each global self-attention) as
    written by :func:`export_onnx`; None for files without it (other tools, older exports)."""
    try:
        per_px = float(meta["bytes_per_net_px"])
        attention = [float(a) for a in json.loads(meta.get("attention_per_px", "[]"))]
    except (KeyError, ValueError, TypeError):
        return None
    return (per_px, attention) if per_px > 0 and math.isfinite(per_px) else None


class OnnxRestorer:
    """Restorer-like wrapper of an ONNX file run by onnxruntime: ``r(x) -> y`` on (B,3,h,w)
    float tensors in [0,1], with ``.info`` (scale, model_scale, size_multiple) for tiling.

    Files from other tools work when they take one NCHW RGB [0,1] input; without our metadata
    the scale is measured by running the model once on a small input.
    """

    def __init__(self, path: str | os.PathLike, providers: list[str] | None = None) -> None:
        ort = _require("onnxruntime")
        self.path = Path(path)
        if not self.path.is_file():
            raise CheckpointError(f"ONNX file not found: {self.path}")
        if providers is None:
            available = ort.get_available_providers()
            providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        try:
            self.session = ort.InferenceSession(str(self.path), providers=providers)
        except Exception as err:  # onnxruntime raises its own exception types
            raise CheckpointError(f"Cannot open ONNX file {self.path}: {err}") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"{self.path.name} takes {len(inputs)} inputs; a restorer takes one image.")
        self.input_name = inputs[0].name
        raw = self.session.get_modelmeta().custom_metadata_map or {}
        meta = {k[len(_META_PREFIX):]: v for k, v in raw.items() if k.startswith(_META_PREFIX)}
        if "scale" not in meta:
            meta["scale"] = str(self._measure_scale())
            meta["model_scale"] = meta["scale"]
        self.info = _OnnxInfo(meta, self.path)
        self.device = "cpu"  # inputs and outputs are CPU tensors whatever the provider
        self.training = False
        self.precisions = {"fp32"}  # the graph runs as exported
        shape = list(getattr(inputs[0], "shape", []) or [])
        # a height or width given as a number (not a name) is fixed: such a file takes one size
        self.dynamic_size = len(shape) == 4 and not any(isinstance(d, int) for d in shape[2:])
        self.memory_estimate = _read_memory_estimate(meta)

    def _measure_scale(self) -> int:
        x = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
        try:
            y = self.session.run(None, {self.input_name: x})[0]
        except Exception as err:
            raise ModelError(f"{self.path.name} does not take a (1,3,32,32) RGB image: {err}") from None
        if y.ndim != 4 or y.shape[1] != 3 or y.shape[2] % 32:
            raise ModelError(f"{self.path.name} returns shape {y.shape}, not an RGB image.")
        return int(y.shape[2] // 32)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        arr = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        y = self.session.run(None, {self.input_name: arr})[0]
        return torch.from_numpy(np.asarray(y, dtype=np.float32))

    def __repr__(self) -> str:
        return f"OnnxRestorer({str(self.path)!r}, scale={self.info.scale})"
