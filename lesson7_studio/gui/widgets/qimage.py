"""numpy / PIL / ImageData -> QImage and QPixmap, copying the pixels so the source can be freed."""

from __future__ import annotations

from typing import Any

import numpy as np

from PySide6.QtGui import QImage, QPixmap


def to_uint8(arr: np.ndarray) -> np.ndarray:
    """Any image array (uint8, uint16, bool, float in [0,1]) as uint8 for display."""
    a = np.asarray(arr)
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.uint16:
        return (a >> 8).astype(np.uint8)
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    if np.issubdtype(a.dtype, np.floating):
        a = np.nan_to_num(a, nan=0.0, posinf=1.0, neginf=0.0)
        return (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer):
        return np.clip(a, 0, 255).astype(np.uint8)
    raise TypeError(f"cannot display an image array of dtype {a.dtype}")


def _from_array(arr: np.ndarray) -> QImage:
    a = to_uint8(arr)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        fmt, channels = QImage.Format.Format_Grayscale8, 1
    elif a.ndim == 3 and a.shape[2] == 3:
        fmt, channels = QImage.Format.Format_RGB888, 3
    elif a.ndim == 3 and a.shape[2] == 4:
        fmt, channels = QImage.Format.Format_RGBA8888, 4
    else:
        raise ValueError(f"cannot display an image array of shape {a.shape}; expected HxW, HxWx3 or HxWx4")
    a = np.ascontiguousarray(a)
    h, w = a.shape[:2]
    if h == 0 or w == 0:
        raise ValueError("cannot display an empty image")
    img = QImage(a.data, w, h, w * channels, fmt)
    return img.copy()  # own the pixels: the numpy buffer may be freed


def _from_pil(im: Any) -> QImage:
    mode = im.mode
    if mode in ("RGB", "RGBA", "L"):
        return _from_array(np.asarray(im))
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im)
        if a.dtype != np.uint16:
            a = np.clip(a, 0, 65535).astype(np.uint16)
        return _from_array(a)
    if mode == "F":
        return _from_array(np.asarray(im, dtype=np.float32))
    has_alpha = "A" in im.getbands() or (mode == "P" and "transparency" in im.info)
    return _from_array(np.asarray(im.convert("RGBA" if has_alpha else "RGB")))


def to_qimage(img: Any) -> QImage:
    """A QImage owning its pixels from an HxW / HxWx3 / HxWx4 array (uint8, uint16 or float
    [0,1]), a PIL image, an ImageData (rgb + alpha) or a QImage/QPixmap."""
    if isinstance(img, QImage):
        return img.copy()
    if isinstance(img, QPixmap):
        return img.toImage()
    if hasattr(img, "rgb") and isinstance(getattr(img, "rgb"), np.ndarray):  # core.images.ImageData
        rgb = to_uint8(img.rgb)
        alpha = getattr(img, "alpha", None)
        if alpha is not None:
            rgb = np.concatenate([rgb, to_uint8(alpha)[:, :, None]], axis=2)
        return _from_array(rgb)
    if isinstance(img, np.ndarray):
        return _from_array(img)
    if hasattr(img, "mode") and hasattr(img, "getbands"):  # PIL.Image without importing PIL
        return _from_pil(img)
    if hasattr(img, "detach") and hasattr(img, "cpu"):  # torch tensor CxHxW or HxWxC
        a = img.detach().cpu().float().numpy()
        if a.ndim == 4:
            a = a[0]
        if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[2] not in (1, 3, 4):
            a = a.transpose(1, 2, 0)
        return _from_array(a)
    raise TypeError(f"cannot display an object of type {type(img).__name__} as an image")


def to_qpixmap(img: Any) -> QPixmap:
    """A QPixmap of anything to_qimage accepts (needs a QGuiApplication)."""
    if isinstance(img, QPixmap):
        return img
    return QPixmap.fromImage(to_qimage(img))


def qimage_to_array(img: QImage) -> np.ndarray:
    """HxWx3 uint8 copy of a QImage (alpha dropped)."""
    im = img.convertToFormat(QImage.Format.Format_RGB888)
    w, h, bpl = im.width(), im.height(), im.bytesPerLine()
    buf = np.frombuffer(im.constBits(), dtype=np.uint8, count=bpl * h).reshape(h, bpl)
    return buf[:, : w * 3].reshape(h, w, 3).copy()
