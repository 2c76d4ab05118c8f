"""One dataset pair: a source photo crappified into an HR/LR pair.

:func:`render_pair` is the one computation of a pair's pixels, used by the builder
(:func:`make_pair`) and by :func:`~.preview.preview`, so what the app previews is what gets
built. Free of torch, so the builder's worker processes start fast.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from typing import Any

from PIL import Image

from ..errors import DatasetError, ImageReadError
from ..images import DEFAULT_MAX_PIXELS, ImageData, atomic_write, load_image, to_pil
from .recipes import CrappifyResult, Recipe, apply_recipe


def _name_bytes(text: str) -> bytes:
    """UTF-8 bytes of ``text``; a file name that is not UTF-8 (decoded by Python with lone
    surrogates, PEP 383) gives back its raw bytes, so every name has one stable seed."""
    return text.encode("utf-8", "surrogateescape")


def item_seed(seed: int, rel: str) -> int:
    """The crappify seed of the image at relative path ``rel`` (posix, from the source folder)
    in a dataset built with ``seed``."""
    h = hashlib.sha256(_name_bytes(f"crappify\x1f{seed}\x1f{rel}")).digest()
    return int.from_bytes(h[:8], "big")


@dataclass
class PairJob:
    """One source file to turn into an HR/LR pair (built by :func:`~.build.build_pairs`)."""

    src: str
    hr: str
    lr: str
    recipe: Recipe
    seed: int
    max_size: int | None = None
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    png_compress_level: int = 1


def prepare_hr(data: ImageData, scale: int | None, max_size: int | None) -> tuple[Image.Image, bool]:
    """The HR image the pair is made from: RGB 8-bit (alpha composited onto white), longest
    side capped to ``max_size`` (Lanczos), then cropped top-left to a multiple of ``scale`` so
    that LR x scale == HR exactly. Returns (image, changed-from-the-decoded-pixels)."""
    img = to_pil(data, alpha=False)
    changed = False
    w, h = img.size
    if max_size is not None and max(w, h) > max_size:
        r = max_size / max(w, h)
        img = img.resize((max(1, round(w * r)), max(1, round(h * r))), Image.Resampling.LANCZOS)
        changed = True
        w, h = img.size
    s = scale or 1
    if s > 1:
        W, H = w - w % s, h - h % s
        if W == 0 or H == 0:
            raise DatasetError(f"image is {w}x{h} pixels, smaller than the recipe's scale {s}")
        if (W, H) != (w, h):
            img = img.crop((0, 0, W, H))
            changed = True
    return img, changed


@dataclass
class RenderedPair:
    """A pair's pixels: ``hr`` (the HR image), ``hr_changed`` (resized or cropped from the
    decoded photo) and ``result`` (the crappified image, its JPEG bytes, what was drawn)."""

    hr: Image.Image
    hr_changed: bool
    result: CrappifyResult

    @property
    def lr(self) -> Image.Image:
        return self.result.image


def render_pair(data: ImageData, recipe: Recipe, seed: int, max_size: int | None = None) -> RenderedPair:
    """The pair the builder makes of ``data`` with the photo's crappify ``seed``
    (:func:`item_seed`): :func:`prepare_hr`, then the recipe. DatasetError when the photo is
    smaller than the recipe's scale."""
    hr, changed = prepare_hr(data, recipe.scale, max_size)
    return RenderedPair(hr=hr, hr_changed=changed, result=apply_recipe(hr, recipe, seed))


def _source_is_hr(data: ImageData, changed: bool) -> bool:
    """True when the source file's bytes are already the HR PNG (unchanged 8-bit RGB/grey PNG)."""
    return (
        not changed
        and data.format == "PNG"
        and data.alpha is None
        and data.bit_depth == 8
        and data.extra.get("mode") in ("RGB", "L")
        and data.extra.get("orientation", 1) == 1
    )


def _write_pair(job: PairJob, data: ImageData, pair: RenderedPair, copy_src: bool) -> None:
    """HR as PNG (or the source's bytes), LR as the JPEG step's bytes (or PNG), each atomically."""
    png: dict[str, Any] = {"compress_level": job.png_compress_level}
    if data.icc:
        png["icc_profile"] = data.icc
    with atomic_write(job.hr) as tmp:
        if copy_src:
            shutil.copyfile(job.src, tmp)
        else:
            pair.hr.save(tmp, format="PNG", **png)
    with atomic_write(job.lr) as tmp:
        if pair.result.jpeg_bytes is not None and job.lr.lower().endswith((".jpg", ".jpeg")):
            tmp.write_bytes(pair.result.jpeg_bytes)
        else:
            pair.lr.save(tmp, format="PNG", **png)


def make_pair(job: PairJob) -> dict[str, Any]:
    """Crappify ``job.src`` into ``job.hr`` (PNG, or the source bytes when they are already an
    unchanged 8-bit RGB/grey PNG) and ``job.lr`` (the JPEG bytes when the recipe ends with JPEG,
    else PNG), each written atomically. Never raises for a bad image: returns
    ``{"ok": False, "bad_source": bool, "reason": str}`` or ``{"ok": True, ...sizes, params}``."""
    try:
        data = load_image(job.src, max_pixels=job.max_pixels)
    except ImageReadError as err:
        return {"ok": False, "bad_source": True, "reason": err.reason}
    try:
        pair = render_pair(data, job.recipe, job.seed, job.max_size)
        copy_src = _source_is_hr(data, pair.hr_changed)
        _write_pair(job, data, pair, copy_src)
    except DatasetError as err:  # smaller than the scale
        return {"ok": False, "bad_source": True, "reason": err.message}
    except Exception as err:  # writing failed (disk full, permissions ...)
        return {"ok": False, "bad_source": False, "reason": f"{type(err).__name__}: {err}"}
    return {
        "ok": True,
        "hr_size": list(pair.hr.size),
        "lr_size": list(pair.lr.size),
        "hr_copied": copy_src,
        "params": pair.result.params,
        "pid": os.getpid(),  # which process built it (the builder shares work between processes)
    }
