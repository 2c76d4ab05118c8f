"""Parameter checks for the steps: typed values or a RecipeError naming the step and field."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import RecipeError


def _bad(kind: str, name: str, want: str, got: Any) -> RecipeError:
    return RecipeError(f"Crappify step '{kind}': {name} must be {want}, got {got!r}")


def _int(kind: str, name: str, v: Any, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v:
        raise _bad(kind, name, "an integer", v)
    v = int(v)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise _bad(kind, name, f"between {lo} and {hi}" if hi is not None else f">= {lo}", v)
    return v


def _float(kind: str, name: str, v: Any, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
        raise _bad(kind, name, "a number", v)
    v = float(v)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise _bad(kind, name, f"between {lo} and {hi}" if hi is not None else f">= {lo}", v)
    return v


def _range(kind: str, name: str, v: Any, conv: Any, lo: float, hi: float | None = None) -> tuple:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        v = (v, v)
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise _bad(kind, name, "a [low, high] pair", v)
    a, b = conv(kind, name, v[0], lo, hi), conv(kind, name, v[1], lo, hi)
    if a > b:
        raise _bad(kind, name, "a [low, high] pair with low <= high", v)
    return (a, b)


def _colour(kind: str, name: str, v: Any) -> tuple[int, int, int]:
    if not isinstance(v, (list, tuple)) or len(v) != 3:
        raise _bad(kind, name, "an [r, g, b] triple", v)
    return tuple(_int(kind, name, c, 0, 255) for c in v)  # type: ignore[return-value]
