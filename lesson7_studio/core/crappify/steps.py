"""The degradations: each step is a small dataclass with typed parameters and a ``kind``;
``apply(img, rng, ctx)`` maps a Pillow RGB image to a Pillow RGB image (see the package docs
for how randomness and shared draws work). The old-photo step lives in :mod:`.old_photo`."""

from __future__ import annotations

import functools
import io
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, features

from ..errors import RecipeError
from .checks import _bad, _colour, _float, _int, _range

FONT_BACKEND = "freetype" if features.check("freetype2") else "bitmap"

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "area": Image.Resampling.BOX,
}


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
