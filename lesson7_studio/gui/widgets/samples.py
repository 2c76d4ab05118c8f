"""Sample predictions: rows of (input | prediction | target), or a saved PNG grid, scaled to fit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

from .qimage import to_qpixmap

HEADERS = ("Input", "Prediction", "Target")
HEADER_H = 22
GAP = 6


class SampleGrid(QWidget):
    """Paints sample rows (or one PNG) as large as the widget allows, aspect kept."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sampleGrid")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(200, 150)
        self._rows: list[list[QPixmap]] = []
        self._image: QPixmap | None = None
        self.caption = ""
        self.placeholder = "Sample predictions appear after each epoch."
        self.updates = 0

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(480, 360)

    def set_rows(self, rows: list[tuple[Any, Any, Any]], caption: str = "") -> None:
        """Rows of (input, prediction, target) images (numpy HxWx3, PIL or QImage)."""
        self._rows = [[to_qpixmap(img) for img in row if img is not None] for row in rows]
        self._image = None
        self.caption = caption
        self.updates += 1
        self.update()

    def set_image_file(self, path: str | Path, caption: str = "") -> bool:
        pix = QPixmap(str(path))
        if pix.isNull():
            return False
        self._image = pix
        self._rows = []
        self.caption = caption
        self.updates += 1
        self.update()
        return True

    def clear(self) -> None:
        self._rows = []
        self._image = None
        self.caption = ""
        self.update()

    def has_content(self) -> bool:
        return bool(self._rows) or self._image is not None

    def row_count(self) -> int:
        return len(self._rows)

    def paintEvent(self, _event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.fillRect(self.rect(), QColor("#ffffff"))
        area = self.rect().adjusted(GAP, GAP, -GAP, -GAP)
        if self.caption:
            f = QFont(self.font())
            f.setBold(True)
            p.setFont(f)
            p.setPen(QColor("#34404f"))
            p.drawText(QRect(area.left(), area.top(), area.width(), HEADER_H), Qt.AlignmentFlag.AlignLeft, self.caption)
            area.setTop(area.top() + HEADER_H)
        if self._image is not None:
            self._draw_fit(p, self._image, area)
        elif self._rows:
            self._draw_rows(p, area)
        else:
            p.setPen(QColor("#8a93a0"))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
        p.end()

    @staticmethod
    def _draw_fit(p: QPainter, pix: QPixmap, area: QRect) -> None:
        s = min(area.width() / max(pix.width(), 1), area.height() / max(pix.height(), 1))
        w, h = pix.width() * s, pix.height() * s
        x = area.left() + (area.width() - w) / 2
        y = area.top() + (area.height() - h) / 2
        p.drawPixmap(QRectF(x, y, w, h), pix, QRectF(pix.rect()))

    def _draw_rows(self, p: QPainter, area: QRect) -> None:
        ncol = max(len(r) for r in self._rows)
        nrow = len(self._rows)
        cw = max(p_.width() for r in self._rows for p_ in r)
        ch = max(p_.height() for r in self._rows for p_ in r)
        avail_w = area.width() - GAP * (ncol - 1)
        avail_h = area.height() - HEADER_H - GAP * (nrow - 1)
        s = min(avail_w / (ncol * cw), avail_h / (nrow * ch))
        if s > 1:  # enlarge small samples in whole steps, pixels stay sharp
            s = float(int(s))
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        tw, th = cw * s, ch * s
        total_w = ncol * tw + GAP * (ncol - 1)
        x0 = area.left() + (area.width() - total_w) / 2
        p.setPen(QColor("#5c6676"))
        for c in range(ncol):
            title = HEADERS[c] if c < len(HEADERS) else ""
            p.drawText(QRectF(x0 + c * (tw + GAP), area.top(), tw, HEADER_H), Qt.AlignmentFlag.AlignCenter, title)
        y = area.top() + HEADER_H
        for r in self._rows:
            for c, pix in enumerate(r):
                p.drawPixmap(QRectF(x0 + c * (tw + GAP), y, tw, th), pix, QRectF(pix.rect()))
            y += th + GAP
