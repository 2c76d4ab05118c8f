"""PSNR and SSIM in the convention of published super-resolution tables.

Inputs are RGB images in [0, ``data_range``]: numpy arrays HxWx3 (or HxW), or torch tensors
(3,H,W) / (B,3,H,W) (channels first, as torch keeps them; a batch gives the mean over images).

``y_channel=True`` compares the luma of ITU-R BT.601 YCbCr computed the way MATLAB's
``rgb2ycbcr`` does (Y = 16 + 65.481 R + 128.553 G + 24.966 B for RGB in [0, 1], so Y lies in
[16, 235]), divided by 255 so that the data range stays 1. ``crop`` pixels are removed from every
border first (published tables crop ``scale`` pixels). SSIM is Wang et al. (2004): an 11x11
Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, population statistics, the mean of the
"valid" SSIM map (what MATLAB's ``ssim_index`` and ``skimage.metrics.structural_similarity``
with ``gaussian_weights=True, use_sample_covariance=False`` compute); RGB SSIM is the mean of the
per-channel values.

This module is the one PSNR / SSIM of the project: evaluation, the Compare panel and training's
"psnr" / "ssim" columns (:func:`scores`, :func:`batch_sums`) all use it, so their numbers agree.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["psnr", "ssim", "rgb_to_y", "psnr_batch", "ssim_batch", "border", "scores", "batch_sums"]

_Y_WEIGHTS = np.array([65.481, 128.553, 24.966], dtype=np.float64) / 255.0
_Y_OFFSET = 16.0 / 255.0


def rgb_to_y(rgb: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """BT.601 luma of an HxWx3 RGB array in [0, data_range], returned in the same range (float64)."""
    rgb = np.asarray(rgb, dtype=np.float64) / data_range
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"rgb_to_y needs an HxWx3 array, got shape {rgb.shape}")
    return (rgb @ _Y_WEIGHTS + _Y_OFFSET) * data_range


def _images(x: Any) -> list[np.ndarray]:
    """Normalise an input to a list of HxWxC float64 arrays."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch tensor, channels first
        arr = x.detach().cpu().double().numpy()
        if arr.ndim == 2:
            return [arr[:, :, None]]
        if arr.ndim == 3:
            return [np.moveaxis(arr, 0, -1)]
        if arr.ndim == 4:
            return [np.moveaxis(a, 0, -1) for a in arr]
        raise ValueError(f"expected a (C,H,W) or (B,C,H,W) tensor, got shape {tuple(arr.shape)}")
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 2:
        return [arr[:, :, None]]
    if arr.ndim == 3:
        return [arr]
    if arr.ndim == 4:
        return list(arr)
    raise ValueError(f"expected an HxW or HxWxC array, got shape {arr.shape}")


def _prepare(a: Any, b: Any, y_channel: bool, crop: int, data_range: float) -> list[tuple[np.ndarray, np.ndarray]]:
    ia, ib = _images(a), _images(b)
    if len(ia) != len(ib):
        raise ValueError(f"batch sizes differ: {len(ia)} vs {len(ib)}")
    pairs = []
    for x, y in zip(ia, ib):
        if x.shape != y.shape:
            raise ValueError(f"image shapes differ: {x.shape} vs {y.shape}")
        if y_channel:
            if x.shape[-1] != 3:
                raise ValueError("y_channel=True needs RGB images")
            x, y = rgb_to_y(x, data_range)[..., None], rgb_to_y(y, data_range)[..., None]
        if crop:
            if x.shape[0] <= 2 * crop or x.shape[1] <= 2 * crop:
                raise ValueError(f"crop {crop} leaves nothing of a {x.shape[0]}x{x.shape[1]} image")
            x = x[crop:-crop, crop:-crop]
            y = y[crop:-crop, crop:-crop]
        pairs.append((x, y))
    return pairs


