"""The run folder on disk: its layout, config.json, metrics.csv, the checkpoint files and how
many of them are kept.

Layout::

    config.json          everything needed to repeat the run (TrainConfig)
    metrics.csv          one row per epoch: stage, epoch, step, train_loss, valid_loss, psnr, ssim,
                         loss components, lr, seconds (rewritten whole, atomically, per epoch)
    checkpoints/         <stage>-s<step>.safetensors (+ .critic.safetensors in GAN stages) and
                         <stage>-s<step>.state.pt (the resume state, see :mod:`.resume`);
                         last.json names the newest; best.safetensors the best generator;
                         snapshots/ half-precision generator copies (``snapshots`` > 0)
    samples/             <stage>_epoch<NNN>.png previews
    preds/               generator predictions (NoGAN save-preds stage)
    model.safetensors    final generator, metadata: recipe, crappify recipe, training summary

Every file is written atomically (a temporary file in the same folder, then renamed).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from torch import nn

from ..errors import CheckpointError
from ..files import remove_stale_parts
from ..images import atomic_bytes, atomic_open, atomic_write

METRICS_FIRST = ("stage", "epoch", "step", "train_loss", "valid_loss", "psnr", "ssim")
METRICS_LAST = ("lr", "seconds")

__all__ = ["METRICS_FIRST", "METRICS_LAST", "RunFolder", "atomic_bytes", "atomic_copy", "atomic_torch_save",
           "checkpoint_name", "load_weights", "save_weights"]


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save(obj)`` to ``path`` atomically (temp file, fsync, rename)."""
    with atomic_open(path) as f:
        torch.save(obj, f)


def atomic_copy(src: Path, dst: Path) -> None:
    with atomic_write(dst) as tmp:
        shutil.copyfile(src, tmp)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _step_of(name: str) -> int:
    """The step of a checkpoint name ``<stage>-s<step>``."""
    return int(name.rsplit("-s", 1)[1])


def checkpoint_name(stage: str, step: int) -> str:
    """``<stage>-s<step, 7 digits>``: the stem every file of one checkpoint shares."""
    return f"{stage}-s{int(step):07d}"


class RunFolder:
    """Paths of a run folder and its metrics.csv (rewritten whole, atomically, per epoch).

    ``writer=False`` (DDP ranks other than 0) reads but never writes."""

    def __init__(self, root: Path, writer: bool = True) -> None:
        self.root = Path(root)
        self.writer = writer
        self.ckpt = self.root / "checkpoints"
        self.samples = self.root / "samples"
        self.preds = self.root / "preds"
        self.rows: list[dict] = []

    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.csv"

    @property
    def model_path(self) -> Path:
        return self.root / "model.safetensors"

    @property
    def last_path(self) -> Path:
        return self.ckpt / "last.json"

    @property
    def best_path(self) -> Path:
        return self.ckpt / "best.safetensors"

    @property
    def snapshots(self) -> Path:
        return self.ckpt / "snapshots"

    def holds_run(self) -> bool:
        return self.config_path.exists() or self.last_path.exists()

    def create(self) -> None:
        if self.writer:
            for p in (self.root, self.ckpt, self.samples):
                p.mkdir(parents=True, exist_ok=True)

    def write_config(self, text: str) -> None:
        if self.writer:
            atomic_bytes(self.config_path, text.encode("utf-8"))

    def remove_stale(self) -> list[Path]:
        """Temp files of a write that was killed (kill -9 during a checkpoint)."""
        return remove_stale_parts(self.ckpt) + remove_stale_parts(self.root)

    # -- metrics.csv ----------------------------------------------------------------------------
    def load_rows(self) -> None:
        self.rows = []
        if self.metrics_path.exists():
            with open(self.metrics_path, newline="", encoding="utf-8") as f:
                for r in csv.DictReader(f):
                    self.rows.append(dict(r))

    def add_row(self, row: dict) -> None:
        self.rows.append({k: _fmt(v) for k, v in row.items()})
        self.write_rows()

    def write_rows(self) -> None:
        if not self.writer:
            return
        cols = [c for c in METRICS_FIRST if any(c in r for r in self.rows)]
        for r in self.rows:
            for k in r:
                if k not in cols and k not in METRICS_LAST:
                    cols.append(k)
        cols += METRICS_LAST
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols, restval="", lineterminator="\n")
        w.writeheader()
        for r in self.rows:
            w.writerow(r)
        atomic_bytes(self.metrics_path, buf.getvalue().encode("utf-8"))

    def keep_rows_before(self, stages: Sequence[str], stage: str, epoch: int, stage_done: bool) -> None:
        """Drop the rows a resume from (``stage``, ``epoch``) will write again, and rewrite the file."""
        cut = list(stages).index(stage) if stage in stages else len(stages)
        keep = []
        for r in self.rows:
            si = stages.index(r.get("stage")) if r.get("stage") in stages else -1
            ep = int(float(r.get("epoch", 0)))
            if si < cut or (si == cut and ep < epoch) or (si == cut and stage_done):
                keep.append(r)
        self.rows = keep
        self.write_rows()

    # -- checkpoint files -----------------------------------------------------------------------
    def checkpoint(self, name: str, suffix: str) -> Path:
        """``checkpoints/<name><suffix>`` (suffix ``.safetensors``, ``.critic.safetensors``, ``.state.pt``)."""
        return self.ckpt / f"{name}{suffix}"

    def read_last(self) -> Optional[str]:
        """The newest checkpoint's name from last.json; None when there is none yet."""
        if not self.last_path.exists():
            return None
        try:
            return json.loads(self.last_path.read_text())["name"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
            raise CheckpointError(f"{self.last_path} is damaged: {err}",
                                  hint="Delete that file to resume from scratch, or start a new run.") from None

    def write_last(self, name: str, step: int) -> None:
        atomic_bytes(self.last_path, json.dumps({"name": name, "step": int(step)}).encode())

    def prune(self, newest: str, keep: int) -> None:
        """Keep the newest ``keep`` full resumable states (weights + optimizers)."""
        names = sorted({p.name.split(".")[0] for p in self.ckpt.glob("*-s*.state.pt")}, key=_step_of)
        for n in names[:-max(1, int(keep or 1))]:
            if n == newest:
                continue
            for p in self.ckpt.glob(f"{n}.*"):
                p.unlink(missing_ok=True)

    def prune_snapshots(self, keep: int) -> None:
        """Keep the newest ``keep`` snapshots."""
        old = sorted(self.snapshots.glob("*-s*.safetensors"), key=lambda p: _step_of(p.stem))
        for p in old[: -int(keep)]:
            p.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# weights


def save_weights(path: Path, module: nn.Module, name: str, options: dict, info: Optional[dict],
                 half: bool = False) -> Path:
    from .. import checkpoint

    return checkpoint.save_model(path, module, name, options, info=info, half=half)


def load_weights(path: Path, module: nn.Module) -> None:
    """Load a .safetensors written by checkpoint.save_model into an existing module."""
    from safetensors.torch import load_file

    net = getattr(module, "net", module)
    try:
        sd = load_file(str(path), device="cpu")
    except Exception as err:
        raise CheckpointError(f"Cannot read checkpoint {path}: {err}") from None
    missing, _unexpected = net.load_state_dict(sd, strict=False)
    if missing:
        raise CheckpointError(f"Checkpoint {path} lacks {len(missing)} tensors of the model (e.g. {missing[0]}).")
