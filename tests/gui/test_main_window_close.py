"""Closing the main window never blocks the GUI thread: it hides, cancels the workers, and
closes (and quits the app) once the last one has ended."""

from __future__ import annotations

import threading

import pytest

from lesson7_studio.core.events import check

WAIT = 60000


@pytest.fixture
def bare_window(qtbot, ctx, monkeypatch):
    """A main window with every panel still a busy page (no panel work of its own)."""
    from lesson7_studio.gui import main_window
    from lesson7_studio.gui.main_window import PANELS, MainWindow

    quits = []
    monkeypatch.setattr(main_window, "quit_if_no_window_left", lambda: quits.append(1))
    w = MainWindow(ctx, deferred=tuple(k for k, *_ in PANELS))
    qtbot.addWidget(w)
    w.show()
    w.quits = quits
    return w


def stubborn_job(release: threading.Event, seen: threading.Event):
    """Stops only when cancelled AND released (a batch that takes a while to finish)."""

    def job(on_event=None, cancel=None):
        while True:
            if cancel.cancelled:
                seen.set()
                release.wait(60)
            check(cancel)
            release.wait(0.005)

    return job


def test_close_without_work_closes_at_once(qtbot, bare_window):
    w = bare_window
    with qtbot.waitSignal(w.closed, timeout=WAIT):
        assert w.close()
    assert w.isHidden() and w.quits == []  # a visible window's close quits the app by itself


def test_close_with_work_running_hides_cancels_and_closes_when_it_ends(qtbot, ctx, bare_window):
    w = bare_window
    release, cancelled_seen = threading.Event(), threading.Event()
    worker = ctx.start_worker(stubborn_job(release, cancelled_seen))
    assert not w.close()  # returns at once: the GUI thread is not held while the job ends
    assert w.isHidden() and worker.is_running() and worker.token.cancelled
    assert cancelled_seen.wait(WAIT / 1000)
    # a worker a timer starts while the window waits starts cancelled
    late = ctx.start_worker(lambda on_event, cancel: check(cancel))
    qtbot.waitUntil(lambda: late.outcome == "cancelled", timeout=WAIT)
    qtbot.wait(50)
    assert worker.is_running() and w.quits == []  # still waiting for the first job
    with qtbot.waitSignal(w.closed, timeout=WAIT):
        release.set()
    assert worker.outcome == "cancelled" and w.quits == [1] and not ctx.shutting_down
    assert ctx.start_worker(lambda on_event, cancel: 1).wait(WAIT)  # the context works on


def test_answering_no_keeps_the_window_and_the_work(qtbot, ctx, bare_window, monkeypatch):
    w = bare_window
    release, seen = threading.Event(), threading.Event()
    worker = ctx.start_worker(stubborn_job(release, seen))
    monkeypatch.setattr(w, "_busy_panels", lambda: ["train"])
    asked = []
    monkeypatch.setattr(w, "confirm_quit", lambda busy: asked.append(busy) or False)
    assert not w.close()
    assert asked == [["train"]] and w.isVisible() and worker.is_running() and not worker.token.cancelled
    release.set()
    worker.cancel()
    assert worker.wait(WAIT)
