"""The GUI's Worker (gui/workers.py): a core function in a QThread, its events as signals."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import pytest

from lesson7_studio.core.errors import Cancelled, Lesson7Error
from lesson7_studio.core.events import Progress, check

pytest.importorskip("PySide6")

ROOT = Path(__file__).resolve().parents[2]
WAIT = 30000  # ms: generous, the machine may be loaded; never a timing assertion


def record(worker) -> list[tuple]:
    """Every signal of ``worker``, in order, with the worker thread's state at each final one."""
    seen: list[tuple] = []
    worker.event.connect(lambda ev: seen.append(("event", ev.done)))
    worker.finished.connect(lambda r: seen.append(("finished", r, worker._thread.isFinished())))
    worker.failed.connect(lambda e: seen.append(("failed", type(e).__name__, worker._thread.isFinished())))
    worker.cancelled.connect(lambda: seen.append(("cancelled", worker._thread.isFinished())))
    worker.done.connect(lambda: seen.append(("done", worker.is_running())))
    return seen


def count_to(n: int, on_event=None, cancel=None) -> int:
    for i in range(n):
        check(cancel)
        on_event(Progress(i + 1, n, "counting"))
    return n * 10


def test_events_then_finished_then_done(qtbot):
    from lesson7_studio.gui.workers import Worker

    w = Worker(count_to, 5)
    seen = record(w)
    with qtbot.waitSignal(w.done, timeout=WAIT):
        w.start()
    assert seen == [("event", 1), ("event", 2), ("event", 3), ("event", 4), ("event", 5),
                    ("finished", 50, True), ("done", False)]
    assert w.outcome == "finished" and w.result == 50 and w.error is None and not w.is_running()
    with pytest.raises(RuntimeError, match="runs once"):
        w.start()


def test_a_lesson7_error_is_failed_with_its_traceback(qtbot):
    from lesson7_studio.gui.workers import Worker

    def bad(on_event=None, cancel=None):
        on_event(Progress(1, 2, "half"))
        raise Lesson7Error("The dataset folder /x has no pairs.", hint="Build one in the Data panel.")

    w = Worker(bad)
    seen = record(w)
    with qtbot.waitSignal(w.done, timeout=WAIT):
        w.start()
    assert seen == [("event", 1), ("failed", "Lesson7Error", True), ("done", False)]
    assert w.outcome == "failed" and isinstance(w.error, Lesson7Error) and w.result is None
    assert "in bad" in w.error.traceback_text and "has no pairs" in w.error.traceback_text


def test_an_unexpected_exception_is_failed_not_lost(qtbot):
    from lesson7_studio.gui.workers import Worker

    def broken(on_event=None, cancel=None):
        return {}["missing"]

    w = Worker(broken)
    seen = record(w)
    with qtbot.waitSignal(w.done, timeout=WAIT):
        w.start()
    assert seen == [("failed", "KeyError", True), ("done", False)]
    assert "KeyError: 'missing'" in w.error.traceback_text and "in broken" in w.error.traceback_text


def test_cancel_stops_the_loop_and_reports_cancelled(qtbot):
    from lesson7_studio.gui.workers import Worker

    started = threading.Event()

    def forever(on_event=None, cancel=None):
        started.set()
        while True:
            check(cancel)
            time.sleep(0.005)

    w = Worker(forever)
    seen = record(w)
    w.start()
    assert started.wait(WAIT / 1000) and w.is_running()
    with qtbot.waitSignal(w.done, timeout=WAIT):
        w.cancel()
    assert seen == [("cancelled", True), ("done", False)] and w.outcome == "cancelled"
    # a function that returns None once cancelled counts as cancelled too; a result does not
    w2 = Worker(lambda on_event, cancel: (cancel.cancel(), None)[1])
    w3 = Worker(lambda on_event, cancel: (cancel.cancel(), "partial")[1])
    for x in (w2, w3):
        with qtbot.waitSignal(x.done, timeout=WAIT):
            x.start()
    assert (w2.outcome, w3.outcome, w3.result) == ("cancelled", "finished", "partial")


def test_raising_cancelled_is_cancelled(qtbot):
    from lesson7_studio.gui.workers import Worker

    def stop(on_event=None, cancel=None):
        raise Cancelled("stopped")

    w = Worker(stop)
    with qtbot.waitSignal(w.cancelled, timeout=WAIT):
        w.start()
    qtbot.waitUntil(lambda: w.outcome == "cancelled", timeout=WAIT)


