"""The Restore panel's form: the model, the inputs (with the file list) and the output options."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...widgets.model_picker import ModelPicker
from .file_list import FileListModel

FORMATS = [("Same as input", "keep"), ("PNG", "png"), ("JPEG", "jpg"), ("WebP", "webp"), ("TIFF", "tiff")]
TILES = [("Auto", None), ("128 px", 128), ("256 px", 256), ("512 px", 512), ("1024 px", 1024)]
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.tif *.tiff *.webp *.bmp *.gif *.heic *.heif);;All files (*)"
NO_INPUTS = "Drop images or folders here, or use the buttons."
ENSEMBLE_TIP = (
    "Self-ensemble: each tile is restored 8 times (flipped and turned) and the results averaged:\n"
    "about 8 times the time (8.5\u00d7 measured per image on a shared 2-core CPU).\n"
    "It can help a model that treats directions differently. The starter model gains almost\n"
    "nothing: +0.017 dB on average on Kodak24, from \u22120.22 dB (kodim03) to +0.40 dB (kodim08),\n"
    "13 of 24 images better (benchmarks/bench_ensemble.py). Other models are not measured.")


class ModelBox(QGroupBox):
    """The model to restore with: the shared picker (a combo box and an Import button)."""

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__("Model", parent)
        lay = QHBoxLayout(self)
        self.picker = ModelPicker(ctx, self, multiple=False, dir_key="restore/model_dir", import_text="Import\u2026")
        lay.addWidget(self.picker, 1)


class InputBox(QGroupBox):
    """Buttons to add files or folders, the (lazy) list of the files found, and their count."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Input", parent)
        lay = QVBoxLayout(self)
        row = QHBoxLayout()
        self.add_files_button = QPushButton("Add files\u2026", self)
        self.add_folder_button = QPushButton("Add folder\u2026", self)
        self.clear_button = QPushButton("Clear", self)
        for b in (self.add_files_button, self.add_folder_button, self.clear_button):
            row.addWidget(b)
        row.addStretch(1)
        lay.addLayout(row)
        self.file_model = FileListModel(self)
        self.file_list = QListView(self)
        self.file_list.setModel(self.file_model)
        self.file_list.setUniformItemSizes(True)
        self.file_list.setLayoutMode(QListView.LayoutMode.Batched)
        self.file_list.setBatchSize(500)
        self.file_list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.file_list.setAcceptDrops(False)
        self.file_list.setToolTip("Drop image files or folders here")
        lay.addWidget(self.file_list, 1)
        self.count_label = QLabel(NO_INPUTS, self)
        self.count_label.setWordWrap(True)
        lay.addWidget(self.count_label)


def _combo(parent: QWidget, items: list[tuple[str, object]]) -> QComboBox:
    combo = QComboBox(parent)
    for text, val in items:
        combo.addItem(text, val)
    return combo


class OutputBox(QGroupBox):
    """The output folder and the options of the restore, initialised from the settings."""

    def __init__(self, settings, device: str, parent: QWidget | None = None) -> None:
        super().__init__("Output", parent)
        grid = QGridLayout(self)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        row = QHBoxLayout()
        self.dst_edit = QLineEdit(self)
        self.dst_edit.setPlaceholderText("Output folder")
        self.dst_edit.setText(str(settings.value("restore/dst", "")))
        row.addWidget(self.dst_edit, 1)
        self.dst_button = QPushButton("Choose\u2026", self)
        row.addWidget(self.dst_button)
        grid.addLayout(row, 0, 0, 1, 4)
        self._checks(grid, settings)
        grid.addWidget(QLabel("Format", self), 3, 0)
        self.format_combo = _combo(self, FORMATS)
        self.format_combo.setCurrentIndex(max(0, self.format_combo.findData(settings.value("restore/format", "keep"))))
        grid.addWidget(self.format_combo, 3, 1)
        grid.addWidget(QLabel("Tiles", self), 3, 2)
        self.tile_combo = _combo(self, TILES)
        self.tile_combo.setToolTip("Large photos are restored in tiles; Auto picks the size from free memory")
        grid.addWidget(self.tile_combo, 3, 3)
        grid.addWidget(QLabel("Device", self), 4, 0)
        devices = ["cpu"] + ([device] if device != "cpu" else [])
        self.device_combo = _combo(self, [(d.upper() if d != "mps" else "Apple GPU (MPS)", d) for d in devices])
        self.device_combo.setCurrentIndex(max(0, self.device_combo.findData(device)))
        grid.addWidget(self.device_combo, 4, 1)

    def _checks(self, grid: QGridLayout, settings) -> None:
        self.recursive_check = QCheckBox("Include subfolders", self)
        self.recursive_check.setChecked(bool(settings.value("restore/recursive", True)))
        grid.addWidget(self.recursive_check, 1, 0, 1, 2)
        self.keep_tree_check = QCheckBox("Keep folder tree", self)
        self.keep_tree_check.setChecked(bool(settings.value("restore/keep_tree", True)))
        grid.addWidget(self.keep_tree_check, 1, 2, 1, 2)
        self.skip_check = QCheckBox("Skip existing outputs", self)
        self.skip_check.setToolTip("Resume an interrupted batch: files already written are left alone")
        self.skip_check.setChecked(bool(settings.value("restore/skip_existing", False)))
        grid.addWidget(self.skip_check, 2, 0, 1, 2)
        self.ensemble_check = QCheckBox("Best quality (8\u00d7 slower)", self)
        self.ensemble_check.setToolTip(ENSEMBLE_TIP)
        self.ensemble_check.setChecked(bool(settings.value("restore/ensemble", False)))
        grid.addWidget(self.ensemble_check, 2, 2, 1, 2)

    def options(self) -> dict:
        """The restore options as keyword arguments of core.restore.restore_inputs."""
        return dict(recursive=self.recursive_check.isChecked(), keep_tree=self.keep_tree_check.isChecked(),
                    skip_existing=self.skip_check.isChecked(), out_format=self.format_combo.currentData(),
                    tile=self.tile_combo.currentData(), device=self.device_combo.currentData(),
                    ensemble=self.ensemble_check.isChecked())

    def remember(self, settings) -> None:
        """Keep the choices for the next session."""
        settings.set_value("restore/keep_tree", self.keep_tree_check.isChecked())
        settings.set_value("restore/skip_existing", self.skip_check.isChecked())
        settings.set_value("restore/ensemble", self.ensemble_check.isChecked())
        settings.set_value("restore/format", self.format_combo.currentData())
