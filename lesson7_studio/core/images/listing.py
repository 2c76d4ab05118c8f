"""Which files are images: the suffixes the folder walkers pick up, and the walker."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from PIL import Image

from ..errors import DatasetError
from ..events import CancelToken, EventCallback

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


def list_images(folder: str | Path, recursive: bool = True, *, on_event: EventCallback | None = None,
                cancel: CancelToken | None = None) -> list[Path]:
    """:func:`iter_images` as a list, as a job: ``cancel`` (a CancelToken) is checked every 256
    files, so listing a huge folder stops when asked (Cancelled)."""
    out = []
    for i, p in enumerate(iter_images(folder, recursive=recursive)):
        if cancel is not None and i % 256 == 0:
            cancel.check()
        out.append(p)
    return out
