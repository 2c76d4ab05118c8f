"""Reading and writing image files: :func:`load_image` and :func:`save_image`."""

from __future__ import annotations

import errno
import re
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image, UnidentifiedImageError, features

from ..errors import ImageReadError, ImageWriteError
from ..files import os_error_reason
from .atomic import atomic_write
from .data import ImageData, _convert_depth, flatten
from .decode import _decode
from .formats16 import _write_png16, _write_tiff16
from .listing import _HEIF_SUFFIXES, HEIF_AVAILABLE
from .meta import _ORIENTATION, _exif_with_orientation_1, _icc_colour_space, _normalise_exif, _orient

DEFAULT_MAX_PIXELS = 300_000_000

if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < DEFAULT_MAX_PIXELS:
    Image.MAX_IMAGE_PIXELS = DEFAULT_MAX_PIXELS


def _too_large(pixels: int | None, limit: int, size: str = "") -> str:
    """The one message for an image over the pixel limit (ours, or Pillow's above it)."""
    what = f"{size} ({pixels / 1e6:.1f} MP)" if size and pixels else (
        f"{pixels / 1e6:.1f} MP" if pixels else "its size")
    return f"{what} is over the limit of {limit / 1e6:g} MP (decompression bomb protection)"


def _reason(err: BaseException, path: Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> str:
    msg = str(err)
    if isinstance(err, UnidentifiedImageError):
        if path.suffix.lower() in _HEIF_SUFFIXES and not HEIF_AVAILABLE:
            return "HEIC/HEIF images need the optional pillow-heif package (pip install pillow-heif)"
        return "not an image file (its format is not recognised)"
    if isinstance(err, Image.DecompressionBombError):  # Pillow's own limit, twice MAX_IMAGE_PIXELS
        found = re.search(r"\((\d+) pixels\)", msg)
        limit = 2 * (Image.MAX_IMAGE_PIXELS or DEFAULT_MAX_PIXELS)
        if max_pixels is not None:
            limit = min(limit, max_pixels)
        if found:
            return _too_large(int(found.group(1)), limit)
        return _too_large(None, limit)
    if "truncated" in msg.lower() or isinstance(err, EOFError):
        return "file is truncated (incomplete download or copy?)"
    if isinstance(err, MemoryError):
        return "not enough memory to decode this image"
    if isinstance(err, PermissionError):
        return "permission denied"
    return f"damaged or unsupported image data ({type(err).__name__}: {msg})"


# ----------------------------------------------------------------------------- reading


def _check_file(path: Path) -> None:
    """ImageReadError for a path that is missing, unreadable, a folder or empty."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ImageReadError(path, "file not found") from None
    except OSError as err:
        raise ImageReadError(path, f"cannot access the file ({err.strerror or err})") from None
    if path.is_dir():
        raise ImageReadError(path, "is a folder, not an image file")
    if st.st_size == 0:
        raise ImageReadError(path, "file is empty (0 bytes)")


@dataclass
class _Decoded:
    """What :func:`_read` got out of the file, before orientation and metadata clean-up."""

    rgb: np.ndarray
    alpha: np.ndarray | None
    grey: bool
    extra: dict[str, Any]
    info: dict[str, Any]
    format: str
    mode: str
    orientation: int
    frames: int


def _read(path: Path, max_pixels: int | None) -> _Decoded:
    """Open and decode the first frame; Pillow's many exception types become ImageReadError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our limit governs
            with Image.open(path) as im:
                w, h = im.size
                if max_pixels is not None and w * h > max_pixels:
                    raise ImageReadError(path, _too_large(w * h, max_pixels, f"{w}x{h} pixels"))
                tiles = list(im.tile)  # before getexif(), which may decode (PNG)
                frames = int(getattr(im, "n_frames", 1) or 1)
                if frames > 1:
                    im.seek(0)
                    tiles = list(im.tile)
                fmt = im.format or path.suffix.lstrip(".").upper()
                src_mode = im.mode
                im.load()
                info = dict(im.info)  # after load: PNG chunks after IDAT (eXIf) are read then
                try:
                    orientation = int(im.getexif().get(_ORIENTATION, 1) or 1)
                except Exception:
                    orientation = 1
                rgb, alpha, grey, extra = _decode(path, im, tiles)
    except ImageReadError:
        raise
    except Exception as err:  # Pillow raises many types for bad files; all mean "cannot read"
        raise ImageReadError(path, _reason(err, path, max_pixels)) from err
    return _Decoded(rgb, alpha, grey, extra, info, fmt, src_mode, orientation, frames)


def load_image(path: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> ImageData:
    """Read an image file (first frame) into an upright :class:`ImageData`.

    Raises ImageReadError (with the path and a reason) for missing, empty, non-image,
    truncated, damaged or over-``max_pixels`` files. ``max_pixels=None`` disables our limit.
    """
    path = Path(path)
    _check_file(path)
    d = _read(path, max_pixels)
    icc = d.info.get("icc_profile") or None
    if d.extra.get("converted_from") == "CMYK" or _icc_colour_space(icc) not in ("", "RGB", "GRAY"):
        icc = None  # a CMYK/LAB profile does not describe the converted RGB pixels
    orientation = d.orientation if d.orientation in range(1, 9) else 1
    extra = d.extra
    extra.update(mode=d.mode, orientation=orientation, frames=d.frames)
    dpi = d.info.get("dpi")
    if dpi and all(float(v) > 1 for v in dpi):  # TIFF reports (1, 1) when it has no resolution
        extra["dpi"] = tuple(float(v) for v in dpi)
    return ImageData(
        rgb=_orient(d.rgb, orientation),
        alpha=_orient(d.alpha, orientation),
        is_grey=d.grey,
        bit_depth=16 if d.rgb.dtype == np.uint16 else 8,
        format=d.format,
        exif=_exif_with_orientation_1(d.info.get("exif")),
        icc=icc,
        path=path,
        extra=extra,
    )


# ----------------------------------------------------------------------------- writing


_FORMAT_ALIASES = {"JPG": "JPEG", "TIF": "TIFF", "HEIC": "HEIF"}


def _resolve_format(path: Path, format: str | None, fallback: str | None) -> str:
    if format:
        fmt = format.upper().lstrip(".")
        fmt = _FORMAT_ALIASES.get(fmt, fmt)
    else:
        fmt = Image.registered_extensions().get(path.suffix.lower()) or (fallback or "PNG").upper()
        fmt = _FORMAT_ALIASES.get(fmt, fmt)
    if fmt not in Image.SAVE:
        raise ImageWriteError(path, f"cannot write the {fmt} format")
    return fmt


Writer = Callable[[Path], None]


def _writer(img: ImageData, fmt: str, quality: int) -> tuple[Writer, np.ndarray, np.ndarray | None]:
    """How to write ``img`` as ``fmt``: (a function writing a given path, the rgb and alpha
    written), alpha flattened onto white where the format has none. 16-bit colour PNG and TIFF
    go through the built-in writers (Pillow cannot write them)."""
    rgb, alpha = img.rgb, img.alpha
    if alpha is not None and fmt not in ("PNG", "TIFF", "WEBP", "AVIF", "HEIF"):
        rgb, alpha = flatten(img), None
    if img.bit_depth == 16 and fmt in ("PNG", "TIFF"):
        if img.is_grey and alpha is None:
            pil = Image.fromarray(np.ascontiguousarray(rgb[..., 0]).astype(np.uint16))  # I;16
        else:
            arr = rgb if alpha is None else np.dstack([rgb, alpha])
            if fmt == "TIFF":
                return (lambda p: _write_tiff16(p, arr, img.icc)), rgb, alpha
            if img.is_grey:
                arr = np.dstack([rgb[..., 0], alpha])
            exif = _normalise_exif(img.exif)
            return (lambda p: _write_png16(p, arr, img.icc, exif)), rgb, alpha
    else:
        rgb8 = _convert_depth(rgb, np.uint8)
        a8 = None if alpha is None else _convert_depth(alpha, np.uint8)
        if img.is_grey and fmt != "WEBP":
            pil = Image.fromarray(np.ascontiguousarray(rgb8[..., 0]))  # L
            if a8 is not None:
                pil = Image.merge("LA", [pil, Image.fromarray(a8)])
        else:
            src = rgb8 if a8 is None else np.dstack([rgb8, a8])
            pil = Image.fromarray(np.ascontiguousarray(src))  # RGB or RGBA
        if fmt == "GIF":
            pil = pil.convert("RGB").quantize(256) if pil.mode != "L" else pil
    params = _save_params(img, fmt, quality)
    return (lambda p: pil.save(p, format=fmt, **params)), rgb, alpha


def _save_params(img: ImageData, fmt: str, quality: int = 95) -> dict[str, Any]:
    """Pillow's save() parameters: quality, ICC, EXIF, compression and dpi where ``fmt`` has them."""
    icc, exif = img.icc, _normalise_exif(img.exif)
    params: dict[str, Any] = {}
    if fmt in ("JPEG", "WEBP", "AVIF", "HEIF"):
        params["quality"] = int(quality)
    if fmt == "WEBP" and quality >= 100:
        params["lossless"] = True
        params["exact"] = True  # keep colour under transparent pixels
    if fmt == "JPEG" and quality >= 90:
        params["subsampling"] = 0  # 4:4:4: keep colour detail at high quality
    if icc and fmt in ("JPEG", "PNG", "TIFF", "WEBP", "AVIF", "HEIF"):
        params["icc_profile"] = icc
    if exif and fmt in ("JPEG", "PNG", "WEBP", "AVIF", "HEIF"):
        params["exif"] = exif
    if fmt == "TIFF" and features.check("libtiff"):
        params["compression"] = "tiff_deflate"
    dpi = img.extra.get("dpi")
    if dpi and fmt in ("JPEG", "PNG", "TIFF"):
        params["dpi"] = dpi
    return params


def save_image(img: ImageData, path: str | Path, format: str | None = None, quality: int = 95) -> Path:
    """Write ``img`` atomically; the format comes from ``format``, the suffix or ``img.format``.

    Keeps bit depth, alpha, EXIF and ICC where the format allows (see the package table).
    Raises ImageWriteError. Returns the path written.
    """
    path = Path(path)
    fmt = _resolve_format(path, format, img.format)
    write, rgb, alpha = _writer(img, fmt, quality)
    try:
        with atomic_write(path) as tmp:
            write(tmp)
    except ImageWriteError:
        raise
    except Exception as err:
        raise ImageWriteError(path, _write_reason(err, path, rgb.nbytes + (0 if alpha is None else alpha.nbytes))) from err
    return path


def _write_reason(err: BaseException, path: Path, nbytes: int) -> str:
    """Why writing ``path`` failed, in words. Encoders report a full disk in their own terms
    (libtiff: "encoder error -2"), so the free space is looked at too."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1), errno.EROFS,
                                                  errno.EACCES, errno.EPERM):
        return os_error_reason(err, path)
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        free = None
    if free is not None and free < max(nbytes, 1 << 20):
        return f"the disk is full ({free / 1e6:.1f} MB free in {path.parent}; the image may need {nbytes / 1e6:.1f} MB)"
    return f"{type(err).__name__}: {err}"
