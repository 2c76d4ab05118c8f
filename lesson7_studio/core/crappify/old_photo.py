"""The old-print degradation: sepia, fading, vignette, grain, softness, scratches and dust."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .checks import _float, _int, _range
from .steps import Step, StepContext


@dataclass
class OldPhoto(Step):
    """An old print: sepia toning, faded contrast, vignette, film grain, softness, scratches
    and dust. Sizes scale with the image (unit = max(1, shortest side / 400) px); ``dust`` is a
    count per 512x512 pixels, ``scratches`` a count per image."""

    kind: ClassVar[str] = "old_photo"
    sepia: float = 0.8
    fade: float = 0.25
    vignette: float = 0.3
    grain: float = 10.0
    blur: float = 0.6
    scratches: tuple[int, int] = (2, 8)
    dust: tuple[int, int] = (10, 60)

    def __post_init__(self) -> None:
        for name in ("sepia", "fade", "vignette"):
            setattr(self, name, _float(self.kind, name, getattr(self, name), 0.0, 1.0))
        self.grain = _float(self.kind, "grain", self.grain, 0.0, 255.0)
        self.blur = _float(self.kind, "blur", self.blur, 0.0, 20.0)
        self.scratches = _range(self.kind, "scratches", self.scratches, _int, 0, 1000)
        self.dust = _range(self.kind, "dust", self.dust, _int, 0, 100000)

    def apply(self, img: Image.Image, rng: np.random.Generator, ctx: StepContext) -> Image.Image:
        w, h = img.size
        unit = max(1.0, min(w, h) / 400.0)
        # tone: out = A*rgb + B*luma + C (sepia blend, then fade towards paper), in 0..255 units;
        # elementwise float32 numpy (no BLAS, no fused ops) so rounding is the same everywhere
        a = np.asarray(img, dtype=np.float32)
        lum = a[..., 0] * np.float32(0.299) + a[..., 1] * np.float32(0.587) + a[..., 2] * np.float32(0.114)
        keep = (1 - self.fade) * (1 - self.sepia)
        tone = np.array([1.07, 0.74, 0.43], np.float32) * np.float32((1 - self.fade) * self.sepia)
        paper = np.array([0.94, 0.89, 0.78], np.float32) * np.float32(255 * self.fade)
        out = a * np.float32(keep)
        out += lum[..., None] * tone
        out += paper
        if self.vignette > 0:
            out *= _vignette(h, w, self.vignette)[..., None]
        if self.grain > 0:
            out += rng.standard_normal((h, w, 1), dtype=np.float32) * np.float32(self.grain)
        sigma = self.blur * unit
        if 0 < sigma <= 1.5:
            out = _gaussian_blur(out, sigma)
        np.rint(out, out=out)
        np.clip(out, 0, 255, out=out)
        result = Image.fromarray(out.astype(np.uint8))
        if sigma > 1.5:  # large images: Pillow's box-blur approximation is O(1) in the radius
            result = result.filter(ImageFilter.GaussianBlur(sigma))
        out = result
        draw = ImageDraw.Draw(out, "RGBA")  # translucent marks, blended with integer maths
        n_scratch = int(rng.integers(self.scratches[0], self.scratches[1], endpoint=True))
        for _ in range(n_scratch):
            x = rng.uniform(0, w)
            length = rng.uniform(0.2, 1.0) * h
            y = rng.uniform(0, h - length)
            dx = rng.normal(0, 0.03 * w)
            tone = int(rng.uniform(200, 255)) if rng.random() < 0.7 else int(rng.uniform(30, 90))
            alpha = int(rng.uniform(60, 170))
            width = max(1, round(unit * rng.uniform(0.5, 1.5)))
            draw.line([(x, y), (x + dx, y + length)], fill=(tone, tone, tone, alpha), width=width)
        n_dust = int(round(rng.integers(self.dust[0], self.dust[1], endpoint=True) * w * h / 262144))
        for _ in range(n_dust):
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            r = rng.uniform(0.4, 1.6) * unit
            tone = int(rng.uniform(10, 70)) if rng.random() < 0.6 else int(rng.uniform(210, 255))
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(tone, tone, tone, int(rng.uniform(150, 255))))
        return out


@functools.lru_cache(maxsize=8)
def _vignette(h: int, w: int, strength: float) -> np.ndarray:
    """HxW float32 gain: 1 in the centre falling by ``strength`` towards the corners."""
    yy = (np.arange(h, dtype=np.float32) - np.float32((h - 1) / 2)) / np.float32(max(1.0, h / 2))
    xx = (np.arange(w, dtype=np.float32) - np.float32((w - 1) / 2)) / np.float32(max(1.0, w / 2))
    r2 = (yy[:, None] * yy[:, None] + xx[None, :] * xx[None, :]) * np.float32(0.5)
    g = np.float32(1) - np.float32(strength) * r2
    g.flags.writeable = False
    return g


def _gaussian_blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of an HxWxC float32 array (edges repeated), elementwise ops only."""
    r = max(1, int(np.ceil(2.5 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k = (k / k.sum()).astype(np.float32)
    h, w = a.shape[:2]
    p = np.pad(a, ((0, 0), (r, r), (0, 0)), mode="edge")
    out = p[:, 0:w] * k[0]
    for i in range(1, 2 * r + 1):
        out += p[:, i : i + w] * k[i]
    p = np.pad(out, ((r, r), (0, 0), (0, 0)), mode="edge")
    out = p[0:h] * k[0]
    for i in range(1, 2 * r + 1):
        out += p[i : i + h] * k[i]
    return out
