"""Small building blocks shared by the panels so they look alike."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy, QVBoxLayout, QWidget

PANEL_MARGINS = (16, 12, 16, 10)


def label(text: str = "", role: str = "", *, wrap: bool = False, selectable: bool = False) -> QLabel:
    """A QLabel with a style role ("title", "subtitle", "hint", "ok", "warn", "error", "metric")."""
    w = QLabel(text)
    if role:
        w.setProperty("role", role)
    w.setWordWrap(wrap)
    if selectable:
        w.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return w


def set_role(w: QWidget, role: str) -> None:
    """Change a widget's style role and re-polish it."""
    w.setProperty("role", role)
    w.style().unpolish(w)
    w.style().polish(w)


def button(text: str, role: str = "", tooltip: str = "") -> QPushButton:
    b = QPushButton(text)
    if role:
        b.setProperty("role", role)
    if tooltip:
        b.setToolTip(tooltip)
    return b


def header(title: str, subtitle: str) -> QWidget:
    """Panel title and one line that says what the panel is for."""
    w = QWidget()
    lay = QVBoxLayout(w)
    lay.setContentsMargins(0, 0, 0, 4)
    lay.setSpacing(0)
    lay.addWidget(label(title, "title"))
    sub = label(subtitle, "subtitle", wrap=True)
    lay.addWidget(sub)
    return w


def panel_layout(widget: QWidget) -> QVBoxLayout:
    lay = QVBoxLayout(widget)
    lay.setContentsMargins(*PANEL_MARGINS)
    lay.setSpacing(8)
    return lay


def hbox(*widgets, stretch_last: bool = False, spacing: int = 6) -> QHBoxLayout:
    lay = QHBoxLayout()
    lay.setSpacing(spacing)
    for w in widgets:
        if w is None:
            lay.addStretch(1)
        elif isinstance(w, QWidget):
            lay.addWidget(w)
        else:
            lay.addLayout(w)
    if stretch_last:
        lay.addStretch(1)
    return lay


def debouncer(parent: QWidget, ms: int, callback) -> QTimer:
    """A single-shot timer: call ``.start()`` on every change, ``callback`` runs once things settle."""
    t = QTimer(parent)
    t.setSingleShot(True)
    t.setInterval(ms)
    t.timeout.connect(callback)
    return t


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def human_count(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.2f} M"
    if n >= 1_000:
        return f"{n / 1e3:.1f} k"
    return str(n)


def invalidate_layouts(widget: QWidget) -> None:
    """Drop the size hints cached while the panel was being built (controls hidden since then
    would otherwise inflate the window's minimum size at the first show)."""
    def walk(layout) -> None:
        for i in range(layout.count()):
            sub = layout.itemAt(i).layout()
            if sub is not None:
                walk(sub)
        layout.invalidate()

    for w in [widget] + widget.findChildren(QWidget):
        if w.layout() is not None:
            walk(w.layout())


class BusyPage(QWidget):
    """A page that stands in while its content loads: a message over a busy (indeterminate) bar."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("busyPage")
        lay = QVBoxLayout(self)
        lay.addStretch(1)
        self.message = label(text, "subtitle")
        self.message.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        lay.addWidget(self.message)
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)  # busy
        self.bar.setTextVisible(False)
        self.bar.setFixedWidth(240)
        lay.addWidget(self.bar, 0, Qt.AlignmentFlag.AlignHCenter)
        lay.addStretch(2)


class LinesLabel(QLabel):
    """A label exactly ``lines`` lines tall, each line elided in the middle to fit the width,
    so that new text never changes its height (the widgets below it never move)."""

    def __init__(self, text: str = "", lines: int = 2, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._lines = max(1, lines)
        self._full = ""
        self.setWordWrap(False)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.set_full_text(text)

    def set_full_text(self, text: str) -> None:
        self._full = text
        self._elide()

    def full_text(self) -> str:
        return self._full

    def _height(self) -> int:
        m = self.contentsMargins()
        return self.fontMetrics().lineSpacing() * self._lines + m.top() + m.bottom() + 2 * self.margin()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt name
        return QSize(super().sizeHint().width(), self._height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt name
        return QSize(0, self._height())

    def _elide(self) -> None:
        fm = self.fontMetrics()
        width = max(self.contentsRect().width() - 2 * self.margin(), 16)
        lines = self._full.split("\n")[: self._lines]
        self.setText("\n".join(fm.elidedText(line, Qt.TextElideMode.ElideMiddle, width) for line in lines))

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt name
        super().resizeEvent(event)
        self._elide()

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt name (font or style changed)
        super().changeEvent(event)
        if event.type() in (event.Type.FontChange, event.Type.StyleChange):
            self._elide()
            self.updateGeometry()
