"""Fit / 1:1 / zoom buttons for an ImageView."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QHBoxLayout,
    QToolButton,
    QWidget,
)

from .base import WHEEL_STEP, ImageView


class ZoomBar(QWidget):
    """Fit / 1:1 / zoom out / zoom in buttons for one view (linked views follow it).

    The zoom level itself is drawn in each view's bottom-right corner."""

    def __init__(self, view: ImageView, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._view = view
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)

        def button(text: str, tip: str, slot) -> QToolButton:
            b = QToolButton(self)
            b.setText(text)
            b.setToolTip(tip)
            b.clicked.connect(slot)
            lay.addWidget(b)
            return b

        self.fit_button = button("Fit", "Whole image in view (F or 0; double-click toggles)", lambda: self._view.fit())
        self.one_button = button("1:1", "One image pixel per screen pixel (1)", lambda: self._view.one_to_one())
        self.out_button = button("\u2212", "Zoom out (mouse wheel, -)", lambda: self._view.zoom_by(1 / WHEEL_STEP))
        self.in_button = button("+", "Zoom in (mouse wheel, +)", lambda: self._view.zoom_by(WHEEL_STEP))

    def set_view(self, view: ImageView) -> None:
        self._view = view

    def view(self) -> ImageView:
        return self._view
