"""A decoded Pillow image of any mode -> RGB (8 or 16 bit) plus an alpha plane."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, features

from .formats16 import _read_16bit_colour, _tile_rawmode
from .meta import _icc_colour_space


def _to_srgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    """CMYK / LAB -> RGB, through the embedded profile when littlecms is available."""
    try:
        from PIL import ImageCms

        if im.mode == "LAB":
            src = ImageCms.createProfile("LAB")
        elif icc and features.check("littlecms2") and _icc_colour_space(icc) == "CMYK":
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        else:
            src = None
        if src is not None:
            return ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except Exception:
        pass  # fall back to Pillow's plain conversion below
    return im.convert("RGB")


def _decode(path: Path, im: Image.Image, tiles: list) -> tuple[np.ndarray, np.ndarray | None, bool, dict]:
    """Decoded Pillow image -> (rgb HxWx3, alpha HxW|None, is_grey, extra)."""
    mode = im.mode
    extra: dict[str, Any] = {}
    has_trns = "transparency" in im.info
    if mode in ("RGB", "RGBA"):
        full = _read_16bit_colour(path, im, tiles)
        if full is not None:
            alpha = np.ascontiguousarray(full[..., 3]) if full.shape[-1] == 4 else None
            grey = _tile_rawmode(tiles[0]) == "LA;16B"
            return np.ascontiguousarray(full[..., :3]), alpha, grey, extra
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im)
        if mode == "F":
            a = a.astype(np.float64)
            a = a * 65535.0 if np.nanmax(a) <= 1.0 else a
            a = np.rint(np.nan_to_num(a))
        a = np.clip(a, 0, 65535).astype(np.uint16)
        return np.repeat(a[..., None], 3, axis=2), None, True, extra
    if mode in ("1", "L", "LA", "La"):
        im = im.convert("LA") if (mode in ("LA", "La") or has_trns) else im.convert("L")
        a = np.asarray(im)
        if a.ndim == 2:
            return np.repeat(a[..., None], 3, axis=2), None, True, extra
        return np.repeat(a[..., :1], 3, axis=2), np.ascontiguousarray(a[..., 1]), True, extra
    if mode in ("P", "PA"):
        im = im.convert("RGBA") if (mode == "PA" or has_trns) else im.convert("RGB")
    elif mode in ("RGBa",):
        im = im.convert("RGBA")
    elif mode == "RGB" and has_trns:
        im = im.convert("RGBA")
    elif mode in ("CMYK", "LAB"):
        extra["converted_from"] = mode
        im = _to_srgb(im, im.info.get("icc_profile"))
    elif mode not in ("RGB", "RGBA"):
        extra["converted_from"] = mode
        im = im.convert("RGB")
    a = np.asarray(im)
    if a.shape[-1] == 4:
        return np.ascontiguousarray(a[..., :3]), np.ascontiguousarray(a[..., 3]), False, extra
    return np.ascontiguousarray(a), None, False, extra
