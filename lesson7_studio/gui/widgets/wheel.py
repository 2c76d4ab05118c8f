"""The mouse wheel scrolls; only a field that has the keyboard focus takes wheel steps.

Qt lets an unfocused spin box, combo box or slider under the pointer take the wheel (and gives
it the focus), so scrolling a form changes whatever value passes under the pointer. One
application-wide filter fixes that for every widget of the app:

- fields lose ``Qt.WheelFocus`` (the wheel no longer gives them the focus; a click or Tab does);
- a wheel event over an unfocused field goes to the scroll bar of the scroll area around it,
  which scrolls as if the field were not there.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSlider,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QScrollBar,
    QWidget,
)

FIELD_TYPES = (QAbstractSpinBox, QComboBox, QAbstractSlider)
_WHEEL = QEvent.Type.Wheel
_POLISH = QEvent.Type.Polish


def is_guarded_field(obj: QObject) -> bool:
    """A value field the wheel must not change unless focused (scroll bars are not fields)."""
    return isinstance(obj, FIELD_TYPES) and not isinstance(obj, QScrollBar)


def _field_of(obj: QObject) -> QWidget | None:
    """The field ``obj`` is, or is part of (a spin box's line edit, a combo box's editor)."""
    w = obj if isinstance(obj, QWidget) else None
    for _ in range(2):
        if w is None:
            return None
        if is_guarded_field(w):
            return w
        w = w.parentWidget()
    return None


class WheelGuard(QObject):
    """The filter; install with :func:`install_wheel_guard`."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt name
        t = event.type()
        if t == _WHEEL:
            field = _field_of(obj)
            if field is not None and not field.hasFocus() and field.isEnabled():
                scroll_instead(field, event)
                event.accept()  # handled: Qt must not offer it to the field's parents too
                return True
        elif t == _POLISH and is_guarded_field(obj):
            no_wheel_focus(obj)
        return False


def scroll_instead(field: QWidget, event: QWheelEvent) -> bool:
    """Give ``event`` to the scroll bar of the nearest scroll area around ``field`` (the
    horizontal one for a sideways wheel or when there is no vertical one). False: none."""
    area = field.parentWidget()
    while area is not None and not isinstance(area, QAbstractScrollArea):
        area = area.parentWidget()
    if area is None:
        return False
    delta = event.angleDelta()
    vertical, horizontal = area.verticalScrollBar(), area.horizontalScrollBar()
    sideways = abs(delta.x()) > abs(delta.y())
    bar = horizontal if sideways or not vertical.isVisible() else vertical
    if not bar.isVisible():
        return False
    local = bar.mapFromGlobal(event.globalPosition())
    copy = QWheelEvent(local, event.globalPosition(), event.pixelDelta(), event.angleDelta(), event.buttons(),
                       event.modifiers(), event.phase(), event.inverted())
    QApplication.sendEvent(bar, copy)
    return True


def no_wheel_focus(w: QWidget) -> None:
    if w.focusPolicy() == Qt.FocusPolicy.WheelFocus:
        w.setFocusPolicy(Qt.FocusPolicy.StrongFocus)


_guard: WheelGuard | None = None


def install_wheel_guard(app: QApplication | None = None) -> WheelGuard:
    """Install the guard on ``app`` (default: the running QApplication) once; returns it."""
    global _guard
    app = app or QApplication.instance()
    if app is None:
        raise RuntimeError("install_wheel_guard needs a QApplication")
    if _guard is not None and _guard.parent() is app:
        return _guard
    _guard = WheelGuard(app)
    app.installEventFilter(_guard)
    for w in QApplication.allWidgets():  # widgets made before the guard
        if is_guarded_field(w):
            no_wheel_focus(w)
    return _guard
