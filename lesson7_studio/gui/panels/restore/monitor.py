"""The Restore panel's monitor: Start / Cancel / Open, the progress of the batch (images, speed,
ETA, tiles inside a big image), the summary, and a table of the files that failed."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from lesson7_studio.core.events import Progress
from lesson7_studio.core.units import format_rate

SEP = "  \u00b7  "


def fmt_eta(s: float | None) -> str:
    if s is None:
        return "\u2014"
    s = int(round(s))
    h, m = divmod(s, 3600)
    m, sec = divmod(m, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def summary_text(summary) -> str:
    """What a finished batch did, for the status line (no final full stop)."""
    speed = summary.speed_text  # "12.3 MP/s", "6.1 kpx/s, 1.0 s an image": never "0.00 MP/s"
    text = f"Done: {summary.done:,} restored"
    if summary.skipped:
        text += f", {summary.skipped:,} skipped"
    if summary.failed:
        text += f", {len(summary.failed):,} failed (listed below)"
    text += f" in {summary.seconds:.1f} s"
    if speed:
        text += f" ({speed})"
    several = summary.first_frame_only
    if several:  # animated GIFs, multi-page TIFFs: only their first frame is restored
        names = ", ".join(Path(p).name for p, _n in several[:3]) + (", ..." if len(several) > 3 else "")
        text += (f"; {len(several):,} file{'s' if len(several) != 1 else ''} with several frames "
                 f"({names}): only the first frame was restored")
    return text


class RunMonitor(QWidget):
    """Buttons, progress bar, status line and failures table of a batch restore."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.start_button = QPushButton("Start", self)
        self.start_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel", self)
        self.open_button = QPushButton("Open output folder", self)
        for b in (self.start_button, self.cancel_button, self.open_button):
            row.addWidget(b)
        row.addStretch(1)
        lay.addLayout(row)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("Not started")
        lay.addWidget(self.progress)
        self.status_label = QLabel("", self)
        self.status_label.setWordWrap(True)
        lay.addWidget(self.status_label)
        self.failures_label = QLabel("", self)
        lay.addWidget(self.failures_label)
        self.failures = self._failures_table()
        lay.addWidget(self.failures, 1)
        self.failures.setVisible(False)  # shown with the first failure
        self.failures_label.setVisible(False)
        lay.addStretch(0)
        self._overall = ""  # the batch's own progress line, under which tile progress is added

    def _failures_table(self) -> QTableWidget:
        t = QTableWidget(0, 2, self)
        t.setHorizontalHeaderLabels(["File", "Reason"])
        t.verticalHeader().setVisible(False)
        t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        t.setWordWrap(False)
        hh = t.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        hh.resizeSection(0, 200)
        t.setMinimumHeight(80)
        return t

    def set_status(self, text: str) -> None:
        self.status_label.setText(text)

    def begin(self, n: int) -> None:
        """A new batch of ``n`` files: no failures, the bar at 0 of n."""
        self.failures.setRowCount(0)
        self.failures.setVisible(False)
        self.failures_label.setVisible(False)
        self.progress.setRange(0, max(1, n))
        self.progress.setValue(0)
        self.progress.setFormat("%v / %m")

    def show_progress(self, ev: Progress) -> None:
        """The batch's progress (images, speed, ETA), or the tiles done inside one big image."""
        if ev.stage == "tiles":
            if ev.total > 1:
                tiles = f"{ev.message}: tile {ev.done:,} / {ev.total:,}"
                self.set_status(f"{self._overall}{SEP}{tiles}" if self._overall else tiles)
            return
        if not ev.total:
            return
        self.progress.setRange(0, ev.total)
        self.progress.setValue(ev.done)
        parts = [f"{ev.done:,} / {ev.total:,}"]
        if ev.rate:
            parts.append(format_rate(ev.rate, ev.rate_unit))  # "6.1 kpx/s", never "0.00 MP/s"
        parts.append(f"ETA {fmt_eta(ev.eta_s)}" if ev.done < ev.total else "finishing\u2026")
        if ev.message:
            parts.append(ev.message)
        self._overall = SEP.join(parts)
        self.set_status(self._overall)

    def add_failure(self, path: Path, reason: str) -> bool:
        """List a failed file; True when it is the first (the table has just been shown)."""
        r = self.failures.rowCount()
        self.failures.insertRow(r)
        name = QTableWidgetItem(Path(path).name)
        name.setToolTip(str(path))
        why = QTableWidgetItem(reason)
        why.setToolTip(reason)
        self.failures.setItem(r, 0, name)
        self.failures.setItem(r, 1, why)
        n = r + 1
        self.failures_label.setText(f"{n} file{'s' if n != 1 else ''} could not be restored:")
        if not self.failures.isHidden():
            return False
        self.failures.setVisible(True)
        self.failures_label.setVisible(True)
        return True

    def failure_rows(self) -> list[tuple[str, str]]:
        return [(self.failures.item(r, 0).toolTip(), self.failures.item(r, 1).text())
                for r in range(self.failures.rowCount())]

    def finish(self, summary) -> str:
        """Show a finished batch's summary; returns the text."""
        self.progress.setValue(self.progress.maximum())
        text = summary_text(summary)
        self.set_status(text + ".")
        return text
