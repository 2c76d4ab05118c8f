"""Live training curves (pyqtgraph).

``TrainingCurves`` takes the core's training events (StageStart, BatchEnd, EpochEnd) or a run's
metrics.csv and draws four plots against the global step: loss (train per batch, train and
valid per epoch), quality (PSNR/SSIM), loss components, and generator/critic losses in GAN
stages. Stage boundaries are vertical lines on every plot. Redraws are batched on a timer so a
fast training loop never floods the event loop.

Readability: the PSNR axis never spans less than :data:`MIN_SPAN` ``["psnr"]`` dB (a 0.01 dB
wobble must not look like a cliff), each legend sits in the corner of its plot that covers the
fewest points (never the newest ones), and an empty chart says so in the middle of the widget.
The LR finder's plot is in :mod:`.lr_plot`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from lesson7_studio.core import runs as run_files
from lesson7_studio.core.events import BatchEnd, EpochEnd, Event, StageStart

pg.setConfigOptions(antialias=True, background="w", foreground="#34404f")

PALETTE = ["#2f7de1", "#e8871e", "#2a9d4b", "#c0392b", "#8e44ad", "#16a2b8", "#7f8c8d", "#d35400"]
PLOTS = [
    ("loss", "Loss"),
    ("quality", "Validation PSNR and SSIM"),
    ("components", "Loss components (per batch)"),
    ("gan", "GAN: generator and critic losses"),
]
MIN_SPAN = {"psnr": 1.0, "ssim": 0.02}  # smallest y span the quality axes zoom to
NEWEST_WEIGHT = 1000.0  # a legend over one of a series' newest points costs this many points
NEWEST_POINTS = 3
# legend corners as (item anchor, parent anchor, offset): top-right first (the default)
CORNERS = {
    "top-right": ((1, 0), (1, 0), (-4, 4)),
    "top-left": ((0, 0), (0, 0), (4, 4)),
    "bottom-right": ((1, 1), (1, 1), (-4, -4)),
    "bottom-left": ((0, 1), (0, 1), (4, -4)),
}
STAGE_LABEL_POS = 0.06  # where a stage's name sits on its line (a fraction of the height, from the bottom)
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
            p.addLegend(offset=(-4, 4), labelTextSize="8pt", verSpacing=-6, brush=pg.mkBrush(255, 255, 255, 215))
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
        self._placeholder = QLabel("Curves appear here when training starts.", self)
        self._placeholder.setObjectName("curvesPlaceholder")
        self._placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._placeholder.setStyleSheet("color: #8a93a0; background: transparent;")
        self._placeholder.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self._legend_corner: dict[str, str] = {}
        for key, p in self.plots.items():
            p.vb.sigResized.connect(lambda *_a, k=key: self._place_legend(k))
        self._relayout()
        self._place_placeholder()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._relayout()
        self._place_placeholder()

    def _place_placeholder(self) -> None:
        """Centred on the widget, as tall as its text needs (never cut off)."""
        ph = self._placeholder
        hint = ph.sizeHint()
        w = min(self.width(), max(hint.width() + 16, self.width() // 2))
        h = hint.height() + 8
        ph.setGeometry((self.width() - w) // 2, (self.height() - h) // 2, w, h)
        ph.raise_()

    def placeholder_visible(self) -> bool:
        return not self._placeholder.isHidden()

    def legend_corner(self, plot: str) -> str:
        return self._legend_corner.get(plot, "top-right")

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
        self._apply_min_spans()

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
                labelOpts={"position": STAGE_LABEL_POS, "color": "#5c6676", "anchors": [(0, 1), (0, 1)]},
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

    def load_metrics(self, source: str | Path) -> int:
        """Draw a run's metrics.csv (a run folder or the file; one row per epoch or per logging
        step), read by core. Returns the rows read (0 when there is none)."""
        self.clear()
        rows = run_files.read_metrics(source)
        last_stage = None
        for i, row in enumerate(rows):
            x = float(i) if row.step is None or not math.isfinite(row.step) else row.step
            if row.stage and row.stage != last_stage:
                self.add_stage(row.stage, x if last_stage is None else self._last_step)
                last_stage = row.stage
            for k, v in row.values.items():
                if k.lower() not in _NOT_SERIES:
                    self.add_point(k, x, v, plot_for(k, False))
        self.flush()
        return len(rows)

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
        self._apply_min_spans()
        for key in self._visible:
            self._place_legend(key)

    # ------------------------------------------------------------------ readability
    def _series_values(self, word: str) -> list[float]:
        return [y for n, (_x, ys) in self._data.items() if word in n.lower() and self._series_plot[n] == "quality"
                for y in ys]

    def _apply_min_spans(self) -> None:
        """Quality axes: automatic range, but never narrower than MIN_SPAN (centred on the data)."""
        q = self.plots["quality"]
        for word, vb in (("psnr", q.vb), ("ssim", self._ssim_vb)):
            ys = self._series_values(word)
            if not ys:
                vb.enableAutoRange(axis=pg.ViewBox.YAxis, enable=True)
                continue
            lo, hi = min(ys), max(ys)
            if hi - lo >= MIN_SPAN[word]:
                vb.enableAutoRange(axis=pg.ViewBox.YAxis, enable=True)
            else:
                mid, half = (lo + hi) / 2, MIN_SPAN[word] / 2
                vb.setYRange(mid - half, mid + half, padding=0.05)  # turns y auto-range off

    def y_span(self, plot: str, axis: str = "left") -> float:
        """Height of a plot's visible y range (``axis="right"``: the SSIM axis of the quality plot)."""
        vb = self._ssim_vb if axis == "right" else self.plots[plot].vb
        vb.updateAutoRange()
        (_x0, _x1), (y0, y1) = vb.viewRange()
        return y1 - y0

    def _points_of(self, key: str) -> list[tuple[np.ndarray, np.ndarray, "pg.ViewBox"]]:
        out = []
        for name, item in self._items.items():
            if self._series_plot.get(name) != key:
                continue
            xs, ys = self._data[name]
            vb = self._ssim_vb if item.getViewBox() is self._ssim_vb else self.plots[key].vb
            out.append((np.asarray(xs, dtype=float), np.asarray(ys, dtype=float), vb))
        return out

    def _place_legend(self, key: str) -> None:
        """Move the legend of plot ``key`` to the corner that covers the fewest points."""
        plot = self.plots[key]
        legend = plot.legend
        if legend is None or not self._items or key not in self._visible:
            return
        vb = plot.vb
        vw, vh = vb.width(), vb.height()
        lr = legend.boundingRect()
        if vw <= 0 or vh <= 0 or lr.width() <= 0:
            return
        fw, fh = min(1.0, (lr.width() + 8) / vw), min(1.0, (lr.height() + 8) / vh)
        boxes = {  # legend rectangles in fractions of the view, y upwards
            "top-right": (1 - fw, 1, 1 - fh, 1),
            "top-left": (0, fw, 1 - fh, 1),
            "bottom-right": (1 - fw, 1, 0, fh),
            "bottom-left": (0, fw, 0, fh),
        }
        series = self._points_of(key)
        fracs = []
        for xs, ys, svb in series:
            if not len(xs):
                continue
            svb.updateAutoRange()
            (x0, x1), (y0, y1) = svb.viewRange()
            fx = (xs - x0) / ((x1 - x0) or 1.0)
            fy = (ys - y0) / ((y1 - y0) or 1.0)
            w = np.ones(len(xs))
            w[-NEWEST_POINTS:] = NEWEST_WEIGHT
            fracs.append((fx, fy, w))
        if not fracs:
            return
        if key == "loss" and self._stages:  # the stage names sit low on their lines: keep the legend off them
            (x0, x1), _ = vb.viewRange()
            sx = (np.array([x for x, _ in self._stages]) - x0) / ((x1 - x0) or 1.0)
            fracs.append((sx, np.full(len(sx), STAGE_LABEL_POS), np.full(len(sx), NEWEST_WEIGHT / 2)))

        def cost(box) -> float:
            a, b, c, d = box
            return float(sum(((fx >= a) & (fx <= b) & (fy >= c) & (fy <= d)) @ w for fx, fy, w in fracs))

        current = self._legend_corner.get(key, "top-right")
        best = min(boxes, key=lambda k: (cost(boxes[k]), k != current, list(CORNERS).index(k)))
        if best != current or key not in self._legend_corner:
            item_pos, parent_pos, offset = CORNERS[best]
            legend.anchor(itemPos=item_pos, parentPos=parent_pos, offset=offset)
            self._legend_corner[key] = best

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
