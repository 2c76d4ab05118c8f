"""Evaluation: crappify ground-truth photos with a recipe, restore them, and score the model and
baselines (bicubic ...) against the originals with the one PSNR / SSIM of :mod:`..metrics`."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from ..devices import release_freed_memory
from ..errors import ImageReadError, Lesson7Error, RecipeError
from ..events import CancelToken, EventCallback, Finished, ItemDone, ItemFailed, Log, Progress, RateMeter, check, emit
from .facts import ModelFacts, model_facts
from .image import restore_image

BASELINE_FILTERS = {"bicubic": "BICUBIC", "lanczos": "LANCZOS", "bilinear": "BILINEAR", "nearest": "NEAREST"}
METRICS = ["psnr_y", "psnr_rgb", "ssim_y"]

Baseline = Callable[[Any, "tuple[int, int]"], Any]


def metric_row(out: np.ndarray, hr: np.ndarray, border: int) -> dict[str, float]:
    """Y-PSNR, RGB-PSNR and Y-SSIM of ``out`` against ``hr`` (HxWx3 floats in [0,1]), ``border``
    px cropped from every side: the evaluation convention."""
    from .. import metrics

    return {
        "psnr_y": metrics.psnr(out, hr, y_channel=True, crop=border),
        "psnr_rgb": metrics.psnr(out, hr, crop=border),
        "ssim_y": metrics.ssim(out, hr, y_channel=True, crop=border),
    }


def _mean_rows(rows: list[dict[str, float]]) -> dict[str, float]:
    if not rows:
        return {}
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def _baselines(baselines: Sequence[str | tuple[str, Baseline]]) -> list[tuple[str, Baseline]]:
    from PIL import Image

    named: list[tuple[str, Baseline]] = []
    for b in baselines:
        if isinstance(b, tuple):
            named.append((str(b[0]), b[1]))
        elif b in BASELINE_FILTERS:
            flt = getattr(Image.Resampling, BASELINE_FILTERS[b])
            named.append((b, lambda lr, size, flt=flt: lr.resize(size, flt)))
        else:
            raise Lesson7Error(f"Unknown baseline '{b}'. Use {', '.join(BASELINE_FILTERS)} or (name, function).")
    return named


def _facts_and_border(model: Any, rec: Any, on_event: Optional[EventCallback]) -> tuple[ModelFacts | None, int]:
    if model is None:  # baselines only
        if not rec.scale:
            raise RecipeError(f"Recipe '{rec.name}' has no fixed scale; scoring baselines alone needs one.")
        return None, int(rec.scale)
    facts = model_facts(model)
    if rec.scale and rec.scale != facts.scale:
        emit(on_event, Log(
            f"The model restores x{facts.scale} but recipe '{rec.name}' degrades x{rec.scale}; "
            "outputs are resized to the original size before scoring.", level="warning"))
    return facts, int(rec.scale or facts.scale)


class _Scorer:
    """Scores one ground-truth file: crappify, restore, compare (the model and each baseline)."""

    def __init__(self, model: Any, rec: Any, seed: int, border: int, named: list[tuple[str, Baseline]],
                 restore_kw: dict[str, Any], cancel: Optional[CancelToken]) -> None:
        self.model, self.rec, self.seed, self.border, self.named = model, rec, seed, border, named
        self.restore_kw, self.cancel = restore_kw, cancel

    def _restored(self, lr_pil: Any, hr_pil: Any, row: dict[str, Any]) -> np.ndarray:
        from PIL import Image

        from .. import images

        out_img = restore_image(self.model, images.from_pil(lr_pil), cancel=self.cancel, **self.restore_kw)
        out = images.to_float(out_img)
        if out.shape[:2] != (hr_pil.height, hr_pil.width):
            pil = Image.fromarray(out_img.rgb).resize(hr_pil.size, Image.Resampling.BICUBIC)
            out = np.asarray(pil, dtype=np.float32) / 255.0
            row["resized"] = True
        return out

    def read(self, path: Path) -> Any:
        """The ground truth of ``path`` (cropped to the recipe's scale); ImageReadError /
        Lesson7Error when it cannot be read."""
        from .. import images
        from ..crappify import prepare_hr

        hr_pil, _changed = prepare_hr(images.load_image(path), self.rec.scale, None)
        return hr_pil

    def score(self, hr_pil: Any, rel: str) -> dict[str, Any]:
        """The row of one ground truth: crappified with its seed, restored, compared."""
        from ..crappify import apply_recipe
        from ..crappify import item_seed

        lr_pil = apply_recipe(hr_pil, self.rec, item_seed(self.seed, rel)).image
        hr = np.asarray(hr_pil, dtype=np.float32) / 255.0
        row: dict[str, Any] = {"file": rel, "size": [hr_pil.width, hr_pil.height], "lr_size": [lr_pil.width, lr_pil.height]}
        if self.model is not None:
            row["model"] = metric_row(self._restored(lr_pil, hr_pil, row), hr, self.border)
        for name, fn in self.named:
            base = np.asarray(fn(lr_pil, hr_pil.size).convert("RGB"), dtype=np.float32) / 255.0
            row[name] = metric_row(base, hr, self.border)
        return row


def _score_all(scorer: _Scorer, folder: Path, files: list[Path], on_event: Optional[EventCallback],
               cancel: Optional[CancelToken]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    meter = RateMeter(len(files))
    try:
        for i, path in enumerate(files):
            check(cancel)
            rel = path.relative_to(folder).as_posix()
            try:
                hr_pil = scorer.read(path)
            except (ImageReadError, Lesson7Error) as err:
                reason = getattr(err, "reason", None) or str(err)
                skipped.append({"path": str(path), "reason": reason})
                emit(on_event, ItemFailed(path=path, reason=reason))
                continue
            row = scorer.score(hr_pil, rel)
            rows.append(row)
            emit(on_event, ItemDone(path=path, info={k: row[k] for k in row if k not in ("file",)}))
            _rate, eta = meter.update(i + 1)
            emit(on_event, Progress(done=i + 1, total=len(files), message=rel, stage="eval", eta_s=eta))
    finally:
        release_freed_memory()
    return rows, skipped


def _result(model: Any, rec: Any, folder: Path, seed: int, facts: ModelFacts | None, border: int,
            named: list[tuple[str, Baseline]], rows: list[dict[str, Any]], how: dict[str, Any]) -> dict[str, Any]:
    """The means, the model's Y-PSNR gain over each baseline, and what was measured how
    (``how``: precision, ensemble)."""
    mean = {} if model is None else {"model": _mean_rows([r["model"] for r in rows])}
    for name, _fn in named:
        mean[name] = _mean_rows([r[name] for r in rows])
    info = getattr(model, "info", None)
    return {
        "model": None if model is None else getattr(info, "name", type(model).__name__),
        "folder": str(folder),
        "recipe": rec.name,
        "recipe_hash": rec.hash(),
        "seed": int(seed),
        "scale": facts.scale if facts is not None else int(rec.scale),
        "border": border,
        **how,
        "count": len(rows),
        "metrics": list(METRICS),
        "mean": mean,
        "gain_psnr_y": {} if model is None else {name: mean["model"]["psnr_y"] - mean[name]["psnr_y"] for name, _ in named},
    }


def evaluate(
    model: Any,
    folder: str | os.PathLike,
    recipe: Any,
    seed: int = 0,
    *,
    baselines: Sequence[str | tuple[str, Baseline]] = ("bicubic",),
    tile: int | None = None,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    ensemble: bool = False,
    recursive: bool = True,
    max_images: int | None = None,
    on_event: Optional[EventCallback] = None,
    cancel: Optional[CancelToken] = None,
) -> dict[str, Any]:
    """Crappify each ground-truth image of ``folder`` with ``recipe`` (its seed derived from
    ``seed`` and the file's relative path, as datasets.build_pairs does), restore it, and score
    the model and each baseline against the original (``model=None``: the baselines alone).

    Scores: Y-PSNR and SSIM on BT.601 luma and RGB-PSNR, with ``border`` = the recipe's scale
    (the model's when the recipe has none) cropped from every side; outputs of another size
    than the original (recipes without a fixed scale) are resized to it (bicubic) first. The
    HR image is cropped top-left to a multiple of the scale. Baselines: "bicubic", "lanczos",
    "bilinear", "nearest" (Pillow upsampling of the degraded image) or ``(name, fn)`` with
    ``fn(lr_pil, (w, h)) -> PIL image``. Unreadable images are listed under "skipped".
    Returns per-image rows, means and the mean Y-PSNR gain of the model over each baseline.
    """
    from .. import images
    from ..crappify import get_recipe

    rec = get_recipe(recipe)
    folder = Path(folder).expanduser()
    files = list(images.iter_images(folder, recursive=recursive))
    if max_images is not None:
        files = files[: max(0, int(max_images))]
    if not files:
        raise Lesson7Error(f"No images found in {folder}.")
    facts, border = _facts_and_border(model, rec, on_event)
    named = _baselines(baselines)
    t0 = time.perf_counter()
    restore_kw = dict(tile=tile, device=device, precision=precision, ensemble=ensemble)
    scorer = _Scorer(model, rec, seed, border, named, restore_kw, cancel)
    rows, skipped = _score_all(scorer, folder, files, on_event, cancel)
    if not rows:
        raise Lesson7Error(f"None of the {len(files)} images in {folder} could be read.")
    how = {"precision": precision, "ensemble": bool(ensemble)}
    result = _result(model, rec, folder, seed, facts, border, named, rows, how)
    result.update(images=rows, skipped=skipped, seconds=round(time.perf_counter() - t0, 3))
    emit(on_event, Finished(summary={k: result[k] for k in ("model", "count", "mean", "gain_psnr_y")}))
    return result
