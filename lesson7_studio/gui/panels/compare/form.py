"""The Compare panel's side column: the image to restore (a file or a dataset's valid image), the
models to restore it with, the restore controls and Save."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from lesson7_studio.core.compare import dataset_valid_images, find_same_stem, valid_entry

from ...widgets.common import LinesLabel
from ...widgets.elided_combo import ElidedComboBox
from ...widgets.model_picker import ModelPicker
from .sources import TILE_CHOICES


class ImageBox(QGroupBox):
    """Open images, the list of those opened, and a dataset's valid images (with ground truth)."""

    pair_chosen = Signal(object, object)  # (lr, hr) of the valid image picked
    status = Signal(str)

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__("Image", parent)
        self.ctx = ctx
        self._current: tuple[Path, Path | None] | None = None  # the (input, ground truth) shown
        self.items: list[tuple[Path, Path | None]] = []  # the images opened, as in image_combo
        gl = QVBoxLayout(self)
        row = QHBoxLayout()
        self.open_button = QPushButton("Open image\u2026", self)
        self.open_button.setToolTip("Open one or more images (or drop them on this panel)")
        row.addWidget(self.open_button)
        row.addStretch(1)
        gl.addLayout(row)
        row = QHBoxLayout()
        self.image_combo = ElidedComboBox(self, 14, "Images opened in this panel")
        row.addWidget(self.image_combo, 1)
        gl.addLayout(row)
        gl.addLayout(self._build_dataset_form())
        # two lines whatever the image (name + size, ground truth): the Models list never moves
        self.image_info = LinesLabel("Open an image or drop one here.", 2, self)
        self.image_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        gl.addWidget(self.image_info)

    def _build_dataset_form(self) -> QFormLayout:
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.dataset_combo = ElidedComboBox(self, 10, "A paired dataset of this project: its valid images "
                                                      "have a ground truth")
        self.dataset_combo.currentIndexChanged.connect(self._dataset_changed)
        form.addRow("Dataset", self.dataset_combo)
        self.valid_combo = ElidedComboBox(self, 10, "Pick a validation image: the crappified version is "
                                                    "restored and the original is the ground truth")
        self.valid_combo.setPlaceholderText("Pick one\u2026")
        self.valid_combo.activated.connect(self.valid_chosen)
        valid_caption = QLabel("Valid", self)
        valid_caption.setToolTip("A validation image of the dataset (it has a ground truth)")
        form.addRow(valid_caption, self.valid_combo)
        return form

    # ------------------------------------------------------------------ opened images
    def add_items(self, items: list[tuple[Path, Path | None]]) -> None:
        """Add (input, ground truth) items to the list of opened images (once each)."""
        for it in items:
            if it not in self.items:
                self.items.append(it)
                label = it[0].name + ("  \u00b7 with GT" if it[1] is not None else "")
                self.image_combo.addItem(label)
                self.image_combo.setItemData(self.image_combo.count() - 1, str(it[0]), Qt.ItemDataRole.ToolTipRole)

    def show_info(self, path: Path, img, gt) -> None:
        """Name, size and depth of the input ``img`` read from ``path`` (ImageData), and of the ground truth."""
        h, w = img.rgb.shape[:2]
        text = f"{path.name}: {w}\u00d7{h}, {img.bit_depth}-bit {img.format or ''}".strip()
        if gt is not None:
            gh, gw = gt.rgb.shape[:2]
            text += f"\nGround truth: {gw}\u00d7{gh}"
        self.image_info.set_full_text(text)
        self.image_info.setToolTip(text.replace(path.name, str(path), 1))

    # ------------------------------------------------------------------ datasets
    def refresh_datasets(self, current: tuple[Path, Path | None] | None) -> None:
        """List the project's datasets that have valid images (keeping the one chosen)."""
        chosen = self.dataset_combo.currentData()
        self.dataset_combo.blockSignals(True)
        self.dataset_combo.clear()
        try:
            datasets = self.ctx.project.list_datasets()
        except OSError:
            datasets = []
        for ds in datasets:
            if ds.n_valid:
                self.dataset_combo.addItem(ds.name, str(ds.path))
                self.dataset_combo.setItemData(self.dataset_combo.count() - 1,
                                               f"{ds.path}\n{ds.n_valid} valid image{'s' if ds.n_valid != 1 else ''}",
                                               Qt.ItemDataRole.ToolTipRole)
        if self.dataset_combo.count() == 0:
            self.dataset_combo.addItem("No dataset with valid images", None)
        idx = self.dataset_combo.findData(chosen)
        self.dataset_combo.setCurrentIndex(max(idx, 0))
        self.dataset_combo.blockSignals(False)
        self._current = current
        self._dataset_changed()

    def _dataset_changed(self, *_a) -> None:
        self.valid_combo.clear()
        root = self.dataset_combo.currentData()
        self.dataset_combo.setEnabled(root is not None)
        if root is None:
            self.valid_combo.setEnabled(False)
            return
        for rel in dataset_valid_images(root):
            self.valid_combo.addItem(rel, rel)
        self.valid_combo.setEnabled(self.valid_combo.count() > 0)
        self.sync_valid(self._current)

    def sync_valid(self, current: tuple[Path, Path | None] | None) -> None:
        """Select the valid image that is shown (``current``), or nothing when it came from elsewhere."""
        self._current = current
        index = -1
        if current is not None and current[1] is not None:
            root = self.dataset_combo.currentData()
            found = valid_entry(current[0])
            if found is not None and root is not None and Path(root).resolve() != found[0]:
                k = self._dataset_index(found[0])
                if k >= 0:
                    self.dataset_combo.setCurrentIndex(k)  # refills the valid combo and syncs it again
                    return
            if found is not None and root is not None and Path(root).resolve() == found[0]:
                index = self.valid_combo.findData(found[1])
        self.valid_combo.setCurrentIndex(index)

    def _dataset_index(self, root: Path) -> int:
        k = self.dataset_combo.findData(str(root))
        if k < 0:
            k = next((j for j in range(self.dataset_combo.count()) if self.dataset_combo.itemData(j)
                      and Path(self.dataset_combo.itemData(j)).resolve() == root), -1)
        return k

    def select_dataset(self, dataset: Path | str | None) -> bool:
        """Choose ``dataset`` (default: the demo dataset, else the first); False when not listed."""
        if dataset is not None:
            i = self.dataset_combo.findData(str(Path(dataset).resolve()))
            if i < 0:
                i = self.dataset_combo.findData(str(dataset))
        else:
            from lesson7_studio.core.project import DEMO_DATASET

            i = next((k for k in range(self.dataset_combo.count())
                      if self.dataset_combo.itemData(k) and Path(self.dataset_combo.itemData(k)).name == DEMO_DATASET),
                     0)
        if i < 0 or self.dataset_combo.itemData(i) is None:
            return False
        self.dataset_combo.setCurrentIndex(i)
        return True

    def valid_chosen(self, _i: int) -> None:
        """Open the valid image chosen (its lr input with the hr ground truth)."""
        root, rel = self.dataset_combo.currentData(), self.valid_combo.currentData()
        if root is None or rel is None:
            return
        lr = find_same_stem(Path(root) / "lr", Path(rel))
        hr = find_same_stem(Path(root) / "hr", Path(rel))
        if lr is None or hr is None:
            self.status.emit(f"The pair for {rel} is missing in {root}.")
            return
        self.pair_chosen.emit(lr, hr)


