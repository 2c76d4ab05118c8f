"""The Train panel: the form on the left; run buttons, progress and tabs (curves, samples,
LR finder, log, past runs) on the right. It starts core's training and LR-finder jobs in
workers and routes their events to the widgets that show them."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QPlainTextEdit, QScrollArea, QSplitter, QTabWidget, QVBoxLayout, QWidget

from lesson7_studio.core import runs as run_files
from lesson7_studio.core.events import (
    BatchEnd,
    CheckpointSaved,
    EpochEnd,
    Finished,
    Log,
    LRFindPoint,
    SampleImages,
    StageStart,
)

from ...context import AppContext
from ...errors import show_error
from ...widgets.common import header, panel_layout
from ...widgets.curves import TrainingCurves
from ...widgets.run_control import RunControl
from .form import TrainForm
from .jobs import run_lr_find, run_training
from .monitor import RunMonitor
from .views import LrTab, RunsTab, SamplesTab

LEFT_WIDTH = 330  # settings column


class TrainPanel(QWidget):
    """Configure and run training; watch curves and samples; reopen past runs."""

    run_started = Signal(object)  # run folder Path
    run_ended = Signal(str)  # "finished" | "failed" | "cancelled"

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.lr_worker = None
        self.last_result = None
        self.last_lr_result = None
        lay = panel_layout(self)
        lay.addWidget(header("Train", "Train a model on one of the project's datasets and watch it learn: "
                             "curves, sample predictions and a log update live."))
        self.form = TrainForm(ctx)
        self.control = RunControl(ctx, start_tip="Start a new run in the project's runs/ folder")
        self.monitor = RunMonitor(self.control, self.control.is_paused, self.control.elapsed)
        split = QSplitter()
        split.addWidget(self._scrolled(self.form))
        split.addWidget(self._build_right())
        split.setStretchFactor(1, 1)
        split.setCollapsible(1, False)
        split.setSizes([LEFT_WIDTH, 840])
        lay.addWidget(split, 1)
        self._connect()
        self.refresh_datasets()
        self.refresh_runs()
        self._update_buttons()

    def _scrolled(self, w: QWidget) -> QScrollArea:
        area = QScrollArea()
        area.setWidgetResizable(True)
        area.setWidget(w)
        area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        area.setMinimumWidth(LEFT_WIDTH)
        return area

    def _build_right(self) -> QWidget:
        self.curves = TrainingCurves()
        self.samples_tab = SamplesTab()
        self.lr_tab = LrTab()
        self.log = QPlainTextEdit()
        self.log.setObjectName("logView")
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.runs_tab = RunsTab()
        self.tabs = QTabWidget()
        for w, title in ((self.curves, "Curves"), (self.samples_tab, "Samples"), (self.lr_tab, "LR finder"),
                         (self.log, "Log"), (self.runs_tab, "Runs")):
            self.tabs.addTab(w, title)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(6, 0, 0, 0)
        rl.addWidget(self.monitor)
        rl.addWidget(self.tabs, 1)
        return right

    def _connect(self) -> None:
        ctx, c = self.ctx, self.control
        c.start_requested.connect(self.start)
        c.resume_requested.connect(self.resume_run)
        c.started.connect(self._on_started)
        c.job_event.connect(self._on_event)
        c.finished.connect(self._on_finished)
        c.failed.connect(self._on_failed)
        c.cancelled.connect(self._on_cancelled)
        c.done.connect(self._on_done)
        c.paused_changed.connect(self._on_paused)
        c.cancelling.connect(self._on_cancelling)
        c.cancel_button.clicked.connect(lambda _c=False: self._cancel_lr())
        c.state_changed.connect(self._update_buttons)
        self.form.changed.connect(self._update_buttons)
        self.lr_tab.lr_button.clicked.connect(lambda _c=False: self.find_lr())
        self.lr_tab.use_lr_button.clicked.connect(lambda _c=False: self.use_suggested_lr())
        runs = self.runs_tab
        runs.runs.itemDoubleClicked.connect(lambda *_: self.open_selected_run())
        runs.runs.itemSelectionChanged.connect(self._update_buttons)
        runs.open_button.clicked.connect(lambda _c=False: self.open_selected_run())
        runs.resume_run_button.clicked.connect(lambda _c=False: self.resume_selected_run())
        runs.folder_button.clicked.connect(lambda _c=False: self._show_run_folder())
        ctx.datasets_changed.connect(self.refresh_datasets)
        ctx.runs_changed.connect(self.refresh_runs)
        ctx.project_changed.connect(lambda _p: (self.refresh_datasets(), self.refresh_runs()))
        ctx.model_chosen.connect(self.form.model_chosen)
        for sig in (ctx.models_changed, ctx.runs_changed):  # new checkpoints to start from
            sig.connect(lambda *_: self.form.start_from.fill(self.form.recipe()))

    # ------------------------------------------------------------------ form, datasets and runs
    def build_config(self, out: Path | None = None):
        return self.form.build_config(out)

    def use_panel_model(self, name: str, options: dict) -> None:
        """Train ``name`` with ``options`` (as if chosen in the Model panel)."""
        self.ctx.set_model_choice(name, options)

    def refresh_datasets(self) -> None:
        self.form.refresh_datasets()

    def refresh_runs(self) -> None:
        self.runs_tab.refresh(self.ctx.project)
        self._update_buttons()

    def open_run(self, path: Path) -> None:
        """Show a past run's curves (metrics.csv), samples (samples/*.png) and config."""
        path = Path(path)
        self.curves.clear()
        self.curves.load_metrics(path)
        self.samples_tab.show_run(path)
        self.log.appendPlainText(f"— Opened run {path}")
        cfg = run_files.read_config(path)
        if cfg:
            self.log.appendPlainText("  " + run_files.describe_config(cfg))
        self.monitor.set_status(f"Showing run {path.name}.")
        self.tabs.setCurrentWidget(self.curves)

    def open_selected_run(self) -> None:
        p = self.runs_tab.selected_run()
        if p is not None and not self.is_busy():
            self.open_run(p)

    def _show_run_folder(self) -> None:
        p = self.runs_tab.selected_run() or self.control.run_dir or self.ctx.project.runs_dir
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(p)))

    # ------------------------------------------------------------------ run control
    def start(self) -> None:
        if self.is_busy():
            return
        try:
            out = self.ctx.project.new_run_dir(self.form.recipe_name())
            cfg = self.form.build_config(out)
        except Exception as exc:  # noqa: BLE001 - shown in the one error dialog
            show_error(self, exc, context="Training cannot start")
            return
        self.form.save_settings()
        self.curves.clear()
        self.samples_tab.clear()
        self.log.appendPlainText(f"— Starting {cfg.recipe} ({cfg.arch}) in {out}")
        self.control.launch(run_training, cfg, resume=False)

    def pause(self) -> None:
        self.control.pause()

    def resume(self) -> None:
        self.control.resume()

    def cancel(self) -> None:
        self.control.cancel()
        self._cancel_lr()

    def resume_run(self, path: Path) -> None:
        """Continue the run in ``path`` from its last checkpoint."""
        from lesson7_studio.core.train import run as run_mod

        if self.is_busy():
            return
        device = self.form.device_combo.currentData()
        self.control.relaunch(run_training, lambda p: run_mod.resume_config(p, device=device), path,
                              before=self._show_resumed)

    def _show_resumed(self, path: Path) -> None:
        self.curves.load_metrics(path)  # clears the curves first
        self.log.appendPlainText(f"— Resuming {path}")

    def resume_selected_run(self) -> None:
        p = self.runs_tab.selected_run()
        if p is not None:
            self.resume_run(p)

    def _on_started(self, run_dir: Path) -> None:
        self.monitor.starting("Starting… (building the model and loading data)")
        self.tabs.setCurrentWidget(self.curves)
        self.run_started.emit(run_dir)

    def _on_paused(self, paused: bool) -> None:
        self.monitor.set_paused(paused)
        if not paused:
            self.monitor.set_status("Resumed.")
        self.log.appendPlainText("— Paused" if paused else "— Resumed")

    def _on_cancelling(self) -> None:
        self.monitor.set_status("Stopping after the current batch; a checkpoint is kept…")
        self.log.appendPlainText("— Cancel requested")

    # ------------------------------------------------------------------ LR finder
    def find_lr(self) -> None:
        if self.is_busy():
            return
        try:
            cfg = self.form.build_config(self.ctx.project.runs_dir / ".lr-find")
        except Exception as exc:  # noqa: BLE001
            show_error(self, exc, context="The LR finder cannot start")
            return
        self.lr_tab.sweep_started()
        self.tabs.setCurrentWidget(self.lr_tab)
        self.monitor.busy()
        w = self.ctx.start_worker(run_lr_find, cfg, num_it=self.ctx.settings.value("train/lr_find_iters", 100))
        self.lr_worker = w
        w.event.connect(self._on_lr_event)
        w.finished.connect(self._lr_finished)
        w.failed.connect(lambda exc: (self.lr_tab.lr_result_label.setText("The LR finder failed."),
                                      show_error(self, exc, context="The LR finder failed")))
        w.cancelled.connect(lambda: self.lr_tab.lr_result_label.setText("LR finder cancelled."))
        w.done.connect(self._on_done)
        self._update_buttons()

    def _cancel_lr(self) -> None:
        if self.lr_worker is not None and self.lr_worker.is_running():
            self.lr_worker.cancel()
        self._update_buttons()

    def _on_lr_event(self, ev) -> None:
        if isinstance(ev, LRFindPoint):
            self.lr_tab.lr_plot.add_point(ev.lr, ev.loss)
            self.monitor.show_lr_point(ev)
        elif isinstance(ev, Log):
            self.log.appendPlainText(ev.message)

    def _lr_finished(self, res) -> None:
        self.last_lr_result = res
        self.lr_tab.show_result(res)
        self.monitor.set_status("LR finder done.")

    def use_suggested_lr(self) -> None:
        if self.last_lr_result is not None:
            self.form.lr_edit.setText(f"{self.last_lr_result.suggestion:.3g}")
            self.ctx.status_message.emit(f"Learning rate set to {self.last_lr_result.suggestion:.3g}")

    # ------------------------------------------------------------------ events
    def _on_event(self, ev) -> None:
        if isinstance(ev, (StageStart, BatchEnd, EpochEnd)):
            self.curves.handle_event(ev)
        self.monitor.handle(ev)
        if isinstance(ev, StageStart):
            self.log.appendPlainText(f"— Stage {ev.index + 1}/{ev.total}: {ev.name} ({ev.epochs} epochs)")
        elif isinstance(ev, EpochEnd):
            m = "  ".join(f"{k} {v:.4g}" for k, v in ev.metrics.items() if isinstance(v, (int, float)))
            self.log.appendPlainText(f"[{ev.stage}] epoch {ev.epoch + 1}/{ev.n_epochs}  {m}  ({ev.seconds:.1f} s)")
        elif isinstance(ev, SampleImages):
            self.samples_tab.set_rows(ev.rows, caption=f"{ev.stage} · epoch {ev.epoch + 1}")
        elif isinstance(ev, CheckpointSaved):
            self.log.appendPlainText(f"checkpoint ({ev.reason}): {ev.path}")
        elif isinstance(ev, Log):
            self.log.appendPlainText(ev.message)
        elif isinstance(ev, Finished):
            self.log.appendPlainText(f"— Finished: {json.dumps(ev.summary, default=str)}")

    def _on_finished(self, result) -> None:
        self.last_result = result
        self.curves.flush()
        psnr = (getattr(result, "metrics", {}) or {}).get("psnr")
        stopped = getattr(result, "stopped", "")
        elapsed = self.control.elapsed()
        if stopped:
            self.monitor.set_status(f"Stopped ({stopped}) after {elapsed}; Resume continues it.")
        else:
            kept = getattr(result, "kept", None)
            if kept:  # keep_best handed back earlier weights: the last epoch's PSNR is not the model's
                step = kept.get("step")
                what = ("kept the starting weights (they validated best)" if step == 0 else
                        f"kept the weights of step {step} (they validated best)" if step else
                        "kept the best validated weights")
                figure = f" · {what}"
            else:
                figure = f" · PSNR {psnr:.2f} dB" if psnr is not None else ""
            self.monitor.set_status(f"Finished in {elapsed}{figure}"
                                    + (" · model saved" if getattr(result, "model_path", None) else ""))
        self.ctx.runs_changed.emit()
        self.ctx.models_changed.emit()
        self.run_ended.emit("finished")

    def _on_failed(self, exc) -> None:
        self.monitor.set_status("Training failed.")
        self.log.appendPlainText(f"— Failed: {exc}")
        self.ctx.runs_changed.emit()
        self.run_ended.emit("failed")
        show_error(self, exc, context="Training failed")

    def _on_cancelled(self) -> None:
        self.monitor.set_status("Cancelled. A checkpoint was kept: Resume continues the run.")
        self.ctx.runs_changed.emit()
        self.run_ended.emit("cancelled")

    def _on_done(self) -> None:
        self.monitor.idle()
        self._update_buttons()

    def _update_buttons(self, *_args) -> None:
        running = self.control.is_running()
        lr_running = self.lr_worker is not None and self.lr_worker.is_running()
        has_data = self.form.has_dataset()
        self.control.update_buttons(can_start=has_data, other_busy=lr_running)
        self.lr_tab.lr_button.setEnabled(not running and not lr_running and has_data)
        self.runs_tab.update_buttons(running=running, lr_running=lr_running)
        self.form.set_running(running)

    # ------------------------------------------------------------------ panel protocol
    def on_shown(self) -> None:
        self.refresh_datasets()

    def is_busy(self) -> bool:
        return self.control.is_running() or (self.lr_worker is not None and self.lr_worker.is_running())

    def is_paused(self) -> bool:
        return self.control.is_paused()

    def shutdown(self, wait_ms: int = 120000) -> None:
        """Cancel a running run (it writes a resumable checkpoint) and wait for it."""
        if self.lr_worker is not None and self.lr_worker.is_running():
            self.lr_worker.cancel()
        self.control.shutdown(wait_ms)
        if self.lr_worker is not None:
            self.lr_worker.wait(wait_ms)
