"""Image files in and out: one representation for everything Pillow reads.

:func:`load_image` turns any readable file into an :class:`ImageData`: EXIF orientation
applied (and reset to 1 in the EXIF kept), palette / LA / RGBA split into RGB plus an alpha
plane, CMYK / YCbCr / LAB / HSV converted to RGB, greyscale flagged, 16-bit kept as uint16,
EXIF and ICC profile kept as bytes. Anything that cannot be read raises
:class:`~.errors.ImageReadError` with the file and a human reason.

:func:`save_image` writes an :class:`ImageData` back atomically, keeping what the format allows:

========  =========  ===========  =====  ===  ==================================
format    16-bit     alpha        EXIF   ICC  notes
========  =========  ===========  =====  ===  ==================================
PNG       yes        yes          yes    yes  16-bit colour/alpha: own writer
TIFF      yes        yes          no     yes  16-bit colour/alpha: own writer
JPEG      no (8)     flattened    yes    yes  alpha composited onto white
WebP      no (8)     yes          yes    yes
BMP, GIF  no (8)     flattened    no     no   GIF is palettised (256 colours)
========  =========  ===========  =====  ===  ==================================

JPEG has no alpha: the image is composited onto white rather than the alpha dropped, because
the colour under fully transparent pixels is often arbitrary. Pillow has no 16-bit colour mode;
16-bit RGB(A) PNG and TIFF are read at full depth by decoding the file twice (high and low
bytes) and written by small built-in PNG / TIFF writers.

Decompression bombs: images over ``max_pixels`` (default 300 MP) are refused from their
header, before decoding. To let that limit govern, this module raises Pillow's own
``Image.MAX_IMAGE_PIXELS`` to 300 MP at import (unless someone set it to None or higher).
``ImageFile.LOAD_TRUNCATED_IMAGES`` is never changed: truncated files are errors.
"""

from __future__ import annotations

import errno
import io
import os
import re
import secrets
import shutil
import struct
import sys
import warnings
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError, features

from .errors import DatasetError, ImageReadError, ImageWriteError
from .files import os_error_reason

DEFAULT_MAX_PIXELS = 300_000_000

if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < DEFAULT_MAX_PIXELS:
    Image.MAX_IMAGE_PIXELS = DEFAULT_MAX_PIXELS

_HEIF_SUFFIXES = frozenset({".heic", ".heif", ".hif"})

try:  # optional HEIC/HEIF support
    from pillow_heif import register_heif_opener  # type: ignore[import-not-found]

    register_heif_opener()
    HEIF_AVAILABLE = True
except Exception:  # not installed or broken: HEIC files get a clear ImageReadError
    HEIF_AVAILABLE = False

#: lower-case suffixes the folder walkers pick up. HEIC/HEIF is listed even without
#: pillow-heif so such files are reported ("install pillow-heif") instead of silently ignored.
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".tif", ".tiff", ".bmp", ".dib", ".webp", ".gif"}
    | _HEIF_SUFFIXES
    | ({".avif"} if Image.registered_extensions().get(".avif") else set())
)

_EXIF_PREFIX = b"Exif\x00\x00"
_ORIENTATION = 0x0112
_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
# a 16-bit colour tile's rawmode -> the rawmode that unpacks the other (low) byte of each sample
_LOW_BYTE_RAWMODE = {
    "RGB;16B": "RGB;16L",
    "RGB;16L": "RGB;16B",
    "RGBA;16B": "RGBA;16L",
    "RGBA;16L": "RGBA;16B",
    # libtiff hands over native-endian samples
    "RGB;16N": "RGB;16B" if sys.byteorder == "little" else "RGB;16L",
    "RGBA;16N": "RGBA;16B" if sys.byteorder == "little" else "RGBA;16L",
}


@dataclass
class ImageData:
    """Pixels plus what is needed to save them faithfully.

    ``rgb`` is HxWx3 uint8 or uint16 (``bit_depth`` 8 or 16, filled from the dtype when 0);
    ``alpha`` is HxW of the same dtype or None; ``exif`` has orientation 1; ``extra`` holds
    facts about the source: ``mode`` (Pillow mode), ``orientation``, ``frames``, ``dpi``,
    ``converted_from``.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None = None
    is_grey: bool = False
    bit_depth: int = 0
    format: str = "PNG"
    exif: bytes | None = None
    icc: bytes | None = None
    path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rgb.ndim != 3 or self.rgb.shape[2] != 3:
            raise ValueError(f"rgb must be HxWx3, got shape {self.rgb.shape}")
        if self.rgb.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"rgb must be uint8 or uint16, got {self.rgb.dtype}")
        depth = 16 if self.rgb.dtype == np.uint16 else 8
        if self.bit_depth in (0, None):
            self.bit_depth = depth
        elif self.bit_depth != depth:
            raise ValueError(f"bit_depth {self.bit_depth} does not match rgb dtype {self.rgb.dtype}")
        if self.alpha is not None:
            if self.alpha.shape != self.rgb.shape[:2]:
                raise ValueError(f"alpha shape {self.alpha.shape} != image {self.rgb.shape[:2]}")
            if self.alpha.dtype != self.rgb.dtype:
                self.alpha = _convert_depth(self.alpha, self.rgb.dtype)

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as Pillow reports sizes."""
        return self.width, self.height

    @property
    def max_value(self) -> int:
        return 65535 if self.bit_depth == 16 else 255


