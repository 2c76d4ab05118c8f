"""The Train panel's tabs besides the curves: sample predictions, the LR finder, past runs.

What they show of a run folder comes from :mod:`lesson7_studio.core.runs`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from PySide6.QtWidgets import QComboBox, QHBoxLayout, QVBoxLayout, QWidget

from lesson7_studio.core import runs as run_files
from lesson7_studio.core.events import format_lr

from ...widgets.runs_list import RunsList
from ...widgets.common import button, label
from ...widgets.lr_plot import LrFinderPlot
from ...widgets.samples import SampleGrid


class SamplesTab(QWidget):
    """The newest sample predictions live, or any saved grid of a reopened run."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.samples = SampleGrid()
        self.sample_files = QComboBox()
        self.sample_files.setVisible(False)
        self.sample_files.currentIndexChanged.connect(self._file_chosen)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.sample_files)
        lay.addWidget(self.samples, 1)

    def clear(self) -> None:
        self.samples.clear()
        self.sample_files.setVisible(False)

    def set_rows(self, rows, caption: str) -> None:
        """A SampleImages event's rows (input, prediction, target)."""
        self.samples.set_rows(rows, caption=caption)

    def show_run(self, run: Path) -> None:
        """List the run's saved grids (oldest first) and show the newest."""
        files = run_files.samples_by_time(run)
        self.sample_files.blockSignals(True)
        self.sample_files.clear()
        for f in files:
            self.sample_files.addItem(run_files.sample_title(f), str(f))
        self.sample_files.setCurrentIndex(len(files) - 1)
        self.sample_files.blockSignals(False)
        self.sample_files.setVisible(bool(files))
        if files:
            self.samples.set_image_file(files[-1], caption=f"{run.name} · {run_files.sample_title(files[-1])}")
        else:
            self.samples.clear()

    def _file_chosen(self, index: int) -> None:
        f = self.sample_files.itemData(index)
        if f:
            self.samples.set_image_file(f, caption=run_files.sample_title(Path(f)))


class LrTab(QWidget):
    """The LR finder: its button, the sweep drawn as it runs, the suggestion and "Use this lr"."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lr_plot = LrFinderPlot()
        self.lr_button = button("Find LR", tooltip="Sweep the learning rate over ~100 batches (LR finder)")
        self.lr_result_label = label("Run the LR finder to get a suggested learning rate.", "hint", wrap=True)
        self.use_lr_button = button("Use this lr", "primary")
        self.use_lr_button.setEnabled(False)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.lr_plot, 1)
        row = QHBoxLayout()
        row.addWidget(self.lr_button)
        row.addWidget(self.lr_result_label, 1)
        row.addWidget(self.use_lr_button)
        lay.addLayout(row)

    def sweep_started(self) -> None:
        self.lr_plot.start_sweep()
        self.lr_result_label.setText("Sweeping the learning rate… the curve grows as each batch is measured.")
        self.use_lr_button.setEnabled(False)

    def show_result(self, res) -> None:
        rule = getattr(res, "rule", "valley")
        self.lr_plot.set_data(res.lrs, res.losses, res.suggestion, rule=rule)
        self.lr_result_label.setText(
            f"Suggested lr: <b>{format_lr(res.suggestion)}</b>, marked on the curve. Rule: {rule}. "
            f"(Steepest slope at {format_lr(res.steep)}.)"
        )
        self.use_lr_button.setEnabled(True)


class RunsTab(RunsList):
    """The project's runs: open one (curves, samples), resume it, show its folder."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(["Run", "Recipe", "Model", "Status", "PSNR", "Modified"], object_name="runsList",
                         open_text="Open", open_tip="Show this run's curves and samples", parent=parent)

    def refresh(self, project) -> None:
        rows = []
        for r in run_files.list_runs(project):
            cfg = r.config
            psnr = run_files.last_metric(r.path, "psnr")
            rows.append(([r.name, cfg.get("recipe", ""), cfg.get("arch", ""), r.status,
                          f"{psnr:.2f} dB" if psnr is not None else "",
                          datetime.fromtimestamp(r.modified).strftime("%Y-%m-%d %H:%M")], r.path, r.status))
        self.set_rows(rows)

    def update_buttons(self, *, running: bool, lr_running: bool) -> None:
        sel = self.selected_run() is not None
        self.open_button.setEnabled(sel and not running)
        self.resume_run_button.setEnabled(sel and not running and not lr_running)
