"""Exploring a trained lesson model: class probabilities, confusion matrix, top losses, next words.

Everything returns numpy arrays and plain Python values, so the GUI shows results without
importing torch. A "model" argument is a :class:`LessonModel` or a path: a lesson run folder
(its model.safetensors, else best or newest checkpoint) or a .safetensors file.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, DatasetError
from ..images import atomic_write
from .recipes import LESSONS

INTERPRETATION_FILE = "interpretation.npz"
TOP_LOSSES = 16


@dataclass
class LessonModel:
    net: nn.Module
    name: str
    kind: str  # "classifier" | "language-model"
    info: dict  # the checkpoint's info: classes/mean/std/size or vocab/bptt, training summary
    path: Path
    params: int

    @property
    def classes(self) -> list[str]:
        return list(self.info.get("classes", []))

    @property
    def vocab(self) -> list[str]:
        return list(self.info.get("vocab", []))


def model_file(path: str | os.PathLike) -> Path:
    """The weights file of a run folder (final model, else best, else newest checkpoint) or ``path``."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise CheckpointError(f"{path} is neither a lesson run folder nor a .safetensors file.")
    for p in (path / "model.safetensors", path / "checkpoints" / "best.safetensors"):
        if p.is_file():
            return p
    ckpts = sorted((path / "checkpoints").glob("*-s*.safetensors"), key=lambda p: p.stat().st_mtime)
    if ckpts:
        return ckpts[-1]
    raise CheckpointError(f"{path} holds no trained model yet (no model.safetensors or checkpoint).",
                          hint="Train it first, or let a running training write its first checkpoint.")


def load_lesson_model(path: str | os.PathLike | LessonModel, device: str = "cpu") -> LessonModel:
    if isinstance(path, LessonModel):
        return path
    from .. import checkpoint

    f = model_file(path)
    loaded = checkpoint.load_model(f, device=device)
    info = dict(loaded.meta.get("info") or {})
    if loaded.info.kind not in ("classifier", "language-model") or "lesson" not in info:
        raise CheckpointError(f"{f} holds a {loaded.info.kind} ('{loaded.name}'), not a lesson model.",
                              hint="Pick a run trained in the Lessons panel or with `lesson7-studio lesson train`.")
    return LessonModel(loaded.net.eval(), loaded.name, loaded.info.kind, info, f, loaded.info.params)


# ---------------------------------------------------------------------------------------------
# classifiers


