"""Live training curves (pyqtgraph) and the LR finder plot.

``TrainingCurves`` takes the core's training events (StageStart, BatchEnd, EpochEnd) or a run's
metrics.csv and draws four plots against the global step: loss (train per batch, train and
valid per epoch), quality (PSNR/SSIM), loss components, and generator/critic losses in GAN
stages. Stage boundaries are vertical lines on every plot. Redraws are batched on a timer so a
fast training loop never floods the event loop.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from lesson7_studio.gui import qtcompat  # noqa: F401
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from lesson7_studio.core.events import BatchEnd, EpochEnd, Event, StageStart

pg.setConfigOptions(antialias=True, background="w", foreground="#34404f")

PALETTE = ["#2f7de1", "#e8871e", "#2a9d4b", "#c0392b", "#8e44ad", "#16a2b8", "#7f8c8d", "#d35400"]
PLOTS = [
    ("loss", "Loss"),
    ("quality", "Validation PSNR and SSIM"),
    ("components", "Loss components (per batch)"),
    ("gan", "GAN: generator and critic losses"),
]
_NOT_SERIES = {"stage", "epoch", "step", "iteration", "n_iter", "time", "seconds", "lr", "wall", "elapsed"}


def plot_for(metric: str, per_batch: bool) -> str:
    """Which plot a metric goes to."""
    m = metric.lower()
    if any(k in m for k in ("psnr", "ssim")):
        return "quality"
    if any(k in m for k in ("gen", "crit", "adv", "disc", "wgan", "real", "fake")):
        return "gan"
    if m in ("train_loss", "valid_loss", "loss", "smooth_loss"):
        return "loss"
    return "components" if per_batch else ("loss" if m.endswith("loss") else "components")


def _finite(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


class TrainingCurves(QWidget):
    """Four linked plots fed by training events or a metrics.csv."""

    points_added = Signal(int)  # total points so far
    TWO_COLUMNS_MIN_WIDTH = 720  # narrower: the plots are stacked

    def __init__(self, parent: QWidget | None = None, *, redraw_ms: int = 250) -> None:
        super().__init__(parent)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setObjectName("curves")
        self.view.ci.setContentsMargins(4, 4, 4, 4)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.view)
        self.plots: dict[str, pg.PlotItem] = {}
        for key, title in PLOTS:
            p = pg.PlotItem(title=title)
            p.showGrid(x=True, y=True, alpha=0.2)
            p.setClipToView(True)
            p.setDownsampling(auto=True, mode="peak")
            p.addLegend(offset=(-4, 4), labelTextSize="8pt", verSpacing=-6)
            p.setLabel("bottom", "step")
            self.plots[key] = p
        for key in ("quality", "components", "gan"):
            self.plots[key].setXLink(self.plots["loss"])
        self.plots["quality"].setLabel("left", "PSNR (dB)")
        # SSIM (0..1) on its own right-hand axis of the quality plot
        q = self.plots["quality"]
        self._ssim_vb = pg.ViewBox()
        q.showAxis("right")
        q.getAxis("right").setLabel("SSIM")
        q.getAxis("right").enableAutoSIPrefix(False)
        q.getAxis("right").linkToView(self._ssim_vb)
        self._ssim_vb.setXLink(q.vb)
        self.view.scene().addItem(self._ssim_vb)
        q.vb.sigResized.connect(self._sync_ssim_view)
        self._visible: list[str] = []
        self._data: dict[str, tuple[list[float], list[float]]] = {}
        self._items: dict[str, pg.PlotDataItem] = {}
        self._series_plot: dict[str, str] = {}
        self._stages: list[tuple[float, str]] = []
        self._stage_lines: list[tuple[pg.PlotItem, pg.InfiniteLine]] = []
        self._last_step = 0.0
        self._dirty = False
        self._timer = QTimer(self)
        self._timer.setInterval(redraw_ms)
        self._timer.timeout.connect(self.flush)
        self._timer.start()
        self._placeholder = pg.TextItem("Curves appear here when training starts.", color="#8a93a0", anchor=(0.5, 0.5))
        self.plots["loss"].addItem(self._placeholder, ignoreBounds=True)
        self._relayout()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._relayout()

    def _sync_ssim_view(self) -> None:
        q = self.plots["quality"]
        self._ssim_vb.setGeometry(q.vb.sceneBoundingRect())
        self._ssim_vb.linkedViewChanged(q.vb, self._ssim_vb.XAxis)

    def visible_plots(self) -> list[str]:
        return list(self._visible)

    def _relayout(self) -> None:
        """Show the loss plot and every other plot that has data, in a grid."""
        want = ["loss"] + [k for k, _ in PLOTS[1:] if k in self._series_plot.values()]
        cols = 1 if len(want) == 1 or self.width() < self.TWO_COLUMNS_MIN_WIDTH else 2
        if want == self._visible and cols == getattr(self, "_cols", None):
            return
        for k in self._visible:
            self.view.ci.removeItem(self.plots[k])
        self._visible = want
        cols = 1 if len(want) == 1 or self.width() < self.TWO_COLUMNS_MIN_WIDTH else 2
        self._cols = cols
        for i, k in enumerate(want):
            span = 2 if (cols == 2 and len(want) == 3 and i == 2) else 1
            self.view.ci.addItem(self.plots[k], row=i // cols, col=i % cols, colspan=span)
        self._ssim_vb.setVisible("quality" in want)
        self._sync_ssim_view()

    # ------------------------------------------------------------------ data
    def clear(self) -> None:
        for name, item in self._items.items():
            if item.getViewBox() is self._ssim_vb:
                self._ssim_vb.removeItem(item)
            else:
                self.plots[self._series_plot[name]].removeItem(item)
        for plot, line in self._stage_lines:
            plot.removeItem(line)
        for p in self.plots.values():
            if p.legend is not None:
                p.legend.clear()
        self._data.clear()
        self._items.clear()
        self._series_plot.clear()
        self._stages.clear()
        self._stage_lines.clear()
        self._last_step = 0.0
        self._placeholder.setVisible(True)
        self._dirty = False
        self._relayout()

    def series(self, name: str) -> tuple[list[float], list[float]]:
        """(steps, values) of a series, e.g. "train_loss", "valid_loss", "psnr", "batch_loss"."""
        xs, ys = self._data.get(name, ([], []))
        return list(xs), list(ys)

    def series_names(self) -> list[str]:
        return list(self._data)

    def point_count(self) -> int:
        return sum(len(xs) for xs, _ in self._data.values())

    def stages(self) -> list[tuple[float, str]]:
        return list(self._stages)

    def add_point(self, name: str, x: float, y: float, plot: str | None = None) -> None:
        fy = _finite(y)
        if fy is None:
            return
        if name not in self._data:
            self._data[name] = ([], [])
            self._series_plot[name] = plot or plot_for(name, per_batch=False)
        xs, ys = self._data[name]
        xs.append(float(x))
        ys.append(fy)
        self._last_step = max(self._last_step, float(x))
        self._dirty = True

    def add_stage(self, name: str, x: float | None = None) -> None:
        x = self._last_step if x is None else float(x)
        if self._stages and self._stages[-1] == (x, name):
            return
        self._stages.append((x, name))
        for key, plot in self.plots.items():
            line = pg.InfiniteLine(
                pos=x,
                angle=90,
                pen=pg.mkPen("#8a93a0", width=1, style=Qt.PenStyle.DashLine),
                label=name if key == "loss" else None,
                labelOpts={"position": 0.06, "color": "#5c6676", "anchors": [(0, 1), (0, 1)]},
            )
            plot.addItem(line, ignoreBounds=True)
            self._stage_lines.append((plot, line))

    def handle_event(self, ev: Event) -> None:
        """Add the points of a StageStart, BatchEnd or EpochEnd (other events are ignored)."""
        if isinstance(ev, StageStart):
            self.add_stage(ev.name)
        elif isinstance(ev, BatchEnd):
            self.add_point("batch_loss", ev.step, ev.smooth_loss, "loss")
            for k, v in ev.metrics.items():
                self.add_point(f"batch_{k}" if not k.startswith("batch_") else k, ev.step, v, plot_for(k, True))
        elif isinstance(ev, EpochEnd):
            for k, v in ev.metrics.items():
                if k.lower() in _NOT_SERIES:
                    continue
                self.add_point(k, ev.step, v, plot_for(k, False))
        else:
            return
        self.points_added.emit(self.point_count())

    def load_metrics_csv(self, path: str | Path) -> int:
        """Draw a run's metrics.csv (one row per epoch or per logging step). Returns rows read."""
        self.clear()
        rows = 0
        last_stage = None
        with open(path, newline="", encoding="utf-8") as f:
            for i, row in enumerate(csv.DictReader(f)):
                rows += 1
                x = _finite(row.get("step"))
                x = float(i) if x is None else x
                stage = row.get("stage")
                if stage and stage != last_stage:
                    self.add_stage(stage, x if last_stage is None else self._last_step)
                    last_stage = stage
                for k, v in row.items():
                    if k is None or k.lower() in _NOT_SERIES:
                        continue
                    self.add_point(k, x, v, plot_for(k, False))
        self.flush()
        return rows

    # ------------------------------------------------------------------ drawing
    def flush(self) -> None:
        """Push pending points to the plots (runs on a timer; call it to draw now)."""
        if not self._dirty:
            return
        self._dirty = False
        self._placeholder.setVisible(not self._data)
        self._relayout()
        for name, (xs, ys) in self._data.items():
            item = self._items.get(name)
            if item is None:
                item = self._make_item(name)
            item.setData(xs, ys)

    def _make_item(self, name: str) -> pg.PlotDataItem:
        key = self._series_plot[name]
        plot = self.plots[key]
        n = sum(1 for s, k in self._series_plot.items() if k == key and s in self._items)
        color = PALETTE[n % len(PALETTE)]
        per_epoch = not name.startswith("batch_")
        label = name.removeprefix("batch_").replace("_", " ")
        if name == "batch_loss":
            color, label = "#9cc3f0", "train (per batch)"
        elif name == "train_loss":
            color = "#2f7de1"
        elif name == "valid_loss":
            color = "#e8871e"
        if key == "quality" and "ssim" in name.lower():
            item = pg.PlotDataItem(
                [], [], pen=pg.mkPen("#2a9d4b", width=2), symbol="s", symbolSize=6,
                symbolBrush="#2a9d4b", symbolPen=None, name=label,
            )
            self._ssim_vb.addItem(item)
            if plot.legend is not None:
                plot.legend.addItem(item, label)
            self._items[name] = item
            return item
        if key == "quality" and "psnr" in name.lower():
            color = "#2f7de1"
        if per_epoch:
            item = plot.plot(
                [], [], pen=pg.mkPen(color, width=2), symbol="o", symbolSize=6,
                symbolBrush=color, symbolPen=None, name=label,
            )
        else:
            item = plot.plot([], [], pen=pg.mkPen(color, width=1), name=label)
        self._items[name] = item
        return item


