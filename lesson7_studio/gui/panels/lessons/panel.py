"""Lessons panel: train the lesson's classifiers and RNNs with live curves, then explore them.

Start / Pause / Cancel / Resume work as in the Train panel. Runs go to the project's
``lessons/`` folder (kept apart from the restoration runs); the Runs tab lists them and opens
any of them in the Explore tab.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QHBoxLayout,
    QPlainTextEdit,
    QProgressBar,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from lesson7_studio.core import lessons
from lesson7_studio.core.errors import TrainingError
from lesson7_studio.core.events import BatchEnd, CheckpointSaved, EpochEnd, Log, Progress, StageStart

from ...context import AppContext
from ...errors import show_error
from ...widgets.common import header, label, panel_layout
from ...widgets.curves import TrainingCurves
from ...widgets.run_control import RunControl
from ...widgets.runs_list import RunsList
from .explore import ClassifierView, NumbersView
from .form import LessonForm

LEFT_WIDTH = 330
STATUS_EVERY_S = 0.2


def run_lesson(config, *, resume: bool = False, on_event=None, cancel=None):
    """``core.lessons.train_lesson`` looked up at call time (tests replace it); the built-in
    digits or shapes folder is written first when the config names one that is not there yet."""
    import importlib

    if config.data and config.data != "mnist":
        importlib.import_module("lesson7_studio.core.lessons.images").ensure_builtin_folder(config.data)
    mod = importlib.import_module("lesson7_studio.core.lessons.run")
    return mod.train_lesson(config, on_event=on_event, cancel=cancel, resume=resume)


class LessonsPanel(QWidget):
    run_started = Signal(object)
    run_ended = Signal(str)  # "finished" | "failed" | "cancelled"

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.last_result = None
        self._last_status = 0.0
        lay = panel_layout(self)
        lay.addWidget(header("Lessons", "The rest of lesson 7: ResNets and DenseNets on handwritten digits, and six "
                             "RNNs that learn to count in English. Train one, watch it learn, then explore it."))

        self.form = LessonForm(ctx.device, lambda: self.runs_root)
        self.form.lesson_changed.connect(self._lesson_changed)
        left = self.form
        left_scroll = QScrollArea()
        left_scroll.setWidgetResizable(True)
        left_scroll.setWidget(left)
        left_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        left_scroll.setMinimumWidth(max(LEFT_WIDTH, left.minimumSizeHint().width() + 8))

        self.control = RunControl(ctx, start_tip="Train the chosen model into the project's lessons/ folder")
        self._connect_control()
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(6, 0, 0, 0)
        rl.addLayout(self._build_top())
        rl.addWidget(self._build_tabs(), 1)
        split = QSplitter()
        split.addWidget(left_scroll)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setCollapsible(1, False)
        split.setSizes([LEFT_WIDTH, 840])
        lay.addWidget(split, 1)

        ctx.project_changed.connect(lambda _p: self.refresh_runs())
        lesson = ctx.settings.value("lessons/lesson", "human-numbers")
        self.form.set_lesson(lesson)
        self.refresh_runs()
        self._update_buttons()

    def _build_top(self) -> QHBoxLayout:
        """The run buttons, the status line and the bar."""
        self.status_label = label("Ready.")
        self.status_label.setObjectName("lessonStatus")
        self.status_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m")
        self.progress.setMaximumWidth(200)
        self.progress.setVisible(False)
        top = QHBoxLayout()
        top.addWidget(self.control)
        top.addSpacing(8)
        top.addWidget(self.status_label, 1)
        top.addWidget(self.progress)
        return top

    def _build_tabs(self) -> QTabWidget:
        """Curves, Explore, Runs and Log."""
        self.curves = TrainingCurves()
        # lesson runs have no loss components: that plot shows the validation accuracy
        self.curves.plots["components"].setTitle("Validation accuracy")
        self.curves.plots["components"].setLabel("left", "accuracy")
        self.curves.plots["components"].getAxis("left").enableAutoSIPrefix(False)  # 0.81, not 810 x0.001
        self.classifier_view = ClassifierView()
        self.numbers_view = NumbersView()
        self.numbers_view.train_requested.connect(self.form.choose_model)
        self.explore = QStackedWidget()
        self.explore.addWidget(self.classifier_view)
        self.explore.addWidget(self.numbers_view)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.curves, "Curves")
        self.tabs.addTab(self.explore, "Explore")
        self.tabs.addTab(self._build_runs_tab(), "Runs")
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.tabs.addTab(self.log, "Log")
        return self.tabs

    def _build_runs_tab(self) -> QWidget:
        tab = RunsList(["Run", "Model", "Accuracy", "Epochs", "Status"], object_name="lessonRuns",
                       open_text="Explore", open_role="primary", open_tip="Open this run in the Explore tab",
                       resume_tip="Continue a cancelled or stopped run from its last checkpoint")
        self.runs_list, self.runs = tab, tab.runs
        self.runs.itemDoubleClicked.connect(lambda *_: self.explore_selected())
        self.runs.itemSelectionChanged.connect(self._update_buttons)
        self.runs_list.open_button.clicked.connect(self.explore_selected)
        self.runs_list.resume_run_button.clicked.connect(lambda: self.resume_run(self.selected_run()))
        self.runs_list.folder_button.clicked.connect(self._show_folder)
        return tab

    # ------------------------------------------------------------------ form
    @property
    def runs_root(self) -> Path:
        return self.ctx.project.root / "lessons"

    def _lesson_changed(self, lesson: str) -> None:
        self.explore.setCurrentWidget(self.classifier_view if lesson == "resnet-mnist" else self.numbers_view)
        if lesson == "human-numbers":
            self.numbers_view.refresh_table(self.runs_root)

    def _new_run_dir(self) -> Path:
        base = self.runs_root / f"{self.form.arch()}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
        path, i = base, 1
        while path.exists():
            i += 1
            path = base.with_name(f"{base.name}-{i}")
        return path

    # ------------------------------------------------------------------ run control
    def start(self) -> None:
        if self.is_busy():
            return
        try:
            cfg = self.form.build_config(self._new_run_dir())
            cfg.validate()
        except Exception as exc:  # noqa: BLE001 - shown in the one error dialog
            show_error(self, exc, context="Training cannot start")
            return
        self.ctx.settings.set_value("lessons/lesson", cfg.lesson)
        self.curves.clear()
        self.log.appendPlainText(f"— Starting {cfg.lesson} ({cfg.arch}) in {cfg.out}")
        self.control.launch(run_lesson, cfg, resume=False)

    def _connect_control(self) -> None:
        c = self.control
        c.start_requested.connect(self.start)
        c.resume_requested.connect(self.resume_run)
        c.started.connect(self._on_started)
        c.job_event.connect(self._on_event)
        c.finished.connect(self._on_finished)
        c.failed.connect(self._on_failed)
        c.cancelled.connect(self._on_cancelled)
        c.done.connect(self._on_done)
        c.paused_changed.connect(lambda paused: self.status_label.setText(
            "Paused after the current batch. Resume to go on." if paused else "Resumed."))
        c.cancelling.connect(lambda: self.status_label.setText("Stopping after the current batch; a checkpoint is kept…"))
        c.state_changed.connect(self._update_buttons)

    def _on_started(self, run_dir: Path) -> None:
        self.status_label.setText("Starting… (loading the data and building the model)")
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.tabs.setCurrentWidget(self.curves)
        self.run_started.emit(run_dir)

    def pause(self) -> None:
        self.control.pause()

    def resume(self) -> None:
        self.control.resume()

    def resume_run(self, path: Path | None) -> None:
        device = self.form.device_combo.currentData()
        self.control.relaunch(run_lesson, lambda p: lessons.resume_lesson_config(p, device=device), path,
                              before=self._show_resumed)

    def _show_resumed(self, path: Path) -> None:
        self.curves.load_metrics(path)  # clears the curves first
        self.log.appendPlainText(f"— Resuming {path}")

    def cancel(self) -> None:
        self.control.cancel()

    # ------------------------------------------------------------------ events
    def _on_event(self, ev) -> None:
        if isinstance(ev, (StageStart, BatchEnd)):
            self.curves.handle_event(ev)
        if isinstance(ev, EpochEnd):
            for k, v in ev.metrics.items():
                if k in ("train_loss", "valid_loss"):
                    self.curves.add_point(k, ev.step, v, "loss")
                elif k == "accuracy":
                    self.curves.add_point(k, ev.step, v, "components")
            acc = ev.metrics.get("accuracy")
            self.log.appendPlainText(
                f"epoch {ev.epoch + 1}/{ev.n_epochs}: train_loss {ev.metrics.get('train_loss', float('nan')):.4f}  "
                f"valid_loss {ev.metrics.get('valid_loss', float('nan')):.4f}"
                + (f"  accuracy {acc:.4f}" if acc is not None else "") + f"  ({ev.seconds:.1f} s)")
        elif isinstance(ev, BatchEnd):
            self.progress.setRange(0, max(ev.n_iter, 1))
            self.progress.setValue(ev.iteration + 1)
            now = time.perf_counter()
            if now - self._last_status >= STATUS_EVERY_S:
                self._last_status = now
                self.status_label.setText(f"{ev.stage} · epoch {ev.epoch + 1} · batch {ev.iteration + 1}/{ev.n_iter}"
                                          f" · loss {ev.smooth_loss:.4g} · {self.control.elapsed()}")
        elif isinstance(ev, Progress):
            self.progress.setRange(0, max(ev.total, 1))
            self.progress.setValue(ev.done)
            self.status_label.setText(ev.message)
        elif isinstance(ev, (Log, CheckpointSaved)):
            self.log.appendPlainText(ev.message if isinstance(ev, Log) else f"checkpoint ({ev.reason}): {ev.path}")

    def _on_finished(self, result) -> None:
        self.last_result = result
        self.curves.flush()
        acc = result.metrics.get("accuracy")
        if result.stopped:
            self.status_label.setText(f"Stopped ({result.stopped}) after {self.control.elapsed()}; Resume continues it.")
        else:
            self.status_label.setText(f"Finished in {self.control.elapsed()}" + (f" · accuracy {acc:.4f}" if acc is not None else "")
                                      + " · see the Explore tab")
        self.refresh_runs()
        try:
            self.open_run(self.control.run_dir, switch=False)
        except Exception as exc:  # noqa: BLE001
            show_error(self, exc, context="The trained model cannot be explored")
        self.run_ended.emit("finished")

    def _on_failed(self, exc) -> None:
        self.status_label.setText("Training failed.")
        self.log.appendPlainText(f"— Failed: {exc}")
        self.refresh_runs()
        self.run_ended.emit("failed")
        show_error(self, exc, context="Training failed")

    def _on_cancelled(self) -> None:
        self.status_label.setText("Cancelled. A checkpoint was kept: Resume continues the run.")
        self.refresh_runs()
        self.run_ended.emit("cancelled")

    def _on_done(self) -> None:
        self.progress.setVisible(False)
        self._update_buttons()

    # ------------------------------------------------------------------ runs and exploring
    def refresh_runs(self) -> None:
        rows = []
        for r in lessons.list_lesson_runs(self.runs_root):
            acc = f"{r.accuracy:.4f}" if r.accuracy is not None else "—"
            rows.append(([r.path.name, r.arch, acc, f"{r.epochs}/{r.epochs_planned}", r.status], r.path, r.status))
        self.runs_list.set_rows(rows)
        self.numbers_view.refresh_table(self.runs_root)
        self._update_buttons()

    def selected_run(self) -> Path | None:
        return self.runs_list.selected_run()

    def open_run(self, path: Path, switch: bool = True) -> None:
        """Show run ``path`` in the Explore tab (its lesson's view) and its curves."""
        s = lessons.run_summary(path)
        if s is None:
            raise TrainingError(f"{path} is not a lesson run.")
        view = self.classifier_view if s.lesson == "resnet-mnist" else self.numbers_view
        view.set_run(path)
        if self.form.lesson_name() != s.lesson:
            self.form.set_lesson(s.lesson)
        self.explore.setCurrentWidget(view)
        if switch:
            if not self.is_busy():
                self.status_label.setText(f"Exploring {Path(path).name} ({s.arch}).")
            self.curves.clear()
            self.curves.load_metrics(Path(path))
            self.tabs.setCurrentWidget(self.explore)

    def explore_selected(self) -> None:
        p = self.selected_run()
        if p is None:
            return
        try:
            self.open_run(p)
        except Exception as exc:  # noqa: BLE001
            show_error(self, exc, context="This run cannot be explored")

    def _show_folder(self) -> None:
        p = self.selected_run() or self.runs_root
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(p)))

    def _update_buttons(self, *_a) -> None:
        running = self.control.is_running()
        self.control.update_buttons()
        sel = self.selected_run()
        self.runs_list.open_button.setEnabled(sel is not None)
        resumable = self.runs_list.selected_status() == "resumable"
        self.runs_list.resume_run_button.setEnabled(resumable and not running)
        self.form.set_running(running)

    # ------------------------------------------------------------------ panel protocol
    def on_shown(self) -> None:
        self.refresh_runs()

    def is_busy(self) -> bool:
        return self.control.is_running()

    def shutdown(self, wait_ms: int = 120000) -> None:
        self.control.shutdown(wait_ms)
