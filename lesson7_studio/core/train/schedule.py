"""Learning-rate and momentum schedules, the fastai way.

``one_cycle`` is fastai v2's ``fit_one_cycle``: the learning rate rises from ``lr_max/div`` to
``lr_max`` over the first ``pct_start`` of training along a half cosine, then falls to
``lr_max/div_final``; momentum (Adam's beta1) moves the opposite way, 0.95 -> 0.85 -> 0.95.
Schedules are functions of the training position ``pct`` in [0, 1], so a resumed run recomputes
its learning rate from the step count alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

Sched = Callable[[float], float]


def sched_cos(start: float, end: float, pos: float) -> float:
    """Half-cosine from ``start`` (pos 0) to ``end`` (pos 1)."""
    return start + (1 + math.cos(math.pi * (1 - pos))) * (end - start) / 2


def sched_lin(start: float, end: float, pos: float) -> float:
    return start + pos * (end - start)


def sched_exp(start: float, end: float, pos: float) -> float:
    return start * (end / start) ** pos


def combine_scheds(pcts: Sequence[float], scheds: Sequence[Sched]) -> Sched:
    """Run ``scheds[i]`` over the fraction ``pcts[i]`` of training (fractions sum to 1)."""
    assert abs(sum(pcts) - 1.0) < 1e-9, f"fractions must sum to 1, got {pcts}"
    assert all(p >= 0 for p in pcts), f"fractions must be >= 0, got {pcts}"
    bounds = [0.0]
    for p in pcts:
        bounds.append(bounds[-1] + p)
    last = len(scheds) - 1

    def inner(pos: float) -> float:
        idx = 0
        for i in range(len(scheds)):
            if pos >= bounds[i]:
                idx = i
        idx = min(idx, last)
        width = bounds[idx + 1] - bounds[idx]
        actual = (pos - bounds[idx]) / width if width > 0 else 1.0
        return scheds[idx](actual)

    return inner


def combined_cos(pct: float, start: float, middle: float, end: float) -> Sched:
    """Cosine ``start -> middle`` over ``pct`` of training, then ``middle -> end``."""
    return combine_scheds(
        [pct, 1 - pct],
        [lambda p: sched_cos(start, middle, p), lambda p: sched_cos(middle, end, p)],
    )


@dataclass(frozen=True)
class OneCycle:
    """fastai's one-cycle policy for one parameter group (``fit_one_cycle`` defaults)."""

    lr_max: float
    div: float = 25.0
    div_final: float = 1e5
    pct_start: float = 0.25
    moms: tuple[float, float, float] = (0.95, 0.85, 0.95)

    def lr(self, pct: float) -> float:
        return combined_cos(self.pct_start, self.lr_max / self.div, self.lr_max, self.lr_max / self.div_final)(pct)

    def mom(self, pct: float) -> float:
        return combined_cos(self.pct_start, *self.moms)(pct)


@dataclass(frozen=True)
class Constant:
    """Constant learning rate and momentum (fastai's plain ``fit``)."""

    lr_max: float
    mom_value: float = 0.9

    def lr(self, pct: float) -> float:
        return self.lr_max

    def mom(self, pct: float) -> float:
        return self.mom_value


def even_mults(start: float, stop: float, n: int) -> list[float]:
    """``n`` values spaced geometrically from ``start`` to ``stop``."""
    if n == 1:
        return [stop]
    step = (stop / start) ** (1 / (n - 1))
    return [start * step**i for i in range(n)]


def group_lrs(lr: float | slice | Sequence[float], n_groups: int) -> list[float]:
    """Per-layer-group learning rates with fastai's ``slice`` semantics.

    ``slice(lo, hi)`` spreads geometrically from ``lo`` (earliest group) to ``hi`` (head);
    ``slice(hi)`` gives ``hi/10`` to every group but the last; a float is used for all groups.
    """
    if isinstance(lr, slice):
        if lr.start:
            return even_mults(float(lr.start), float(lr.stop), n_groups)
        return [float(lr.stop) / 10] * (n_groups - 1) + [float(lr.stop)]
    if isinstance(lr, (list, tuple)):
        if len(lr) == 1:
            return [float(lr[0])] * n_groups
        if len(lr) != n_groups:
            raise ValueError(f"{len(lr)} learning rates for {n_groups} layer groups")
        return [float(v) for v in lr]
    return [float(lr)] * n_groups


def lr_to_json(lr: float | slice | Sequence[float]) -> float | list[float] | dict:
    """A JSON-able form of a learning rate spec (slices become {"slice": [lo, hi]})."""
    if isinstance(lr, slice):
        return {"slice": [lr.start, lr.stop]}
    if isinstance(lr, (list, tuple)):
        return [float(v) for v in lr]
    return float(lr)


def lr_from_json(obj) -> float | slice | list[float]:
    if isinstance(obj, dict) and "slice" in obj:
        lo, hi = obj["slice"]
        return slice(lo, hi)
    if isinstance(obj, str) and obj.startswith("slice("):
        parts = [p.strip() for p in obj[len("slice(") : -1].split(",")]
        if len(parts) == 1:
            return slice(None, float(parts[0]))
        return slice(None if parts[0] in ("", "None") else float(parts[0]), float(parts[1]))
    if isinstance(obj, list):
        return [float(v) for v in obj]
    return float(obj)
