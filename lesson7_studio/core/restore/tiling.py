"""Tiling: the LR image cut into equal tiles whose *cores* partition it, run through a
:class:`~.runner.Runner` and blended back one tile row at a time.

A tile at the image border sees the border exactly as one whole-image pass would (the image
reflect-padded at its end to the model's size multiple); at every inner core boundary the tiles
carry ``margin`` px of real context, and neighbouring outputs are blended over ``2*feather`` px
with linear ramps that sum to one, so no seam shows. The image is never padded in memory (tiles
index it with reflected coordinates) and the output is accumulated one tile row at a time, so
memory stays bounded for any image size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from ..events import CancelToken, EventCallback, Progress, check, emit
from .facts import ModelFacts
from .memory import TileOutOfMemory, is_oom
from .runner import Runner


def ceil_to(n: int, q: int) -> int:
    return -(-n // q) * q


def reflect_index(idx: np.ndarray, n: int) -> np.ndarray:
    """Indices into a length-n axis, reflected (without repeating the edge) any number of times."""
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * (n - 1)
    i = np.mod(idx, period)
    return np.where(i >= n, period - i, i)


@dataclass
class Axis:
    n: int  # image length (LR px)
    t: int  # tile length (LR px)
    starts: list[int]  # window start of each tile (LR px)
    bounds: list[int]  # core boundaries: 0 = b_0 < b_1 < ... < b_k = n
    feather: int  # half-width of the blend around each inner boundary (LR px)

    @property
    def count(self) -> int:
        return len(self.starts)

    def weights(self, i: int, s: int) -> np.ndarray:
        """Blend weights of tile i over its output window (length t*s); they sum to 1 across tiles."""
        p = self.starts[i] * s + np.arange(self.t * s, dtype=np.float64) + 0.5
        w = np.ones_like(p)
        f = self.feather * s
        if i > 0:
            b = self.bounds[i] * s
            w *= np.clip((p - (b - f)) / (2 * f), 0, 1) if f else (p >= b)
        if i < self.count - 1:
            b = self.bounds[i + 1] * s
            w *= np.clip(((b + f) - p) / (2 * f), 0, 1) if f else (p < b)
        return w.astype(np.float32)

    def window(self, i: int) -> np.ndarray:
        """Image indices (reflected) of tile i's window."""
        return reflect_index(np.arange(self.starts[i], self.starts[i] + self.t), self.n)


