"""Composable, seeded degradations: the lesson's crappifier and more.

A :class:`Recipe` is a name plus an ordered list of steps. Each step is a small dataclass with
typed parameters and a ``kind`` name; ``apply(img, rng, ctx)`` maps a Pillow RGB image to a
Pillow RGB image. Recipes round-trip through JSON and have a stable :meth:`Recipe.hash` (sha256
of the canonical JSON of the steps and the algorithm version; the name and description are not
part of it, so a renamed copy hashes the same).

Randomness: step ``i`` gets its own generator ``default_rng(SeedSequence(seed, spawn_key=(i,)))``,
so what a step draws depends only on the seed and its position. Before any step runs, each
step's ``prepare`` draws values other steps need: the JPEG step draws its quality there, which
lets the text step (which runs earlier, as in the course: resize, write q, save at q) write the
quality the JPEG step will use.

Determinism: the same image, recipe and seed give the same bytes on any machine running the
same Pillow version (resizing and drawing are Pillow's integer code, JPEG is the bundled
libjpeg-turbo with the integer DCT, noise comes from numpy's PCG64). Text uses Pillow's bundled
Aileron font (``ImageFont.load_default(size=...)``) rendered by the FreeType that Pillow's wheels
bundle; a Pillow built without FreeType falls back to its fixed-size bitmap font
(:data:`FONT_BACKEND` says which).

:func:`make_pair` crappifies one source file into an HR/LR pair for the dataset builder
(core/datasets.py); it lives here, free of torch, so builder worker processes start fast.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import io
import json
import os
import shutil
import signal
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields
from pathlib import Path
from collections import deque
from typing import Any, Callable, ClassVar, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, features

from .errors import DatasetError, ImageReadError, RecipeError
from .images import DEFAULT_MAX_PIXELS, ImageData, atomic_write, load_image, to_pil

#: bump when a step's pixels change for the same parameters: old datasets then rebuild.
ALGORITHM_VERSION = 1

FONT_BACKEND = "freetype" if features.check("freetype2") else "bitmap"

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "area": Image.Resampling.BOX,
}


# ----------------------------------------------------------------------------- parameter checks


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


# ----------------------------------------------------------------------------- steps


@dataclass
class StepContext:
    """What steps share while a recipe runs: values drawn in ``prepare`` and the JPEG bytes."""

    seed: int
    steps: Sequence["Step"]
    index: int = 0
    drawn: dict[int, dict[str, Any]] = field(default_factory=dict)
    jpeg_bytes: bytes | None = None

    def draw(self, key: str, value: Any) -> Any:
        self.drawn.setdefault(self.index, {})[key] = value
        return value

    def next_jpeg_quality(self) -> int:
        """Quality drawn by the first JPEG step after the current one."""
        for j in range(self.index + 1, len(self.steps)):
            if isinstance(self.steps[j], Jpeg):
                return int(self.drawn[j]["quality"])
        raise RecipeError("A text step without 'text' needs a JPEG step after it (it writes the quality).")


class Step(ABC):
    """One degradation. Subclasses are dataclasses with typed parameters and a ``kind``."""

    kind: ClassVar[str] = ""

    def prepare(self, rng: np.random.Generator, ctx: StepContext) -> None:
        """Draw values that other steps need before any step runs (default: nothing)."""

    @abstractmethod
    def apply(self, img: Image.Image, rng: np.random.Generator, ctx: StepContext) -> Image.Image:
        """RGB image in, RGB image out."""

    def downscale(self) -> int | None:
        """Integer factor this step shrinks the image by (1 = same size, None = not fixed)."""
        return 1

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out


@dataclass
class Resize(Step):
    """Shrink by an integer ``factor`` (size // factor) or to a ``shortest_side`` (the course's
    ``resize_to(img, n, use_min=True)``: both sides scaled and truncated with int())."""

    kind: ClassVar[str] = "resize"
    factor: int | None = None
    shortest_side: int | None = None
    resample: str = "bilinear"

    def __post_init__(self) -> None:
        if (self.factor is None) == (self.shortest_side is None):
            raise RecipeError("Crappify step 'resize': give exactly one of factor or shortest_side")
        if self.factor is not None:
            self.factor = _int(self.kind, "factor", self.factor, 1, 64)
        if self.shortest_side is not None:
            self.shortest_side = _int(self.kind, "shortest_side", self.shortest_side, 1)
        if self.resample not in _RESAMPLE:
            raise _bad(self.kind, "resample", f"one of {sorted(_RESAMPLE)}", self.resample)

    def target_size(self, w: int, h: int) -> tuple[int, int]:
        if self.factor is not None:
            return max(1, w // self.factor), max(1, h // self.factor)
        assert self.shortest_side is not None
        ratio = self.shortest_side / min(w, h)
        return max(1, int(w * ratio)), max(1, int(h * ratio))

    def apply(self, img: Image.Image, rng: np.random.Generator, ctx: StepContext) -> Image.Image:
        size = self.target_size(*img.size)
        return img if size == img.size else img.resize(size, _RESAMPLE[self.resample])

    def downscale(self) -> int | None:
        return self.factor


@dataclass
class Jpeg(Step):
    """JPEG round trip at a quality drawn uniformly from ``quality`` (inclusive)."""

    kind: ClassVar[str] = "jpeg"
    quality: tuple[int, int] = (10, 70)

    def __post_init__(self) -> None:
        self.quality = _range(self.kind, "quality", self.quality, _int, 1, 100)

    def prepare(self, rng: np.random.Generator, ctx: StepContext) -> None:
        lo, hi = self.quality
        ctx.draw("quality", int(rng.integers(lo, hi, endpoint=True)))

    def apply(self, img: Image.Image, rng: np.random.Generator, ctx: StepContext) -> Image.Image:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=int(ctx.drawn[ctx.index]["quality"]))
        ctx.jpeg_bytes = buf.getvalue()
        out = Image.open(io.BytesIO(ctx.jpeg_bytes))
        out.load()
        return out.convert("RGB")


@functools.lru_cache(maxsize=64)
def _font(size: int) -> Any:
    try:
        return ImageFont.load_default(size=size)
    except Exception:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


@dataclass
class Text(Step):
    """Write ``text`` (default: the quality of the next JPEG step) at a random point of
    ``region`` (x0, y0, x1, y1 as fractions of the image; the point's integer range is
    ``int(x0*w)..int(x1*w)`` inclusive, as the course's ``randint(0, w//2)``). The font size is
    ``size`` px, or ``relative_size`` x the shortest side when that is set; with ``size_spread``
    s > 1 it is multiplied by a factor drawn uniformly in [1, s] (a training-data augmentation:
    the model meets numbers of many sizes; s = 1 draws nothing, so older recipes keep their
    exact pixels). ``size_range`` [lo, hi] (px) instead draws the font size log-uniformly in
    that range whatever the image's size (small and large numbers equally often); it overrides
    ``size``, ``relative_size`` and ``size_spread``. The digits' ink is about 0.72 x the font
    size tall."""

    kind: ClassVar[str] = "text"
    text: str | None = None
    size: int = 10
    relative_size: float | None = None
    region: tuple[float, float, float, float] = (0.0, 0.0, 0.5, 0.5)
    color: tuple[int, int, int] = (255, 255, 255)
    size_spread: float = 1.0
    size_range: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.text is not None and not isinstance(self.text, str):
            raise _bad(self.kind, "text", "a string or null", self.text)
        self.size = _int(self.kind, "size", self.size, 1, 4096)
        if self.relative_size is not None:
            self.relative_size = _float(self.kind, "relative_size", self.relative_size, 0.001, 1.0)
        r = self.region
        if not isinstance(r, (list, tuple)) or len(r) != 4:
            raise _bad(self.kind, "region", "[x0, y0, x1, y1] fractions", r)
        r = tuple(_float(self.kind, "region", v, 0.0, 1.0) for v in r)
        if r[0] > r[2] or r[1] > r[3]:
            raise _bad(self.kind, "region", "[x0, y0, x1, y1] with x0 <= x1 and y0 <= y1", r)
        self.region = r  # type: ignore[assignment]
        self.color = _colour(self.kind, "color", self.color)
        self.size_spread = _float(self.kind, "size_spread", self.size_spread, 1.0, 8.0)
        if self.size_range is not None:
            self.size_range = _range(self.kind, "size_range", self.size_range, _int, 1, 4096)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.size_spread == 1.0:  # the defaults are left out: older recipes keep their hash
            out.pop("size_spread")
        if self.size_range is None:
            out.pop("size_range")
        return out

    def font_size(self, w: int, h: int) -> int:
        if self.relative_size is None:
            return self.size
        return max(1, round(self.relative_size * min(w, h)))

    def apply(self, img: Image.Image, rng: np.random.Generator, ctx: StepContext) -> Image.Image:
        w, h = img.size
        x0, y0, x1, y1 = self.region
        x = int(rng.integers(int(x0 * w), int(x1 * w), endpoint=True))
        y = int(rng.integers(int(y0 * h), int(y1 * h), endpoint=True))
        text = self.text if self.text is not None else str(ctx.next_jpeg_quality())
        size = self.font_size(w, h)
        if self.size_range is not None:  # drawn last, as the spread: x and y keep their stream
            lo, hi = self.size_range
            size = int(round(float(np.exp(rng.uniform(np.log(lo), np.log(hi)))))) if hi > lo else lo
            size = min(hi, max(lo, size))
            ctx.draw("text_size", size)
        elif self.size_spread > 1.0:  # drawn last, so recipes without a spread keep their stream
            size = max(1, round(size * float(rng.uniform(1.0, self.size_spread))))
            ctx.draw("text_size", size)
        ctx.draw("text", text)
        ctx.draw("text_xy", [x, y])
        out = img.copy()
        ImageDraw.Draw(out).text((x, y), text, fill=self.color, font=_font(size))
        return out


@dataclass
class Noise(Step):
    """Gaussian noise, sigma (0-255 units) drawn uniformly from ``sigma``; ``mono`` = same noise
    on the three channels (luminance noise)."""

    kind: ClassVar[str] = "noise"
    sigma: tuple[float, float] = (5.0, 25.0)
    mono: bool = False

    def __post_init__(self) -> None:
        self.sigma = _range(self.kind, "sigma", self.sigma, _float, 0.0, 255.0)
        if not isinstance(self.mono, bool):
            raise _bad(self.kind, "mono", "true or false", self.mono)

    def apply(self, img: Image.Image, rng: np.random.Generator, ctx: StepContext) -> Image.Image:
        sigma = ctx.draw("noise_sigma", float(rng.uniform(*self.sigma)))
        a = np.asarray(img, dtype=np.float32)
        shape = (a.shape[0], a.shape[1], 1 if self.mono else 3)
        a = a + rng.standard_normal(shape, dtype=np.float32) * np.float32(sigma)
        return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))


@dataclass
class Blur(Step):
    """Gaussian blur, radius (px) drawn uniformly from ``radius``."""

    kind: ClassVar[str] = "blur"
    radius: tuple[float, float] = (0.5, 2.0)

    def __post_init__(self) -> None:
        self.radius = _range(self.kind, "radius", self.radius, _float, 0.0, 100.0)

    def apply(self, img: Image.Image, rng: np.random.Generator, ctx: StepContext) -> Image.Image:
        r = ctx.draw("blur_radius", float(rng.uniform(*self.radius)))
        return img.filter(ImageFilter.GaussianBlur(r)) if r > 0 else img


@dataclass
class Greyscale(Step):
    """Luma (ITU-R 601-2) copied to the three channels."""

    kind: ClassVar[str] = "greyscale"

    def apply(self, img: Image.Image, rng: np.random.Generator, ctx: StepContext) -> Image.Image:
        return img.convert("L").convert("RGB")


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


STEP_TYPES: dict[str, type[Step]] = {
    cls.kind: cls for cls in (Resize, Jpeg, Text, Noise, Blur, Greyscale, OldPhoto)
}


def step_from_dict(d: dict[str, Any]) -> Step:
    if not isinstance(d, dict) or "kind" not in d:
        raise RecipeError(f"A crappify step must be an object with a 'kind', got {d!r}")
    kind = d["kind"]
    cls = STEP_TYPES.get(kind)
    if cls is None:
        raise RecipeError(f"Unknown crappify step '{kind}'. Known steps: {', '.join(sorted(STEP_TYPES))}")
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = set(d) - names - {"kind"}
    if unknown:
        raise RecipeError(
            f"Crappify step '{kind}' has no parameter {', '.join(sorted(unknown))}; "
            f"its parameters are: {', '.join(sorted(names)) or '(none)'}"
        )
    return cls(**{k: v for k, v in d.items() if k != "kind"})


# ----------------------------------------------------------------------------- recipes


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


@dataclass
class Recipe:
    """A named, ordered list of steps."""

    name: str
    steps: list[Step]
    description: str = ""

    def __post_init__(self) -> None:
        self.steps = list(self.steps)
        if not self.steps:
            raise RecipeError(f"Recipe '{self.name}' has no steps")
        for i, s in enumerate(self.steps):
            if not isinstance(s, Step):
                raise RecipeError(f"Recipe '{self.name}': step {i} is not a crappify step: {s!r}")
            if isinstance(s, Text) and s.text is None and not any(isinstance(t, Jpeg) for t in self.steps[i + 1 :]):
                raise RecipeError(
                    f"Recipe '{self.name}': text step {i} writes the JPEG quality, so a JPEG step must follow it"
                )

    @property
    def scale(self) -> int | None:
        """Overall integer downscale factor (1 = same size); None when a step resizes to a
        fixed size (shortest side), as the lesson7 recipe does."""
        total = 1
        for s in self.steps:
            f = s.downscale()
            if f is None:
                return None
            total *= f
        return total

    @property
    def ends_with_jpeg(self) -> bool:
        return isinstance(self.steps[-1], Jpeg)

    @property
    def lr_suffix(self) -> str:
        """File suffix of the low-res images the builder writes: the JPEG bytes or a PNG."""
        return ".jpg" if self.ends_with_jpeg else ".png"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "version": ALGORITHM_VERSION,
            "steps": [s.to_dict() for s in self.steps],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Recipe":
        if not isinstance(d, dict) or not isinstance(d.get("steps"), list):
            raise RecipeError("A recipe must be a JSON object with a 'steps' list")
        return cls(
            name=str(d.get("name") or "custom"),
            steps=[step_from_dict(s) for s in d["steps"]],
            description=str(d.get("description") or ""),
        )

    @classmethod
    def from_json(cls, text: str | bytes | dict[str, Any]) -> "Recipe":
        if isinstance(text, dict):
            return cls.from_dict(text)
        try:
            d = json.loads(text)
        except (ValueError, TypeError) as err:
            raise RecipeError(f"Recipe is not valid JSON: {err}") from None
        return cls.from_dict(d)

    def hash(self) -> str:
        """Stable hex digest of what determines the output (steps, parameters, algorithm version)."""
        payload = {"version": ALGORITHM_VERSION, "steps": [s.to_dict() for s in self.steps]}
        return hashlib.sha256(_canonical(payload).encode("ascii")).hexdigest()

    def describe(self) -> str:
        """One line per step, for listings."""
        parts = []
        for s in self.steps:
            params = {k: v for k, v in s.to_dict().items() if k != "kind"}
            parts.append(s.kind + (" " + _canonical(params) if params else ""))
        return " -> ".join(parts)


PRESETS: dict[str, Recipe] = {
    r.name: r
    for r in [
        Recipe(
            "lesson7",
            [Resize(shortest_side=96, resample="bilinear"), Text(size=10), Jpeg(quality=(10, 70))],
            "The course's crappifier: shortest side 96 (bilinear), the JPEG quality q in 10..70 "
            "written in white in the top-left quarter, saved as JPEG at q.",
        ),
        Recipe(
            "decrappify-x2",
            [Resize(factor=2, resample="bilinear"), Text(relative_size=10 / 96), Jpeg(quality=(10, 70))],
            "As lesson7 but at half size (text scaled to the image): the starter model's task.",
        ),
        Recipe("superres-x2", [Resize(factor=2, resample="bicubic")], "Bicubic downscale by 2."),
        Recipe("superres-x4", [Resize(factor=4, resample="bicubic")], "Bicubic downscale by 4."),
        Recipe("jpeg", [Jpeg(quality=(10, 70))], "JPEG artefacts only (q in 10..70), same size."),
        Recipe("colorize", [Greyscale()], "Greyscale (3 channels), same size: learn to colourise."),
        Recipe("old-photo", [OldPhoto()], "Sepia, fading, grain, scratches and dust, same size."),
    ]
}


def get_recipe(name_or_path: str | Path | Recipe) -> Recipe:
    """A preset by name, a recipe JSON file, or a Recipe (returned as is). RecipeError otherwise."""
    if isinstance(name_or_path, Recipe):
        return name_or_path
    key = str(name_or_path)
    if key in PRESETS:
        return copy.deepcopy(PRESETS[key])
    p = Path(key).expanduser()
    if p.suffix.lower() == ".json" or p.is_file():
        if not p.is_file():
            raise RecipeError(f"Recipe file not found: {p}")
        try:
            return Recipe.from_json(p.read_text(encoding="utf-8"))
        except RecipeError as err:
            raise RecipeError(f"Bad recipe file {p}: {err}") from None
        except OSError as err:
            raise RecipeError(f"Cannot read recipe file {p}: {err}") from None
    raise RecipeError(f"Unknown recipe '{key}'. Presets: {', '.join(PRESETS)}; or give a recipe .json file.")


# ----------------------------------------------------------------------------- running


@dataclass
class CrappifyResult:
    image: Image.Image
    jpeg_bytes: bytes | None  # the encoded bytes when the last step is JPEG, else None
    params: dict[str, Any]  # what was drawn: quality, text, text_xy, ...


def _as_rgb(img: Any) -> Image.Image:
    if isinstance(img, ImageData):
        return to_pil(img, alpha=False)
    if not isinstance(img, Image.Image):
        raise TypeError(f"expected a PIL image or ImageData, got {type(img).__name__}")
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA", "P", "RGBa", "La"):  # composite onto white, as save_image does
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    return img.convert("RGB")


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise RecipeError(f"The crappify seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def apply_recipe(img: Image.Image | ImageData, recipe: Recipe, seed: int) -> CrappifyResult:
    """Run ``recipe`` on ``img`` (converted to RGB) with ``seed``; see :class:`CrappifyResult`."""
    seed = _check_seed(seed)
    out = _as_rgb(img)
    steps = recipe.steps
    rngs = [np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i,))) for i in range(len(steps))]
    ctx = StepContext(seed=seed, steps=steps)
    for i, (step, rng) in enumerate(zip(steps, rngs)):
        ctx.index = i
        step.prepare(rng, ctx)
    for i, (step, rng) in enumerate(zip(steps, rngs)):
        ctx.index = i
        ctx.jpeg_bytes = None
        out = step.apply(out, rng, ctx)
    params: dict[str, Any] = {}
    for i in sorted(ctx.drawn):
        params.update(ctx.drawn[i])
    return CrappifyResult(image=out, jpeg_bytes=ctx.jpeg_bytes, params=params)


def crappify(img: Image.Image | ImageData, recipe: Recipe | str, seed: int) -> Image.Image:
    """The degraded RGB image. Same image, recipe and seed -> same pixels."""
    return apply_recipe(img, get_recipe(recipe), seed).image


def preview(
    img: Image.Image | ImageData, recipe: Recipe | str, seed: int = 0, max_side: int = 512
) -> Image.Image:
    """Fast look at a recipe: ``img`` fitted into ``max_side``, crappified, and shown at that
    display size (nearest-neighbour enlargement, so pixels and blocks stay visible)."""
    rgb = _as_rgb(img)
    if max(rgb.size) > max_side:
        r = max_side / max(rgb.size)
        size = (max(1, round(rgb.width * r)), max(1, round(rgb.height * r)))
        rgb = rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    out = apply_recipe(rgb, get_recipe(recipe), seed).image
    return out if out.size == rgb.size else out.resize(rgb.size, Image.Resampling.NEAREST)


# ----------------------------------------------------------------------------- one dataset pair


@dataclass
class PairJob:
    """One source file to turn into an HR/LR pair (built by core.datasets.build_pairs)."""

    src: str
    hr: str
    lr: str
    recipe: Recipe
    seed: int
    max_size: int | None = None
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    png_compress_level: int = 1


def prepare_hr(data: ImageData, scale: int | None, max_size: int | None) -> tuple[Image.Image, bool]:
    """The HR image the pair is made from: RGB 8-bit (alpha composited onto white), longest
    side capped to ``max_size`` (Lanczos), then cropped top-left to a multiple of ``scale`` so
    that LR x scale == HR exactly. Returns (image, changed-from-the-decoded-pixels)."""
    img = to_pil(data, alpha=False)
    changed = False
    w, h = img.size
    if max_size is not None and max(w, h) > max_size:
        r = max_size / max(w, h)
        img = img.resize((max(1, round(w * r)), max(1, round(h * r))), Image.Resampling.LANCZOS)
        changed = True
        w, h = img.size
    s = scale or 1
    if s > 1:
        W, H = w - w % s, h - h % s
        if W == 0 or H == 0:
            raise DatasetError(f"image is {w}x{h} pixels, smaller than the recipe's scale {s}")
        if (W, H) != (w, h):
            img = img.crop((0, 0, W, H))
            changed = True
    return img, changed


def make_pair(job: PairJob) -> dict[str, Any]:
    """Crappify ``job.src`` into ``job.hr`` (PNG, or the source bytes when they are already an
    unchanged 8-bit RGB/grey PNG) and ``job.lr`` (the JPEG bytes when the recipe ends with JPEG,
    else PNG), each written atomically. Never raises for a bad image: returns
    ``{"ok": False, "bad_source": bool, "reason": str}`` or ``{"ok": True, ...sizes, params}``."""
    try:
        data = load_image(job.src, max_pixels=job.max_pixels)
    except ImageReadError as err:
        return {"ok": False, "bad_source": True, "reason": err.reason}
    try:
        hr, changed = prepare_hr(data, job.recipe.scale, job.max_size)
        copy_src = (
            not changed
            and data.format == "PNG"
            and data.alpha is None
            and data.bit_depth == 8
            and data.extra.get("mode") in ("RGB", "L")
            and data.extra.get("orientation", 1) == 1
        )
        result = apply_recipe(hr, job.recipe, job.seed)
        png: dict[str, Any] = {"compress_level": job.png_compress_level}
        if data.icc:
            png["icc_profile"] = data.icc
        with atomic_write(job.hr) as tmp:
            if copy_src:
                shutil.copyfile(job.src, tmp)
            else:
                hr.save(tmp, format="PNG", **png)
        with atomic_write(job.lr) as tmp:
            if result.jpeg_bytes is not None and job.lr.lower().endswith((".jpg", ".jpeg")):
                tmp.write_bytes(result.jpeg_bytes)
            else:
                result.image.save(tmp, format="PNG", **png)
    except DatasetError as err:  # smaller than the scale
        return {"ok": False, "bad_source": True, "reason": err.message}
    except Exception as err:  # writing failed (disk full, permissions ...)
        return {"ok": False, "bad_source": False, "reason": f"{type(err).__name__}: {err}"}
    return {
        "ok": True,
        "hr_size": list(hr.size),
        "lr_size": list(result.image.size),
        "hr_copied": copy_src,
        "params": result.params,
        "pid": os.getpid(),  # which process built it (the builder shares work between processes)
    }


def init_worker() -> None:
    """Builder worker processes leave Ctrl-C to the parent, which cancels cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


MIN_PARALLEL_WORK_S = 2.0  # helper processes start only for at least this much work left (one process)


def run_pair_jobs(
    jobs: Sequence[tuple[Any, ...]],
    workers: int,
    on_result: Callable[..., None],
    should_stop: Callable[[], bool],
    *,
    min_parallel_s: float = MIN_PARALLEL_WORK_S,
) -> None:
    """Build every ``(key..., job)`` of ``jobs`` with up to ``workers`` processes in all: this one
    plus ``workers - 1`` spawned helpers; ``on_result(*item, result)`` runs here, once per job.

    This process always works through the queue itself, timing its jobs; helpers are spawned only
    once the work left (jobs left x the mean time of a job here) is at least ``min_parallel_s``
    seconds, because a spawned interpreter costs a good fraction of a second to start. Each helper
    is fed two jobs at a time while this process keeps working. So more workers never make a small
    build slower than the plain loop (a pool with an idle parent was 0.56x, bench_crappify.py),
    and a large one gets every process. ``should_stop()`` is asked before each job starts (it may
    block while paused); once it is true no new job starts and those in flight finish.
    """
    queue = deque(jobs)
    helpers = max(0, int(workers) - 1) if len(queue) > 1 else 0
    pool = None
    inflight: dict[Any, tuple[Any, ...]] = {}
    spent, done_here = 0.0, 0
    stopping = False
    try:
        while queue or inflight:
            stopping = stopping or should_stop()
            if stopping:
                queue.clear()
            if pool is None and helpers and queue and (
                    min_parallel_s <= 0 or (done_here and len(queue) * spent / done_here >= min_parallel_s)):
                pool = _helper_pool(helpers)
            while pool is not None and queue and len(inflight) < 2 * helpers:
                item = queue.popleft()
                inflight[pool.submit(make_pair, item[-1])] = item
            for fut in [f for f in inflight if f.done()]:
                on_result(*inflight.pop(fut), fut.result())
            if queue:  # this process works too (from the back once helpers take the front)
                item = queue.pop() if pool is not None else queue.popleft()
                t = time.perf_counter()
                res = make_pair(item[-1])
                spent += time.perf_counter() - t
                done_here += 1
                on_result(*item, res)
            elif inflight:
                from concurrent.futures import FIRST_COMPLETED, wait

                finished, _ = wait(list(inflight), timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in finished:
                    on_result(*inflight.pop(fut), fut.result())
    except Exception as err:
        from concurrent.futures.process import BrokenProcessPool

        if isinstance(err, BrokenProcessPool):
            raise DatasetError(
                "A crappify worker process died (out of memory?). What was built is kept; "
                "rerun to continue, perhaps with fewer workers."
            ) from err
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _helper_pool(n: int) -> Any:
    """``n`` spawn-context worker processes (safe next to GUI threads, the same on every OS)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn"),
                               initializer=init_worker)


__all__ = [
    "ALGORITHM_VERSION",
    "FONT_BACKEND",
    "PRESETS",
    "STEP_TYPES",
    "Blur",
    "CrappifyResult",
    "Greyscale",
    "Jpeg",
    "Noise",
    "OldPhoto",
    "PairJob",
    "Recipe",
    "Resize",
    "Step",
    "StepContext",
    "Text",
    "apply_recipe",
    "crappify",
    "get_recipe",
    "make_pair",
    "run_pair_jobs",
    "prepare_hr",
    "preview",
    "step_from_dict",
]