class LrFinderPlot(QWidget):
    """Loss against learning rate (log x) with the suggested lr marked."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot_widget = pg.PlotWidget(title="LR finder")
        self.plot = self.plot_widget.getPlotItem()
        self.plot.setLogMode(x=True, y=False)
        self.plot.setLabel("bottom", "learning rate")
        self.plot.setLabel("left", "loss")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.curve = self.plot.plot([], [], pen=pg.mkPen("#2f7de1", width=2))
        self.marker = pg.InfiniteLine(angle=90, pen=pg.mkPen("#c0392b", width=1, style=Qt.PenStyle.DashLine))
        self.marker.setVisible(False)
        self.plot.addItem(self.marker, ignoreBounds=True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.plot_widget)
        self.lrs: list[float] = []
        self.losses: list[float] = []

    def set_data(self, lrs: list[float], losses: list[float], suggested: float | None = None) -> None:
        pairs = [(lr, lo) for lr, lo in zip(lrs, losses) if lr > 0 and _finite(lo) is not None]
        self.lrs = [p[0] for p in pairs]
        self.losses = [p[1] for p in pairs]
        self.curve.setData(self.lrs, self.losses)
        if self.losses:  # the diverging tail would squash the useful part
            lo, hi = min(self.losses), sorted(self.losses)[int(0.9 * (len(self.losses) - 1))]
            self.plot.setYRange(lo, hi + 0.1 * (hi - lo + 1e-8), padding=0.05)
        if suggested:
            self.marker.setPos(math.log10(suggested))
            self.marker.setVisible(True)
        else:
            self.marker.setVisible(False)

    def clear(self) -> None:
        self.set_data([], [], None)
