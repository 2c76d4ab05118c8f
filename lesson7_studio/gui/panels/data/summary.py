"""The dialog that closes a build: counts, and every skipped file with its reason."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from ...widgets.common import label


class BuildSummaryDialog(QDialog):
    """What the builder did, with every skipped file and its reason."""

    def __init__(self, summary: Any, parent: QWidget | None = None, *, cancelled: bool = False) -> None:
        super().__init__(parent)
        self.setObjectName("buildSummary")
        self.setWindowTitle("Dataset built" if not cancelled else "Dataset build cancelled")
        self.resize(640, 380)
        lay = QVBoxLayout(self)
        failed = list(getattr(summary, "failed", []))
        head = (
            f"<b>{summary.dst.name}</b>: {summary.built} new pairs, "
            f"{summary.skipped_existing} already there, {len(failed)} skipped "
            f"({summary.train} train / {summary.valid} valid) in {summary.seconds:.1f} s."
        )
        lay.addWidget(label(head, wrap=True))
        lay.addWidget(label(str(summary.dst), "hint", selectable=True))
        self.table = QTreeWidget()
        self.table.setHeaderLabels(["Skipped file", "Reason"])
        self.table.setRootIsDecorated(False)
        for path, reason in failed:
            it = QTreeWidgetItem([str(path), str(reason)])
            it.setToolTip(0, str(path))
            it.setToolTip(1, str(reason))
            self.table.addTopLevelItem(it)
        self.table.resizeColumnToContents(0)
        if failed:
            lay.addWidget(self.table, 1)
        else:
            lay.addWidget(label("No file was skipped.", "ok"))
            lay.addStretch(1)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok)
        box.accepted.connect(self.accept)
        lay.addWidget(box)