# ----------------------------------------------------------------------------- helpers


def _convert_depth(arr: np.ndarray, dtype: Any) -> np.ndarray:
    dtype = np.dtype(dtype)
    if arr.dtype == dtype:
        return arr
    if dtype == np.uint8:  # 16 -> 8, rounded
        return ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return arr.astype(np.uint16) * 257  # 8 -> 16, exact inverse of the above


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


def _tile_rawmode(tile: Any) -> str | None:
    args = tile.args if hasattr(tile, "args") else tile[3]
    if isinstance(args, str):
        return args
    if isinstance(args, tuple) and args and isinstance(args[0], str):
        return args[0]
    return None


def _with_rawmode(tile: Any, rawmode: str) -> Any:
    args = tile.args if hasattr(tile, "args") else tile[3]
    new_args = rawmode if isinstance(args, str) else (rawmode, *args[1:])
    if hasattr(tile, "_replace"):
        return tile._replace(args=new_args)
    return (tile[0], tile[1], tile[2], new_args)


def _read_16bit_colour(path: Path, im: Image.Image, tiles: list) -> np.ndarray | None:
    """Full 16-bit samples of a 16-bit RGB(A) / LA file Pillow would cut to 8 bits, or None."""
    raws = {_tile_rawmode(t) for t in tiles}
    if len(raws) != 1:
        return None
    raw = raws.pop()
    channels = 4 if im.mode == "RGBA" else 3
    if raw == "LA;16B" and im.mode == "RGBA":  # 16-bit grey+alpha PNG: unpack the bytes as RGBA
        with Image.open(path) as im2:
            im2.tile = [_with_rawmode(t, "RGBA") for t in im2.tile]
            im2.load()
            b = np.asarray(im2).astype(np.uint16)
        la = (b[..., 0::2] << 8) | b[..., 1::2]  # (grey, alpha)
        return np.dstack([la[..., 0], la[..., 0], la[..., 0], la[..., 1]])
    low = _LOW_BYTE_RAWMODE.get(raw or "")
    if low is None or im.mode not in ("RGB", "RGBA"):
        return None
    with Image.open(path) as im2:
        im2.tile = [_with_rawmode(t, low) for t in im2.tile]
        im2.load()
        lo = np.asarray(im2).astype(np.uint16)
    hi = np.asarray(im).astype(np.uint16)
    if hi.shape != lo.shape or hi.shape[-1] != channels:
        return None
    return (hi << 8) | lo


def _icc_colour_space(icc: bytes | None) -> str:
    if icc and len(icc) >= 20:
        return icc[16:20].decode("ascii", "replace").strip()
    return ""


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


# ----------------------------------------------------------------------------- public API


def load_image(path: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> ImageData:
    """Read an image file (first frame) into an upright :class:`ImageData`.

    Raises ImageReadError (with the path and a reason) for missing, empty, non-image,
    truncated, damaged or over-``max_pixels`` files. ``max_pixels=None`` disables our limit.
    """
    path = Path(path)
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
    icc = info.get("icc_profile") or None
    if extra.get("converted_from") == "CMYK" or _icc_colour_space(icc) not in ("", "RGB", "GRAY"):
        icc = None  # a CMYK/LAB profile does not describe the converted RGB pixels
    if orientation not in range(1, 9):
        orientation = 1
    extra.update(mode=src_mode, orientation=orientation, frames=frames)
    dpi = info.get("dpi")
    if dpi and all(float(v) > 1 for v in dpi):  # TIFF reports (1, 1) when it has no resolution
        extra["dpi"] = tuple(float(v) for v in dpi)
    return ImageData(
        rgb=_orient(rgb, orientation),
        alpha=_orient(alpha, orientation),
        is_grey=grey,
        bit_depth=16 if rgb.dtype == np.uint16 else 8,
        format=fmt,
        exif=_exif_with_orientation_1(info.get("exif")),
        icc=icc,
        path=path,
        extra=extra,
    )


def to_float(img: ImageData) -> np.ndarray:
    """HxWx3 float32 in [0, 1]."""
    return img.rgb.astype(np.float32) / np.float32(img.max_value)


def from_float(arr: Any, like: ImageData) -> ImageData:
    """HxWx3 float array in [0, 1] -> ImageData with ``like``'s bit depth and metadata.

    The alpha plane of ``like`` is resized (bicubic) when the size changed; ``is_grey`` stays
    only if the new pixels are still grey.
    """
    if hasattr(arr, "detach"):  # torch tensor
        arr = arr.detach().cpu().numpy()
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 array, got shape {arr.shape}")
    top = float(like.max_value)
    dtype = np.uint16 if like.bit_depth == 16 else np.uint8
    rgb = np.rint(np.clip(np.nan_to_num(arr), 0.0, 1.0) * top).astype(dtype)
    alpha = like.alpha
    if alpha is not None and alpha.shape != rgb.shape[:2]:
        a = Image.fromarray(alpha.astype(np.float32)).resize(  # mode F
            (rgb.shape[1], rgb.shape[0]), Image.Resampling.BICUBIC
        )
        alpha = np.rint(np.clip(np.asarray(a), 0, top)).astype(dtype)
    grey = like.is_grey and bool(
        np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])
    )
    return replace(like, rgb=rgb, alpha=alpha, is_grey=grey, extra=dict(like.extra))


