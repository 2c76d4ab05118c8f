"""The automatic precision check's verdicts, kept from one session to the next.

``precision="auto"`` restores with a low precision (bf16 on a CPU, fp16 on a GPU) only where the
model's output on a probe tile stays within 45 dB PSNR of float32's (:mod:`.restore`). The probe
costs two passes over a ~256 px tile, which on a small photo is more than the whole restore, so
its verdict is worth keeping: per model *file* (its SHA-256, so a renamed or copied file keeps its
verdict and an overwritten one gets a new check), per device (:func:`.devices.device_key`: the
CPU or GPU model and the torch version) and per precision tried. The verdicts live in one small
JSON file, ``precision-verdicts.json``, in the user cache folder (platformdirs; the environment
variable ``LESSON7_CACHE_DIR`` moves it). It is rewritten atomically; an unreadable file counts as
empty, and a folder that cannot be written only means the check runs again next time.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from pathlib import Path
from typing import Any

from .images import atomic_write

CACHE_FILE = "precision-verdicts.json"
FORMAT_VERSION = 1
MAX_ENTRIES = 512  # oldest verdicts are dropped beyond this

_lock = threading.Lock()
_hashes: dict[tuple[str, int, int], str] = {}


def cache_dir() -> Path:
    """``$LESSON7_CACHE_DIR`` or the platform's user cache folder for Lesson7 Studio."""
    env = os.environ.get("LESSON7_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    from .project import APP_NAME

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def cache_path() -> Path:
    return cache_dir() / CACHE_FILE


def file_hash(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (remembered per path, size and modification time)."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    with _lock:
        known = _hashes.get(key)
    if known is not None:
        return known
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    with _lock:
        _hashes[key] = digest
    return digest


def verdict_key(model_hash: str, device: str, dtype: str) -> str:
    return f"{model_hash}|{device}|{dtype}"


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        return {}
    entries = data.get("verdicts")
    return entries if isinstance(entries, dict) else {}


def lookup(key: str) -> tuple[bool, float] | None:
    """(low precision is fine, its PSNR against fp32 in dB) as stored, or None."""
    entry = _read(cache_path()).get(key)
    if not isinstance(entry, dict) or not isinstance(entry.get("ok"), bool):
        return None
    value = entry.get("psnr")
    try:
        return entry["ok"], float(value) if value is not None else float("nan")
    except (TypeError, ValueError):
        return None


def verdicts_for(model_hash: str) -> dict[str, dict[str, Any]]:
    """Every stored verdict for one model file: ``"device|dtype" -> {"ok", "psnr"}``."""
    out = {}
    for key, v in _read(cache_path()).items():
        h, _sep, rest = key.partition("|")
        if h == model_hash and isinstance(v, dict):
            out[rest] = v
    return out


def store(key: str, ok: bool, psnr: float) -> bool:
    """Record a verdict (atomically); False when the cache folder cannot be written."""
    path = cache_path()
    with _lock:
        entries = _read(path)
        entries.pop(key, None)
        finite = math.isfinite(float(psnr))  # identical outputs: inf dB; no kernel: nan
        entries[key] = {"ok": bool(ok), "psnr": round(float(psnr), 3) if finite else None}
        while len(entries) > MAX_ENTRIES:  # dicts keep insertion order: the oldest go first
            entries.pop(next(iter(entries)))
        text = json.dumps({"format_version": FORMAT_VERSION, "verdicts": entries}, indent=1, allow_nan=False)
        try:
            with atomic_write(path) as tmp:
                tmp.write_text(text + "\n", encoding="utf-8")
        except OSError:
            return False
    return True
