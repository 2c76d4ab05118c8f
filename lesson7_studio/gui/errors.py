"""The one error dialog (DESIGN.md rule 3).

``show_error(parent, exc)`` shows a Lesson7Error's own message (what happened, what to do);
any other exception is reported as unexpected. The traceback is under "Show Details...".
"""

from __future__ import annotations

import traceback

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
