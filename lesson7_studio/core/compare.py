"""Compare one image restored by several models: the job behind the app's Compare panel.

:func:`compare_job` reads the input (and its ground truth, when there is one), upscales it with
bicubic as the baseline, restores it with each model and scores every result: PSNR / SSIM (Y and
RGB, ``scale`` pixels of border cropped, the convention of :func:`.restore.evaluate`) against the
ground truth, else PSNR against bicubic (how far the model moved from a plain upscale). It
reports :class:`Loaded` and :class:`Restored` events (and Progress) through ``on_event`` and
stops at the next safe point once ``cancel`` is set (DESIGN.md rule 2).

The helpers find the lr/hr pair of a dataset image, so that any image of a paired dataset opens
with its ground truth. Nothing here imports torch at module level.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from . import metrics
from .errors import DatasetError
from .events import CancelToken, Event, EventCallback, Progress, check, emit

__all__ = [
    "BICUBIC", "Loaded", "Restored", "bicubic_upscale", "to_float01", "fit_to", "image_metrics",
    "compare_job", "dataset_pair", "find_same_stem", "dataset_valid_images", "valid_entry",
]

BICUBIC = "bicubic"  # key of the baseline among the Restored events


@dataclass
class Loaded(Event):
    """The input (and ground truth) were read."""

    input: Any  # core.images.ImageData
    gt: Any = None


@dataclass
class Restored(Event):
    """One image to compare: a model's result or the bicubic baseline, with its metrics."""

    key: str  # BICUBIC or the model file path
    label: str
    image: Any  # ImageData (model result) or HxWx3 float32 (bicubic)
    display: np.ndarray  # HxWx3 uint8 at the reference size
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    note: str = ""


