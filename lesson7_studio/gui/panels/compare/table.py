"""The Compare panel's metrics table: PSNR / SSIM of each result (bicubic first), gain, time."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QSplitter, QTableWidget, QTableWidgetItem, QWidget

from .sources import BICUBIC, Source

TABLE_ROWS = 4  # rows the metrics table shows without scrolling: bicubic and three models
GT_COLUMNS = [("Image", None), ("Y-PSNR", "psnr_y"), ("PSNR", "psnr"), ("Y-SSIM", "ssim_y"),
              ("SSIM", "ssim"), ("\u0394 Y-PSNR vs bicubic", "gain"), ("Time", "time")]
GT_TIP = "Against the ground truth; PSNR in dB, higher is better; border of scale px cropped"
NO_GT_COLUMNS = [("Image", None), ("PSNR vs bicubic", "psnr_bic"), ("Time", "time")]
NO_GT_TIP = ("No ground truth for this image: how far each result moved from a plain bicubic "
             "upscale (lower PSNR = bigger change). Pick a dataset image to measure quality.")


def fmt(v: float | None, unit: str = "") -> str:
    """A metric for the table: dB with 2 decimals, SSIM with 4; a dash when missing."""
    if v is None:
        return "\u2014"
    if v == float("inf"):
        return "\u221e"
    return f"{v:.2f}{unit}" if unit == " dB" else f"{v:.4f}"


def cell_text(key: str, column: str | None, m: dict[str, float], label: str, seconds: float | None,
              base: float | None) -> str:
    """The text of one cell: row ``key`` (BICUBIC or a model), metric ``column``."""
    if column is None:
        return label
    if column == "gain":
        v = m.get("psnr_y")
        return "" if (key == BICUBIC or v is None or base is None) else f"{round(v - base, 2) + 0.0:+.2f} dB"
    if column == "time":
        return f"{seconds:.1f} s" if seconds else ""
    if column.startswith("psnr"):
        return fmt(m.get(column), " dB") if column in m else ("\u2014" if key != BICUBIC else "")
    return fmt(m.get(column)) if column in m else "\u2014"


class MetricsTable(QTableWidget):
    """One row per result; the columns depend on whether there is a ground truth."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, 0, parent)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.verticalHeader().setVisible(False)
        self.setAlternatingRowColors(True)
        self.setMinimumHeight(70)
        self.setVisible(False)  # until there is something to measure

    def show_metrics(self, metrics: dict[str, dict[str, float]], sources: dict[str, Source],
                     seconds: dict[str, float], notes: dict[str, str], has_gt: bool) -> None:
        cols, tip = (GT_COLUMNS, GT_TIP) if has_gt else (NO_GT_COLUMNS, NO_GT_TIP)
        keys = ([BICUBIC] if BICUBIC in metrics and has_gt else []) + [k for k in metrics if k != BICUBIC]
        self.clear()
        self.setColumnCount(len(cols))
        self.setRowCount(len(keys))
        self.setHorizontalHeaderLabels([c for c, _k in cols])
        self.horizontalHeader().setToolTip(tip)
        self.setToolTip(tip)
        base = metrics.get(BICUBIC, {}).get("psnr_y")
        for r, k in enumerate(keys):
            src = sources.get(k)
            label = src.label if src is not None else k
            for c, (_name, mk) in enumerate(cols):
                item = QTableWidgetItem(cell_text(k, mk, metrics[k], label, seconds.get(k), base))
                if mk is not None:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if notes.get(k):
                    item.setToolTip(notes[k])
                self.setItem(r, c, item)
        self.setVisible(bool(keys))
        hh = self.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in range(1, len(cols)):
            hh.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)

    def fit(self, splitter: QSplitter) -> None:
        """Make the table tall enough for its rows (bicubic and up to TABLE_ROWS - 1 models;
        more scroll): ``splitter`` (table below the views) gives it that height."""
        rows = min(max(self.rowCount(), 2), TABLE_ROWS)
        header = self.horizontalHeader()
        row_h = self.verticalHeader().defaultSectionSize() if self.rowCount() == 0 else self.rowHeight(0)
        need = header.sizeHint().height() + rows * row_h + 2 * self.frameWidth()
        if self.horizontalScrollBar().isVisible():
            need += self.horizontalScrollBar().sizeHint().height()
        self.setMinimumHeight(need)
        sizes = splitter.sizes()
        if len(sizes) == 2 and self.isVisible() and sizes[1] < need:
            total = sum(sizes)
            splitter.setSizes([max(total - need, 0), need])
