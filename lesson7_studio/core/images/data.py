"""The one in-memory image: :class:`ImageData`, and its conversions to floats and Pillow."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


@dataclass
class ImageData:
    """Pixels plus what is needed to save them faithfully.

    ``rgb`` is HxWx3 uint8 or uint16 (``bit_depth`` 8 or 16, filled from the dtype when 0);
    ``alpha`` is HxW of the same dtype or None; ``exif`` has orientation 1; ``extra`` holds
    facts about the source: ``mode`` (Pillow mode), ``orientation``, ``frames``, ``dpi``,
    ``converted_from``.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None = None
    is_grey: bool = False
    bit_depth: int = 0
    format: str = "PNG"
    exif: bytes | None = None
    icc: bytes | None = None
    path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rgb.ndim != 3 or self.rgb.shape[2] != 3:
            raise ValueError(f"rgb must be HxWx3, got shape {self.rgb.shape}")
        if self.rgb.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"rgb must be uint8 or uint16, got {self.rgb.dtype}")
        depth = 16 if self.rgb.dtype == np.uint16 else 8
        if self.bit_depth in (0, None):
            self.bit_depth = depth
        elif self.bit_depth != depth:
            raise ValueError(f"bit_depth {self.bit_depth} does not match rgb dtype {self.rgb.dtype}")
        if self.alpha is not None:
            if self.alpha.shape != self.rgb.shape[:2]:
                raise ValueError(f"alpha shape {self.alpha.shape} != image {self.rgb.shape[:2]}")
            if self.alpha.dtype != self.rgb.dtype:
                self.alpha = _convert_depth(self.alpha, self.rgb.dtype)

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as Pillow reports sizes."""
        return self.width, self.height

    @property
    def max_value(self) -> int:
        return 65535 if self.bit_depth == 16 else 255


def _convert_depth(arr: np.ndarray, dtype: Any) -> np.ndarray:
    dtype = np.dtype(dtype)
    if arr.dtype == dtype:
        return arr
    if dtype == np.uint8:  # 16 -> 8, rounded
        return ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return arr.astype(np.uint16) * 257  # 8 -> 16, exact inverse of the above


def to_float(img: ImageData) -> np.ndarray:
    """HxWx3 float32 in [0, 1]."""
    return img.rgb.astype(np.float32) / np.float32(img.max_value)


def from_float(arr: Any, like: ImageData) -> ImageData:
    """HxWx3 float array in [0, 1] -> ImageData with ``like``'s bit depth and metadata.

    The alpha plane of ``like`` is resized (bicubic) when the size changed; ``is_grey`` stays
    only if the new pixels are still grey.
    """
    if hasattr(arr, "detach"):  # torch tensor
        arr = arr.detach().cpu().numpy()
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 array, got shape {arr.shape}")
    top = float(like.max_value)
    dtype = np.uint16 if like.bit_depth == 16 else np.uint8
    rgb = np.rint(np.clip(np.nan_to_num(arr), 0.0, 1.0) * top).astype(dtype)
    alpha = like.alpha
    if alpha is not None and alpha.shape != rgb.shape[:2]:
        a = Image.fromarray(alpha.astype(np.float32)).resize(  # mode F
            (rgb.shape[1], rgb.shape[0]), Image.Resampling.BICUBIC
        )
        alpha = np.rint(np.clip(np.asarray(a), 0, top)).astype(dtype)
    grey = like.is_grey and bool(
        np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])
    )
    return replace(like, rgb=rgb, alpha=alpha, is_grey=grey, extra=dict(like.extra))


def flatten(img: ImageData, background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """RGB with the alpha plane composited onto ``background`` (8-bit units); same dtype."""
    if img.alpha is None:
        return img.rgb
    top = float(img.max_value)
    a = img.alpha.astype(np.float32)[..., None] / top
    bg = np.asarray(background, np.float32) * (top / 255.0)
    out = img.rgb.astype(np.float32) * a + bg * (1.0 - a)
    return np.rint(out).astype(img.rgb.dtype)


def to_pil(img: ImageData, alpha: bool = True) -> Image.Image:
    """8-bit Pillow image: "RGBA" when there is alpha and ``alpha`` is true, else "RGB"
    (alpha composited onto white)."""
    if alpha and img.alpha is not None:
        rgba = np.dstack([img.rgb, img.alpha])
        return Image.fromarray(np.ascontiguousarray(_convert_depth(rgba, np.uint8)))  # RGBA
    return Image.fromarray(np.ascontiguousarray(_convert_depth(flatten(img), np.uint8)))  # RGB


def from_pil(pil: Image.Image, like: ImageData | None = None) -> ImageData:
    """Pillow image (any mode) -> 8-bit ImageData; metadata from ``like`` when given."""
    mode = pil.mode
    grey = mode in _GREY_MODES
    if mode in ("LA", "La", "PA", "RGBA", "RGBa") or (mode in ("P", "L", "RGB") and "transparency" in pil.info):
        a = np.asarray(pil.convert("RGBA"))
        rgb, alpha = np.ascontiguousarray(a[..., :3]), np.ascontiguousarray(a[..., 3])
    else:
        rgb, alpha = np.asarray(pil.convert("RGB")).copy(), None
    if like is None:
        return ImageData(rgb=rgb, alpha=alpha, is_grey=grey, format=pil.format or "PNG")
    return replace(like, rgb=rgb, alpha=alpha, is_grey=grey, bit_depth=8, extra=dict(like.extra))