class ModelsBox(QGroupBox):
    """The model picker (several models ticked), tiles, Restore on open, Restore / Cancel, progress."""

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__("Models", parent)
        self.ctx = ctx
        ml = QVBoxLayout(self)
        self.picker = ModelPicker(ctx, self, multiple=True, dir_key="compare/model_dir")
        self.model_list = self.picker.model_list
        self.import_button = self.picker.import_button
        ml.addWidget(self.picker, 1)
        row = QHBoxLayout()
        tiles_caption = QLabel("Tiles", self)
        row.addWidget(tiles_caption)
        self.tile_combo = QComboBox(self)
        for text, val in TILE_CHOICES:
            self.tile_combo.addItem(text, val)
        self.tile_combo.setToolTip("Restore large images in tiles to save memory")
        tiles_caption.setToolTip(self.tile_combo.toolTip())
        row.addWidget(self.tile_combo, 1)
        ml.addLayout(row)
        self.auto_check = QCheckBox("Restore on open", self)
        self.auto_check.setToolTip("Restore with the ticked models as soon as an image is opened")
        self.auto_check.setChecked(bool(ctx.settings.value("compare/auto_restore", True)))
        self.auto_check.toggled.connect(lambda v: ctx.settings.set_value("compare/auto_restore", bool(v)))
        ml.addWidget(self.auto_check)
        ml.addLayout(self._build_run_row())
        self.progress = QProgressBar(self)
        self.progress.setTextVisible(True)
        self.progress.setMaximumHeight(18)
        ml.addWidget(self.progress)
        self.status_label = QLabel("", self)
        self.status_label.setWordWrap(True)
        ml.addWidget(self.status_label)

    def _build_run_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.restore_button = QPushButton("Restore", self)
        self.restore_button.setDefault(True)
        row.addWidget(self.restore_button, 1)
        self.cancel_button = QPushButton("Cancel", self)
        row.addWidget(self.cancel_button)
        return row


class CompareForm(QWidget):
    """The side column: ImageBox, ModelsBox and Save result."""

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # the layout gives the minimum width (an explicit smaller one would clip the controls)
        self.setMaximumWidth(330)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        sl = QVBoxLayout(self)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.setSpacing(8)
        self.image_box = ImageBox(ctx, self)
        sl.addWidget(self.image_box)
        self.models_box = ModelsBox(ctx, self)
        sl.addWidget(self.models_box)
        sl.addStretch(1)
        self.save_button = QPushButton("Save result\u2026", self)
        self.save_button.setToolTip("Save the image shown as After (full resolution, metadata kept)")
        sl.addWidget(self.save_button)
        # a little wider than its contents need, so that names read well; never below their minimum
        self.setMinimumWidth(max(280, sl.minimumSize().width()))
