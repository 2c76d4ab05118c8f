"""The one model picker of the Compare and Restore panels.

It lists, in this order: the bundled starter model(s), the project's models and finished runs
(``ctx.available_models()``), the newest checkpoint of each unfinished run
(:func:`lesson7_studio.core.runs.run_checkpoints`), then the files the user imported
(``ctx.imported_models``, kept once in the app context, so an import in one panel shows in the
other and survives a restart). ``multiple=True`` shows a list with a tick per model (Compare),
``multiple=False`` a combo box with one current model (Restore). The starter model, listed
first, is the default. It refreshes itself when the project, its models or the imports change.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from lesson7_studio.core.runs import run_checkpoints

MODEL_FILTER = "Models (*.safetensors *.pth *.pt *.ckpt *.onnx);;All files (*)"
NO_MODEL = "No model yet: import one or train one"
_PATH = Qt.ItemDataRole.UserRole


def model_entries(ctx) -> list[tuple[str, Path, str]]:
    """(label, path, source) of every model the pickers offer; source: "starter", "project",
    "run", "checkpoint" or "file" (imported)."""
    out = [(c.label, Path(c.path), getattr(c, "source", "")) for c in ctx.available_models()]
    out += run_checkpoints(ctx.project)
    known = {p for _l, p, _s in out}
    out += [(f"File: {p.name}", Path(p), "file") for p in ctx.imported_models if Path(p) not in known]
    return out


class ModelPicker(QWidget):
    """Pick one model (a combo box) or several (a ticked list), or import a model file."""

    changed = Signal()  # the user ticked / chose another model (not emitted by a refresh)
    refreshed = Signal()  # the list was filled again (the project, its models or the imports changed)

    def __init__(self, ctx, parent: QWidget | None = None, *, multiple: bool = True,
                 dir_key: str = "compare/model_dir", import_text: str = "Import model\u2026") -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.multiple = multiple
        self._dir_key = dir_key
        self.import_button = QPushButton(import_text, self)
        self.import_button.setToolTip("A .safetensors of this app, or a .pth/.onnx upscaler")
        self.import_button.clicked.connect(self.import_dialog)
        self.model_list: QListWidget | None = None
        self.model_combo: QComboBox | None = None
        if multiple:
            self._build_list()
        else:
            self._build_combo()
        self.refresh()
        ctx.models_changed.connect(self.refresh)
        ctx.project_changed.connect(self._on_project_changed)
        ctx.imported_models_changed.connect(self.refresh)

    def _build_list(self) -> None:
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.model_list = QListWidget(self)
        self.model_list.setToolTip("Tick the models to run; each result can be compared")
        self.model_list.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.model_list.setMinimumHeight(60)
        self.model_list.setMaximumHeight(170)
        self.model_list.itemChanged.connect(lambda _it: self.changed.emit())
        lay.addWidget(self.model_list, 1)
        row = QHBoxLayout()
        row.addWidget(self.import_button)
        row.addStretch(1)
        lay.addLayout(row)

    def _build_combo(self) -> None:
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.model_combo = QComboBox(self)
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(12)
        self.model_combo.currentIndexChanged.connect(lambda _i: self.changed.emit())
        lay.addWidget(self.model_combo, 1)
        lay.addWidget(self.import_button)

    # ------------------------------------------------------------------ listing
    def _on_project_changed(self, _project) -> None:
        self.refresh()

    def refresh(self) -> None:
        """List the models again, keeping the ticks (or the current model)."""
        entries = model_entries(self.ctx)
        if self.multiple:
            self._fill_list(entries)
        else:
            self._fill_combo(entries)
        self.refreshed.emit()

    def _fill_list(self, entries: list[tuple[str, Path, str]]) -> None:
        lst = self.model_list
        checked = {lst.item(i).data(_PATH) for i in range(lst.count())
                   if lst.item(i).checkState() == Qt.CheckState.Checked}
        first_time = lst.count() == 0
        lst.blockSignals(True)
        lst.clear()
        for label, path, _source in entries:
            it = QListWidgetItem(label)
            it.setData(_PATH, str(path))
            it.setToolTip(str(path))
            it.setFlags(it.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            it.setCheckState(Qt.CheckState.Checked if str(path) in checked else Qt.CheckState.Unchecked)
            lst.addItem(it)
        if (first_time or not checked) and lst.count():
            lst.item(0).setCheckState(Qt.CheckState.Checked)  # the starter model (listed first)
        lst.blockSignals(False)

    def _fill_combo(self, entries: list[tuple[str, Path, str]]) -> None:
        combo = self.model_combo
        cur = combo.currentData()
        combo.blockSignals(True)
        combo.clear()
        for label, path, _source in entries:
            combo.addItem(label, str(path))
            combo.setItemData(combo.count() - 1, str(path), Qt.ItemDataRole.ToolTipRole)
        if combo.count() == 0:
            combo.addItem(NO_MODEL, None)
        idx = combo.findData(cur) if cur is not None else -1
        combo.setCurrentIndex(idx if idx >= 0 else 0)  # the starter model is first
        combo.blockSignals(False)

    def count(self) -> int:
        """How many models are listed."""
        if self.multiple:
            return self.model_list.count()
        return sum(1 for i in range(self.model_combo.count()) if self.model_combo.itemData(i))

    def paths(self) -> list[Path]:
        """Every listed model's path, in order."""
        if self.multiple:
            return [Path(self.model_list.item(i).data(_PATH)) for i in range(self.model_list.count())]
        return [Path(d) for i in range(self.model_combo.count()) if (d := self.model_combo.itemData(i))]

    # ------------------------------------------------------------------ choosing
    def selected(self) -> list[tuple[str, Path]]:
        """(label, path) of the ticked models (``multiple``) or of the current one."""
        if not self.multiple:
            p = self.path()
            return [(self.model_combo.currentText(), p)] if p is not None else []
        out = []
        for i in range(self.model_list.count()):
            it = self.model_list.item(i)
            if it.checkState() == Qt.CheckState.Checked:
                out.append((it.text(), Path(it.data(_PATH))))
        return out

    def path(self) -> Path | None:
        """The current model (``multiple=False``) or the first ticked one."""
        if self.multiple:
            sel = self.selected()
            return sel[0][1] if sel else None
        d = self.model_combo.currentData()
        return Path(d) if d else None

    def set_models(self, paths: list[Path | str]) -> None:
        """Tick exactly these models (importing the files not listed yet); with one model
        (``multiple=False``) make the first the current one."""
        paths = [Path(p) for p in paths]
        for p in paths:
            self._ensure_listed(p)
        if not self.multiple:
            if paths:
                self.model_combo.setCurrentIndex(self.model_combo.findData(str(paths[0])))
            return
        want = {str(p) for p in paths}
        for i in range(self.model_list.count()):
            it = self.model_list.item(i)
            it.setCheckState(Qt.CheckState.Checked if it.data(_PATH) in want else Qt.CheckState.Unchecked)

    def set_model(self, path: Path | str) -> None:
        """Make ``path`` the current model (``multiple=False``) or tick it too (``multiple``)."""
        self.add_model(Path(path))

    def add_model(self, path: Path) -> None:
        """List ``path`` (imported unless listed already) and tick it / make it current."""
        self._ensure_listed(path)
        if self.multiple:
            for i in range(self.model_list.count()):
                it = self.model_list.item(i)
                if it.data(_PATH) == str(path):
                    it.setCheckState(Qt.CheckState.Checked)
        else:
            self.model_combo.setCurrentIndex(self.model_combo.findData(str(path)))

    def _ensure_listed(self, path: Path) -> None:
        if path not in self.paths():
            self.ctx.add_imported_model(path)  # the context's signal refreshes every picker
            if path not in self.paths():  # already imported but not listed here yet
                self.refresh()

    def import_dialog(self) -> None:
        start = str(self.ctx.settings.value(self._dir_key, str(Path.home())))
        path, _ = QFileDialog.getOpenFileName(self, "Import a model", start, MODEL_FILTER)
        if path:
            self.ctx.settings.set_value(self._dir_key, str(Path(path).parent))
            self.add_model(Path(path))
