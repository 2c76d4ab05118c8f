"""16-bit colour: Pillow has no 16-bit RGB(A) mode, so such PNG and TIFF files are read at full
depth by decoding the file twice (high and low bytes), and written by small built-in writers."""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .meta import _EXIF_PREFIX

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
