"""Before / after in one view, divided by a draggable line."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPointF, QRectF, QSizeF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
    QTransform,
)
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QWidget,
)

from ..qimage import to_qpixmap
from .base import ImageView, label_box, scaled_item


class SplitView(ImageView):
    """Before/after in one view: left of the divider ``before``, right of it ``after``.

    The divider sits at a fraction of the viewport width (it stays on screen while zooming);
    drag it (or its round handle) to move it; drag elsewhere pans. ``before`` is stretched to
    ``after``'s size when they differ (e.g. a low-resolution input)."""

    split_changed = Signal(float)
    GRAB_PX = 10

    def __init__(self, parent: QWidget | None = None, *, before_label: str = "Before",
                 after_label: str = "After", placeholder: str = "No image") -> None:
        super().__init__(parent, placeholder=placeholder)
        self._split = 0.5
        self._before_label = before_label
        self._after_label = after_label
        self._dragging = False
        self._clip = QGraphicsRectItem()
        self._clip.setPen(QPen(Qt.PenStyle.NoPen))
        self._clip.setBrush(QBrush(Qt.BrushStyle.NoBrush))
        self._clip.setFlag(QGraphicsItem.GraphicsItemFlag.ItemClipsChildrenToShape, True)
        self.scene().addItem(self._clip)
        self._after_item: QGraphicsPixmapItem | None = None
        self.setMouseTracking(True)

    def set_images(self, before: Any, after: Any, *, before_label: str | None = None,
                   after_label: str | None = None, keep_view: bool = False) -> None:
        """Show ``before`` left and ``after`` right of the divider (either may be None)."""
        if before_label is not None:
            self._before_label = before_label
        if after_label is not None:
            self._after_label = after_label
        old = self.sceneRect().size() if self._has_image else None
        after_pix = to_qpixmap(after) if after is not None else None
        before_pix = to_qpixmap(before) if before is not None else None
        ref = after_pix if after_pix is not None else before_pix
        if ref is None:
            self.clear()
            return
        size = QSizeF(ref.size())
        self._set_scene_size(size)
        if before_pix is not None:
            self._item.setPixmap(before_pix)
            self._item.setTransform(QTransform.fromScale(size.width() / before_pix.width(),
                                                         size.height() / before_pix.height()))
            self._item.setVisible(True)
        else:
            self._item.setPixmap(QPixmap())
        if self._after_item is not None:
            self.scene().removeItem(self._after_item)
            self._after_item = None
        if after_pix is not None:
            self._after_item = scaled_item(after_pix, size)
            self._after_item.setParentItem(self._clip)
        self._has_image = True
        self._image_set(keep_view and old == size)

    def set_before(self, img: Any, label: str | None = None) -> None:
        after = self._after_item.pixmap() if self._after_item is not None else None
        self.set_images(img, after, before_label=label, keep_view=True)

    def set_after(self, img: Any, label: str | None = None) -> None:
        before = self._item.pixmap() if not self._item.pixmap().isNull() else None
        self.set_images(before, img, after_label=label, keep_view=True)

    def set_image(self, img: Any, *, keep_view: bool = False) -> None:
        """One image on both sides (the split shows nothing new)."""
        self.set_images(img, img, keep_view=keep_view)

    def clear(self) -> None:
        if self._after_item is not None:
            self.scene().removeItem(self._after_item)
            self._after_item = None
        super().clear()

    def set_labels(self, before: str, after: str) -> None:
        self._before_label, self._after_label = before, after
        self.viewport().update()

    def labels(self) -> tuple[str, str]:
        return self._before_label, self._after_label

    def split(self) -> float:
        return self._split

    def set_split(self, fraction: float) -> None:
        """Divider position as a fraction of the view width (0 = all after, 1 = all before)."""
        f = min(max(float(fraction), 0.0), 1.0)
        if abs(f - self._split) < 1e-9:
            return
        self._split = f
        self._view_updated()
        self.viewport().update()
        self.split_changed.emit(f)

    def divider_x(self) -> int:
        return round(self._split * self.viewport().width())

    def divider_scene_x(self) -> float:
        return self._map_to_scene_f(QPointF(self.divider_x(), 0)).x()

    def _items(self) -> list[QGraphicsPixmapItem]:
        return [self._item] + ([self._after_item] if self._after_item is not None else [])

    def _view_updated(self) -> None:
        r = self.sceneRect()
        x = min(max(self.divider_scene_x(), r.left()), r.right())
        self._clip.setRect(QRectF(x, r.top(), r.right() - x, r.height()))

    def _near_divider(self, pos: QPointF) -> bool:
        return self._has_image and abs(pos.x() - self.divider_x()) <= self.GRAB_PX

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._near_divider(event.position()):
            self._dragging = True
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._dragging:
            self.set_split(event.position().x() / max(1, self.viewport().width()))
            event.accept()
            return
        if not event.buttons():
            shape = (Qt.CursorShape.SplitHCursor if self._near_divider(event.position())
                     else Qt.CursorShape.OpenHandCursor)
            self.viewport().setCursor(shape)
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._dragging and event.button() == Qt.MouseButton.LeftButton:
            self._dragging = False
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if self._near_divider(event.position()):
            self.set_split(0.5)
            return
        super().mouseDoubleClickEvent(event)

    def _draw_overlay(self, painter: QPainter) -> None:
        if not self._has_image:
            super()._draw_overlay(painter)
            return
        vp = self.viewport().rect()
        x = self.divider_x()
        painter.setPen(QPen(QColor(0, 0, 0, 120), 3))
        painter.drawLine(x, 0, x, vp.height())
        painter.setPen(QPen(QColor(255, 255, 255), 1.5))
        painter.drawLine(x, 0, x, vp.height())
        cy = vp.height() / 2
        painter.setBrush(QColor(255, 255, 255))
        painter.setPen(QPen(QColor(0, 0, 0, 150), 1))
        painter.drawEllipse(QPointF(x, cy), 13, 13)
        painter.setBrush(QColor(60, 60, 60))
        painter.setPen(Qt.PenStyle.NoPen)
        for sign in (-1, 1):  # two small arrows: "drag me sideways"
            path = QPainterPath()
            path.moveTo(x + sign * 9, cy)
            path.lineTo(x + sign * 3, cy - 5)
            path.lineTo(x + sign * 3, cy + 5)
            path.closeSubpath()
            painter.drawPath(path)
        if self._before_label and x > 40:
            label_box(painter, self._before_label, 8, 8)
        if self._after_label and x < vp.width() - 40:
            label_box(painter, self._after_label, vp.width() - 8, 8, align_right=True)
        self._draw_zoom_badge(painter)
