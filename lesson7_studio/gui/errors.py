"""The one error dialog (DESIGN.md rule 3).

``show_error(parent, exc)`` shows a Lesson7Error's own message (what happened, what to do);
any other exception is reported as unexpected. The traceback is under "Show Details...".
``install_excepthook(parent)`` routes exceptions nobody caught (e.g. raised in a slot) there too.
"""

from __future__ import annotations

import sys
import traceback
from types import TracebackType
from typing import Callable

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from lesson7_studio.core.errors import Lesson7Error

# Tests replace this to record dialogs instead of showing them (see tests/gui/conftest.py).
_exec_dialog = lambda box: box.exec()  # noqa: E731


def describe(exc: BaseException) -> tuple[str, str, str]:
    """(title, message, details) for an exception."""
    details = getattr(exc, "traceback_text", "") or "".join(traceback.format_exception(exc))
    if isinstance(exc, Lesson7Error):
        title = "Lesson7 Studio"
        message = exc.message
        hint = exc.hint
        return title, message + (f"\n\n{hint}" if hint else ""), details
    title = "Unexpected error"
    message = (
        f"Something went wrong that Lesson7 Studio did not expect:\n\n"
        f"{type(exc).__name__}: {exc}\n\n"
        "The details below help whoever looks into it."
    )
    return title, message, details


def show_error(parent: QWidget | None, exc: BaseException, *, context: str = "") -> QMessageBox:
    """Show ``exc`` in a modal dialog; ``context`` (e.g. "Training failed") leads the message."""
    title, message, details = describe(exc)
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Critical if not isinstance(exc, Lesson7Error) else QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    box.setText(context or (title if not isinstance(exc, Lesson7Error) else "Something needs your attention"))
    box.setInformativeText(message)
    box.setDetailedText(details)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.setObjectName("errorDialog")
    box.exception = exc  # type: ignore[attr-defined]
    _exec_dialog(box)
    return box


class ExceptionHook(QObject):
    """``sys.excepthook`` of the app: an uncaught exception is still printed to stderr (by the
    hook it replaced), then shown in the error dialog with its traceback under the details.

    The dialog is shown from the event loop (queued), so a hook called in a slot, a paint event
    or another thread never opens a modal dialog in the middle of it; while one is open, more
    exceptions are only printed (no cascade of dialogs). :meth:`restore` puts the old hook back.
    """

    _show = Signal(object)

    def __init__(self, parent: Callable[[], QWidget | None] | None = None) -> None:
        super().__init__()
        self._parent = parent or (lambda: None)
        self._previous: Callable | None = None
        self._showing = False
        self._show.connect(self._show_dialog, Qt.ConnectionType.QueuedConnection)

    def install(self) -> "ExceptionHook":
        if sys.excepthook is not self:
            self._previous = sys.excepthook
            sys.excepthook = self
        return self

    def restore(self) -> None:
        if sys.excepthook is self:
            sys.excepthook = self._previous or sys.__excepthook__
        self._previous = None

    def __call__(self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        (self._previous or sys.__excepthook__)(exc_type, exc, tb)
        if issubclass(exc_type, (KeyboardInterrupt, SystemExit)) or exc is None:
            return
        if not getattr(exc, "traceback_text", ""):
            try:
                exc.traceback_text = "".join(traceback.format_exception(exc_type, exc, tb))  # type: ignore[attr-defined]
            except (AttributeError, TypeError):  # an exception type that takes no attributes
                pass
        try:
            self._show.emit(exc)
        except RuntimeError:  # the hook's Qt object is gone (interpreter shutdown): printed above
            pass

    def _show_dialog(self, exc: BaseException) -> None:
        if self._showing:
            return
        self._showing = True
        try:
            show_error(self._parent(), exc)
        finally:
            self._showing = False


def install_excepthook(parent: Callable[[], QWidget | None] | None = None) -> ExceptionHook:
    """Install the app's ``sys.excepthook`` (dialogs over ``parent()``); returns it (``.restore()``)."""
    return ExceptionHook(parent).install()
