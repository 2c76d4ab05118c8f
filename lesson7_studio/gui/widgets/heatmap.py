"""Heatmaps: colour maps, difference maps, patch-score overlays and a legend widget."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QLinearGradient, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

# control points (position, r, g, b) sampled from matplotlib's colour maps
_STOPS: dict[str, list[tuple[float, int, int, int]]] = {
    "inferno": [
        (0.000, 0, 0, 4), (0.125, 31, 12, 72), (0.250, 85, 15, 109), (0.375, 136, 34, 106),
        (0.500, 186, 54, 85), (0.625, 227, 89, 51), (0.750, 249, 140, 10), (0.875, 249, 201, 50),
        (1.000, 252, 255, 164),
    ],
    # calm (green) -> unsure (yellow) -> fake (red): the critic's opinion
    "fake": [(0.0, 26, 152, 80), (0.25, 145, 207, 96), (0.5, 255, 255, 191), (0.75, 252, 141, 89),
             (1.0, 215, 48, 39)],
}


def _lut(name: str) -> np.ndarray:
    stops = _STOPS[name]
    pos = np.array([s[0] for s in stops])
    x = np.linspace(0.0, 1.0, 256)
    return np.stack([np.interp(x, pos, [s[c] for s in stops]) for c in (1, 2, 3)], axis=1).round().astype(np.uint8)


_LUTS = {name: _lut(name) for name in _STOPS}


def colormap_names() -> list[str]:
    return list(_STOPS)


def apply_colormap(values: np.ndarray, name: str = "inferno") -> np.ndarray:
    """HxW values in [0, 1] -> HxWx3 uint8 colours (values outside are clipped)."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.0)
    idx = (np.clip(v, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return _LUTS[name][idx]


def as_float(img: np.ndarray) -> np.ndarray:
    """HxWx3 image (uint8, uint16 or float) as float32 in [0, 1]."""
    a = np.asarray(img)
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    return np.clip(a.astype(np.float32), 0.0, 1.0)


def difference_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel mean absolute difference of two HxWx3 images, in [0, 1] (cropped to the
    common size when the sizes differ by a few pixels)."""
    fa, fb = as_float(a), as_float(b)
    h, w = min(fa.shape[0], fb.shape[0]), min(fa.shape[1], fb.shape[1])
    d = np.abs(fa[:h, :w, :3] - fb[:h, :w, :3])
    return d.mean(axis=2) if d.ndim == 3 else d


def difference_heatmap(a: np.ndarray, b: np.ndarray, gain: float = 4.0, name: str = "inferno") -> np.ndarray:
    """|a - b| amplified by ``gain`` and coloured: HxWx3 uint8. Full colour = 1/gain difference."""
    return apply_colormap(difference_map(a, b) * float(gain), name)


def auto_gain(diff: np.ndarray, percentile: float = 99.5, max_gain: float = 50.0) -> float:
    """A gain that maps the ``percentile`` of a difference map to full colour (1 .. max_gain)."""
    d = np.asarray(diff, dtype=np.float32)
    if d.size > 1_000_000:  # a sample is enough
        d = d.ravel()[:: d.size // 1_000_000 + 1]
    p = float(np.percentile(d, percentile)) if d.size else 0.0
    return float(np.clip(1.0 / p, 1.0, max_gain)) if p > 0 else max_gain


def difference_overlay(a: np.ndarray, b: np.ndarray, gain: float = 4.0, name: str = "inferno",
                       context: float = 0.35) -> np.ndarray:
    """Like :func:`difference_heatmap`, over a dimmed grey copy of ``b`` so that one sees where
    the differences are: where they are small the dim image shows, where large the colour."""
    v = np.clip(difference_map(a, b) * float(gain), 0.0, 1.0)
    heat = apply_colormap(v, name).astype(np.float32)
    fb = as_float(b)[: v.shape[0], : v.shape[1], :3]
    grey = (fb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)) * 255.0 * context
    w = np.clip(v * 3.0, 0.0, 1.0)[:, :, None]
    out = grey[:, :, None] * (1.0 - w) + heat * w
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def upsample_nearest(values: np.ndarray, height: int, width: int) -> np.ndarray:
    """A coarse HxW map (e.g. the critic's patch scores) stretched to height x width by blocks."""
    v = np.asarray(values)
    ys = np.minimum((np.arange(height) * v.shape[0]) // max(height, 1), v.shape[0] - 1)
    xs = np.minimum((np.arange(width) * v.shape[1]) // max(width, 1), v.shape[1] - 1)
    return v[ys[:, None], xs[None, :]]


def overlay_heatmap(image: np.ndarray, values: np.ndarray, name: str = "fake", opacity: float = 0.55) -> np.ndarray:
    """``image`` (HxWx3) blended with the coloured ``values`` map (any size, in [0, 1])."""
    img = (as_float(image)[:, :, :3] * 255.0).astype(np.float32)
    h, w = img.shape[:2]
    v = upsample_nearest(np.clip(values, 0.0, 1.0), h, w)
    col = apply_colormap(v, name).astype(np.float32)
    out = img * (1.0 - opacity) + col * opacity
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return (1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))).astype(np.float32)


class HeatmapLegend(QWidget):
    """A horizontal colour bar with a title and its low / middle / high labels."""

    def __init__(self, parent: QWidget | None = None, *, colormap: str = "inferno", title: str = "",
                 low: str = "0", high: str = "1", middle: str = "") -> None:
        super().__init__(parent)
        self._cmap = colormap
        self._title = title
        self._labels = (low, middle, high)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(160)

    def set_colormap(self, name: str) -> None:
        self._cmap = name
        self.update()

    def set_title(self, text: str) -> None:
        self._title = text
        self.update()

    def title(self) -> str:
        return self._title

    def set_labels(self, low: str, high: str, middle: str = "") -> None:
        self._labels = (low, middle, high)
        self.update()

    def labels(self) -> tuple[str, str, str]:
        return self._labels

    def sizeHint(self) -> QSize:
        fm = self.fontMetrics()
        return QSize(260, fm.height() * 2 + 22)

    def minimumSizeHint(self) -> QSize:
        return QSize(160, self.fontMetrics().height() * 2 + 22)

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        fm = self.fontMetrics()
        th = fm.height()
        pal_text = self.palette().windowText().color()
        margin = 4
        bar = QRectF(margin, th + 4, self.width() - 2 * margin, 12)
        if self._title:
            p.setPen(pal_text)
            p.drawText(QRectF(margin, 0, self.width() - 2 * margin, th), Qt.AlignmentFlag.AlignLeft, self._title)
        grad = QLinearGradient(bar.topLeft(), bar.topRight())
        lut = _LUTS[self._cmap]
        for i in range(0, 256, 15):
            r, g, b = (int(c) for c in lut[i])
            grad.setColorAt(i / 255.0, QColor(r, g, b))
        r, g, b = (int(c) for c in lut[255])
        grad.setColorAt(1.0, QColor(r, g, b))
        p.setPen(QPen(QColor(90, 90, 90), 1))
        p.setBrush(grad)
        p.drawRect(bar)
        p.setPen(pal_text)
        y = bar.bottom() + 3
        low, mid, high = self._labels
        p.drawText(QRectF(margin, y, bar.width() / 2, th), Qt.AlignmentFlag.AlignLeft, low)
        if mid:
            p.drawText(QRectF(margin, y, bar.width(), th), Qt.AlignmentFlag.AlignHCenter, mid)
        p.drawText(QRectF(bar.center().x(), y, bar.width() / 2, th), Qt.AlignmentFlag.AlignRight, high)
        p.end()
