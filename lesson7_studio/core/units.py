"""Numbers for people: speeds with as many digits as they carry (no torch, no Qt)."""

from __future__ import annotations

import math


def format_speed(megapixels_per_s: float | None) -> str:
    """A restore speed that never reads "0.00 MP/s": three significant digits, in kilopixels
    below 0.1 MP/s (``12.3 MP/s``, ``0.42 MP/s``, ``6.14 kpx/s``); "" when unknown or zero."""
    if megapixels_per_s is None or not math.isfinite(megapixels_per_s) or megapixels_per_s <= 0:
        return ""
    if megapixels_per_s >= 0.1:
        return f"{_sig3(megapixels_per_s)} MP/s"
    kpx = megapixels_per_s * 1000.0
    if kpx >= 0.01:
        return f"{_sig3(kpx)} kpx/s"
    return f"{_sig3(kpx * 1000.0)} px/s"


def format_rate(value: float | None, unit: str) -> str:
    """``value unit`` with three significant digits; MP/s goes through :func:`format_speed`."""
    if unit == "MP/s":
        return format_speed(value)
    if value is None or not math.isfinite(value) or value <= 0:
        return ""
    return f"{_sig3(value)} {unit}"


def _sig3(v: float) -> str:
    if v >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}"
