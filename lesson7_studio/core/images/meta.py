"""EXIF orientation and ICC profile facts, kept as bytes beside the pixels."""

from __future__ import annotations

import numpy as np
from PIL import Image

_EXIF_PREFIX = b"Exif\x00\x00"
_ORIENTATION = 0x0112


def _normalise_exif(raw: bytes | None) -> bytes | None:
    if not raw:
        return None
    return raw if raw.startswith(_EXIF_PREFIX) else _EXIF_PREFIX + raw


def _exif_with_orientation_1(raw: bytes | None) -> bytes | None:
    raw = _normalise_exif(raw)
    if raw is None:
        return None
    exif = Image.Exif()
    try:
        exif.load(raw)
    except Exception:  # unparseable EXIF: drop it rather than carry a wrong orientation
        return None
    if exif.get(_ORIENTATION, 1) == 1:
        return raw
    exif[_ORIENTATION] = 1
    for ifd in (0x8769, 0x8825):  # Exif and GPS sub-IFDs: load them so tobytes keeps them
        if ifd in exif:
            exif.get_ifd(ifd)
    return exif.tobytes()


def _orient(arr: np.ndarray | None, orientation: int) -> np.ndarray | None:
    """Apply EXIF orientation to an HxW[xC] array (same result as ImageOps.exif_transpose)."""
    if arr is None or orientation in (0, 1):
        return arr
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, k=-1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, k=1),
    }
    op = ops.get(orientation)
    return arr if op is None else np.ascontiguousarray(op(arr))


def _icc_colour_space(icc: bytes | None) -> str:
    if icc and len(icc) >= 20:
        return icc[16:20].decode("ascii", "replace").strip()
    return ""
