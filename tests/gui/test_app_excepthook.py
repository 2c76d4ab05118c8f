"""One sys.excepthook (gui/errors.py): an exception nobody caught, e.g. raised in a slot, is
printed to stderr and shown in the app's error dialog with its traceback; run_app restores the
previous hook on exit."""

from __future__ import annotations

import sys

import pytest


def boom_in_a_slot():
    raise ValueError("a slot went wrong")


@pytest.mark.qt_no_exception_capture
def test_an_exception_in_a_slot_reaches_the_error_dialog(qtbot, error_dialogs, capsys):
    from PySide6.QtCore import QObject, Signal
    from PySide6.QtWidgets import QWidget

    from lesson7_studio.gui.errors import install_excepthook

    class Emitter(QObject):
        fire = Signal()

    parent = QWidget()
    qtbot.addWidget(parent)
    before = sys.excepthook
    hook = install_excepthook(lambda: parent)
    try:
        assert sys.excepthook is hook
        em = Emitter()
        em.fire.connect(boom_in_a_slot)
        em.fire.emit()  # PySide hands the slot's exception to sys.excepthook
        qtbot.waitUntil(lambda: len(error_dialogs) == 1, timeout=10000)
    finally:
        hook.restore()
    assert sys.excepthook is before
    box = error_dialogs[0]
    assert box.parent() is parent and box.windowTitle() == "Unexpected error"
    assert "ValueError: a slot went wrong" in box.informativeText()
    assert "in boom_in_a_slot" in box.detailedText()  # the traceback, under "Show Details..."
    assert "ValueError: a slot went wrong" in capsys.readouterr().err  # still printed


def test_the_hook_prints_first_and_shows_one_dialog_at_a_time(qtbot, error_dialogs, monkeypatch):
    from PySide6.QtCore import QCoreApplication

    from lesson7_studio.core.errors import Lesson7Error
    from lesson7_studio.gui import errors

    printed = []
    monkeypatch.setattr(sys, "excepthook", lambda t, e, tb: printed.append(e))
    hook = errors.install_excepthook()
    try:
        def raise_and_report(exc):
            try:
                raise exc
            except BaseException as caught:  # noqa: BLE001 - handed to the hook as Python would
                sys.excepthook(type(caught), caught, caught.__traceback__)

        shown_inside = []
        def modal(box):  # like exec(): events are processed while the dialog is open
            shown_inside.append(box)
            raise_and_report(RuntimeError("while the dialog is open"))
            QCoreApplication.processEvents()

        monkeypatch.setattr(errors, "_exec_dialog", modal)
        raise_and_report(Lesson7Error("The file x.png is not an image.", hint="Pick a PNG or JPEG."))
        raise_and_report(KeyboardInterrupt())  # printed, no dialog
        qtbot.waitUntil(lambda: len(shown_inside) == 1, timeout=10000)
        qtbot.wait(100)
    finally:
        hook.restore()
    assert [type(e).__name__ for e in printed] == ["Lesson7Error", "KeyboardInterrupt", "RuntimeError"]
    assert len(shown_inside) == 1 and "x.png is not an image" in shown_inside[0].informativeText()
    assert "Pick a PNG" in shown_inside[0].informativeText()


def test_run_app_installs_the_hook_and_restores_it(monkeypatch, tmp_path):
    from lesson7_studio.gui import app as gui_app
    from lesson7_studio.gui.errors import ExceptionHook

    during = []

    class FakeApp:
        class aboutToQuit:  # noqa: N801 - stands in for the Qt signal
            @staticmethod
            def connect(slot):
                pass

        def exec(self):
            during.append(sys.excepthook)
            return 0

    class Window:
        def __init__(self, ctx, deferred=()):
            self.ctx = ctx

        def show(self):
            pass

        def isVisible(self):  # noqa: N802 - Qt name
            return True

    before = sys.excepthook
    monkeypatch.setattr(gui_app, "create_application", FakeApp)
    monkeypatch.setattr(gui_app, "after_first_paint", lambda widget, callback: None)
    monkeypatch.setattr("lesson7_studio.gui.main_window.MainWindow", Window)
    assert gui_app.run_app(None, project_dir=tmp_path / "p", settings_path=tmp_path / "s.ini") == 0
    assert len(during) == 1 and isinstance(during[0], ExceptionHook)
    assert sys.excepthook is before
