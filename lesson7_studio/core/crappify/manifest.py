"""``dataset.json``: what a paired dataset folder holds (recipe and hash, seed, size cap, scale,
the train/valid split, skipped files and every built pair), read and written here."""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, features

from ... import __version__
from ..errors import DatasetError
from ..images import atomic_write
from .pairs import _name_bytes
from .recipes import Recipe
from .steps import FONT_BACKEND

DATASET_FILE = "dataset.json"
FORMAT_VERSION = 1


def _unit_hash(*parts: Any) -> float:
    """Uniform float in [0, 1) from sha256 of the parts."""
    h = hashlib.sha256(_name_bytes("\x1f".join(str(p) for p in parts))).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64


def _split_u(seed: int, rel: str) -> float:
    return _unit_hash("split", seed, rel)


_VARIANT = re.compile(r"#v(\d+)$")


def variant_key(rel: str, k: int) -> str:
    """The item key of variant ``k`` (1, 2, ...) of the image ``rel``: ``rel`` itself, then ``rel#v2`` ..."""
    return rel if k == 1 else f"{rel}#v{k}"


def source_of(key: str) -> str:
    """The image an item key was made from (``a/b.jpg#v3`` -> ``a/b.jpg``; an image's rel ends with
    its extension, so a key without the suffix is the image's own)."""
    return _VARIANT.sub("", key)


def valid_count(n: int, valid_pct: float) -> int:
    """How many of ``n`` pairs validate: ``valid_pct * n`` rounded half up, at least one when
    ``valid_pct > 0`` and there are two pairs or more, and always leaving one to train on
    (16 photos at 0.1 -> 2; 5 at 0.1 -> 1; 1 photo -> 0)."""
    if valid_pct <= 0 or n < 2:
        return 0
    return min(n - 1, max(1, math.floor(n * valid_pct + 0.5)))


def read_dataset_json(root: str | Path, *, strict: bool = True) -> dict[str, Any]:
    """The parsed ``root/dataset.json``; DatasetError if missing or malformed. ``strict=False``
    accepts any JSON object (a folder laid out by hand: ``hr/``, ``lr/`` and a ``valid`` list)
    instead of asking for the builder's keys."""
    p = Path(root) / DATASET_FILE
    if not p.is_file():
        raise DatasetError(
            f"{Path(root)} is not a paired dataset (no {DATASET_FILE}).",
            hint="Build one with `lesson7-studio crappify SRC DST` or core.crappify.build_pairs.",
        )
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DatasetError(f"Cannot read {p}: {err}") from None
    if not isinstance(meta, dict):
        raise DatasetError(f"{p} is not a Lesson7 Studio dataset file (not a JSON object).")
    if strict and ("items" not in meta or "recipe_hash" not in meta):
        raise DatasetError(f"{p} is not a Lesson7 Studio dataset file (keys missing).")
    return meta


# ----------------------------------------------------------------------------- builder


class _State:
    """dataset.json contents being built."""

    def __init__(self, dst: Path, src: Path, recipe: Recipe, seed: int, valid_pct: float, max_size: int | None):
        self.dst, self.src, self.recipe = dst, src, recipe
        self.seed, self.valid_pct, self.max_size = seed, valid_pct, max_size
        self.items: dict[str, dict[str, Any]] = {}
        self.skipped: dict[str, str] = {}
        self.total = 0
        self.complete = False

    def load(self, meta: dict[str, Any]) -> None:
        self.items = {k: v for k, v in meta.get("items", {}).items() if isinstance(v, dict)}
        self.skipped = {s["path"]: s["reason"] for s in meta.get("skipped", []) if isinstance(s, dict)}

    def split(self) -> tuple[list[str], list[str]]:
        """(train, valid): ``valid_count`` of the photos validate, those with the smallest seeded
        hash, each with all its variants."""
        keys = sorted(self.items)
        photos = sorted({source_of(k) for k in keys})
        u = {r: _split_u(self.seed, r) for r in photos}
        n_valid = valid_count(len(photos), self.valid_pct)
        vs = set(sorted(photos, key=lambda r: (u[r], r))[:n_valid])
        return [k for k in keys if source_of(k) not in vs], [k for k in keys if source_of(k) in vs]

    def to_dict(self) -> dict[str, Any]:
        train, valid = self.split()
        for k in train:
            self.items[k]["split"] = "train"
        for k in valid:
            self.items[k]["split"] = "valid"
        return {
            "format_version": FORMAT_VERSION,
            "app_version": __version__,
            "recipe": self.recipe.to_dict(),
            "recipe_hash": self.recipe.hash(),
            "seed": self.seed,
            "max_size": self.max_size,
            "valid_pct": self.valid_pct,
            "scale": self.recipe.scale,
            "lr_format": "JPEG" if self.recipe.ends_with_jpeg else "PNG",
            "src": str(self.src),
            "complete": self.complete,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "software": {
                "pillow": Image.__version__,
                "libjpeg": features.version("jpg"),
                "freetype": features.version("freetype2"),
                "font": FONT_BACKEND,
                "numpy": np.__version__,
            },
            "counts": {
                "sources": self.total,
                "pairs": len(self.items),
                "train": len(train),
                "valid": len(valid),
                "skipped": len(self.skipped),
            },
            "train": train,
            "valid": valid,
            "skipped": [{"path": k, "reason": v} for k, v in sorted(self.skipped.items())],
            "items": {k: self.items[k] for k in sorted(self.items)},
        }

    def save(self) -> None:
        with atomic_write(self.dst / DATASET_FILE) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")
