"""Loading a model for restoring: the name "starter", our checkpoints, ONNX exports and community
weights (through :mod:`.foreign`), each behind the Restorer convention."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..devices import resolve_device
from ..errors import CheckpointError, ModelError
from .foreign import load_spandrel

_FOREIGN_TORCH_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")


def starter_model_path() -> Path:
    """Where the bundled starter model lives (resources/models/starter.safetensors)."""
    from ..project import resources_dir

    return resources_dir() / "models" / "starter.safetensors"


def load_any_model(path_or_name: str | os.PathLike, device: str | torch.device | None = None) -> Any:
    """A Restorer-like model from a file or the name "starter".

    Our ``.safetensors`` checkpoints are rebuilt from their metadata; ``.onnx`` files run with
    onnxruntime (:class:`~.export.OnnxRestorer`); other ``.safetensors`` / ``.pth`` / ``.pt`` /
    ``.ckpt`` files are read safely (never unpickling code: UnsafeFileError) and their
    architecture is recognised by spandrel (optional extra). ``device``: see
    :func:`resolve_device`.
    """
    from .. import checkpoint
    from ..models import registry

    dev = resolve_device(device)
    key = str(path_or_name)
    if key == "starter":
        path = starter_model_path()
        if not path.is_file():
            raise CheckpointError(
                f"The bundled starter model is missing ({path}).",
                hint="Reinstall Lesson7 Studio, or pass a model file with --model.",
            )
    else:
        path = Path(key).expanduser()
        if not path.exists():
            if key in registry.names():
                raise ModelError(
                    f"'{key}' names an architecture, not a trained model: its weights would be random.",
                    hint="Train one (lesson7-studio train) and pass its model.safetensors, or use the starter model.",
                )
            raise CheckpointError(f"Model file not found: {path}")
        if path.is_dir():
            found = path / "model.safetensors"
            if not found.is_file():
                raise CheckpointError(f"{path} is a folder without a model.safetensors; pass the model file itself.")
            path = found
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from ..export import OnnxRestorer

        return OnnxRestorer(path)
    if suffix == ".safetensors":
        if checkpoint.has_lesson7_metadata(path):  # ours, even when too new: its own error
            from ..models.layers import bake_parametrizations

            loaded = checkpoint.load_model(path, device=dev)
            # for inference: plain weights, not recomputed from their weight/spectral norm each call
            model = bake_parametrizations(loaded.restorer()).eval()
            model.checkpoint_meta = loaded.meta  # type: ignore[attr-defined]
            model.source_file = path  # type: ignore[attr-defined]  # keys the precision verdict
            return model
        return load_spandrel(path, dev)
    if suffix in _FOREIGN_TORCH_SUFFIXES or suffix in checkpoint.FOREIGN_SUFFIXES:
        return load_spandrel(path, dev)
    raise CheckpointError(
        f"Cannot load {path.name}: use a .safetensors checkpoint, an .onnx file or community "
        ".pth/.pt/.ckpt weights."
    )
