"""Where a trained critic believes an image is fake: its patch map, as numpy.

The critic learnt real = 1, so ``1 - sigmoid(logit)`` of each output patch is its belief that
the patch is fake. :func:`critic_job` loads a run's critic checkpoint (cached by path) and maps
one image, with the one event/cancel protocol of every core job; the Inspect panel shows the
result over the image it scored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from ..events import CancelToken, EventCallback, Progress, check, emit

MIN_SIDES = (8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 1024)  # input sizes tried (px)


def critic_logits(critic: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The critic's raw output on ``x``; a critic that ends in Flatten keeps its (1, 1, h, w)
    patch layout."""
    if isinstance(critic, nn.Sequential) and type(critic[-1]).__name__ == "Flatten":
        return critic[:-1](x)
    return critic(x)


def critic_min_side(critic: nn.Module, n_channels: int | None = None) -> int:
    """The smallest square input (px) the critic accepts: its stride-2 convs and final unpadded
    conv need e.g. 64 px for gan-critic with 3 blocks. Found by trying sizes; cached on the net."""
    cached = getattr(critic, "_lesson7_min_side", None)
    if cached:
        return int(cached)
    if n_channels is None:
        conv = next((m for m in critic.modules() if isinstance(m, nn.Conv2d)), None)
        n_channels = conv.in_channels if conv is not None else 3
    dev = next(critic.parameters()).device
    found = 0
    with torch.no_grad():
        for side in MIN_SIDES:
            try:
                critic_logits(critic, torch.zeros(1, n_channels, side, side, device=dev))
            except RuntimeError:
                continue
            found = side
            break
    if not found:
        raise ValueError(f"the critic accepts no input size up to {MIN_SIDES[-1]} px")
    try:
        critic._lesson7_min_side = found
    except AttributeError:
        pass
    return found


def _factor(n: int, aspect: float) -> tuple[int, int]:
    """h, w with h * w = n and w / h closest to ``aspect``."""
    best = (1, n)
    for h in range(1, int(n**0.5) + 1):
        if n % h == 0:
            for hh, ww in ((h, n // h), (n // h, h)):
                if abs(np.log(ww / hh / aspect)) < abs(np.log(best[1] / best[0] / aspect)):
                    best = (hh, ww)
    return best


def _inside(n: int, size: int, start: int, length: int) -> slice:
    """The patches (of ``n`` spread over ``size`` px) whose centres lie in [start, start + length);
    at least the one nearest to the middle of that span."""
    centres = (np.arange(n) + 0.5) * size / n
    idx = np.flatnonzero((centres >= start) & (centres < start + length))
    if idx.size == 0:
        k = int(np.argmin(np.abs(centres - (start + length / 2))))
        return slice(k, k + 1)
    return slice(int(idx[0]), int(idx[-1]) + 1)


def critic_fake_map(critic: nn.Module, image: np.ndarray) -> np.ndarray:
    """The critic's per-patch belief that ``image`` (HxWx3 uint8) is fake: 1 - sigmoid(logit), 2-D,
    laid out over the image (row-major: patch [i, j] covers the i-th band from the top and the
    j-th from the left).

    An image smaller than the critic's minimum input is mirror-padded (at its own pixel scale,
    the scale the critic was trained at) to that size; only the patches centred on the image
    itself are returned, so the map lines up with the image shown."""
    img = np.ascontiguousarray(image[:, :, :3])
    h, w = img.shape[:2]
    min_side = critic_min_side(critic, img.shape[2])
    top = left = 0
    ph, pw = max(h, min_side), max(w, min_side)
    if (ph, pw) != (h, w):
        top, left = (ph - h) // 2, (pw - w) // 2
        img = np.pad(img, ((top, ph - h - top), (left, pw - w - left), (0, 0)), mode="symmetric")
    x = torch.from_numpy(np.ascontiguousarray(img)).float().div(255).permute(2, 0, 1)[None]
    x = x.to(next(critic.parameters()).device)
    with torch.no_grad():
        out = critic_logits(critic, x)
    out = out.float().cpu()[0]
    if out.ndim == 3:
        out = out[0]
    if out.ndim == 1:
        gh, gw = _factor(out.numel(), pw / ph)
        out = out.reshape(gh, gw)
    fake = (1.0 - torch.sigmoid(out)).numpy()
    if (ph, pw) != (h, w):
        fake = fake[_inside(fake.shape[0], ph, top, h), :][:, _inside(fake.shape[1], pw, left, w)]
    return fake


def critic_job(critic_path: str | Path, image: np.ndarray, *, cache: dict[str, Any] | None = None,
               device: str = "cpu", on_event: Optional[EventCallback] = None,
               cancel: Optional[CancelToken] = None) -> np.ndarray:
    """Load the critic of ``critic_path`` (kept in ``cache``, one net at a time, by path) and
    return its fake-map of ``image``. Reports Progress (load, score) and stops on ``cancel``."""
    from .. import checkpoint

    key = str(critic_path)
    net = cache.get(key) if cache is not None else None
    check(cancel)
    if net is None:
        emit(on_event, Progress(0, 2, f"Loading the critic {Path(critic_path).name}"))
        net = checkpoint.load_model(critic_path, device=device).net
        net.eval()
        if cache is not None:
            cache.clear()
            cache[key] = net
    check(cancel)
    emit(on_event, Progress(1, 2, "Scoring the image"))
    fake = critic_fake_map(net, image)
    emit(on_event, Progress(2, 2, "Scored"))
    return fake