def test_the_thread_has_ended_before_the_last_signals(qtbot, monkeypatch):
    """A thread may be slow to end after posting its outcome (the GIL, a loaded machine): the
    worker waits for it, so a receiver may drop the worker on ``finished``/``done``."""
    from lesson7_studio.gui import workers

    original = workers.Worker._run

    def slow_exit(self):
        original(self)
        time.sleep(0.3)  # the outcome is posted; the thread has not ended yet

    monkeypatch.setattr(workers.Worker, "_run", slow_exit)
    w = workers.Worker(count_to, 2)
    seen = record(w)
    with qtbot.waitSignal(w.done, timeout=WAIT):
        w.start()
    assert seen[-2:] == [("finished", 20, True), ("done", False)]


def test_wait_delivers_the_final_signals(qtbot):
    from lesson7_studio.gui.workers import Worker

    w = Worker(count_to, 3)
    seen = record(w)
    w.start()
    assert w.wait(WAIT)
    assert [s[0] for s in seen] == ["event"] * 3 + ["finished", "done"]
    assert Worker(count_to, 1).wait(10)  # never started: nothing to wait for


def test_a_dropped_running_worker_ends_reports_and_is_freed(qtbot):
    """Dropping every reference to a running worker is safe: it is kept until its thread ended,
    delivers its final signals, then is freed (no leak)."""
    from lesson7_studio.gui import workers

    release = threading.Event()
    seen = []

    def job(on_event=None, cancel=None):
        release.wait(WAIT / 1000)
        return "ok"

    w = workers.Worker(job)
    w.finished.connect(seen.append)
    w.done.connect(lambda: seen.append("done"))
    ref = weakref.ref(w)
    w.start()
    del w
    gc.collect()
    assert ref() is not None and ref() in workers.live_workers()
    release.set()
    qtbot.waitUntil(lambda: seen == ["ok", "done"], timeout=WAIT)
    qtbot.waitUntil(lambda: (gc.collect(), ref() is None)[1], timeout=WAIT)
    assert ref() not in workers.live_workers()


def test_a_context_worker_is_freed_once_done(qtbot, ctx):
    """AppContext.start_worker keeps its worker until ``done`` and holds nothing after."""
    seen = []
    w = ctx.start_worker(count_to, 2)
    w.finished.connect(seen.append)
    ref = weakref.ref(w)
    del w
    qtbot.waitUntil(lambda: seen == [20], timeout=WAIT)
    qtbot.waitUntil(lambda: (gc.collect(), ref() is None)[1], timeout=WAIT)
    assert ctx.running_workers() == []


# A child process: an abort (Qt's "QThread: Destroyed while thread is still running") must not
# take pytest with it. Workers are dropped right after start, mid-run, and in their own `done`.
CHILD = r"""
import gc, json, sys, threading, time, weakref
from PySide6.QtCore import QCoreApplication, QTimer
from lesson7_studio.core.events import check
from lesson7_studio.gui.workers import Worker, live_workers

app = QCoreApplication([])
refs, done = [], []

def spin(on_event=None, cancel=None):
    for _ in range(40):
        check(cancel)
        time.sleep(0.005)
    return 1

holder = {}
for i in range(12):
    w = Worker(spin)
    w.done.connect(lambda i=i: (done.append(i), holder.pop(i, None), gc.collect()))
    refs.append(weakref.ref(w))
    w.start()
    if i % 3 == 0:
        holder[i] = w  # dropped in its own done slot
    elif i % 3 == 1:
        w.cancel()  # cancelled, then dropped at once
    del w
    gc.collect()

def poll():
    gc.collect()
    if len(done) == 12 and not live_workers() and all(r() is None for r in refs):
        print(json.dumps({"done": sorted(done), "alive": sum(r() is not None for r in refs)}), flush=True)
        app.quit()

t = QTimer(); t.timeout.connect(poll); t.start(20)
QTimer.singleShot(60000, app.quit)
app.exec()
print(json.dumps({"left": len(live_workers()), "alive": sum(r() is not None for r in refs)}), flush=True)
"""


def test_dropping_running_workers_never_aborts_or_leaks():
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    assert "Destroyed while thread" not in proc.stderr, proc.stderr[-3000:]
    first, last = (json.loads(ln) for ln in proc.stdout.strip().splitlines()[-2:])
    assert first == {"done": list(range(12)), "alive": 0}
    assert last == {"left": 0, "alive": 0}


def test_workers_still_running_at_exit_are_cancelled_and_waited_for():
    """The interpreter exits with a worker running (e.g. a script that never waited): the atexit
    hook cancels it and waits, so the process exits cleanly instead of aborting."""
    code = r"""
import sys, threading, time
from PySide6.QtCore import QCoreApplication
from lesson7_studio.core.events import check
from lesson7_studio.gui.workers import Worker
app = QCoreApplication([])
started = threading.Event()
def job(on_event=None, cancel=None):
    started.set()
    while True:
        check(cancel)
        time.sleep(0.01)
w = Worker(job).start()
started.wait(30)
print("exiting", flush=True)
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=180,
                          env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    assert "exiting" in proc.stdout and "Destroyed while thread" not in proc.stderr
