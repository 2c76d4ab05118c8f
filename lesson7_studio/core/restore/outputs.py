"""Where a folder restore writes: the output formats, each source's output path, the share of a
torchrun rank, and the leftovers of a killed earlier run."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from ..errors import Lesson7Error

# --format choices -> (PIL format, file extension)
OUTPUT_FORMATS: dict[str, tuple[str, str]] = {
    "png": ("PNG", ".png"),
    "jpg": ("JPEG", ".jpg"),
    "jpeg": ("JPEG", ".jpg"),
    "webp": ("WEBP", ".webp"),
    "tiff": ("TIFF", ".tif"),
    "tif": ("TIFF", ".tif"),
}


def dist_share() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) outside it."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1") or 1)
        rank = int(os.environ.get("RANK", "0") or 0)
    except ValueError:
        return 0, 1
    if world < 1 or not 0 <= rank < world:
        return 0, 1
    return rank, world


def _writable_ext(ext: str) -> bool:
    from PIL import Image

    Image.init()
    fmt = Image.registered_extensions().get(ext.lower())
    return fmt is not None and fmt in Image.SAVE


def plan_outputs(
    files: list[Path], src_root: Path, dst: Path, keep_tree: bool, out_format: str
) -> list[tuple[Path, Path, str | None]]:
    """(source, output path, PIL format or None for "by extension") for every file."""
    fmt = out_format.lower()
    if fmt != "keep" and fmt not in OUTPUT_FORMATS:
        raise Lesson7Error(f"Unknown output format '{out_format}'. Use keep, {', '.join(sorted(set(OUTPUT_FORMATS)))}.")
    plan = []
    used: set[Path] = set()
    for f in files:
        rel = f.relative_to(src_root) if src_root != f else Path(f.name)
        if fmt == "keep":
            if _writable_ext(f.suffix):
                ext, pil = f.suffix, None
            else:  # e.g. HEIC without its writer
                ext, pil = ".png", "PNG"
        else:
            pil, ext = OUTPUT_FORMATS[fmt]
        name = rel.with_suffix(ext) if keep_tree else Path(rel.stem + ext)
        out = dst / name
        n = 2
        while out in used:  # flat output: same stem in two folders
            out = dst / name.with_name(f"{name.stem}-{n}{ext}")
            n += 1
        used.add(out)
        plan.append((f, out, pil))
    return plan


def clean_stale_parts(folder: Path, name: str) -> None:
    """Remove temp files that a killed earlier run left for output ``name``.

    atomic_write names them '.<name>.<pid>-<hex>.part'; only those of dead processes go.
    """
    try:
        stale = list(folder.glob(f".{name}.*.part"))
    except OSError:
        return
    for p in stale:
        pid_text = p.name[len(name) + 2 :].split("-", 1)[0]
        if pid_text.isdigit():
            pid = int(pid_text)
            if pid == os.getpid():
                continue
            try:
                os.kill(pid, 0)
                continue  # that writer is alive
            except ProcessLookupError:
                pass
            except (PermissionError, OSError):
                continue
        with contextlib.suppress(OSError):
            p.unlink()
