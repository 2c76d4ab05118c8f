"""Restore one image: an HxWx3 array (uint8, uint16 or float) or an :class:`~..images.ImageData`
(alpha, grey, 16-bit and metadata kept), in tiles that fit the memory available."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import numpy as np
import torch

from ..devices import keep_freed_memory
from ..errors import DeviceError, ModelError
from ..events import CancelToken, EventCallback, Log, emit
from .memory import TileOutOfMemory, auto_tile
from .precision import precision_note
from .runner import Runner
from .tiling import default_margin, fit_tile, probe_tile, run_tiles, tile_shape


def _plan_tiles(runner: Runner, arr: np.ndarray, probe: torch.Tensor, tile: int | None,
                margin: int) -> tuple[int, int, int, int]:
    """(tile height, tile width, margin, tiles per batch) for ``arr``: ``tile`` as asked, else the
    largest that fits the memory (a smaller budget when the image needs several tiles)."""
    facts = runner.facts
    h, w = arr.shape[:2]
    if tile:
        th = tw = int(tile)
        batch = 1 if runner.device.type == "cpu" else 4
    else:
        area, batch = auto_tile(runner, probe)
        th, tw = tile_shape(h, w, area, margin, facts)
        if (th, tw) != tile_shape(h, w, 1 << 62, margin, facts):  # tiled: the budget for many tiles
            area, batch = auto_tile(runner, probe, many_tiles=True)
            th, tw = tile_shape(h, w, area, margin, facts)
    (th, m1), (tw, m2) = fit_tile(th, margin, facts), fit_tile(tw, margin, facts)
    return th, tw, min(m1, m2), batch


def _run_halving(runner: Runner, arr: np.ndarray, th: int, tw: int, margin: int, batch_size: int,
                 ensemble: bool, on_event: Optional[EventCallback], cancel: Optional[CancelToken]) -> np.ndarray:
    """Run the tiles; a tile that does not fit is halved and the image started again."""
    facts = runner.facts
    while True:
        try:
            return run_tiles(runner, arr, (th, tw), margin, max(1, int(batch_size)), on_event, cancel, ensemble)
        except TileOutOfMemory as err:
            q = facts.lr_multiple
            smaller = ((th // 2) // q * q, (tw // 2) // q * q)
            if min(smaller) < max(q, facts.min_size):
                raise DeviceError(
                    f"Out of memory on {runner.device} even with {th}x{tw} px tiles. Close other programs "
                    "or use a smaller model or another device."
                ) from err.__cause__
            emit(on_event, Log(f"Out of memory with {th}x{tw} px tiles; retrying with {smaller[0]}x{smaller[1]} px.",
                               level="warning"))
            (th, m1), (tw, m2) = fit_tile(smaller[0], margin, facts), fit_tile(smaller[1], margin, facts)
            margin = min(m1, m2)
            batch_size = 1


def restore_array(
    model: Any,
    arr: np.ndarray,
    *,
    tile: int | None = None,
    overlap: int | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    precision: str = "auto",
    ensemble: bool = False,
    on_event: Optional[EventCallback] = None,
    cancel: Optional[CancelToken] = None,
) -> np.ndarray:
    """Restore an HxWx3 array (uint8, uint16, or float in [0,1]) -> (H*s)x(W*s)x3, same dtype.

    ``tile``: LR tile side in px (rounded to the model's multiple); None picks it from the
    memory available. ``overlap``: LR context px at each inner tile boundary (None: 64 network
    px). ``precision``: "auto" (bf16 on CPUs that compute it natively, fp16 on CUDA, each only where the
    model's output on a ~256 px probe tile has a PSNR >= 45 dB against fp32's; decided once per
    model and device, and kept per model file across sessions; an image too small for the probe to
    pay is restored in fp32 without it; fp32 for 16-bit images), "fp32", "bf16" or "fp16". ``ensemble``:
    x8 self-ensemble (eight flipped/turned passes averaged; eight times the time). Out of memory
    halves the tile and starts the image again.
    """
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ModelError(f"restore_array needs an HxWx3 array, got shape {arr.shape}.")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ModelError("Cannot restore an empty image.")
    if arr.dtype not in (np.uint8, np.uint16):
        arr = np.ascontiguousarray(arr, dtype=np.float32)
    runner = Runner(model, device, precision)
    note = precision_note(model, precision)
    if note:
        emit(on_event, Log(note, level="warning"))
    if runner.device.type == "cpu":
        keep_freed_memory()  # reuse activation memory from pass to pass instead of page-faulting it in
    probe = probe_tile(arr, runner.facts)
    work_px = arr.shape[0] * arr.shape[1] * (8 if ensemble else 1)
    runner.choose_precision(probe, high_bit_depth=arr.dtype == np.uint16, work_px=work_px)
    margin = default_margin(runner.facts) if overlap is None else max(0, int(overlap))
    th, tw, margin, auto_batch = _plan_tiles(runner, arr, probe, tile, margin)
    return _run_halving(runner, arr, th, tw, margin, auto_batch if batch_size is None else batch_size,
                        ensemble, on_event, cancel)


def _luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma (as PIL's "L" conversion), same dtype as the input."""
    y = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if rgb.dtype == np.uint8:
        return np.clip(np.rint(y), 0, 255).astype(np.uint8)
    if rgb.dtype == np.uint16:
        return np.clip(np.rint(y), 0, 65535).astype(np.uint16)
    return y.astype(rgb.dtype)


def _resize_plane(plane: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bicubic resize of one HxW plane (alpha) keeping its dtype."""
    from PIL import Image

    if plane.shape[1] == width and plane.shape[0] == height:
        return plane.copy()
    img = Image.fromarray(plane.astype(np.float32), mode="F")
    out = np.asarray(img.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)
    if plane.dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    if plane.dtype == np.uint16:
        return np.clip(np.rint(out), 0, 65535).astype(np.uint16)
    return out.astype(plane.dtype)


def restore_image(
    model: Any,
    img: Any,
    *,
    tile: int | None = None,
    overlap: int | None = None,
    device: str | torch.device | None = None,
    precision: str = "auto",
    ensemble: bool = False,
    on_event: Optional[EventCallback] = None,
    cancel: Optional[CancelToken] = None,
) -> Any:
    """Restore an :class:`~..images.ImageData`; returns a new one at ``scale`` times the size.

    Alpha is resized (bicubic) separately and put back, greyscale inputs are restored as RGB and
    returned grey, 16-bit stays 16-bit (and fp32, under precision "auto"); EXIF, ICC, format
    and path are kept. See :func:`restore_array` for the other arguments.
    """
    out = restore_array(
        model, img.rgb, tile=tile, overlap=overlap, device=device, precision=precision, ensemble=ensemble,
        on_event=on_event, cancel=cancel,
    )
    if getattr(img, "is_grey", False):
        out = np.repeat(_luma(out)[:, :, None], 3, axis=2)
    alpha = img.alpha
    if alpha is not None:
        alpha = _resize_plane(alpha, out.shape[1], out.shape[0])
    extra = dict(getattr(img, "extra", None) or {})
    return dataclasses.replace(img, rgb=out, alpha=alpha, extra=extra)
