"""Small building blocks shared by the panels so they look alike."""

from __future__ import annotations

from lesson7_studio.gui import qtcompat  # noqa: F401
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

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
