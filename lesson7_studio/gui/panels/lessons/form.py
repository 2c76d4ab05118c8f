"""The Lessons panel's form: lesson, model (with its size), data, device and the schedule."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from lesson7_studio.core import lessons, models
from lesson7_studio.core.errors import TrainingError

from ...widgets.common import button, human_count, label
from ...widgets.run_control import device_choices

DATA_CHOICES = {
    "resnet-mnist": [("MNIST (downloaded once)", "mnist"), ("scikit-learn digits, 28 px", "digits"),
                     ("Shapes (generated, no download)", "shapes")],
    "human-numbers": [("Generated (no download)", "")],
}


class LessonForm(QWidget):
    """Pick the lesson and model; the notebook's schedule fills in and can be edited.

    ``data_root()`` is the folder where the built-in digits and shapes sets are written."""

    lesson_changed = Signal(str)

    def __init__(self, device: str, data_root: Callable[[], Path], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.data_root = data_root
        setup = QGroupBox("Lesson")
        sf = QFormLayout(setup)
        self.lesson_combo = QComboBox()
        self.lesson_combo.setObjectName("lessonCombo")
        for name, les in lessons.LESSONS.items():
            self.lesson_combo.addItem(les.title, name)
        self.lesson_desc = label("", "hint", wrap=True)
        self.model_combo = QComboBox()
        self.model_combo.setObjectName("lessonModel")
        self.model_desc = label("", "hint", wrap=True)
        self.data_combo = QComboBox()
        self.data_combo.setObjectName("lessonData")
        self.data_button = button("Folder…", tooltip="Train on an image-class folder (DIR/train + DIR/valid, "
                                  "DIR/training + DIR/testing, or DIR/<class>), or a folder with train.txt/valid.txt")
        self.data_button.clicked.connect(self._choose_folder)
        drow = QVBoxLayout()
        drow.setSpacing(4)
        drow.addWidget(self.data_combo)
        drow.addWidget(self.data_button, 0, Qt.AlignmentFlag.AlignLeft)
        for c in (self.lesson_combo, self.model_combo, self.data_combo):
            c.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            c.setMinimumContentsLength(12)
        self.device_combo = QComboBox()
        for d in device_choices(device):
            self.device_combo.addItem(d, d)
        sf.addRow("Lesson", self.lesson_combo)
        sf.addRow(self.lesson_desc)
        sf.addRow("Model", self.model_combo)
        sf.addRow(self.model_desc)
        sf.addRow("Data", drow)
        sf.addRow("Device", self.device_combo)

        sched = QGroupBox("Schedule (fit_one_cycle)")
        hf = QFormLayout(sched)
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 1000)
        self.lr_edit = QLineEdit()
        self.lr_edit.setObjectName("lessonLr")
        self.bs_spin = QSpinBox()
        self.bs_spin.setRange(1, 4096)
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(0, 1_000_000)
        self.steps_spin.setSpecialValueText("all")
        self.steps_spin.setToolTip("Cap on training batches per epoch (quick experiments)")
        for w in (self.epochs_spin, self.lr_edit, self.bs_spin, self.steps_spin):
            w.setMaximumWidth(120)
        self.notebook_label = label("", "hint", wrap=True)
        self.reset_button = button("Lesson's schedule", tooltip="Epochs, learning rate and batch size of the notebook")
        self.reset_button.clicked.connect(self._fill_schedule)
        hf.addRow("Epochs", self.epochs_spin)
        hf.addRow("Max learning rate", self.lr_edit)
        hf.addRow("Batch size", self.bs_spin)
        hf.addRow("Batches/epoch", self.steps_spin)
        hf.addRow(self.notebook_label)
        hf.addRow(self.reset_button)

        ll = QVBoxLayout(self)
        ll.setContentsMargins(0, 0, 6, 0)
        ll.addWidget(setup)
        ll.addWidget(sched)
        ll.addStretch(1)
        self.lesson_combo.currentIndexChanged.connect(self._lesson_chosen)
        self.model_combo.currentIndexChanged.connect(self._model_chosen)

    def lesson_name(self) -> str:
        return self.lesson_combo.currentData()

    def arch(self) -> str:
        return self.model_combo.currentData()

    def _lesson_chosen(self, *_a) -> None:
        les = lessons.get_lesson(self.lesson_name())
        self.lesson_desc.setText(les.description)
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for arch in les.schedules:
            self.model_combo.addItem(f"{arch}  ({human_count(models.describe(arch).params)})", arch)
            self.model_combo.setItemData(self.model_combo.count() - 1, models.registry.entry(arch).description,
                                         Qt.ItemDataRole.ToolTipRole)
        self.model_combo.setCurrentIndex(max(0, self.model_combo.findData(les.default_arch)))
        self.model_combo.blockSignals(False)
        self.data_combo.clear()
        for text, value in DATA_CHOICES[les.name]:
            if value in ("digits", "shapes"):
                value = str(self.data_root() / "data" / value)
            self.data_combo.addItem(text, value)
        self._model_chosen()
        self.lesson_changed.emit(les.name)

    def _model_chosen(self, *_a) -> None:
        arch = self.arch()
        if not arch:
            return
        self.model_desc.setText(models.registry.entry(arch).description)
        self._fill_schedule()

    def _fill_schedule(self) -> None:
        les = lessons.get_lesson(self.lesson_name())
        s = les.schedules[self.arch()]
        self.epochs_spin.setValue(s.epochs)
        self.lr_edit.setText(f"{s.lr:g}")
        self.bs_spin.setValue(les.batch_size)
        extra = f", pct_start={s.pct_start}" if s.pct_start != 0.3 else ""
        bptt = f", bptt {s.bptt}" if s.bptt else ""
        nb = f" → accuracy {s.notebook_accuracy:.4f}" if s.notebook_accuracy else ""
        self.notebook_label.setText(f"Notebook: fit_one_cycle({s.epochs}, {s.lr:g}{extra}){bptt}, bs {les.batch_size}{nb}")

    def choose_model(self, arch: str) -> None:
        """Select ``arch`` (and its lesson) in the form."""
        lesson = lessons.lesson_of_arch(arch)
        self.lesson_combo.setCurrentIndex(self.lesson_combo.findData(lesson))
        self.model_combo.setCurrentIndex(self.model_combo.findData(arch))

    def _choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Data folder")
        if path:
            self.set_data_folder(path)

    def set_data_folder(self, path: str | Path) -> None:
        path = str(path)
        i = self.data_combo.findData(path)
        if i < 0:
            self.data_combo.addItem(f"Folder: {Path(path).name}", path)
            i = self.data_combo.count() - 1
        self.data_combo.setCurrentIndex(i)

    def build_config(self, out: Path):
        try:
            lr = float(self.lr_edit.text())
        except ValueError:
            raise TrainingError(f"The learning rate '{self.lr_edit.text()}' is not a number (e.g. 0.01).") from None
        steps = self.steps_spin.value() or None
        return lessons.lesson_config(self.lesson_name(), self.arch(), out=str(out), data=self.data_combo.currentData() or None,
                                     epochs=self.epochs_spin.value(), lr=lr, batch_size=self.bs_spin.value(),
                                     device=self.device_combo.currentData(), steps_per_epoch=steps)

    def set_lesson(self, name: str) -> None:
        """Show lesson ``name`` (its models, data and schedule); emits lesson_changed."""
        i = self.lesson_combo.findData(name)
        if i >= 0 and i != self.lesson_combo.currentIndex():
            self.lesson_combo.setCurrentIndex(i)
        else:
            self._lesson_chosen()

    def set_running(self, running: bool) -> None:
        for w in (self.lesson_combo, self.model_combo, self.data_combo, self.data_button, self.device_combo,
                  self.epochs_spin, self.lr_edit, self.bs_spin, self.steps_spin, self.reset_button):
            w.setEnabled(not running)