def plan_axis(n: int, tile: int, margin: int, q: int, min_t: int) -> Axis:
    """Tiles along one axis of length n.

    The axis is seen as a single whole-image pass sees it: reflect-padded at its end to
    ``full`` (the model's multiple). Windows of ``tile`` px lie inside [0, full), so tiles at the
    image border see exactly what the whole-image pass sees there; inner core boundaries get at
    least ``margin`` px of context on both sides.
    """
    full = max(ceil_to(n, q), ceil_to(max(min_t, 1), q))
    if full <= tile:
        return Axis(n, full, [0], [0, n], 0)
    k = 2
    while True:
        bounds = [round(i * n / k) for i in range(k + 1)]
        starts = [min(max(b - margin, 0), full - tile) for b in bounds[:-1]]
        if all(s + tile >= min(b1 + margin, full) for s, b1 in zip(starts, bounds[1:])):
            break
        k += 1
    min_core = min(b - a for a, b in zip(bounds, bounds[1:]))
    feather = min(margin // 4, min_core // 2)
    return Axis(n, tile, starts, bounds, feather)


def default_margin(facts: ModelFacts) -> int:
    # 64 network px of context on each side of an inner tile boundary, at least 8 LR px (with 48,
    # the starter model's 256 px tiles differed from its whole-image output by up to 102/255
    # at a few pixels; with 64, by 31/255)
    return max(8, -(-64 // facts.pre_scale))


def fit_tile(tile: int, margin: int, facts: ModelFacts) -> tuple[int, int]:
    """Round a requested tile side (LR px) to the model's multiple and shrink the margin to fit."""
    q = facts.lr_multiple
    t = max(ceil_to(max(facts.min_size, 1), q), (tile // q) * q, q)
    margin = max(0, min(margin, (t - q) // 2, t // 4))
    return t, margin


def tile_shape(h: int, w: int, area: int, margin: int, facts: ModelFacts) -> tuple[int, int]:
    """(tile height, tile width) in LR px holding at most ``area`` pixels: the whole image when it
    fits, a full-height (or full-width) strip when one side is short, else a square."""
    q = facts.lr_multiple
    full_h = max(ceil_to(h, q), ceil_to(max(facts.min_size, 1), q))
    full_w = max(ceil_to(w, q), ceil_to(max(facts.min_size, 1), q))
    if full_h * full_w <= area:
        return full_h, full_w
    side = max((math.isqrt(area) // q) * q, 2 * margin + q, q)
    if full_h <= side:
        return full_h, max(side, (area // full_h // q) * q)
    if full_w <= side:
        return max(side, (area // full_w // q) * q), full_w
    return side, side


def to_float_tiles(tiles: list[np.ndarray]) -> torch.Tensor:
    """Stack HxWx3 tiles into a (B,3,H,W) float32 tensor in [0,1] (channels_last memory)."""
    arr = np.stack(tiles)
    t = torch.from_numpy(arr).permute(0, 3, 1, 2)
    if arr.dtype == np.uint8:
        return t.float().div_(255.0)
    if arr.dtype == np.uint16:
        return t.to(torch.float32).div_(65535.0)
    return t.float()


def quantize(band: np.ndarray, dtype: np.dtype) -> np.ndarray:
    np.clip(band, 0.0, 1.0, out=band)
    if dtype == np.uint8:
        return np.rint(band * 255.0).astype(np.uint8)
    if dtype == np.uint16:
        return np.rint(band * 65535.0).astype(np.uint16)
    return band.astype(dtype, copy=True)


def probe_tile(arr: np.ndarray, facts: ModelFacts) -> torch.Tensor:
    """A tile of about 256 network px from the middle of the image (reflected where the image is
    smaller): big enough for the precision check to see the model's deep features at work."""
    q = facts.lr_multiple
    p = ceil_to(max(256 // facts.pre_scale, facts.min_size, 8), q)
    h, w = arr.shape[:2]
    rows = reflect_index(np.arange(p) + (h - p) // 2, h)
    cols = reflect_index(np.arange(p) + (w - p) // 2, w)
    return to_float_tiles([arr[rows][:, cols]])


def _plan(facts: ModelFacts, h: int, w: int, tile: tuple[int, int], margin: int) -> tuple[Axis, Axis]:
    q = facts.lr_multiple
    ay = plan_axis(h, tile[0], margin, q, facts.min_size)
    ax = plan_axis(w, tile[1], margin, q, facts.min_size)
    if facts.square and ay.t != ax.t:
        side = max(ay.t, ax.t)
        ay, ax = plan_axis(h, side, margin, q, side), plan_axis(w, side, margin, q, side)
    return ay, ax


class _Row:
    """One row of tiles: its output band (LR rows ``lo``..``hi`` times the scale), blended into."""

    def __init__(self, ay: Axis, i: int, s: int, width: int, carry: np.ndarray | None) -> None:
        h = ay.n
        self.lo = 0 if i == 0 else (ay.bounds[i] - ay.feather) * s
        self.hi = h * s if i == ay.count - 1 else (ay.bounds[i + 1] + ay.feather) * s
        self.band = np.zeros((self.hi - self.lo, width * s, 3), dtype=np.float32)
        if carry is not None:
            self.band[: carry.shape[0]] += carry
        self.y0 = ay.starts[i] * s  # output row of the window's first row
        self.r0, self.r1 = max(self.lo, self.y0), min(self.hi, self.y0 + ay.t * s)
        self.wy = ay.weights(i, s)[self.r0 - self.y0 : self.r1 - self.y0, None, None]
        self.fin = self.hi if i == ay.count - 1 else (ay.bounds[i + 1] - ay.feather) * s

    def add(self, y: np.ndarray, x0: int, wx: np.ndarray) -> None:
        """Blend tile output ``y`` (its window starting at output column ``x0``) into the band."""
        width = self.band.shape[1]
        c0, c1 = max(0, x0), min(width, x0 + y.shape[1])
        wx = wx[c0 - x0 : c1 - x0]
        rows = y[self.r0 - self.y0 : self.r1 - self.y0, c0 - x0 : c1 - x0]
        self.band[self.r0 - self.lo : self.r1 - self.lo, c0:c1] += rows * self.wy * wx[None, :, None]


def _forward_batch(runner: Runner, x: torch.Tensor, ensemble: bool, can_shrink: bool) -> torch.Tensor | None:
    """The runner's output for ``x``. Out of memory (CUDA's cache then emptied): None where the
    batch can shrink, else :class:`~.memory.TileOutOfMemory`."""
    try:
        return runner.forward(x, runner.dtype, ensemble)
    except Exception as err:
        if not is_oom(err):
            raise
        del x
        if runner.device.type == "cuda":
            torch.cuda.empty_cache()
        if can_shrink:
            return None
        raise TileOutOfMemory() from err


def run_tiles(
    runner: Runner,
    arr: np.ndarray,
    tile: tuple[int, int],
    margin: int,
    batch_size: int,
    on_event: Optional[EventCallback],
    cancel: Optional[CancelToken],
    ensemble: bool = False,
) -> np.ndarray:
    """Restore ``arr`` in tiles of ``tile`` (LR px), ``batch_size`` at a time; out of memory at a
    batch of one raises :class:`~.memory.TileOutOfMemory` (the caller halves the tile)."""
    s = runner.facts.scale
    h, w = arr.shape[:2]
    ay, ax = _plan(runner.facts, h, w, tile, margin)
    total = ay.count * ax.count
    out = np.empty((h * s, w * s, 3), dtype=arr.dtype)
    wxs = [ax.weights(j, s) for j in range(ax.count)]
    carry: np.ndarray | None = None
    done = 0
    for i in range(ay.count):
        row = _Row(ay, i, s, w, carry)
        strip = arr[ay.window(i)]  # (t, W, 3)
        j = 0
        while j < ax.count:
            check(cancel)
            js = list(range(j, min(j + batch_size, ax.count)))
            x = to_float_tiles([strip[:, ax.window(k)] for k in js])
            y = _forward_batch(runner, x, ensemble, can_shrink=batch_size > 1)
            del x
            if y is None:
                batch_size = max(1, batch_size // 2)
                continue
            yn = y.permute(0, 2, 3, 1).numpy()  # (B, t*s, t*s, 3)
            for b, k in enumerate(js):
                row.add(yn[b], ax.starts[k] * s, wxs[k])
            done += len(js)
            j += len(js)
            emit(on_event, Progress(done=done, total=total, stage="tiles"))
        out[row.lo : row.fin] = quantize(row.band[: row.fin - row.lo], arr.dtype)
        carry = row.band[row.fin - row.lo :].copy() if i < ay.count - 1 else None
        del row
    return out
