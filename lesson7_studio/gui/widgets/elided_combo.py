"""A combo box for long entries (run names, file paths): elided in the middle, full text as tooltip."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QComboBox, QSizePolicy, QStyle, QStyleOptionComboBox, QStylePainter, QWidget


class ElidedComboBox(QComboBox):
    """A combo box that elides a long current entry in the middle (the full text is its tooltip)
    and adjusts to ``min_chars`` characters rather than to its longest entry."""

    def __init__(self, parent: QWidget | None = None, min_chars: int = 10, tooltip: str = "") -> None:
        super().__init__(parent)
        self._base_tip = tooltip
        self._tip_for: str | None = None
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(min_chars)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.currentIndexChanged.connect(lambda _i: self._update_tip())
        self._update_tip()

    def _update_tip(self) -> None:
        text = self.currentText()
        self._tip_for = text
        self.setToolTip("\n".join(t for t in (text, self._base_tip) if t))

    def paintEvent(self, _event) -> None:
        if self._tip_for != self.currentText():
            self._update_tip()  # items changed while signals were blocked
        p = QStylePainter(self)
        opt = QStyleOptionComboBox()
        self.initStyleOption(opt)
        if self.currentIndex() < 0 and self.placeholderText():
            opt.palette.setBrush(QPalette.ColorRole.ButtonText, opt.palette.placeholderText())
            opt.currentText = self.placeholderText()
        p.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, opt)
        field = self.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, opt,
                                            QStyle.SubControl.SC_ComboBoxEditField, self)
        avail = field.width() - 4
        if not opt.currentIcon.isNull():
            avail -= opt.iconSize.width() + 4
        opt.currentText = self.fontMetrics().elidedText(opt.currentText, Qt.TextElideMode.ElideMiddle, max(avail, 8))
        p.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, opt)
