"""One image in a zoomable, pannable view; views linked to follow each other.

Zoom at the cursor (wheel), drag to pan, fit / 1:1, keys. ``link(other)`` puts views in one group
whose zoom and pan follow each other in normalised image coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QPointF, QRectF, QSizeF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPixmap,
    QResizeEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QWidget,
)

from ..qimage import to_qpixmap

MIN_ZOOM = 1.0 / 64.0
MAX_ZOOM = 64.0
WHEEL_STEP = 1.25  # zoom factor per wheel notch
BACKGROUND = QColor(38, 38, 40)


@dataclass(frozen=True)
class ViewState:
    """What linked views share: centre (fraction of the image), view px per image width, fit."""

    cx: float
    cy: float
    px_per_width: float
    fit: bool


def label_box(painter: QPainter, text: str, x: int, y: int, align_right: bool = False) -> None:
    """A readable white label on a translucent dark box, in viewport coordinates."""
    font = QFont(painter.font())
    font.setPointSizeF(max(9.0, font.pointSizeF()))
    font.setBold(True)
    painter.setFont(font)
    fm = painter.fontMetrics()
    w, h = fm.horizontalAdvance(text) + 14, fm.height() + 6
    if align_right:
        x -= w
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(0, 0, 0, 170))
    painter.drawRoundedRect(QRectF(x, y, w, h), 4, 4)
    painter.setPen(QColor(255, 255, 255))
    painter.drawText(QRectF(x, y, w, h), Qt.AlignmentFlag.AlignCenter, text)


class ImageView(QGraphicsView):
    """One image with wheel zoom at the cursor, drag-to-pan, fit, 1:1 and linked views."""

    zoom_changed = Signal(float)  # view pixels per image pixel (1.0 = 1:1)
    view_changed = Signal()  # zoom or pan changed

    def __init__(self, parent: QWidget | None = None, *, label: str = "", placeholder: str = "No image") -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self._item = QGraphicsPixmapItem()
        self._item.setShapeMode(QGraphicsPixmapItem.ShapeMode.BoundingRectShape)
        self.scene().addItem(self._item)
        self._label = label
        self._placeholder = placeholder
        self._has_image = False
        self._fit_mode = True
        self._group: list[ImageView] = [self]
        self._syncing = False
        self._last_zoom = 1.0

        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # overlays (labels, divider) are fixed to the viewport: repaint all on scroll
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
        self.setBackgroundBrush(QBrush(BACKGROUND))
        self.setFrameShape(QGraphicsView.Shape.NoFrame)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(120, 90)
        self.horizontalScrollBar().valueChanged.connect(self._on_scrolled)
        self.verticalScrollBar().valueChanged.connect(self._on_scrolled)

    # ---------------------------------------------------------------- image
    def set_image(self, img: Any, *, keep_view: bool = False) -> None:
        """Show ``img`` (numpy array, PIL image, ImageData, QImage or QPixmap); None clears.

        The view is fitted unless ``keep_view`` and the new image has the same size."""
        if img is None:
            self.clear()
            return
        pix = to_qpixmap(img)
        same = self._has_image and pix.size() == self._item.pixmap().size()
        self._item.setPixmap(pix)
        self._has_image = True
        self._set_scene_size(QSizeF(pix.size()))
        self._image_set(keep_view and same)

    def clear(self) -> None:
        self._item.setPixmap(QPixmap())
        self._has_image = False
        self.setSceneRect(QRectF(0, 0, 1, 1))
        self.viewport().update()

    def has_image(self) -> bool:
        return self._has_image

    def pixmap(self) -> QPixmap:
        return self._item.pixmap()

    def image_size(self) -> QSizeF:
        """Size of the scene (the image) in image pixels."""
        return self.sceneRect().size()

    def set_label(self, text: str) -> None:
        self._label = text
        self.viewport().update()

    def label(self) -> str:
        return self._label

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.viewport().update()

    def _set_scene_size(self, size: QSizeF) -> None:
        self.setSceneRect(QRectF(QPointF(0, 0), size))

    def _image_set(self, keep_view: bool) -> None:
        if keep_view:
            self._after_view_change()
            return
        peer = next((v for v in self._group if v is not self and v._has_image), None)
        if peer is not None:  # join the group's current view
            self._apply_state(peer.view_state())
        else:
            self.fit()

    # ---------------------------------------------------------------- zoom / pan
    def zoom(self) -> float:
        return self.transform().m11()

    def is_fit(self) -> bool:
        return self._fit_mode

    def fit(self) -> None:
        """Whole image in view (and keep fitting as the view is resized)."""
        self._fit_mode = True
        self._fit_now()
        self._after_view_change()

    def _fit_now(self) -> None:
        r = self.sceneRect()
        vp = self.viewport().rect()
        if r.width() <= 0 or r.height() <= 0 or vp.width() <= 2 or vp.height() <= 2:
            return
        z = min((vp.width() - 2) / r.width(), (vp.height() - 2) / r.height())
        z = min(max(z, MIN_ZOOM), MAX_ZOOM)
        self.setTransform(QTransform.fromScale(z, z))
        self.centerOn(r.center())

    def one_to_one(self) -> None:
        """One image pixel per screen pixel, keeping the centre of the view."""
        self.set_zoom(1.0)

    def set_zoom(self, z: float, anchor: QPointF | None = None) -> None:
        """Zoom to ``z`` keeping the scene point under ``anchor`` (viewport px; default centre)."""
        if not self._has_image and len(self._group) == 1:
            return
        z = min(max(float(z), MIN_ZOOM), MAX_ZOOM)
        if anchor is None:
            anchor = QPointF(self.viewport().rect().center())
        scene_pt = self._map_to_scene_f(anchor)
        self._fit_mode = False
        self.setTransform(QTransform.fromScale(z, z))
        self._place(scene_pt, anchor)
        self._after_view_change()

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        self.set_zoom(self.zoom() * factor, anchor)

    def _map_to_scene_f(self, p: QPointF) -> QPointF:
        inv, _ok = self.viewportTransform().inverted()
        return inv.map(QPointF(p))

    def _place(self, scene_pt: QPointF, view_pt: QPointF) -> None:
        """Scroll so that ``scene_pt`` sits under viewport point ``view_pt`` (as far as possible)."""
        cur = self.viewportTransform().map(scene_pt)
        dx, dy = cur.x() - view_pt.x(), cur.y() - view_pt.y()
        h, v = self.horizontalScrollBar(), self.verticalScrollBar()
        h.setValue(h.value() + round(dx))
        v.setValue(v.value() + round(dy))

    def visible_scene_rect(self) -> QRectF:
        inv, _ok = self.viewportTransform().inverted()
        return inv.mapRect(QRectF(self.viewport().rect()))

    def view_state(self) -> ViewState:
        r = self.sceneRect()
        c = self.visible_scene_rect().center()
        w = max(r.width(), 1e-9)
        h = max(r.height(), 1e-9)
        return ViewState(c.x() / w, c.y() / h, self.zoom() * w, self._fit_mode)

    # ---------------------------------------------------------------- linking
    def link(self, other: "ImageView") -> None:
        """Make ``other`` follow this view's zoom and pan and vice versa (groups merge)."""
        if other in self._group:
            return
        merged = self._group + [v for v in other._group if v not in self._group]
        for v in merged:
            v._group = merged
        if self._has_image:
            other._apply_state(self.view_state())

    def unlink(self) -> None:
        group = [v for v in self._group if v is not self]
        for v in group:
            v._group = group
        self._group = [self]

    def linked_views(self) -> list["ImageView"]:
        return [v for v in self._group if v is not self]

    def _apply_state(self, s: ViewState) -> None:
        self._syncing = True
        try:
            if s.fit:
                self._fit_mode = True
                self._fit_now()
            else:
                self._fit_mode = False
                r = self.sceneRect()
                z = min(max(s.px_per_width / max(r.width(), 1e-9), MIN_ZOOM), MAX_ZOOM)
                self.setTransform(QTransform.fromScale(z, z))
                self._place(QPointF(s.cx * r.width(), s.cy * r.height()),
                            QPointF(self.viewport().rect().center()))
            self._after_view_change()
        finally:
            self._syncing = False

    def _broadcast(self) -> None:
        if self._syncing or len(self._group) == 1:
            return
        s = self.view_state()
        for v in self._group:
            if v is not self and not v._syncing:
                v._apply_state(s)

    # ---------------------------------------------------------------- updates
    def _on_scrolled(self, _value: int) -> None:
        self._after_view_change()

    def _after_view_change(self) -> None:
        self._update_smoothing()
        self._view_updated()
        z = self.zoom()
        if abs(z - self._last_zoom) > 1e-9:
            self._last_zoom = z
            self.zoom_changed.emit(z)
        self.view_changed.emit()
        self._broadcast()
        self.viewport().update()

    def _view_updated(self) -> None:
        """Hook for subclasses (clip rects of overlays)."""

    def _items(self) -> list[QGraphicsPixmapItem]:
        return [self._item]

    def _update_smoothing(self) -> None:
        z = self.zoom()
        any_smooth = False
        for it in self._items():
            eff = z * it.transform().m11()
            smooth = eff < 0.999  # magnified: show the pixels as squares
            it.setTransformationMode(Qt.TransformationMode.SmoothTransformation if smooth
                                     else Qt.TransformationMode.FastTransformation)
            any_smooth |= smooth
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, any_smooth)

    # ---------------------------------------------------------------- events
    def wheelEvent(self, event: QWheelEvent) -> None:
        delta = event.angleDelta().y() or event.angleDelta().x()
        if delta == 0 or not self._has_image:
            event.ignore()
            return
        self.zoom_by(WHEEL_STEP ** (delta / 120.0), event.position())
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._fit_mode = False
        super().mouseMoveEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if self._fit_mode:
            self.set_zoom(1.0, event.position())
        else:
            self.fit()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_by(WHEEL_STEP)
        elif key == Qt.Key.Key_Minus:
            self.zoom_by(1 / WHEEL_STEP)
        elif key in (Qt.Key.Key_0, Qt.Key.Key_F):
            self.fit()
        elif key == Qt.Key.Key_1:
            self.one_to_one()
        else:
            super().keyPressEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fit_mode:
            self._fit_now()
        self._after_view_change()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._fit_mode:
            self._fit_now()
            self._after_view_change()

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        self._draw_overlay(painter)
        painter.restore()

    def _draw_overlay(self, painter: QPainter) -> None:
        vp = self.viewport().rect()
        if not self._has_image:
            if self._placeholder:
                painter.setPen(QColor(170, 170, 170))
                painter.drawText(vp.adjusted(12, 12, -12, -12),
                                 Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._placeholder)
            return
        if self._label:
            label_box(painter, self._label, 8, 8)
        self._draw_zoom_badge(painter)

    def _draw_zoom_badge(self, painter: QPainter) -> None:
        vp = self.viewport().rect()
        font = QFont(painter.font())
        font.setBold(False)
        painter.setFont(font)
        text = f"{self.zoom() * 100:.0f}%"
        fm = painter.fontMetrics()
        w, h = fm.horizontalAdvance(text) + 10, fm.height() + 4
        r = QRectF(vp.right() - w - 6, vp.bottom() - h - 6, w, h)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 130))
        painter.drawRoundedRect(r, 3, 3)
        painter.setPen(QColor(220, 220, 220))
        painter.drawText(r, Qt.AlignmentFlag.AlignCenter, text)



def scaled_item(pix: QPixmap, target: QSizeF) -> QGraphicsPixmapItem:
    """A pixmap item drawn at ``target`` size (scene units), whatever the pixmap's own size."""
    it = QGraphicsPixmapItem(pix)
    it.setShapeMode(QGraphicsPixmapItem.ShapeMode.BoundingRectShape)
    if pix.width() > 0 and pix.height() > 0:
        it.setTransform(QTransform.fromScale(target.width() / pix.width(), target.height() / pix.height()))
    return it
