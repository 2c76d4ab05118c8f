"""The Inspect panel: a run's sample grids on a timeline, and the critic's opinion of one image.

Everything read from the run folder comes from :mod:`lesson7_studio.core.runs` (config,
metrics rows, sample grids cut by their layout files, the newest critic); the critic's map is
a core job run by :class:`.critic_view.CriticView`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QFileSystemWatcher, QSize, Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from lesson7_studio.core import runs as run_files
from lesson7_studio.core.runs import Sample

from ...widgets.common import invalidate_layouts
from ...widgets.image_view import ImageView, ZoomBar
from .critic_view import CriticView

PAIR_CAPTION = "Samples: input | prediction | target"
NOISE_CAPTION = "Generator on fixed noise (WGAN), this epoch"
SHOWN_METRICS = 8  # numbers of an epoch's metrics row shown under the timeline


class GanPanel(QWidget):
    """Timeline of a run's samples with the critic's opinion of a generated image."""

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self._run: Path | None = None
        self._outside: list[str] = []  # runs opened from outside the project (kept in the list)
        self._samples: list[Sample] = []
        self._all: list[Sample] = []
        self._metrics: dict[tuple[str, int], run_files.MetricsRow] = {}
        self._config: dict = {}
        self._grid: np.ndarray | None = None
        self._watcher = QFileSystemWatcher(self)
        self._watcher.directoryChanged.connect(lambda _p: self._reload_timer.start())
        self._reload_timer = self._timer(300, self.reload, single=True)
        self._play = self._timer(700, self._step)
        self._build()
        self.refresh_runs()
        ctx.runs_changed.connect(self.refresh_runs)
        ctx.project_changed.connect(self._on_project_changed)
        invalidate_layouts(self)

    def _timer(self, ms: int, slot, single: bool = False) -> QTimer:
        t = QTimer(self)
        t.setSingleShot(single)
        t.setInterval(ms)
        t.timeout.connect(slot)
        return t

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(8, 8, 8, 8)
        root.setSpacing(6)
        root.addLayout(self._build_run_row())
        self.run_info = QLabel("", self)
        self.run_info.setWordWrap(True)
        root.addWidget(self.run_info)
        root.addLayout(self._build_timeline())
        self.metrics_label = QLabel("", self)
        self.metrics_label.setWordWrap(True)
        root.addWidget(self.metrics_label)

        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.setChildrenCollapsible(False)
        left = QWidget(split)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        self.grid_caption = QLabel(PAIR_CAPTION, left)
        ll.addWidget(self.grid_caption)
        self.grid_view = ImageView(left, placeholder="Choose a run with sample images.\n"
                                                     "Training writes one grid per epoch.")
        ll.addWidget(self.grid_view, 1)
        ll.addWidget(ZoomBar(self.grid_view, left), 0, Qt.AlignmentFlag.AlignRight)
        self.critic = CriticView(self.ctx, split)
        split.addWidget(left)
        split.addWidget(self.critic)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        root.addWidget(split, 1)

    def _build_run_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(QLabel("Run", self))
        self.run_combo = QComboBox(self)
        self.run_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.run_combo.setMinimumContentsLength(24)
        self.run_combo.currentIndexChanged.connect(self._run_chosen)
        row.addWidget(self.run_combo, 2)
        row.addWidget(QLabel("Stage", self))
        self.stage_combo = QComboBox(self)
        self.stage_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.stage_combo.currentIndexChanged.connect(lambda _i: self._apply_stage_filter())
        row.addWidget(self.stage_combo)
        self.reload_button = QPushButton("Reload", self)
        self.reload_button.setToolTip("Read the project's runs and this run's folder again "
                                      "(new epochs also appear by themselves)")
        self.reload_button.clicked.connect(lambda _checked=False: self.reload_all())
        row.addWidget(self.reload_button)
        row.addStretch(1)
        return row

    def _build_timeline(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.play_button = QToolButton(self)
        self.play_button.setText("\u25b6 Play")
        self.play_button.setCheckable(True)
        self.play_button.setToolTip("Step through the epochs")
        self.play_button.toggled.connect(self.set_playing)
        row.addWidget(self.play_button)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setRange(0, 0)
        self.slider.setPageStep(1)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.valueChanged.connect(self._show_index)
        row.addWidget(self.slider, 1)
        self.epoch_label = QLabel("", self)
        self.epoch_label.setMinimumWidth(170)
        row.addWidget(self.epoch_label)
        return row

    def _on_project_changed(self, _project) -> None:
        self._outside.clear()
        self.refresh_runs()

    # ------------------------------------------------------------------ panel protocol
    def on_shown(self) -> None:
        self.refresh_runs()

    def is_busy(self) -> bool:
        return False

    def shutdown(self) -> None:
        self._play.stop()
        self.critic.shutdown()

    # ------------------------------------------------------------------ runs
    def refresh_runs(self) -> None:
        cur = self.run_combo.currentData()
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        for r in run_files.list_runs(self.ctx.project):
            tag = run_files.run_tag(r.config)
            recipe = r.config.get("recipe", "")
            text = r.name + (f"  [{tag}]" if tag else "") + (f"  \u00b7 {recipe}" if recipe and recipe not in r.name else "")
            self.run_combo.addItem(text, str(r.path))
        for extra in self._outside:
            if self.run_combo.findData(extra) < 0 and Path(extra).is_dir():
                self.run_combo.addItem(Path(extra).name, extra)
        if self.run_combo.count() == 0:
            self.run_combo.addItem("No runs in this project yet", None)
        idx = self.run_combo.findData(cur) if cur is not None else -1
        if idx < 0:  # prefer the newest GAN run
            idx = next((i for i in range(self.run_combo.count()) if "GAN]" in self.run_combo.itemText(i)), 0)
        self.run_combo.setCurrentIndex(idx)
        self.run_combo.blockSignals(False)
        if self.run_combo.currentData() != (str(self._run) if self._run else None):
            self._run_chosen()

    def reload_all(self) -> None:
        """What Reload does: list the project's runs again (a run made from the command line
        appears) and read the shown run's folder again."""
        shown = self._run
        self.refresh_runs()  # reloads by itself only when the shown run changed
        if self._run == shown:
            self.reload()

    def open_run(self, path) -> None:
        """Show the run in ``path`` (it need not belong to the project)."""
        path = Path(path)
        idx = self.run_combo.findData(str(path))
        if idx < 0:
            if self.run_combo.count() == 1 and self.run_combo.itemData(0) is None:
                self.run_combo.clear()
            self.run_combo.addItem(path.name, str(path))
            self._outside.append(str(path))
            idx = self.run_combo.count() - 1
        if idx == self.run_combo.currentIndex():
            self._run_chosen()
        else:
            self.run_combo.setCurrentIndex(idx)

    def _run_chosen(self, *_a) -> None:
        d = self.run_combo.currentData()
        self._run = Path(d) if d else None
        if self._watcher.directories():
            self._watcher.removePaths(self._watcher.directories())
        self.critic.forget_critic()
        if self._run is not None and (self._run / "samples").is_dir():
            self._watcher.addPath(str(self._run / "samples"))
        self.reload(jump_to_end=True)

    def reload(self, jump_to_end: bool = False) -> None:
        """Read the run folder again; stays on the shown epoch unless it was the newest one."""
        at_end = jump_to_end or self.slider.value() >= self.slider.maximum()
        current = self.current_sample()
        run = self._run
        self._config = run_files.read_config(run) if run else {}
        self._metrics = run_files.metrics_by_epoch(run_files.read_metrics(run)) if run else {}
        self._all = run_files.list_samples(run) if run else []
        self.critic.set_critic(run_files.newest_critic(run) if run else None)
        stages = list(dict.fromkeys(s.stage for s in self._all))
        cur_stage = self.stage_combo.currentData()
        self.stage_combo.blockSignals(True)
        self.stage_combo.clear()
        self.stage_combo.addItem("All stages", None)
        for st in stages:
            self.stage_combo.addItem(st, st)
        self.stage_combo.setCurrentIndex(max(0, self.stage_combo.findData(cur_stage)))
        self.stage_combo.blockSignals(False)
        self._describe_run()
        self._apply_stage_filter(keep=None if at_end else current)

    def _describe_run(self) -> None:
        if self._run is None:
            self.run_info.setText("")
            return
        cfg = self._config
        stages = ", ".join(f"{n} ({k})" for n, k in run_files.stage_kinds(cfg).items())
        parts = [f"Recipe: {cfg.get('recipe', '?')}", f"model: {cfg.get('arch', cfg.get('model', '?'))}"]
        if stages:
            parts.append(f"stages: {stages}")
        parts.append(f"{len(self._all)} sample grid{'s' if len(self._all) != 1 else ''}")
        self.run_info.setText("  \u00b7  ".join(parts))
        self.run_info.setToolTip(str(self._run))

    def _apply_stage_filter(self, keep: Sample | None = None) -> None:
        stage = self.stage_combo.currentData()
        self._samples = [s for s in self._all if stage is None or s.stage == stage]
        n = len(self._samples)
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, n - 1))
        idx = self._samples.index(keep) if keep in self._samples else max(0, n - 1)
        self.slider.setValue(idx)
        self.slider.blockSignals(False)
        self.slider.setEnabled(n > 1)
        self.play_button.setEnabled(n > 1)
        self._show_index(idx)

    def samples(self) -> list[Sample]:
        """The samples on the timeline (after the stage filter)."""
        return list(self._samples)

    def current_sample(self) -> Sample | None:
        i = self.slider.value()
        return self._samples[i] if 0 <= i < len(self._samples) else None

    # ------------------------------------------------------------------ timeline
    def set_playing(self, on: bool) -> None:
        if on and len(self._samples) > 1:
            if self.slider.value() >= self.slider.maximum():
                self.slider.setValue(0)
            self._play.start()
            self.play_button.setText("\u23f8 Pause")
        else:
            self._play.stop()
            self.play_button.setText("\u25b6 Play")
            if self.play_button.isChecked():
                self.play_button.setChecked(False)

    def is_playing(self) -> bool:
        return self._play.isActive()

    def _step(self) -> None:
        if self.slider.value() >= self.slider.maximum():
            self.set_playing(False)
            return
        self.slider.setValue(self.slider.value() + 1)

    def show_epoch(self, index: int) -> None:
        self.slider.setValue(index)

    def _show_index(self, i: int) -> None:
        s = self._samples[i] if 0 <= i < len(self._samples) else None
        if s is None:
            self._grid = None
            self.grid_view.clear()
            self.epoch_label.setText("")
            self.metrics_label.setText("")
            self._show_cells(None, [])
            return
        try:
            grid = run_files.read_image(s.path)
            cells = run_files.sample_cells(s, grid, self._config)
        except run_files.RunFolderError as err:
            self.grid_view.clear()
            self.grid_view.set_placeholder(err.message)
            return
        self._grid = grid
        self.grid_view.set_image(grid, keep_view=True)
        n_epochs = sum(1 for x in self._all if x.stage == s.stage)
        self.epoch_label.setText(f"{s.stage} \u00b7 epoch {s.epoch + 1} of {n_epochs}  ({i + 1}/{len(self._samples)})")
        row = self._metrics.get((s.stage, s.epoch))
        shown = list(row.values.items())[:SHOWN_METRICS] if row is not None else []
        self.metrics_label.setText("   ".join(f"{k} {format_metric(v)}" for k, v in shown))
        self.grid_caption.setText(NOISE_CAPTION if s.kind == "wgan" else PAIR_CAPTION)
        self._show_cells(s, cells)

    def _show_cells(self, s: Sample | None, cells: list[list[np.ndarray]]) -> None:
        self.critic.setVisible(bool(cells) or s is None)
        self.critic.set_cells(cells, gan_stage=s is not None and s.kind in ("gan", "critic"))

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self.critic.update_direction()

    def fake_map(self) -> np.ndarray | None:
        """The last critic map shown (patch grid of 'fake' beliefs in [0,1])."""
        return self.critic.fake_map()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(1000, 640)


def format_metric(v: Any) -> str:
    """A metric for display: 4 significant digits; missing (empty, nan) as an em dash."""
    if v is None:
        return "\u2014"
    try:
        f = float(v)
    except (TypeError, ValueError):
        text = str(v).strip()
        return text if text and text.lower() not in ("nan", "none") else "\u2014"
    if not np.isfinite(f):
        return "\u2014" if np.isnan(f) else ("\u221e" if f > 0 else "\u2212\u221e")
    return f"{f:.4g}"
