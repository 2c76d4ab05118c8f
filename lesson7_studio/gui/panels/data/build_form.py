"""The "Build dataset" box: name, validation share, size cap, workers, Build / Cancel, progress."""

from __future__ import annotations

import os
import re

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFormLayout, QGroupBox, QHBoxLayout, QLineEdit, QProgressBar, QSpinBox, QWidget

from lesson7_studio.core.events import Event, Log, Progress

from ...widgets.common import button, label


def safe_name(text: str) -> str:
    """A folder name made of letters, digits, '.', '_' and '-' ("dataset" when nothing is left)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._") or "dataset"


class BuildForm(QGroupBox):
    """The build's settings and controls; ``build_requested`` / ``cancel_requested`` are the
    buttons, ``max_size_changed`` the size cap (it changes the pairs, so the preview follows)."""

    build_requested = Signal()
    cancel_requested = Signal()
    max_size_changed = Signal()

    def __init__(self, settings, parent: QWidget | None = None) -> None:
        super().__init__("Build dataset", parent)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("name (a folder under the project's datasets/)")
        self.name_edit.textEdited.connect(lambda _t: self.name_edit.setProperty("auto", False))
        self.valid_spin = _spin(0, 90, settings.value("data/valid_pct", 10), " %",
                                "Share of the photos kept aside to measure the model")
        self.max_size_spin = _spin(0, 16384, settings.value("data/max_size", 1024), " px",
                                   "Longest side of the originals is reduced to this first")
        self.max_size_spin.setSingleStep(128)
        self.max_size_spin.setSpecialValueText("no limit")
        self.max_size_spin.valueChanged.connect(lambda _v: self.max_size_changed.emit())
        self.variants_spin = _spin(0, 64, settings.value("data/variants", 0), "",
                                   "Degrade every photo this many times, each differently (another JPEG quality, "
                                   "another place for the number): more to learn from a small folder. auto: enough "
                                   "for about 120 pairs (4 for 30 photos), 1 from 120 photos on")
        self.variants_spin.setSpecialValueText("auto")
        cpus = max(1, os.cpu_count() or 1)
        self.workers_spin = _spin(1, cpus, min(settings.value("data/workers", 2), cpus), "",
                                  "Processes used to build the pairs")
        self.build_button = button("Build dataset", "primary")
        self.build_button.clicked.connect(self.build_requested)
        self.cancel_button = button("Cancel", "danger")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.progress = QProgressBar()
        self.progress.setValue(0)
        self.progress.setFormat("%v / %m")
        self.progress.setVisible(False)
        self.build_status = label("", "hint", wrap=True)
        self._layout()

    def _layout(self) -> None:
        bf = QFormLayout(self)
        bf.addRow("Name", self.name_edit)
        bf.addRow("Validation", self.valid_spin)
        bf.addRow("Variants", self.variants_spin)
        bf.addRow("Max size", self.max_size_spin)
        bf.addRow("Workers", self.workers_spin)
        brow = QHBoxLayout()
        brow.addWidget(self.build_button, 1)
        brow.addWidget(self.cancel_button)
        bf.addRow(brow)
        bf.addRow(self.progress)
        bf.addRow(self.build_status)

    def name_is_auto(self) -> bool:
        return not self.name_edit.text() or bool(self.name_edit.property("auto"))

    def set_auto_name(self, text: str) -> None:
        self.name_edit.setText(safe_name(text))
        self.name_edit.setProperty("auto", True)

    def max_size(self) -> int | None:
        return self.max_size_spin.value() or None

    def variants(self) -> int | None:
        """Degraded pairs per photo; None for auto (the builder chooses from the folder's size)."""
        return self.variants_spin.value() or None

    def valid_pct(self) -> float:
        return self.valid_spin.value() / 100.0

    def set_building(self, building: bool) -> None:
        """Enable Cancel or Build and show or hide the progress bar. The focus moves to the
        button enabled first: a disabled focused button would pass the focus down the tab
        chain, and the scroll area would scroll to wherever it lands (the top of the column)."""
        on, off = (self.cancel_button, self.build_button) if building else (self.build_button, self.cancel_button)
        on.setEnabled(True)
        if off.hasFocus():
            on.setFocus(Qt.FocusReason.OtherFocusReason)
        off.setEnabled(False)
        self.progress.setVisible(building)
        if building:
            self.progress.setRange(0, 0)

    def show_event(self, ev: Event) -> None:
        """A build event in the progress bar and the status line."""
        if isinstance(ev, Progress):
            self.progress.setRange(0, max(ev.total, 1))
            self.progress.setValue(ev.done)
            eta = f", {ev.eta_s:.0f} s left" if ev.eta_s is not None else ""
            rate = f"{ev.rate:.1f} {ev.rate_unit}" if ev.rate else ""
            self.build_status.setText(f"{ev.done}/{ev.total} {rate}{eta}")
        elif isinstance(ev, Log):
            self.build_status.setText(ev.message)

    def save_settings(self, s) -> None:
        s.set_value("data/valid_pct", self.valid_spin.value())
        s.set_value("data/variants", self.variants_spin.value())
        s.set_value("data/max_size", self.max_size_spin.value())
        s.set_value("data/workers", self.workers_spin.value())


def _spin(lo: int, hi: int, value: int, suffix: str, tooltip: str) -> QSpinBox:
    w = QSpinBox()
    w.setRange(lo, hi)
    if suffix:
        w.setSuffix(suffix)
    w.setValue(value)
    w.setToolTip(tooltip)
    w.setMaximumWidth(130)
    return w
