"""The row that picks the photo folder: recent folders, a chooser, and how many photos it holds."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QWidget

from ...widgets.common import button, label


class FolderBar(QWidget):
    """Recent folders in a combo box and a "Choose folder…" button; ``folder_chosen`` carries
    the folder the user picked (the panel decides what to do with it)."""

    folder_chosen = Signal(object)  # Path

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.folder_combo = QComboBox()
        self.folder_combo.setObjectName("folderCombo")
        self.folder_combo.setMinimumContentsLength(20)
        self.folder_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.folder_combo.setToolTip("Recent photo folders")
        self.folder_combo.activated.connect(self._recent_chosen)
        self.choose_button = button("Choose folder…", tooltip="A folder of photos (subfolders included). "
                                    "You can also drop a folder on this panel.")
        self.choose_button.clicked.connect(self.choose_folder)
        self.count_label = label("Drop a folder of photos here, or choose one.", "hint")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(label("Photos"))
        row.addWidget(self.folder_combo, 1)
        row.addWidget(self.choose_button)
        row.addWidget(self.count_label)
        self._current: Path | None = None

    def show_folders(self, recent: list[str], current: Path | None) -> None:
        """List ``recent`` with ``current`` selected (added on top when it is not among them)."""
        self._current = current
        combo = self.folder_combo
        combo.blockSignals(True)
        combo.clear()
        for p in recent:
            combo.addItem(p, p)
        if current is not None:
            i = combo.findData(str(current))
            if i < 0:
                combo.insertItem(0, str(current), str(current))
                i = 0
            combo.setCurrentIndex(i)
        else:
            combo.setCurrentIndex(-1)
            combo.setPlaceholderText("No folder chosen")
        combo.blockSignals(False)

    def _recent_chosen(self, index: int) -> None:
        path = self.folder_combo.itemData(index)
        if path and Path(path) != self._current:
            self.folder_chosen.emit(Path(path))

    def choose_folder(self) -> None:
        start = str(self._current or Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder of photos", start)
        if folder:
            self.folder_chosen.emit(Path(folder))
