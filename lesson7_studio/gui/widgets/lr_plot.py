"""The LR finder's plot: smoothed loss against learning rate on a plain log axis, drawn point by
point as the sweep runs, with the suggested learning rate marked on the curve and the rule that
picked it."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QVBoxLayout, QWidget

from lesson7_studio.core.events import format_lr

from .curves import _finite  # also applies the plots' shared pyqtgraph options


class PlainLogAxis(pg.AxisItem):
    """A log-mode axis labelled 1e-5, 1e-4 ... (decades only; minor ticks unlabelled)."""

    def logTickStrings(self, values, scale, spacing):  # noqa: N802 - pyqtgraph's name
        out = []
        for v in values:
            e = float(v) + math.log10(scale) if scale else float(v)
            out.append(f"1e{round(e)}" if abs(e - round(e)) < 1e-6 else "")
        return out


class LrFinderPlot(QWidget):
    """Smoothed loss against learning rate (log x), drawn point by point during the sweep, with
    the suggested learning rate marked on the curve and the rule that picked it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot_widget = pg.PlotWidget(title="LR finder", axisItems={"bottom": PlainLogAxis("bottom")})
        self.plot = self.plot_widget.getPlotItem()
        self.plot.setLogMode(x=True, y=False)
        self.plot.setLabel("bottom", "learning rate (log scale)")
        self.plot.setLabel("left", "training loss (smoothed)")
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)  # no "(x1e-06)" beside 1e-1 ... 1e2
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.curve = self.plot.plot([], [], pen=pg.mkPen("#2f7de1", width=2))
        self.marker = pg.InfiniteLine(angle=90, pen=pg.mkPen("#c0392b", width=1, style=Qt.PenStyle.DashLine))
        self.marker.setVisible(False)
        self.plot.addItem(self.marker, ignoreBounds=True)
        self.dot = self.plot.plot([], [], pen=None, symbol="o", symbolSize=11, symbolBrush=None,
                                  symbolPen=pg.mkPen("#c0392b", width=2))
        self.note = pg.TextItem("", color="#c0392b", anchor=(0, 1))
        self.note.setVisible(False)
        self.plot.addItem(self.note, ignoreBounds=True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.plot_widget)
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.suggested: float | None = None
        self.rule = ""

    # -- during the sweep
    def start_sweep(self) -> None:
        self.clear()
        self.plot.setTitle("LR finder: sweeping…")

    def add_point(self, lr: float, loss: float) -> None:
        if lr > 0 and _finite(loss) is not None:
            self.lrs.append(float(lr))
            self.losses.append(float(loss))
            self._redraw()

    # -- at the end
    def set_data(self, lrs: list[float], losses: list[float], suggested: float | None = None,
                 rule: str = "") -> None:
        pairs = [(lr, lo) for lr, lo in zip(lrs, losses) if lr > 0 and _finite(lo) is not None]
        self.lrs = [p[0] for p in pairs]
        self.losses = [p[1] for p in pairs]
        self.suggested = suggested if suggested and suggested > 0 else None
        self.rule = rule
        self.plot.setTitle("LR finder")
        self._redraw()

    def suggestion_point(self) -> tuple[float, float] | None:
        """(lr, loss) of the marked suggestion on the curve, or None."""
        if self.suggested is None or not self.lrs:
            return None
        x = np.log10(np.asarray(self.lrs))
        return self.suggested, float(np.interp(math.log10(self.suggested), x, np.asarray(self.losses)))

    def _redraw(self) -> None:
        self.curve.setData(self.lrs, self.losses)
        if self.losses:  # the diverging tail would squash the useful part
            lo, hi = min(self.losses), sorted(self.losses)[int(0.9 * (len(self.losses) - 1))]
            self.plot.setYRange(lo, hi + 0.1 * (hi - lo + 1e-8), padding=0.05)
        pt = self.suggestion_point()
        if pt is None:
            self.marker.setVisible(False)
            self.dot.setData([], [])
            self.note.setVisible(False)
            return
        lx = math.log10(pt[0])
        self.marker.setPos(lx)
        self.marker.setVisible(True)
        self.dot.setData([pt[0]], [pt[1]])
        rule = self.rule.split(":", 1)[0] if self.rule else "suggested"
        self.note.setText(f"{rule}: {format_lr(pt[0])}")
        self.note.setPos(lx, pt[1])
        self.note.setVisible(True)

    def clear(self) -> None:
        self.set_data([], [], None)
