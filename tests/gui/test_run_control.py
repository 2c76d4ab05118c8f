"""The run buttons shared by the Train and Lessons panels, on a fake job (no training)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from lesson7_studio.core.events import Log, check, emit


@dataclass
class _Cfg:
    out: str


@dataclass
class _Result:
    stopped: str = ""


def _job(config, *, resume=False, on_event=None, cancel=None, gate=None, stopped=""):
    emit(on_event, Log(f"started {Path(config.out).name} resume={resume}"))
    while gate is not None and not gate.wait(0.01):
        check(cancel)
    check(cancel)
    return _Result(stopped)


@pytest.fixture
def control(qtbot, ctx):
    from lesson7_studio.gui.widgets.run_control import RunControl

    c = RunControl(ctx, start_tip="Start")
    qtbot.addWidget(c)
    yield c
    c.shutdown(10000)


def _buttons(c):
    return [b.isEnabled() for b in (c.start_button, c.pause_button, c.resume_button, c.cancel_button)]


def test_states_of_the_buttons_through_pause_cancel_and_resume(qtbot, control, tmp_path):
    import functools

    c = control
    seen: list = []
    for sig in ("started", "job_event", "finished", "cancelled", "done", "cancelling", "resume_requested"):
        getattr(c, sig).connect(lambda *a, s=sig: seen.append((s, *a)))
    paused: list[bool] = []
    c.paused_changed.connect(paused.append)
    c.update_buttons(can_start=False)
    assert _buttons(c) == [False, False, False, False]  # nothing to start from
    c.update_buttons()
    assert _buttons(c) == [True, False, False, False]
    with qtbot.waitSignal(c.start_requested):
        c.start_button.click()  # the panel builds the config and launches
    gate = threading.Event()
    c.state_changed.connect(lambda: c.update_buttons())
    c.launch(functools.partial(_job, gate=gate), _Cfg(str(tmp_path / "run-1")), resume=False)
    assert c.is_running() and c.run_dir == tmp_path / "run-1" and seen[0] == ("started", tmp_path / "run-1")
    assert _buttons(c) == [False, True, False, True]
    c.pause()
    assert c.is_paused() and paused == [True] and _buttons(c) == [False, False, True, True]
    c.resume()
    assert not c.is_paused() and paused == [True, False]
    with qtbot.waitSignal(c.done, timeout=10000):
        c.cancel()
    assert ("cancelling",) in seen and ("cancelled",) in seen and not c.is_running()
    assert c.resumable_dir == tmp_path / "run-1"
    assert _buttons(c) == [True, False, True, False]
    c.resume()  # no worker: the stopped run is asked to resume
    assert seen[-1] == ("resume_requested", tmp_path / "run-1")
    assert any(s[0] == "job_event" and "started run-1" in s[1].message for s in seen)


def test_a_stopped_run_is_resumable_and_another_job_blocks_start(qtbot, control, tmp_path):
    import functools

    c = control
    results: list = []
    c.finished.connect(results.append)
    with qtbot.waitSignal(c.done, timeout=10000):
        c.launch(functools.partial(_job, stopped="budget"), _Cfg(str(tmp_path / "run-2")), resume=True)
    assert results and results[0].stopped == "budget" and c.resumable_dir == tmp_path / "run-2"
    with qtbot.waitSignal(c.done, timeout=10000):
        c.launch(_job, _Cfg(str(tmp_path / "run-3")), resume=False)
    assert c.resumable_dir is None  # finished for good
    c.update_buttons(other_busy=True)  # e.g. the LR finder runs: only Cancel
    assert _buttons(c) == [False, False, False, True]


def test_device_choices():
    from lesson7_studio.gui.widgets.run_control import device_choices

    assert device_choices("cpu") == ["auto", "cpu"]
    assert device_choices("cuda") == ["auto", "cpu", "cuda"] and device_choices("mps")[-1] == "mps"


def test_qt_events_do_not_leak_the_control(control):
    """A Signal named ``event`` would shadow QObject.event(): with PySide6 6.11 every Qt event
    delivered to the widget then adds a reference to it, so it (and its worker) never dies."""
    import sys

    from PySide6.QtCore import QCoreApplication, QEvent

    c = control
    for _ in range(10):
        QCoreApplication.sendEvent(c, QEvent(QEvent.Type.User))
    before = sys.getrefcount(c)
    for _ in range(200):
        QCoreApplication.sendEvent(c, QEvent(QEvent.Type.User))
    assert sys.getrefcount(c) - before < 5


def test_relaunch_reads_the_config_then_resumes(qtbot, control, tmp_path, monkeypatch):
    from lesson7_studio.core.errors import TrainingError
    from lesson7_studio.gui.widgets import run_control

    shown: list = []
    monkeypatch.setattr("lesson7_studio.gui.errors.show_error", lambda *a, **k: shown.append(a[1]))

    def bad(_p):
        raise TrainingError("no checkpoint in run-x")

    assert not control.relaunch(_job, bad, tmp_path / "run-x")
    assert len(shown) == 1 and "no checkpoint" in str(shown[0]) and control.worker is None
    assert not control.relaunch(_job, bad, None)
    seen: list = []
    control.job_event.connect(lambda ev: seen.append(ev.message))
    before: list = []
    with qtbot.waitSignal(control.done, timeout=10000):
        assert control.relaunch(_job, lambda p: _Cfg(str(p)), tmp_path / "run-y", before=before.append)
    assert before == [tmp_path / "run-y"] and control.run_dir == tmp_path / "run-y"
    assert seen == ["started run-y resume=True"]
    assert run_control.RunControl.job_event is not None