def flatten(img: ImageData, background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """RGB with the alpha plane composited onto ``background`` (8-bit units); same dtype."""
    if img.alpha is None:
        return img.rgb
    top = float(img.max_value)
    a = img.alpha.astype(np.float32)[..., None] / top
    bg = np.asarray(background, np.float32) * (top / 255.0)
    out = img.rgb.astype(np.float32) * a + bg * (1.0 - a)
    return np.rint(out).astype(img.rgb.dtype)


def to_pil(img: ImageData, alpha: bool = True) -> Image.Image:
    """8-bit Pillow image: "RGBA" when there is alpha and ``alpha`` is true, else "RGB"
    (alpha composited onto white)."""
    if alpha and img.alpha is not None:
        rgba = np.dstack([img.rgb, img.alpha])
        return Image.fromarray(np.ascontiguousarray(_convert_depth(rgba, np.uint8)))  # RGBA
    return Image.fromarray(np.ascontiguousarray(_convert_depth(flatten(img), np.uint8)))  # RGB


def from_pil(pil: Image.Image, like: ImageData | None = None) -> ImageData:
    """Pillow image (any mode) -> 8-bit ImageData; metadata from ``like`` when given."""
    mode = pil.mode
    grey = mode in _GREY_MODES
    if mode in ("LA", "La", "PA", "RGBA", "RGBa") or (mode in ("P", "L", "RGB") and "transparency" in pil.info):
        a = np.asarray(pil.convert("RGBA"))
        rgb, alpha = np.ascontiguousarray(a[..., :3]), np.ascontiguousarray(a[..., 3])
    else:
        rgb, alpha = np.asarray(pil.convert("RGB")).copy(), None
    if like is None:
        return ImageData(rgb=rgb, alpha=alpha, is_grey=grey, format=pil.format or "PNG")
    return replace(like, rgb=rgb, alpha=alpha, is_grey=grey, bit_depth=8, extra=dict(like.extra))


@contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; rename it onto ``path`` on success.

    The temp name starts with '.' and ends with '.part' (so folder walkers skip it); it is
    removed if the block raises. The parent folder is created if needed. Writers must name
    the format explicitly (the temp suffix is '.part').
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.part")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise


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


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _write_png16(path: Path, arr: np.ndarray, icc: bytes | None, exif: bytes | None) -> None:
    """16-bit PNG (grey+alpha, RGB or RGBA) with the 'Up' filter; Pillow cannot write these."""
    h, w, c = arr.shape
    colour_type = {2: 4, 3: 2, 4: 6}[c]
    rows = np.ascontiguousarray(arr.astype(">u2")).view(np.uint8).reshape(h, w * c * 2)
    filtered = rows.copy()
    filtered[1:] -= rows[:-1]  # uint8 arithmetic wraps modulo 256, as the Up filter wants
    raw = np.concatenate([np.full((h, 1), 2, np.uint8), filtered], axis=1).tobytes()
    out = [b"\x89PNG\r\n\x1a\n", _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0))]
    if icc:
        out.append(_png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc)))
    if exif:
        out.append(_png_chunk(b"eXIf", exif[len(_EXIF_PREFIX):] if exif.startswith(_EXIF_PREFIX) else exif))
    out += [_png_chunk(b"IDAT", zlib.compress(raw, 6)), _png_chunk(b"IEND", b"")]
    path.write_bytes(b"".join(out))