def _psnr_one(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    mse = float(np.mean((x - y) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def psnr(a: Any, b: Any, *, y_channel: bool = False, crop: int = 0, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB (``inf`` for identical images); batches give the mean."""
    vals = [_psnr_one(x, y, data_range) for x, y in _prepare(a, b, y_channel, crop, data_range)]
    return float(np.mean(vals))


def psnr_batch(a: Any, b: Any, *, y_channel: bool = False, crop: int = 0, data_range: float = 1.0) -> list[float]:
    """PSNR of each image of a batch."""
    return [_psnr_one(x, y, data_range) for x, y in _prepare(a, b, y_channel, crop, data_range)]


def _gaussian(size: int, sigma: float) -> np.ndarray:
    t = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(t**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of an HxW image with the 1-D kernel g on both axes."""
    k = g.size
    rows = np.lib.stride_tricks.sliding_window_view(img, k, axis=0) @ g  # (H-k+1, W)
    return np.lib.stride_tricks.sliding_window_view(rows, k, axis=1) @ g  # (H-k+1, W-k+1)


def _ssim_channel(x: np.ndarray, y: np.ndarray, data_range: float, win: int, sigma: float) -> float:
    win = min(win, x.shape[0], x.shape[1])
    if win % 2 == 0:
        win -= 1
    g = _gaussian(win, sigma)
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    mx, my = _filter_valid(x, g), _filter_valid(y, g)
    sxx = _filter_valid(x * x, g) - mx * mx
    syy = _filter_valid(y * y, g) - my * my
    sxy = _filter_valid(x * y, g) - mx * my
    num = (2 * mx * my + c1) * (2 * sxy + c2)
    den = (mx * mx + my * my + c1) * (sxx + syy + c2)
    return float(np.mean(num / den))


def _ssim_one(x: np.ndarray, y: np.ndarray, data_range: float, win: int, sigma: float) -> float:
    return float(np.mean([_ssim_channel(x[..., c], y[..., c], data_range, win, sigma) for c in range(x.shape[-1])]))


def ssim_batch(a: Any, b: Any, *, y_channel: bool = False, crop: int = 0, data_range: float = 1.0,
               win_size: int = 11, sigma: float = 1.5) -> list[float]:
    """SSIM of each image of a batch."""
    return [_ssim_one(x, y, data_range, win_size, sigma) for x, y in _prepare(a, b, y_channel, crop, data_range)]


def ssim(
    a: Any,
    b: Any,
    *,
    y_channel: bool = False,
    crop: int = 0,
    data_range: float = 1.0,
    win_size: int = 11,
    sigma: float = 1.5,
) -> float:
    """Structural similarity (Wang et al. 2004), mean over channels; batches give the mean.

    Images smaller than the window use the largest odd window that fits.
    """
    vals = [_ssim_one(x, y, data_range, win_size, sigma) for x, y in _prepare(a, b, y_channel, crop, data_range)]
    return float(np.mean(vals))


# ---------------------------------------------------------------------------------------------
# the evaluation convention, in one place


def border(height: int, width: int, scale: int) -> int:
    """Pixels cropped from every border before scoring an image restored ``scale`` times: the
    scale (at least 1), or 0 for images too small to lose it (4 x scale or less on a side)."""
    crop = max(1, int(round(scale)))
    return crop if height > 4 * crop and width > 4 * crop else 0


def scores(out: Any, ref: Any, *, crop: int = 0, y_channel: bool = True) -> dict[str, float]:
    """PSNR and SSIM of ``out`` against ``ref`` (HxWx3 in [0, 1]): "psnr", "ssim" on RGB and,
    with ``y_channel``, "psnr_y", "ssim_y" on luma; ``crop`` is reduced to 0 for a tiny image."""
    h, w = _images(ref)[0].shape[:2]
    crop = crop if h > 4 * crop and w > 4 * crop else 0
    res = {"psnr": psnr(out, ref, crop=crop), "ssim": ssim(out, ref, crop=crop)}
    if y_channel:
        res["psnr_y"] = psnr(out, ref, y_channel=True, crop=crop)
        res["ssim_y"] = ssim(out, ref, y_channel=True, crop=crop)
    return res


MAX_PSNR_DB = 120.0  # a column's value for an exact match (a mean with inf is no number)


def batch_sums(pred: Any, target: Any, scale: int = 1) -> dict[str, float]:
    """Training's validation columns for one batch (B,3,H,W) in [0, 1]: the sums over its
    images of "psnr" and "ssim" in the evaluation convention (Y channel, :func:`border` of the
    scale cropped), each image's PSNR capped at :data:`MAX_PSNR_DB`. Divide by the item count."""
    h, w = int(target.shape[-2]), int(target.shape[-1])
    crop = border(h, w, scale)
    y = int(target.shape[-3]) == 3
    p = psnr_batch(pred, target, y_channel=y, crop=crop)
    s = ssim_batch(pred, target, y_channel=y, crop=crop)
    return {"psnr": float(sum(min(v, MAX_PSNR_DB) for v in p)), "ssim": float(sum(s))}
