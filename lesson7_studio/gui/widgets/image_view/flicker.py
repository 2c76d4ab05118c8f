"""Two (or more) images at the same place, alternated by a timer or by hand."""

from __future__ import annotations

from typing import Any, Sequence

from PySide6.QtCore import QSizeF, QTimer, Signal
from PySide6.QtGui import (
    QTransform,
)
from PySide6.QtWidgets import (
    QGraphicsPixmapItem,
    QWidget,
)

from ..qimage import to_qpixmap
from .base import ImageView, scaled_item


class FlickerView(ImageView):
    """Two (or more) images at the same place, alternated by a timer or by hand.

    Images of other sizes are stretched to the first one's size."""

    shown_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None, *, interval_ms: int = 600,
                 placeholder: str = "No image") -> None:
        super().__init__(parent, placeholder=placeholder)
        self._extra: list[QGraphicsPixmapItem] = []
        self._labels: list[str] = []
        self._index = 0
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.next)

    def set_images(self, images: Sequence[Any], labels: Sequence[str] | None = None,
                   *, keep_view: bool = False) -> None:
        for it in self._extra:
            self.scene().removeItem(it)
        self._extra = []
        images = [im for im in images if im is not None]
        if not images:
            self._labels = []
            self.clear()
            return
        old = self.sceneRect().size() if self._has_image else None
        pixes = [to_qpixmap(im) for im in images]
        size = QSizeF(pixes[0].size())
        self._item.setPixmap(pixes[0])
        self._item.setTransform(QTransform())
        for p in pixes[1:]:
            it = scaled_item(p, size)
            self.scene().addItem(it)
            self._extra.append(it)
        self._labels = list(labels) if labels is not None else [""] * len(pixes)
        self._labels += [""] * (len(pixes) - len(self._labels))
        self._has_image = True
        self._set_scene_size(size)
        self._index = min(self._index, len(pixes) - 1)
        self._show_current()
        self._image_set(keep_view and old == size)

    def count(self) -> int:
        return (1 + len(self._extra)) if self._has_image else 0

    def current(self) -> int:
        return self._index

    def show_index(self, i: int) -> None:
        n = self.count()
        if n == 0:
            return
        self._index = i % n
        self._show_current()
        self.shown_changed.emit(self._index)

    def next(self) -> None:
        self.show_index(self._index + 1)

    def set_flicker(self, on: bool) -> None:
        if on and self.count() > 1:
            self._timer.start()
        else:
            self._timer.stop()

    def is_flickering(self) -> bool:
        return self._timer.isActive()

    def set_interval(self, ms: int) -> None:
        self._timer.setInterval(max(50, int(ms)))

    def _items(self) -> list[QGraphicsPixmapItem]:
        return [self._item] + self._extra

    def _show_current(self) -> None:
        for i, it in enumerate(self._items()):
            it.setVisible(i == self._index)
        self._label = self._labels[self._index] if self._labels else ""
        self.viewport().update()

    def hideEvent(self, event) -> None:
        self._timer.stop()
        super().hideEvent(event)
