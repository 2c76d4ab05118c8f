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
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from lesson7_studio.core import lessons
from lesson7_studio.core.errors import TrainingError
from lesson7_studio.core.events import BatchEnd, CheckpointSaved, EpochEnd, Log, Progress, StageStart

from ...context import AppContext
from ...errors import show_error
from ...widgets.common import button, header, label, panel_layout
from ...widgets.curves import TrainingCurves
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
        self.worker = None
        self.run_dir: Path | None = None
        self.resumable_dir: Path | None = None
        self.last_result = None
        self._t_start = 0.0
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

        self.start_button = button("Start", "primary", "Train the chosen model into the project's lessons/ folder")
        self.pause_button = button("Pause", tooltip="Pause after the current batch")
        self.resume_button = button("Resume", tooltip="Continue a paused run, or the last stopped run from its checkpoint")
        self.cancel_button = button("Cancel", "danger", "Stop after the current batch; a checkpoint is kept")
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.pause)
        self.resume_button.clicked.connect(self.resume)
        self.cancel_button.clicked.connect(self.cancel)
        self.status_label = label("Ready.")
        self.status_label.setObjectName("lessonStatus")
        self.status_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m")
        self.progress.setMaximumWidth(200)
        self.progress.setVisible(False)
        top = QHBoxLayout()
        for b in (self.start_button, self.pause_button, self.resume_button, self.cancel_button):
            top.addWidget(b)
        top.addSpacing(8)
        top.addWidget(self.status_label, 1)
        top.addWidget(self.progress)

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
        self.runs = QTreeWidget()
        self.runs.setObjectName("lessonRuns")
        self.runs.setHeaderLabels(["Run", "Model", "Accuracy", "Epochs", "Status"])
        self.runs.setRootIsDecorated(False)
        self.runs.setAlternatingRowColors(True)
        self.runs.itemDoubleClicked.connect(lambda *_: self.explore_selected())
        self.runs.itemSelectionChanged.connect(self._update_buttons)
        self.explore_button = button("Explore", "primary", "Open this run in the Explore tab")
        self.explore_button.clicked.connect(self.explore_selected)
        self.resume_run_button = button("Resume run", tooltip="Continue a cancelled or stopped run from its last checkpoint")
        self.resume_run_button.clicked.connect(lambda: self.resume_run(self.selected_run()))
        self.folder_button = button("Show folder")
        self.folder_button.clicked.connect(self._show_folder)
        runs_tab = QWidget()
        rt = QVBoxLayout(runs_tab)
        rt.setContentsMargins(4, 4, 4, 4)
        rt.addWidget(self.runs, 1)
        rrow = QHBoxLayout()
        rrow.addWidget(self.explore_button)
        rrow.addWidget(self.resume_run_button)
        rrow.addStretch(1)
        rrow.addWidget(self.folder_button)
        rt.addLayout(rrow)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.curves, "Curves")
        self.tabs.addTab(self.explore, "Explore")
        self.tabs.addTab(runs_tab, "Runs")
        self.tabs.addTab(self.log, "Log")

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(6, 0, 0, 0)
        rl.addLayout(top)
        rl.addWidget(self.tabs, 1)
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
        self._launch(cfg, resume=False)

    def _launch(self, cfg, *, resume: bool) -> None:
        self.run_dir = Path(cfg.out)
        self.resumable_dir = None
        self._t_start = time.perf_counter()
        w = self.ctx.start_worker(run_lesson, cfg, resume=resume)
        self.worker = w
        w.event.connect(self._on_event)
        w.finished.connect(self._on_finished)
        w.failed.connect(self._on_failed)
        w.cancelled.connect(self._on_cancelled)
        w.done.connect(self._on_done)
        self.status_label.setText("Starting… (loading the data and building the model)")
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.tabs.setCurrentWidget(self.curves)
        self._update_buttons()
        self.run_started.emit(self.run_dir)

    def pause(self) -> None:
        if self.worker is not None and self.worker.is_running() and not self.worker.is_paused():
            self.worker.pause()
            self.status_label.setText("Paused after the current batch. Resume to go on.")
            self._update_buttons()

    def resume(self) -> None:
        if self.worker is not None and self.worker.is_running():
            if self.worker.is_paused():
                self.worker.resume()
                self.status_label.setText("Resumed.")
                self._update_buttons()
            return
        if self.resumable_dir is not None:
            self.resume_run(self.resumable_dir)

    def resume_run(self, path: Path | None) -> None:
        if path is None or self.is_busy():
            return
        try:
            cfg = lessons.resume_lesson_config(path, device=self.form.device_combo.currentData())
        except Exception as exc:  # noqa: BLE001
            show_error(self, exc, context="This run cannot be resumed")
            return
        self.curves.clear()
        if (Path(path) / "metrics.csv").is_file():
            self.curves.load_metrics_csv(Path(path) / "metrics.csv")
        self.log.appendPlainText(f"— Resuming {path}")
        self._launch(cfg, resume=True)

    def cancel(self) -> None:
        if self.worker is not None and self.worker.is_running():
            self.worker.cancel()
            self.status_label.setText("Stopping after the current batch; a checkpoint is kept…")
        self._update_buttons()

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
                                          f" · loss {ev.smooth_loss:.4g} · {self._elapsed()}")
        elif isinstance(ev, Progress):
            self.progress.setRange(0, max(ev.total, 1))
            self.progress.setValue(ev.done)
            self.status_label.setText(ev.message)
        elif isinstance(ev, (Log, CheckpointSaved)):
            self.log.appendPlainText(ev.message if isinstance(ev, Log) else f"checkpoint ({ev.reason}): {ev.path}")

    def _elapsed(self) -> str:
        s = int(time.perf_counter() - self._t_start)
        return f"{s // 60}:{s % 60:02d}"

    def _on_finished(self, result) -> None:
        self.last_result = result
        self.curves.flush()
        acc = result.metrics.get("accuracy")
        if result.stopped:
            self.resumable_dir = self.run_dir
            self.status_label.setText(f"Stopped ({result.stopped}) after {self._elapsed()}; Resume continues it.")
        else:
            self.status_label.setText(f"Finished in {self._elapsed()}" + (f" · accuracy {acc:.4f}" if acc is not None else "")
                                      + " · see the Explore tab")
        self.refresh_runs()
        try:
            self.open_run(self.run_dir, switch=False)
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
        self.resumable_dir = self.run_dir
        self.status_label.setText("Cancelled. A checkpoint was kept: Resume continues the run.")
        self.refresh_runs()
        self.run_ended.emit("cancelled")

    def _on_done(self) -> None:
        self.progress.setVisible(False)
        self._update_buttons()

    # ------------------------------------------------------------------ runs and exploring
    def refresh_runs(self) -> None:
        sel = self.selected_run()
        self.runs.clear()
        for r in lessons.list_lesson_runs(self.runs_root):
            acc = f"{r.accuracy:.4f}" if r.accuracy is not None else "—"
            item = QTreeWidgetItem([r.path.name, r.arch, acc, f"{r.epochs}/{r.epochs_planned}", r.status])
            item.setData(0, Qt.ItemDataRole.UserRole, str(r.path))
            item.setData(1, Qt.ItemDataRole.UserRole, r.status)
            self.runs.addTopLevelItem(item)
            if sel is not None and r.path == sel:
                item.setSelected(True)
        for i in range(self.runs.columnCount()):
            self.runs.resizeColumnToContents(i)
        self.numbers_view.refresh_table(self.runs_root)
        self._update_buttons()

    def selected_run(self) -> Path | None:
        items = self.runs.selectedItems()
        return Path(items[0].data(0, Qt.ItemDataRole.UserRole)) if items else None

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
            if (Path(path) / "metrics.csv").is_file():
                self.curves.load_metrics_csv(Path(path) / "metrics.csv")
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
        running = self.worker is not None and self.worker.is_running()
        paused = running and self.worker.is_paused()
        self.start_button.setEnabled(not running)
        self.pause_button.setEnabled(running and not paused)
        self.resume_button.setEnabled(paused or (not running and self.resumable_dir is not None))
        self.cancel_button.setEnabled(running)
        sel = self.selected_run()
        self.explore_button.setEnabled(sel is not None)
        items = self.runs.selectedItems()
        resumable = bool(items) and items[0].data(1, Qt.ItemDataRole.UserRole) == "resumable"
        self.resume_run_button.setEnabled(resumable and not running)
        self.form.set_running(running)

    # ------------------------------------------------------------------ panel protocol
    def on_shown(self) -> None:
        self.refresh_runs()

    def is_busy(self) -> bool:
        return self.worker is not None and self.worker.is_running()

    def shutdown(self, wait_ms: int = 120000) -> None:
        if self.worker is not None and self.worker.is_running():
            self.worker.cancel()
        if self.worker is not None:
            self.worker.wait(wait_ms)
