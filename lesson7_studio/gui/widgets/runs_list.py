"""A list of runs with Open / Resume run / Show folder buttons, shared by the Train and Lessons panels.

The panel fills the rows (what a run is worth showing differs: PSNR for restoration runs,
accuracy for lesson runs) from core's run readers and wires the buttons; the list keeps each
row's run folder and the selection across refreshes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from .common import button

ROLE = Qt.ItemDataRole.UserRole


class RunsList(QWidget):
    """``headers``: the column titles; ``open_text``/``open_tip``: the first button (Open, Explore)."""

    def __init__(self, headers: Sequence[str], *, object_name: str, open_text: str, open_tip: str,
                 open_role: str = "", resume_tip: str = "Continue this run from its last checkpoint",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runs = QTreeWidget()
        self.runs.setObjectName(object_name)
        self.runs.setHeaderLabels(list(headers))
        self.runs.setRootIsDecorated(False)
        self.runs.setAlternatingRowColors(True)
        self.open_button = button(open_text, open_role, open_tip)
        self.resume_run_button = button("Resume run", tooltip=resume_tip)
        self.folder_button = button("Show folder")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.runs, 1)
        row = QHBoxLayout()
        row.addWidget(self.open_button)
        row.addWidget(self.resume_run_button)
        row.addStretch(1)
        row.addWidget(self.folder_button)
        lay.addLayout(row)

    def set_rows(self, rows: Iterable[tuple[Sequence[str], Path, str]]) -> None:
        """Replace the rows: (cells, run folder, status) each; the selected run stays selected."""
        sel = self.selected_run()
        self.runs.clear()
        for cells, path, status in rows:
            item = QTreeWidgetItem([str(c) for c in cells])
            item.setData(0, ROLE, str(path))
            item.setData(1, ROLE, status)
            item.setToolTip(0, str(path))
            self.runs.addTopLevelItem(item)
            if sel is not None and Path(path) == sel:
                item.setSelected(True)
        for c in range(self.runs.columnCount()):
            self.runs.resizeColumnToContents(c)

    def selected_run(self) -> Path | None:
        items = self.runs.selectedItems()
        return Path(items[0].data(0, ROLE)) if items else None

    def selected_status(self) -> str:
        items = self.runs.selectedItems()
        return str(items[0].data(1, ROLE) or "") if items else ""