# ----------------------------------------------------------------------------- image helpers
def to_float01(a: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / float image as float32 in [0, 1]."""
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    return np.clip(a.astype(np.float32), 0.0, 1.0)


def bicubic_upscale(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """HxWx3 image -> height x width x 3 float32 in [0,1], PIL bicubic (the baseline that
    ``lesson7-studio eval`` reports). uint8 is resized as 8-bit RGB, anything else per channel."""
    from PIL import Image

    a = np.asarray(rgb)
    if a.shape[:2] == (height, width):
        return to_float01(a)
    if a.dtype == np.uint8:
        out = np.asarray(Image.fromarray(a[:, :, :3]).resize((width, height), Image.Resampling.BICUBIC))
        return out.astype(np.float32) / 255.0
    f = to_float01(a)
    chans = [np.asarray(Image.fromarray(np.ascontiguousarray(f[:, :, c]), mode="F")
                        .resize((width, height), Image.Resampling.BICUBIC)) for c in range(3)]
    return np.clip(np.stack(chans, axis=2), 0.0, 1.0).astype(np.float32)


def fit_to(arr: np.ndarray, height: int, width: int) -> tuple[np.ndarray, str]:
    """``arr`` at height x width: cropped when it is a few pixels larger (rounding of odd sizes),
    padded by edge pixels when a few smaller, resized otherwise. Returns (array, note)."""
    h, w = arr.shape[:2]
    if (h, w) == (height, width):
        return arr, ""
    if abs(h - height) <= 8 and abs(w - width) <= 8:
        a = arr[:height, :width]
        ph, pw = height - a.shape[0], width - a.shape[1]
        if ph or pw:
            a = np.pad(a, ((0, ph), (0, pw), (0, 0)), mode="edge")
        return a, ""
    out = bicubic_upscale(arr, height, width)
    note = f"resized from {w}x{h} to {width}x{height} to compare"
    return (out * 255 + 0.5).astype(np.uint8) if arr.dtype == np.uint8 else out, note


def image_metrics(out: np.ndarray, ref: np.ndarray, crop: int = 0, *, full: bool = True) -> dict[str, float]:
    """PSNR / SSIM of ``out`` against ``ref`` (float HxWx3 in [0,1]): "psnr", "ssim" (RGB) and,
    when ``full``, "psnr_y", "ssim_y" (see :func:`.metrics.scores`)."""
    return metrics.scores(out, ref, crop=crop, y_channel=full)


def _display(a: np.ndarray) -> np.ndarray:
    return (a * 255 + 0.5).astype(np.uint8)


# ----------------------------------------------------------------------------- the job
class _Scorer:
    """The reference of a comparison: the ground truth, or (without one) the bicubic upscale
    at the size of the first model's result. Emits the bicubic baseline once its size is known."""

    def __init__(self, img: Any, gt: Any, on_event: Optional[EventCallback]) -> None:
        from . import images

        self.img, self.on_event = img, on_event
        self.in_h = img.rgb.shape[0]
        self.gt_f = images.to_float(gt) if gt is not None else None
        self.ref_hw: tuple[int, int] | None = self.gt_f.shape[:2] if self.gt_f is not None else None
        self.bic: np.ndarray | None = None
        self.crop = 0
        if self.ref_hw is not None:
            self._baseline()

    def _baseline(self) -> None:
        h, w = self.ref_hw
        self.crop = max(1, round(h / self.in_h))  # the scale: border cropped before scoring
        b = bicubic_upscale(self.img.rgb, h, w)
        m = image_metrics(b, self.gt_f, crop=self.crop) if self.gt_f is not None else {}
        label = f"Bicubic \u00d7{self.crop}" if self.crop > 1 else "Input"
        emit(self.on_event, Restored(BICUBIC, label, b, _display(b), m))
        self.bic = b

    def score(self, out_f: np.ndarray) -> tuple[np.ndarray, dict[str, float], str]:
        """(result at the reference size, its metrics, a note when it had to be resized)."""
        if self.ref_hw is None:
            self.ref_hw = out_f.shape[:2]
            self._baseline()
        shown, note = fit_to(out_f, *self.ref_hw)
        if self.gt_f is not None:
            m = image_metrics(shown, self.gt_f, crop=self.crop) if not note else {}
        else:
            m = {"psnr_bic": image_metrics(shown, self.bic, crop=self.crop, full=False)["psnr"]}
        return shown, m, note


def _load(input_path: Path | None, gt_path: Path | None, on_event: Optional[EventCallback]) -> tuple[Any, Any]:
    from . import images

    emit(on_event, Progress(0, 0, message=f"Reading {Path(input_path).name}"))
    img = images.load_image(input_path)
    gt = images.load_image(gt_path) if gt_path is not None else None
    emit(on_event, Loaded(img, gt))
    return img, gt


def compare_job(input_path: Path | None, gt_path: Path | None, models: list[tuple[str, Path]], *,
                loaded: tuple[Any, Any] | None = None, cache: dict | None = None, tile: int | None = None,
                device: str | None = None, on_event: Optional[EventCallback] = None,
                cancel: Optional[CancelToken] = None) -> int:
    """Load the input (unless ``loaded`` = (input, gt) ImageData), then restore it with each
    ``(label, model path)``, emitting Loaded and Restored events (bicubic first). Loaded models
    are kept in ``cache`` (key: (path, device)) for the next call. Returns the number of models run."""
    from . import images, restore

    img, gt = _load(input_path, gt_path, on_event) if loaded is None else loaded
    check(cancel)
    scorer = _Scorer(img, gt, on_event)
    cache = cache if cache is not None else {}
    for i, (label, path) in enumerate(models):
        check(cancel)
        emit(on_event, Progress(i, len(models), message=f"Loading {label}"))
        key = (str(path), device)
        if cache.get(key) is None:
            cache[key] = restore.load_any_model(path, device=device)
        check(cancel)
        emit(on_event, Progress(i, len(models), message=f"Restoring with {label}"))
        t0 = time.perf_counter()
        out = restore.restore_image(cache[key], img, tile=tile, device=device, on_event=on_event, cancel=cancel)
        seconds = time.perf_counter() - t0
        shown, m, note = scorer.score(images.to_float(out))
        emit(on_event, Restored(str(path), label, out, _display(shown), m, seconds, note))
    return len(models)


# ----------------------------------------------------------------------------- datasets
def find_same_stem(folder: Path, rel: Path) -> Path | None:
    """``folder/rel``, or a file with the same stem and another extension (lr PNG for hr JPEG)."""
    p = Path(folder) / rel
    if p.is_file():
        return p
    d = p.parent
    if d.is_dir():
        for q in sorted(d.glob(f"{p.stem}.*")):
            if q.is_file() and not q.name.startswith("."):
                return q
    return None


def dataset_pair(path: Path) -> tuple[Path, Path] | None:
    """(lr, hr) when ``path`` lies in a paired dataset's lr/ or hr/ folder, else None."""
    path = Path(path).resolve()
    for parent in path.parents:
        if parent.name in ("lr", "hr") and (parent.parent / "dataset.json").is_file():
            root = parent.parent
            rel = path.relative_to(parent)
            lr = find_same_stem(root / "lr", rel)
            hr = find_same_stem(root / "hr", rel)
            if lr is not None and hr is not None:
                return lr, hr
            return None
    return None


def dataset_valid_images(root: Path | str) -> list[str]:
    """The relative paths of a dataset's validation images ([] when its dataset.json cannot be
    read: the Compare panel then simply lists none). Any dataset.json with a "valid" list will do."""
    from .crappify import read_dataset_json

    try:
        meta = read_dataset_json(root, strict=False)
    except DatasetError:
        return []
    valid = meta.get("valid", [])
    return [str(v) for v in valid] if isinstance(valid, list) else []


def valid_entry(input_path: Path | str) -> tuple[Path, str] | None:
    """(dataset root, rel) when ``input_path`` is the lr image of a dataset's validation image."""
    inp = Path(input_path).resolve()
    for parent in inp.parents:
        if parent.name == "lr" and (parent.parent / "dataset.json").is_file():
            root = parent.parent
            rel = inp.relative_to(parent)
            for v in dataset_valid_images(root):
                if Path(v) == rel or Path(v).with_suffix("") == rel.with_suffix(""):
                    return root, v
            return None
    return None

