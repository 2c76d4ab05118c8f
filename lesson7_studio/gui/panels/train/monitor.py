"""The Train panel's progress: the whole run's bar with its ETA, a visible Paused state and a
status line that wraps (never cuts the learning rate at its end).

The numbers come from core's events: BatchEnd carries the run's global step, its planned total
and the ETA (:class:`lesson7_studio.core.events.RunProgress`); this widget only shows them.
"""

from __future__ import annotations

import time
from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QProgressBar, QVBoxLayout, QWidget

from lesson7_studio.core.events import BatchEnd, LRFindPoint, Progress, StageStart, format_duration, format_lr

from ...widgets.common import label

STATUS_EVERY_S = 0.2  # status line refresh while batches stream in
PAUSED_STYLE = ("QLabel { background: #f2c94c; color: #3d2e00; border-radius: 4px;"
                " padding: 2px 8px; font-weight: bold; }")


class RunMonitor(QWidget):
    """The run buttons (``controls``), the Paused badge and the bar in a row; the status below."""

    def __init__(self, controls: QWidget, is_paused: Callable[[], bool], elapsed: Callable[[], str],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._is_paused = is_paused
        self._elapsed = elapsed
        self._last_status = 0.0
        self._last_batch: BatchEnd | None = None
        self._stage_epochs = 0
        self.stage_text = ""
        # the status line wraps (never cut: the learning rate is at its end) and keeps two lines
        self.status_label = label("Ready.", "", wrap=True)
        self.status_label.setObjectName("trainStatus")
        self.status_label.setMinimumHeight(2 * self.status_label.fontMetrics().lineSpacing() + 4)
        self.status_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)
        # the whole run: steps of every stage and epoch, with the ETA in its text
        self.progress = QProgressBar()
        self.progress.setObjectName("trainProgress")
        self.progress.setMinimumWidth(160)
        self.paused_badge = label("Paused", "", wrap=False)
        self.paused_badge.setObjectName("trainPaused")
        self.paused_badge.setStyleSheet(PAUSED_STYLE)
        self.paused_badge.setVisible(False)
        top = QHBoxLayout()
        top.addWidget(controls)
        top.addSpacing(8)
        top.addWidget(self.paused_badge)
        top.addWidget(self.progress, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.status_label)
        self.idle()

    def set_status(self, text: str) -> None:
        self.status_label.setText(text)

    # ------------------------------------------------------------------ states
    def starting(self, text: str) -> None:
        """A job was launched: a busy bar until its first numbers arrive."""
        self.status_label.setText(text)
        self._last_batch = None
        self.set_paused(False)
        self.busy()

    def busy(self) -> None:
        """A job runs but has no count yet: the bar moves without a value."""
        self.progress.setRange(0, 0)
        self.progress.setFormat("%p%")
        self.progress.setVisible(True)

    def idle(self) -> None:
        """No job: the bar hides."""
        self.set_paused(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        self.progress.setVisible(False)

    def set_paused(self, paused: bool) -> None:
        """The visible paused state: a badge, the bar's text, the status line."""
        self.paused_badge.setVisible(paused)
        ev = self._last_batch
        self.progress.setFormat(self.progress_text(ev, paused))
        if paused:
            self._show_paused_status(ev)

    def _show_paused_status(self, ev: BatchEnd | None) -> None:
        where = f" at step {min(ev.step, ev.total_steps)} of {ev.total_steps}" if ev is not None and ev.total_steps else ""
        self.status_label.setText(f"Paused{where} (after the current batch; the clock is stopped). "
                                  "Resume to go on, Cancel to stop with a checkpoint.")

    # ------------------------------------------------------------------ events
    def handle(self, ev) -> None:
        """Show a StageStart, BatchEnd or Progress event (others are ignored)."""
        if isinstance(ev, BatchEnd):
            self._last_batch = ev
            now = time.perf_counter()
            if now - self._last_status >= STATUS_EVERY_S or ev.iteration + 1 == ev.n_iter:
                self._last_status = now
                self.show_batch(ev)
        elif isinstance(ev, StageStart):
            self.stage_text = f"Stage {ev.index + 1}/{ev.total} '{ev.name}'"
            self._stage_epochs = ev.epochs
            self.status_label.setText(self.stage_text + (" · starting" if ev.epochs else ""))
        elif isinstance(ev, Progress):
            if self._last_batch is None:  # before the first batch: its own count
                self.progress.setRange(0, max(ev.total, 1))
                self.progress.setValue(ev.done)
                self.progress.setFormat("%v / %m")
            self.status_label.setText(f"{self.stage_text} · {ev.message} {ev.done}/{ev.total}")

    def show_batch(self, ev: BatchEnd) -> None:
        """The overall bar (steps of the whole run, ETA) and the status line."""
        total = ev.total_steps or 0
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(min(ev.step, total))
        else:  # no plan (an old core): this epoch's batches
            self.progress.setRange(0, max(ev.n_iter, 1))
            self.progress.setValue(ev.iteration + 1)
        paused = self._is_paused()  # a batch that ends after Pause
        self.progress.setFormat(self.progress_text(ev, paused))
        if paused:
            if isinstance(ev, BatchEnd):  # the batch in flight at Pause: the status names the same step as the bar
                self._show_paused_status(ev)
            return
        epochs = self._stage_epochs
        self.status_label.setText(
            f"{self.stage_text} · epoch {ev.epoch + 1}" + (f"/{epochs}" if epochs else "")
            + f" · batch {ev.iteration + 1}/{ev.n_iter} · loss {ev.smooth_loss:.4g} · lr {format_lr(ev.lr)}"
            + f" · {format_duration(ev.elapsed_s) if ev.elapsed_s else self._elapsed()} elapsed"
        )

    @staticmethod
    def progress_text(ev: BatchEnd | None, paused: bool = False) -> str:
        if ev is None:
            return "Paused" if paused else "%p%"
        head = "Paused · " if paused else ""
        if not ev.total_steps:
            return f"{head}%v / %m batches"
        eta = "" if paused else f" · ETA {format_duration(ev.eta_s)}" if ev.eta_s is not None else " · ETA …"
        return f"{head}%p% · step {min(ev.step, ev.total_steps)} of {ev.total_steps}{eta}"

    def show_lr_point(self, ev: LRFindPoint) -> None:
        """The LR finder's bar: batches of the sweep."""
        self.progress.setRange(0, max(ev.total, 1))
        self.progress.setValue(ev.done)
        self.progress.setFormat("LR finder %v / %m batches")
        self.status_label.setText(f"LR finder: batch {ev.done} of {ev.total} · lr {format_lr(ev.lr)} · "
                                  f"smoothed loss {ev.loss:.4g}")