def _write_tiff16(path: Path, arr: np.ndarray, icc: bytes | None) -> None:
    """16-bit RGB/RGBA TIFF, one deflate strip, little-endian; Pillow cannot write these."""
    h, w, c = arr.shape
    data = zlib.compress(np.ascontiguousarray(arr.astype("<u2")).tobytes(), 6)
    SHORT, LONG, UNDEF = 3, 4, 7
    entries: list[tuple[int, int, int, bytes]] = []  # tag, type, count, value bytes

    def add(tag: int, typ: int, values: Any) -> None:
        if typ == UNDEF:
            entries.append((tag, typ, len(values), bytes(values)))
        else:
            fmt = "<%d%s" % (len(values), "H" if typ == SHORT else "I")
            entries.append((tag, typ, len(values), struct.pack(fmt, *values)))

    data_off = 8
    add(256, LONG, [w])
    add(257, LONG, [h])
    add(258, SHORT, [16] * c)
    add(259, SHORT, [8])  # Adobe deflate
    add(262, SHORT, [2])  # RGB
    add(273, LONG, [data_off])
    add(277, SHORT, [c])
    add(278, LONG, [h])
    add(279, LONG, [len(data)])
    add(284, SHORT, [1])
    if c == 4:
        add(338, SHORT, [2])  # unassociated alpha
    if icc:
        add(34675, UNDEF, icc)
    entries.sort()
    blob_off = data_off + len(data) + (len(data) & 1)
    blobs = b""
    ifd_entries = b""
    for tag, typ, count, value in entries:
        if len(value) <= 4:
            ifd_entries += struct.pack("<HHI", tag, typ, count) + value.ljust(4, b"\x00")
        else:
            off = blob_off + len(blobs)
            ifd_entries += struct.pack("<HHII", tag, typ, count, off)
            blobs += value + (b"\x00" if len(value) & 1 else b"")
    ifd_off = blob_off + len(blobs)
    header = b"II*\x00" + struct.pack("<I", ifd_off)
    body = data + (b"\x00" if len(data) & 1 else b"") + blobs
    ifd = struct.pack("<H", len(entries)) + ifd_entries + struct.pack("<I", 0)
    path.write_bytes(header + body + ifd)


def save_image(img: ImageData, path: str | Path, format: str | None = None, quality: int = 95) -> Path:
    """Write ``img`` atomically; the format comes from ``format``, the suffix or ``img.format``.

    Keeps bit depth, alpha, EXIF and ICC where the format allows (see the module table).
    Raises ImageWriteError. Returns the path written.
    """
    path = Path(path)
    fmt = _resolve_format(path, format, img.format)
    icc, exif = img.icc, _normalise_exif(img.exif)
    rgb, alpha = img.rgb, img.alpha
    deep = img.bit_depth == 16 and fmt in ("PNG", "TIFF")
    keeps_alpha = fmt in ("PNG", "TIFF", "WEBP", "AVIF", "HEIF")
    if alpha is not None and not keeps_alpha:
        rgb, alpha = flatten(img), None
    params: dict[str, Any] = {}
    custom = None  # (writer, array) for what Pillow cannot write
    if deep:
        if img.is_grey and alpha is None:
            pil = Image.fromarray(np.ascontiguousarray(rgb[..., 0]).astype(np.uint16))  # I;16
        else:
            arr = rgb if alpha is None else np.dstack([rgb, alpha])
            if fmt == "PNG":
                if img.is_grey and alpha is not None:
                    arr = np.dstack([rgb[..., 0], alpha])
                custom = (lambda p, a=arr: _write_png16(p, a, icc, exif))
            else:
                custom = (lambda p, a=arr: _write_tiff16(p, a, icc))
            pil = None
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
    try:
        with atomic_write(path) as tmp:
            if custom is not None:
                custom(tmp)
            else:
                assert pil is not None
                pil.save(tmp, format=fmt, **params)
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


def iter_images(folder: str | Path, recursive: bool = True) -> Iterator[Path]:
    """Image files under ``folder`` (by suffix), sorted by relative path.

    Hidden files and folders (name starting with '.') and our '*.part' temp files are skipped;
    symlinked folders are not followed. Raises DatasetError if ``folder`` is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"Folder not found: {folder}")
    found: list[tuple[tuple[str, ...], Path]] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if recursive else []
        base = Path(dirpath)
        for name in filenames:
            if name.startswith(".") or name.endswith(".part"):
                continue
            if Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                p = base / name
                found.append((p.relative_to(folder).parts, p))
    found.sort(key=lambda t: t[0])
    for _, p in found:
        yield p


__all__ = [
    "DEFAULT_MAX_PIXELS",
    "HEIF_AVAILABLE",
    "IMAGE_EXTENSIONS",
    "ImageData",
    "atomic_write",
    "flatten",
    "from_float",
    "from_pil",
    "iter_images",
    "load_image",
    "save_image",
    "to_float",
    "to_pil",
]
