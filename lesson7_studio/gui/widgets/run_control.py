"""Start / Pause / Resume / Cancel for one training job, and its worker's wiring.

The Train and Lessons panels share this widget. It starts the job (a core function taking
``config, resume=, on_event=, cancel=``) in a worker, remembers the run folder, knows when a
stopped or cancelled run can be resumed, and re-emits the worker's signals. What a panel shows
for each state (status text, log lines, badges) stays with the panel: it listens to
``paused_changed``, ``cancelling`` and the worker signals re-emitted here.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QWidget

from .common import button


def device_choices(detected: str) -> list[str]:
    """The device menu of a training form: "auto", "cpu" and the accelerator found, if any."""
    return ["auto", "cpu"] + ([detected] if detected in ("cuda", "mps") else [])


class RunControl(QWidget):
    """The four run buttons in a row; one training worker at a time."""

    start_requested = Signal()  # Start clicked: the panel builds the config and calls launch()
    resume_requested = Signal(object)  # Resume clicked with no paused worker: this run folder
    started = Signal(object)  # the run folder (Path) of the job just launched
    job_event = Signal(object)  # a core Event of the job (not `event`: that would shadow QObject.event and leak)
    finished = Signal(object)  # the job's result
    failed = Signal(object)
    cancelled = Signal()
    done = Signal()
    paused_changed = Signal(bool)
    cancelling = Signal()  # Cancel reached a running job
    state_changed = Signal()  # buttons may need updating

    def __init__(self, ctx, *, start_tip: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.worker = None
        self.run_dir: Path | None = None
        self.resumable_dir: Path | None = None
        self._t_start = 0.0
        self.start_button = button("Start", "primary", start_tip)
        self.pause_button = button("Pause", tooltip="Pause after the current batch")
        self.resume_button = button("Resume", tooltip="Continue a paused run, or the last stopped run "
                                    "from its checkpoint")
        self.cancel_button = button("Cancel", "danger", "Stop after the current batch; a checkpoint is kept")
        self.start_button.clicked.connect(lambda _c=False: self.start_requested.emit())
        self.pause_button.clicked.connect(lambda _c=False: self.pause())
        self.resume_button.clicked.connect(lambda _c=False: self.resume())
        self.cancel_button.clicked.connect(lambda _c=False: self.cancel())
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for b in (self.start_button, self.pause_button, self.resume_button, self.cancel_button):
            row.addWidget(b)

    # ------------------------------------------------------------------ state
    def is_running(self) -> bool:
        return self.worker is not None and self.worker.is_running()

    def is_paused(self) -> bool:
        return self.is_running() and self.worker.is_paused()

    def elapsed(self) -> str:
        """Time since the job was launched, as m:ss."""
        s = int(time.perf_counter() - self._t_start)
        return f"{s // 60}:{s % 60:02d}"

    def update_buttons(self, *, can_start: bool = True, other_busy: bool = False) -> None:
        """Enable what makes sense now; ``other_busy``: the panel runs another job (LR finder)
        that Cancel stops too."""
        running, paused = self.is_running(), self.is_paused()
        idle = not running and not other_busy
        self.start_button.setEnabled(idle and can_start)
        self.pause_button.setEnabled(running and not paused)
        self.resume_button.setEnabled(paused or (idle and self.resumable_dir is not None))
        self.cancel_button.setEnabled(running or other_busy)

    # ------------------------------------------------------------------ actions
    def launch(self, job: Callable[..., Any], config: Any, *, resume: bool) -> None:
        """Run ``job(config, resume=resume)`` in a worker; ``config.out`` is the run folder."""
        self.run_dir = Path(config.out)
        self.resumable_dir = None
        self._t_start = time.perf_counter()
        w = self.ctx.start_worker(job, config, resume=resume)
        self.worker = w
        w.event.connect(self.job_event.emit)
        w.finished.connect(self._on_finished)
        w.failed.connect(self.failed.emit)
        w.cancelled.connect(self._on_cancelled)
        w.done.connect(self._on_done)
        self.started.emit(self.run_dir)
        self.state_changed.emit()

    def relaunch(self, job: Callable[..., Any], make_config: Callable[[Path], Any], path: Path | None, *,
                 before: Callable[[Path], None] | None = None) -> bool:
        """Resume the run in ``path`` from its checkpoint: ``make_config(path)`` reads its
        config (an error is shown to the user), ``before(path)`` lets the panel reset its views,
        then ``job`` runs with ``resume=True``. False when nothing was launched (no path, a job
        running, or a run that cannot be resumed)."""
        if path is None or self.is_running():
            return False
        try:
            cfg = make_config(Path(path))
        except Exception as exc:  # noqa: BLE001 - shown in the one error dialog
            from ..errors import show_error

            show_error(self, exc, context="This run cannot be resumed")
            return False
        if before is not None:
            before(Path(path))
        self.launch(job, cfg, resume=True)
        return True

    def pause(self) -> None:
        if self.is_running() and not self.worker.is_paused():
            self.worker.pause()
            self.paused_changed.emit(True)
            self.state_changed.emit()

    def resume(self) -> None:
        """Go on after Pause, or resume the last stopped run from its checkpoint."""
        if self.is_running():
            if self.worker.is_paused():
                self.worker.resume()
                self.paused_changed.emit(False)
                self.state_changed.emit()
            return
        if self.resumable_dir is not None:
            self.resume_requested.emit(self.resumable_dir)

    def cancel(self) -> None:
        if self.is_running():
            self.worker.cancel()
            self.cancelling.emit()
        self.state_changed.emit()

    def shutdown(self, wait_ms: int) -> None:
        """Cancel a running job (it keeps a checkpoint) and wait for it."""
        if self.is_running():
            self.worker.cancel()
        if self.worker is not None:
            self.worker.wait(wait_ms)

    # ------------------------------------------------------------------ worker signals
    def _on_finished(self, result: Any) -> None:
        if getattr(result, "stopped", ""):
            self.resumable_dir = self.run_dir
        self.finished.emit(result)

    def _on_cancelled(self) -> None:
        self.resumable_dir = self.run_dir
        self.cancelled.emit()

    def _on_done(self) -> None:
        self.done.emit()
        self.state_changed.emit()