def _as_batch(images: Sequence[Any], size: int, channels: int) -> torch.Tensor:
    from PIL import Image

    from .images import read_image

    out = []
    for img in images:
        if isinstance(img, (str, os.PathLike)):
            arr = read_image(img, size, channels)
        else:
            a = np.asarray(img)
            if a.dtype != np.uint8:
                a = np.clip(a * (255.0 if a.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
            pil = Image.fromarray(a if a.ndim == 2 or a.shape[-1] in (3, 4) else a[..., 0])
            pil = pil.convert("L" if channels == 1 else "RGB").resize((size, size), Image.Resampling.BILINEAR)
            arr = np.asarray(pil, np.uint8)
            arr = arr[None] if channels == 1 else arr.transpose(2, 0, 1)
        out.append(torch.from_numpy(np.array(arr, dtype=np.uint8, copy=True)))
    return torch.stack(out)


@torch.no_grad()
def classify(model: str | os.PathLike | LessonModel, images: Sequence[Any]) -> tuple[np.ndarray, list[str]]:
    """Class probabilities (N, n_classes) for image files or arrays (HxW or HxWxC), and the class names."""
    from .images import normalize

    m = load_lesson_model(model)
    if m.kind != "classifier":
        raise CheckpointError(f"{m.path} holds a language model; it does not classify images.")
    x = _as_batch(images, int(m.info.get("size", 28)), int(m.info.get("channels", 1)))
    x = normalize(x, m.info["mean"], m.info["std"])
    dev = next(m.net.parameters()).device
    probs = F.softmax(m.net(x.to(dev)).float(), dim=-1).cpu().numpy()
    return probs, m.classes


@dataclass
class Interpretation:
    """The validation set seen by a classifier (what fastai's ClassificationInterpretation shows)."""

    classes: list[str]
    confusion: np.ndarray  # (C, C) int: rows actual, columns predicted
    accuracy: float
    n: int
    top_images: np.ndarray  # (K, H, W) or (K, H, W, 3) uint8, highest loss first
    top_actual: np.ndarray  # (K,) class indices
    top_pred: np.ndarray
    top_loss: np.ndarray
    top_prob: np.ndarray  # probability given to the actual class

    def most_confused(self, min_count: int = 1) -> list[tuple[str, str, int]]:
        """(actual, predicted, count) off the diagonal, most frequent first."""
        c = self.confusion
        pairs = [(self.classes[i], self.classes[j], int(c[i, j])) for i in range(len(c)) for j in range(len(c))
                 if i != j and c[i, j] >= min_count]
        return sorted(pairs, key=lambda t: -t[2])


@torch.no_grad()
def interpret(net: nn.Module, valid_set, mean, std, *, device: str | torch.device = "cpu", bs: int = 512,
              k: int = TOP_LOSSES) -> Interpretation:
    """Run ``net`` over an ImageSet and gather the confusion matrix and the ``k`` top losses."""
    from .images import normalize

    was = net.training
    net.eval()
    losses, preds, probs_actual = [], [], []
    try:
        for i in range(0, len(valid_set), bs):
            x = normalize(valid_set.x[i:i + bs], mean, std).to(device)
            y = valid_set.y[i:i + bs].to(device)
            out = net(x).float()
            losses.append(F.cross_entropy(out, y, reduction="none").cpu())
            preds.append(out.argmax(-1).cpu())
            probs_actual.append(F.softmax(out, -1).gather(1, y[:, None])[:, 0].cpu())
    finally:
        net.train(was)
    loss, pred, pa = torch.cat(losses), torch.cat(preds), torch.cat(probs_actual)
    y = valid_set.y
    n_cls = len(valid_set.classes)
    conf = torch.bincount(y * n_cls + pred, minlength=n_cls * n_cls).reshape(n_cls, n_cls).numpy()
    top = torch.argsort(loss, descending=True)[:k]
    imgs = valid_set.x[top].numpy()
    imgs = imgs[:, 0] if imgs.shape[1] == 1 else imgs.transpose(0, 2, 3, 1)
    return Interpretation(list(valid_set.classes), conf, float((pred == y).float().mean()), len(y), imgs,
                          y[top].numpy(), pred[top].numpy(), loss[top].numpy(), pa[top].numpy())


def save_interpretation(root: str | os.PathLike, net: nn.Module, data, *, device="cpu") -> Path:
    it = interpret(net, data.valid_set, data.info["mean"], data.info["std"], device=device)
    path = Path(root) / INTERPRETATION_FILE
    buf = io.BytesIO()
    np.savez_compressed(buf, classes=np.array(json.dumps(it.classes)), confusion=it.confusion,
                        accuracy=np.array(it.accuracy), n=np.array(it.n), top_images=it.top_images,
                        top_actual=it.top_actual, top_pred=it.top_pred, top_loss=it.top_loss, top_prob=it.top_prob)
    with atomic_write(path) as tmp:
        Path(tmp).write_bytes(buf.getvalue())
    return path


def read_interpretation(run: str | os.PathLike) -> Interpretation:
    """The interpretation a finished classifier run saved (``interpretation.npz``)."""
    path = Path(run) / INTERPRETATION_FILE
    if not path.is_file():
        raise DatasetError(f"{run} has no {INTERPRETATION_FILE}: the run has not finished, or is not a classifier run.",
                           hint="Finish (or resume) the training; the interpretation is written at its end.")
    try:
        with np.load(path, allow_pickle=False) as z:
            return Interpretation(json.loads(str(z["classes"])), z["confusion"], float(z["accuracy"]), int(z["n"]),
                                  z["top_images"], z["top_actual"], z["top_pred"], z["top_loss"], z["top_prob"])
    except (OSError, ValueError, KeyError) as err:
        raise DatasetError(f"{path} is damaged: {err}") from None


# ---------------------------------------------------------------------------------------------
# language models


def _tokens(text: str) -> list[str]:
    return text.lower().replace(",", " , ").split()


def _check_words(m: LessonModel, words: list[str]) -> None:
    if not words:
        raise DatasetError("Type the start of a sequence, e.g. 'eight thousand one , eight thousand'.")
    unknown = sorted({w for w in words if w not in m.vocab})
    if unknown:
        known = [w for w in m.vocab if not w.startswith("xx")]
        raise DatasetError(f"Not in the vocabulary: {', '.join(unknown)}.", hint=f"Known words: {' '.join(known)}.")


@torch.no_grad()
def _next_probs(m: LessonModel, words: list[str]) -> np.ndarray:
    stoi = {w: i for i, w in enumerate(m.vocab)}
    if m.name in ("rnn-model0", "rnn-model1"):  # trained on bptt 3: the last three words
        words = words[-int(m.info.get("bptt", 3)):]
    x = torch.tensor([[stoi[w] for w in words]], dtype=torch.long)
    reset = getattr(m.net, "reset", None)
    if reset is not None:
        reset()
    out = m.net(x.to(next(m.net.parameters()).device)).float()
    if reset is not None:
        reset()
    last = out[0] if out.dim() == 2 else out[0, -1]
    return F.softmax(last, dim=-1).cpu().numpy()


def next_words(model: str | os.PathLike | LessonModel, text: str, k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` likeliest next tokens after ``text`` with their probabilities."""
    m = load_lesson_model(model)
    if m.kind != "language-model":
        raise CheckpointError(f"{m.path} holds an image classifier; it does not predict words.")
    words = _tokens(text)
    _check_words(m, words)
    p = _next_probs(m, words)
    order = np.argsort(-p)[:k]
    return [(m.vocab[i], float(p[i])) for i in order]


def continue_text(model: str | os.PathLike | LessonModel, text: str, n_words: int = 12) -> str:
    """``text`` continued greedily by ``n_words`` tokens."""
    m = load_lesson_model(model)
    words = _tokens(text)
    _check_words(m, words)
    out = []
    for _ in range(n_words):
        p = _next_probs(m, words + out)
        out.append(m.vocab[int(np.argmax(p))])
    return " ".join(out)


# ---------------------------------------------------------------------------------------------
# the lesson's progression


@dataclass
class RunSummary:
    path: Path
    lesson: str
    arch: str
    epochs: int  # epochs trained (rows of metrics.csv)
    epochs_planned: int
    accuracy: float | None  # last epoch's validation accuracy
    best_accuracy: float | None
    seconds: float
    status: str  # "finished" | "resumable" | "incomplete"
    modified: float


def run_summary(path: str | os.PathLike) -> RunSummary | None:
    """What a lesson run folder says about itself (None if it is not a lesson run)."""
    path = Path(path)
    try:
        cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(cfg, dict) or cfg.get("kind") != "lesson":
        return None
    accs, seconds = [], 0.0
    try:
        with open(path / "metrics.csv", newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                try:
                    accs.append(float(row.get("accuracy", "nan")))
                    seconds += float(row.get("seconds") or 0.0)
                except ValueError:
                    pass
    except OSError:
        pass
    finished = (path / "model.safetensors").is_file()
    ck = path / "checkpoints" / "last.json"
    status = "finished" if finished and len(accs) >= int(cfg.get("epochs", 0)) else (
        "resumable" if ck.is_file() else "incomplete")
    valid = [a for a in accs if a == a]
    modified = max((p.stat().st_mtime for p in (path / "config.json", path / "metrics.csv") if p.exists()), default=0)
    return RunSummary(path, str(cfg.get("lesson", "")), str(cfg.get("arch", "")), len(accs), int(cfg.get("epochs", 0)),
                      valid[-1] if valid else None, max(valid) if valid else None, seconds, status, modified)


def list_lesson_runs(root: str | os.PathLike, lesson: str | None = None) -> list[RunSummary]:
    """Lesson runs directly under ``root``, newest first."""
    root = Path(root)
    out = []
    if root.is_dir():
        for d in root.iterdir():
            if d.is_dir() and not d.name.startswith("."):
                s = run_summary(d)
                if s is not None and (lesson is None or s.lesson == lesson):
                    out.append(s)
    return sorted(out, key=lambda s: (s.modified, s.path.name), reverse=True)


def progression(root: str | os.PathLike, lesson: str = "human-numbers") -> list[dict]:
    """One row per model of ``lesson``: the notebook's accuracy and that of the newest run here."""
    runs = list_lesson_runs(root, lesson)
    rows = []
    for arch, sched in LESSONS[lesson].schedules.items():
        mine = next((r for r in runs if r.arch == arch and r.accuracy is not None), None)
        rows.append({"arch": arch, "notebook_accuracy": sched.notebook_accuracy, "epochs": sched.epochs,
                     "lr": sched.lr, "accuracy": mine.accuracy if mine else None,
                     "epochs_done": mine.epochs if mine else 0, "seconds": mine.seconds if mine else None,
                     "run": str(mine.path) if mine else None, "status": mine.status if mine else ""})
    return rows
