"""Restore panel: a model, input files or a folder, an output folder, options; preview the first
image, then restore the batch in a worker with progress, cancel and a table of failures."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QSize, Qt, QUrl
from PySide6.QtGui import QBrush, QColor, QDesktopServices, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListView,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from lesson7_studio.core.events import (
    Event,
    Finished,
    ItemDone,
    ItemFailed,
    ItemSkipped,
    Progress,
    RateMeter,
    check,
    emit,
)
from lesson7_studio.core.units import format_rate

from ..widgets.image_view import SplitView, ZoomBar
from ..widgets.common import invalidate_layouts

FORMATS = [("Same as input", "keep"), ("PNG", "png"), ("JPEG", "jpg"), ("WebP", "webp"), ("TIFF", "tiff")]
TILES = [("Auto", None), ("128 px", 128), ("256 px", 256), ("512 px", 512), ("1024 px", 1024)]
MODEL_FILTER = "Models (*.safetensors *.pth *.pt *.ckpt *.onnx);;All files (*)"
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.tif *.tiff *.webp *.bmp *.gif *.heic *.heif);;All files (*)"
FETCH_CHUNK = 2000


# ----------------------------------------------------------------------------- worker side
@dataclass
class Found(Event):
    """A batch of image files found while scanning the inputs."""

    paths: list[Path]


def scan_job(inputs: list[Path], recursive: bool, *, on_event=None, cancel=None) -> int:
    """Emit the image files of ``inputs`` (files as given, folders scanned) in batches."""
    from lesson7_studio.core import images

    batch: list[Path] = []
    n = 0
    for inp in inputs:
        it = images.iter_images(inp, recursive=recursive) if inp.is_dir() else iter([inp])
        for p in it:
            batch.append(p)
            n += 1
            if len(batch) >= 500:
                check(cancel)
                emit(on_event, Found(batch))
                batch = []
    if batch:
        emit(on_event, Found(batch))
    return n


def _load_model(path: Path, device: str | None, cache: dict | None):
    from lesson7_studio.core import restore

    key = (str(path), device)
    if cache is not None and key in cache:
        return cache[key]
    model = restore.load_any_model(path, device=device)
    if cache is not None:
        cache.clear()  # keep one model in memory
        cache[key] = model
    return model


def preview_job(model_path: Path, image_path: Path, *, tile: int | None = None, device: str | None = None,
                ensemble: bool = False, cache: dict | None = None, on_event=None,
                cancel=None) -> tuple[Any, Any, float]:
    """(input ImageData, restored ImageData, seconds) of one image."""
    from lesson7_studio.core import images, restore

    model = _load_model(model_path, device, cache)
    img = images.load_image(image_path)
    check(cancel)
    t0 = time.perf_counter()
    out = restore.restore_image(model, img, tile=tile, device=device, ensemble=ensemble, on_event=on_event,
                                cancel=cancel)
    return img, out, time.perf_counter() - t0


def batch_job(model_path: Path, inputs: list[Path], dst: Path, *, recursive: bool = True, keep_tree: bool = True,
              skip_existing: bool = False, out_format: str = "keep", tile: int | None = None,
              device: str | None = None, ensemble: bool = False, cache: dict | None = None, on_event=None,
              cancel=None):
    """Restore ``inputs`` into ``dst`` with core.restore.restore_folder; returns a RestoreSummary.

    One folder: its tree goes to ``dst``. Several inputs: files go to ``dst``, each folder to
    ``dst/<folder name>``; progress counts over all of them."""
    from lesson7_studio.core import images, restore

    model = _load_model(model_path, device, cache)
    opts = dict(recursive=recursive, keep_tree=keep_tree, skip_existing=skip_existing, out_format=out_format,
                tile=tile, device=device, ensemble=ensemble)
    if len(inputs) == 1:
        return restore.restore_folder(model, inputs[0], dst, on_event=on_event, cancel=cancel, **opts)
    counts = [sum(1 for _ in images.iter_images(p, recursive=recursive)) if p.is_dir() else 1 for p in inputs]
    total = sum(counts)
    summary = restore.RestoreSummary(dst=Path(dst), total=total)
    meter = RateMeter(total)
    t0 = time.perf_counter()
    offset = 0
    mp_now = [0.0]  # megapixels of the input being restored now

    def relay(ev: Event) -> None:
        if isinstance(ev, Progress) and ev.stage == "tiles":  # inside one image: passed on as it is
            emit(on_event, ev)
        elif isinstance(ev, Progress):
            done = offset + ev.done
            _r, eta = meter.update(done)
            el = time.perf_counter() - t0
            mp = summary.megapixels + mp_now[0]
            emit(on_event, Progress(done, total, message=ev.message, stage=ev.stage,
                                    rate=mp / el if el > 0 and mp else None, rate_unit="MP/s", eta_s=eta))
        elif isinstance(ev, ItemDone):
            mp_now[0] += float(ev.info.get("megapixels", 0.0))
            emit(on_event, ev)
        elif not isinstance(ev, Finished):  # one Finished per input folder: not passed on
            emit(on_event, ev)

    for inp, n in zip(inputs, counts):
        check(cancel)
        mp_now[0] = 0.0
        out = Path(dst) / inp.name if inp.is_dir() else Path(dst)
        s = restore.restore_folder(model, inp, out, on_event=relay, cancel=cancel, **opts)
        summary.done += s.done
        summary.skipped += s.skipped
        summary.failed.extend(s.failed)
        summary.first_frame_only.extend(s.first_frame_only)
        summary.megapixels += s.megapixels
        offset += n
    summary.seconds = time.perf_counter() - t0
    return summary


# ----------------------------------------------------------------------------- file list
class FileListModel(QAbstractListModel):
    """Image files to restore, shown relative to their input; rows are exposed lazily (fetchMore)
    so that a folder of many thousands of files keeps the view responsive. Each file can carry a
    state ("done", "failed", "skipped") with a reason."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._paths: list[Path] = []
        self._names: list[str] = []
        self._row: dict[Path, int] = {}
        self._shown = 0
        self._state: dict[int, tuple[str, str]] = {}
        self._roots: list[Path] = []

    def set_roots(self, roots: list[Path]) -> None:
        self._roots = [r for r in roots if r.is_dir()]

    def clear(self) -> None:
        self.beginResetModel()
        self._paths, self._names, self._row, self._state, self._shown = [], [], {}, {}, 0
        self.endResetModel()

    def add(self, paths: list[Path]) -> None:
        for p in paths:
            if p in self._row:
                continue
            self._row[p] = len(self._paths)
            self._paths.append(p)
            self._names.append(self._display_name(p))
        if self._shown < min(len(self._paths), FETCH_CHUNK):  # show the first rows at once
            self.fetchMore(QModelIndex())

    def _display_name(self, p: Path) -> str:
        for r in self._roots:
            try:
                return str(p.relative_to(r))
            except ValueError:
                continue
        return p.name

    def total(self) -> int:
        return len(self._paths)

    def paths(self) -> list[Path]:
        return list(self._paths)

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else self._shown

    def canFetchMore(self, parent=QModelIndex()) -> bool:  # noqa: N802
        return not parent.isValid() and self._shown < len(self._paths)

    def fetchMore(self, parent=QModelIndex()) -> None:  # noqa: N802
        if parent.isValid():
            return
        n = min(FETCH_CHUNK, len(self._paths) - self._shown)
        if n <= 0:
            return
        self.beginInsertRows(QModelIndex(), self._shown, self._shown + n - 1)
        self._shown += n
        self.endInsertRows()

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= self._shown:
            return None
        r = index.row()
        state = self._state.get(r)
        if role == Qt.ItemDataRole.DisplayRole:
            mark = {"done": "\u2713 ", "failed": "\u2717 ", "skipped": "\u2013 "}.get(state[0], "") if state else ""
            return mark + self._names[r]
        if role == Qt.ItemDataRole.ToolTipRole:
            return str(self._paths[r]) + (f"\n{state[0]}: {state[1]}" if state and state[1] else "")
        if role == Qt.ItemDataRole.ForegroundRole and state:
            return QBrush({"done": QColor(40, 150, 60), "failed": QColor(200, 40, 40),
                           "skipped": QColor(130, 130, 130)}[state[0]])
        if role == Qt.ItemDataRole.UserRole:
            return str(self._paths[r])
        return None

    def set_state(self, path: Path, state: str, reason: str = "") -> None:
        r = self._row.get(Path(path))
        if r is None:
            return
        self._state[r] = (state, reason)
        if r < self._shown:
            idx = self.index(r)
            self.dataChanged.emit(idx, idx)

    def state(self, path: Path) -> str | None:
        r = self._row.get(Path(path))
        s = self._state.get(r) if r is not None else None
        return s[0] if s else None

    def clear_states(self) -> None:
        self._state.clear()
        if self._shown:
            self.dataChanged.emit(self.index(0), self.index(self._shown - 1))


def _fmt_eta(s: float | None) -> str:
    if s is None:
        return "\u2014"
    s = int(round(s))
    h, m = divmod(s, 3600)
    m, sec = divmod(m, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class RestorePanel(QWidget):
    """Batch restoration of files or folders with the chosen model."""

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setAcceptDrops(True)
        self._inputs: list[Path] = []
        self._imported: list[Path] = [Path(p) for p in ctx.settings.value("models/imported", []) if Path(p).is_file()]
        self._cache: dict = {}
        self._scan = None
        self._rescan_pending = False
        self._worker = None
        self._preview_worker = None
        self._summary = None
        self._last_dst: Path | None = None
        self._build()
        self.refresh_models()
        ctx.models_changed.connect(self.refresh_models)
        ctx.project_changed.connect(self._on_project_changed)
        self._update_controls()
        invalidate_layouts(self)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        root = QHBoxLayout(self)
        root.setContentsMargins(8, 8, 8, 8)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.setChildrenCollapsible(False)
        root.addWidget(split)

        left = QWidget(split)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.setSpacing(8)

        g = QGroupBox("Model", left)
        gl = QHBoxLayout(g)
        self.model_combo = QComboBox(g)
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(12)
        gl.addWidget(self.model_combo, 1)
        self.import_button = QPushButton("Import\u2026", g)
        self.import_button.setToolTip("A .safetensors of this app, or a .pth/.onnx upscaler")
        self.import_button.clicked.connect(self._import_dialog)
        gl.addWidget(self.import_button)
        ll.addWidget(g)

        g = QGroupBox("Input", left)
        gl = QVBoxLayout(g)
        row = QHBoxLayout()
        self.add_files_button = QPushButton("Add files\u2026", g)
        self.add_files_button.clicked.connect(self._add_files_dialog)
        row.addWidget(self.add_files_button)
        self.add_folder_button = QPushButton("Add folder\u2026", g)
        self.add_folder_button.clicked.connect(self._add_folder_dialog)
        row.addWidget(self.add_folder_button)
        self.clear_button = QPushButton("Clear", g)
        self.clear_button.clicked.connect(self.clear_inputs)
        row.addWidget(self.clear_button)
        row.addStretch(1)
        gl.addLayout(row)
        self.file_model = FileListModel(self)
        self.file_list = QListView(g)
        self.file_list.setModel(self.file_model)
        self.file_list.setUniformItemSizes(True)
        self.file_list.setLayoutMode(QListView.LayoutMode.Batched)
        self.file_list.setBatchSize(500)
        self.file_list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.file_list.setAcceptDrops(False)
        self.file_list.setToolTip("Drop image files or folders here")
        self.file_list.doubleClicked.connect(self._preview_index)
        gl.addWidget(self.file_list, 1)
        self.count_label = QLabel("Drop images or folders here, or use the buttons.", g)
        self.count_label.setWordWrap(True)
        gl.addWidget(self.count_label)
        ll.addWidget(g, 1)

        g = QGroupBox("Output", left)
        grid = QGridLayout(g)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        row = QHBoxLayout()
        self.dst_edit = QLineEdit(g)
        self.dst_edit.setPlaceholderText("Output folder")
        self.dst_edit.setText(str(self.ctx.settings.value("restore/dst", "")))
        self.dst_edit.textChanged.connect(lambda _t: self._update_controls())
        row.addWidget(self.dst_edit, 1)
        self.dst_button = QPushButton("Choose\u2026", g)
        self.dst_button.clicked.connect(self._dst_dialog)
        row.addWidget(self.dst_button)
        grid.addLayout(row, 0, 0, 1, 4)
        s = self.ctx.settings
        self.recursive_check = QCheckBox("Include subfolders", g)
        self.recursive_check.setChecked(bool(s.value("restore/recursive", True)))
        self.recursive_check.toggled.connect(self._recursive_toggled)
        grid.addWidget(self.recursive_check, 1, 0, 1, 2)
        self.keep_tree_check = QCheckBox("Keep folder tree", g)
        self.keep_tree_check.setChecked(bool(s.value("restore/keep_tree", True)))
        grid.addWidget(self.keep_tree_check, 1, 2, 1, 2)
        self.skip_check = QCheckBox("Skip existing outputs", g)
        self.skip_check.setToolTip("Resume an interrupted batch: files already written are left alone")
        self.skip_check.setChecked(bool(s.value("restore/skip_existing", False)))
        grid.addWidget(self.skip_check, 2, 0, 1, 2)
        self.ensemble_check = QCheckBox("Best quality (8× slower)", g)
        self.ensemble_check.setToolTip(
            "Self-ensemble: each tile is restored 8 times (flipped and turned) and the results averaged:\n"
            "about 8 times the time (8.5\u00d7 measured per image on a shared 2-core CPU).\n"
            "It can help a model that treats directions differently. The starter model gains almost\n"
            "nothing: +0.017 dB on average on Kodak24, from \u22120.22 dB (kodim03) to +0.40 dB (kodim08),\n"
            "13 of 24 images better (benchmarks/bench_ensemble.py). Other models are not measured.")
        self.ensemble_check.setChecked(bool(s.value("restore/ensemble", False)))
        grid.addWidget(self.ensemble_check, 2, 2, 1, 2)
        grid.addWidget(QLabel("Format", g), 3, 0)
        self.format_combo = QComboBox(g)
        for text, val in FORMATS:
            self.format_combo.addItem(text, val)
        self.format_combo.setCurrentIndex(max(0, self.format_combo.findData(s.value("restore/format", "keep"))))
        grid.addWidget(self.format_combo, 3, 1)
        grid.addWidget(QLabel("Tiles", g), 3, 2)
        self.tile_combo = QComboBox(g)
        for text, val in TILES:
            self.tile_combo.addItem(text, val)
        self.tile_combo.setToolTip("Large photos are restored in tiles; Auto picks the size from free memory")
        grid.addWidget(self.tile_combo, 3, 3)
        grid.addWidget(QLabel("Device", g), 4, 0)
        self.device_combo = QComboBox(g)
        devices = ["cpu"] + ([self.ctx.device] if self.ctx.device != "cpu" else [])
        for d in devices:
            self.device_combo.addItem(d.upper() if d != "mps" else "Apple GPU (MPS)", d)
        self.device_combo.setCurrentIndex(max(0, self.device_combo.findData(self.ctx.device)))
        grid.addWidget(self.device_combo, 4, 1)
        ll.addWidget(g)

        right = QSplitter(Qt.Orientation.Vertical, split)
        right.setChildrenCollapsible(False)
        self._right_split = right
        g = QGroupBox("Preview", right)
        gl = QVBoxLayout(g)
        self.preview = SplitView(g, before_label="Input", after_label="Restored",
                                 placeholder="Press \u201cPreview first image\u201d to see what the model "
                                             "does before restoring the whole batch.")
        self.preview.setAcceptDrops(False)
        self.preview.viewport().setAcceptDrops(False)
        gl.addWidget(self.preview, 1)
        row = QHBoxLayout()
        self.preview_button = QPushButton("Preview first image", g)
        self.preview_button.setToolTip("Restore the first (or the selected) file and show it here")
        self.preview_button.clicked.connect(self.preview_first)
        row.addWidget(self.preview_button)
        self.preview_label = QLabel("", g)
        row.addWidget(self.preview_label, 1)
        row.addWidget(ZoomBar(self.preview, g))
        gl.addLayout(row)

        run = QWidget(right)
        rl = QVBoxLayout(run)
        rl.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.start_button = QPushButton("Start", run)
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        row.addWidget(self.start_button)
        self.cancel_button = QPushButton("Cancel", run)
        self.cancel_button.clicked.connect(self.cancel)
        row.addWidget(self.cancel_button)
        self.open_button = QPushButton("Open output folder", run)
        self.open_button.clicked.connect(self.open_output)
        row.addWidget(self.open_button)
        row.addStretch(1)
        rl.addLayout(row)
        self.progress = QProgressBar(run)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("Not started")
        rl.addWidget(self.progress)
        self.status_label = QLabel("", run)
        self.status_label.setWordWrap(True)
        rl.addWidget(self.status_label)
        self.failures_label = QLabel("", run)
        rl.addWidget(self.failures_label)
        self.failures = QTableWidget(0, 2, run)
        self.failures.setHorizontalHeaderLabels(["File", "Reason"])
        self.failures.verticalHeader().setVisible(False)
        self.failures.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.failures.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.failures.setWordWrap(False)
        hh = self.failures.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        hh.resizeSection(0, 200)
        self.failures.setMinimumHeight(80)
        rl.addWidget(self.failures, 1)
        self.failures.setVisible(False)  # shown with the first failure
        self.failures_label.setVisible(False)
        rl.addStretch(0)
        right.addWidget(g)
        right.addWidget(run)
        right.setStretchFactor(0, 1)
        right.setStretchFactor(1, 0)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setSizes([380, 620])

    def _on_project_changed(self, _project) -> None:
        self.refresh_models()

    # ------------------------------------------------------------------ panel protocol
    def on_shown(self) -> None:
        self.refresh_models()

    def is_busy(self) -> bool:
        return any(w is not None and w.is_running() for w in (self._worker, self._preview_worker))

    def shutdown(self) -> None:
        for w in (self._scan, self._worker, self._preview_worker):
            if w is not None:
                w.cancel()
        for w in (self._scan, self._worker, self._preview_worker):
            if w is not None:
                w.wait(10000)

    # ------------------------------------------------------------------ models
    def refresh_models(self) -> None:
        cur = self.model_combo.currentData()
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        seen = set()
        from .compare import run_checkpoints

        choices = [(c.label, c.path) for c in self.ctx.available_models()]
        choices += [(label, path) for label, path, _s in run_checkpoints(self.ctx.project)]
        for label, path in choices:
            self.model_combo.addItem(label, str(path))
            self.model_combo.setItemData(self.model_combo.count() - 1, str(path), Qt.ItemDataRole.ToolTipRole)
            seen.add(str(path))
        for p in self._imported:
            if str(p) not in seen:
                self.model_combo.addItem(f"File: {p.name}", str(p))
                self.model_combo.setItemData(self.model_combo.count() - 1, str(p), Qt.ItemDataRole.ToolTipRole)
        if self.model_combo.count() == 0:
            self.model_combo.addItem("No model yet: import one or train one", None)
        idx = self.model_combo.findData(cur) if cur is not None else -1
        self.model_combo.setCurrentIndex(idx if idx >= 0 else 0)  # the starter model is first
        self.model_combo.blockSignals(False)
        self._update_controls()

    def model_path(self) -> Path | None:
        d = self.model_combo.currentData()
        return Path(d) if d else None

    def set_model(self, path: Path | str) -> None:
        path = Path(path)
        idx = self.model_combo.findData(str(path))
        if idx < 0:
            self._imported.append(path)
            self.ctx.settings.set_value("models/imported", [str(p) for p in self._imported][-20:])
            self.refresh_models()
            idx = self.model_combo.findData(str(path))
        self.model_combo.setCurrentIndex(idx)

    def _import_dialog(self) -> None:
        start = str(self.ctx.settings.value("restore/model_dir", str(Path.home())))
        path, _ = QFileDialog.getOpenFileName(self, "Import a model", start, MODEL_FILTER)
        if path:
            self.ctx.settings.set_value("restore/model_dir", str(Path(path).parent))
            self.set_model(path)

    # ------------------------------------------------------------------ inputs
    def add_inputs(self, paths) -> None:
        """Add files and folders to restore (folders are scanned in the background)."""
        new = [Path(p) for p in paths if Path(p).exists() and Path(p) not in self._inputs]
        if not new:
            return
        self._inputs.extend(new)
        if not self.dst_edit.text().strip():
            first = new[0] if new[0].is_dir() else new[0].parent
            self.dst_edit.setText(str(first.with_name(first.name + "_restored")))
        self._rescan()

    def inputs(self) -> list[Path]:
        return list(self._inputs)

    def clear_inputs(self) -> None:
        if self._scan is not None:
            self._scan.cancel()
            self._scan = None  # its last events are ignored
        self._inputs = []
        self.file_model.clear()
        self.count_label.setText("Drop images or folders here, or use the buttons.")
        self._update_controls()

    def _rescan(self) -> None:
        if self._scan is not None and self._scan.is_running():
            self._scan.cancel()
            if not self._rescan_pending:  # start again once it has stopped
                self._rescan_pending = True
                self._scan.done.connect(self._rescan_after_stop)
            return
        self.file_model.clear()
        self.file_model.set_roots(self._inputs)
        self.count_label.setText("Looking for images\u2026")
        w = self.ctx.start_worker(scan_job, list(self._inputs), self.recursive_check.isChecked())
        self._scan = w
        w.event.connect(self._on_scan_event)
        w.finished.connect(self._on_scan_finished)
        w.failed.connect(self._on_scan_failed)
        w.done.connect(self._update_controls)
        self._update_controls()

    def _rescan_after_stop(self) -> None:
        self._rescan_pending = False
        self._rescan()

    def _on_scan_failed(self, exc: BaseException) -> None:
        self.count_label.setText(f"Cannot list the inputs: {getattr(exc, 'message', exc)}")

    def _on_scan_event(self, ev: Event) -> None:
        if isinstance(ev, Found) and self.sender() is self._scan:
            self.file_model.add(ev.paths)
            self.count_label.setText(f"{self.file_model.total():,} images so far\u2026")

    def _on_scan_finished(self, n: int) -> None:
        if self.sender() is not self._scan:
            return
        folders = sum(1 for p in self._inputs if p.is_dir())
        where = f" in {folders} folder{'s' if folders != 1 else ''}" if folders else ""
        self.count_label.setText(f"{n:,} image{'s' if n != 1 else ''}{where}" if n else
                                 "No images found in the inputs.")

    def is_scanning(self) -> bool:
        return self._scan is not None and self._scan.is_running()

    def _recursive_toggled(self, on: bool) -> None:
        self.ctx.settings.set_value("restore/recursive", bool(on))
        if self._inputs:
            self._rescan()

    def _add_files_dialog(self) -> None:
        start = str(self.ctx.settings.value("restore/src_dir", str(Path.home())))
        paths, _ = QFileDialog.getOpenFileNames(self, "Images to restore", start, IMAGE_FILTER)
        if paths:
            self.ctx.settings.set_value("restore/src_dir", str(Path(paths[0]).parent))
            self.add_inputs(paths)

    def _add_folder_dialog(self) -> None:
        start = str(self.ctx.settings.value("restore/src_dir", str(Path.home())))
        path = QFileDialog.getExistingDirectory(self, "Folder of images to restore", start)
        if path:
            self.ctx.settings.set_value("restore/src_dir", path)
            self.add_inputs([path])

    def _dst_dialog(self) -> None:
        start = self.dst_edit.text().strip() or str(self.ctx.settings.value("restore/src_dir", str(Path.home())))
        path = QFileDialog.getExistingDirectory(self, "Output folder", start)
        if path:
            self.dst_edit.setText(path)

    def set_output(self, path) -> None:
        self.dst_edit.setText(str(path))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.add_inputs(paths)

    # ------------------------------------------------------------------ preview
    def preview_first(self) -> None:
        """Restore the selected (else the first) file and show it in the split view."""
        sel = self.file_list.currentIndex()
        path = self.file_model.data(sel, Qt.ItemDataRole.UserRole) if sel.isValid() else None
        if path is None and self.file_model.total():
            path = str(self.file_model.paths()[0])
        if path is None:
            self._set_status("Add images first.")
            return
        self._preview(Path(path))

    def _preview_index(self, index) -> None:
        p = self.file_model.data(index, Qt.ItemDataRole.UserRole)
        if p:
            self._preview(Path(p))

    def _preview(self, path: Path) -> None:
        model = self.model_path()
        if model is None or self.is_busy():
            return
        self.preview_label.setText(f"Restoring {path.name}\u2026")
        w = self.ctx.start_worker(preview_job, model, path, tile=self.tile_combo.currentData(),
                                  device=self.device_combo.currentData(), ensemble=self.ensemble_check.isChecked(),
                                  cache=self._cache)
        self._preview_worker = w
        self._preview_path = path
        w.finished.connect(self._on_preview)
        w.failed.connect(self._on_preview_failed)
        w.cancelled.connect(self._on_preview_cancelled)
        w.done.connect(self._update_controls)
        self._update_controls()

    def _on_preview_cancelled(self) -> None:
        self.preview_label.setText("Preview cancelled.")

    def _on_preview(self, res) -> None:
        path = self._preview_path
        img, out, seconds = res
        self.preview.set_images(img, out, before_label=f"Input {img.rgb.shape[1]}\u00d7{img.rgb.shape[0]}",
                                after_label=f"Restored {out.rgb.shape[1]}\u00d7{out.rgb.shape[0]}")
        self.preview_label.setText(f"{path.name}: {seconds:.1f} s")

    def _on_preview_failed(self, exc: BaseException) -> None:
        from ..errors import show_error

        self.preview_label.setText("Preview failed.")
        show_error(self, exc, context="The preview failed")

    # ------------------------------------------------------------------ batch
    def start(self) -> None:
        """Restore every input into the output folder."""
        model = self.model_path()
        dst_text = self.dst_edit.text().strip()
        if model is None or not self._inputs or not dst_text or self.is_busy():
            self._set_status("Choose a model, add images and choose an output folder."
                             if not self.is_busy() else "Already running.")
            return
        dst = Path(dst_text).expanduser()
        s = self.ctx.settings
        s.set_value("restore/dst", str(dst))
        s.set_value("restore/keep_tree", self.keep_tree_check.isChecked())
        s.set_value("restore/skip_existing", self.skip_check.isChecked())
        s.set_value("restore/ensemble", self.ensemble_check.isChecked())
        s.set_value("restore/format", self.format_combo.currentData())
        self.failures.setRowCount(0)
        self.failures.setVisible(False)
        self.failures_label.setVisible(False)
        self.file_model.clear_states()
        self._summary = None
        self._last_dst = dst
        n = self.file_model.total()
        self.progress.setRange(0, max(1, n))
        self.progress.setValue(0)
        self.progress.setFormat("%v / %m")
        self._set_status("Loading the model\u2026")
        w = self.ctx.start_worker(
            batch_job, model, list(self._inputs), dst,
            recursive=self.recursive_check.isChecked(), keep_tree=self.keep_tree_check.isChecked(),
            skip_existing=self.skip_check.isChecked(), out_format=self.format_combo.currentData(),
            tile=self.tile_combo.currentData(), device=self.device_combo.currentData(),
            ensemble=self.ensemble_check.isChecked(), cache=self._cache,
        )
        self._worker = w
        w.event.connect(self._on_event)
        w.finished.connect(self._on_finished)
        w.failed.connect(self._on_failed)
        w.cancelled.connect(self._on_cancelled)
        w.done.connect(self._on_done)
        self._t0 = time.perf_counter()
        self._update_controls()

    def cancel(self) -> None:
        for w in (self._worker, self._preview_worker):
            if w is not None and w.is_running():
                w.cancel()
        self._set_status("Cancelling\u2026 (the image being written is finished or removed, never half-written)")

    def _on_event(self, ev: Event) -> None:
        if isinstance(ev, Progress) and ev.stage == "tiles":  # tiles done inside one big image
            if ev.total > 1:
                overall = getattr(self, "_overall_status", "")
                tiles = f"{ev.message}: tile {ev.done:,} / {ev.total:,}"
                self._set_status(f"{overall}  \u00b7  {tiles}" if overall else tiles)
        elif isinstance(ev, Progress) and ev.total:
            self.progress.setRange(0, ev.total)
            self.progress.setValue(ev.done)
            parts = [f"{ev.done:,} / {ev.total:,}"]
            if ev.rate:
                parts.append(format_rate(ev.rate, ev.rate_unit))  # "6.1 kpx/s", never "0.00 MP/s"
            parts.append(f"ETA {_fmt_eta(ev.eta_s)}" if ev.done < ev.total else "finishing\u2026")
            if ev.message:
                parts.append(ev.message)
            self._overall_status = "  \u00b7  ".join(parts)
            self._set_status(self._overall_status)
        elif isinstance(ev, ItemDone):
            self.file_model.set_state(ev.path, "done")
        elif isinstance(ev, ItemSkipped):
            self.file_model.set_state(ev.path, "skipped", ev.reason)
        elif isinstance(ev, ItemFailed):
            self.file_model.set_state(ev.path, "failed", ev.reason)
            self._add_failure(ev.path, ev.reason)

    def _add_failure(self, path: Path, reason: str) -> None:
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
        if self.failures.isHidden():
            self.failures.setVisible(True)
            self.failures_label.setVisible(True)
            sizes = self._right_split.sizes()
            if sum(sizes) > 0:  # make room for the table
                self._right_split.setSizes([int(sum(sizes) * 0.6), int(sum(sizes) * 0.4)])

    def failure_rows(self) -> list[tuple[str, str]]:
        return [(self.failures.item(r, 0).toolTip(), self.failures.item(r, 1).text())
                for r in range(self.failures.rowCount())]

    def _on_finished(self, summary) -> None:
        self._summary = summary
        self.progress.setValue(self.progress.maximum())
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
            text += (f"; {len(several):,} file{'s' if len(several) != 1 else ''} with several frames "
                     f"({', '.join(Path(p).name for p, _n in several[:3])}{', ...' if len(several) > 3 else ''}): "
                     "only the first frame was restored")
        self._set_status(text + ".")
        self.ctx.status_message.emit(text)

    def _on_failed(self, exc: BaseException) -> None:
        from ..errors import show_error

        self._set_status("Stopped: " + str(getattr(exc, "message", exc)).splitlines()[0])
        show_error(self, exc, context="The batch restore stopped")

    def _on_cancelled(self) -> None:
        done = sum(1 for p in self.file_model.paths() if self.file_model.state(p) == "done")
        self._set_status(f"Cancelled after {done:,} images. No partial file was left; tick "
                         "\u201cSkip existing outputs\u201d and Start to resume.")

    def _on_done(self) -> None:
        self._update_controls()

    def summary(self):
        """The last batch's RestoreSummary (None before one finished)."""
        return self._summary

    def open_output(self) -> None:
        dst = self._last_dst or (Path(self.dst_edit.text().strip()) if self.dst_edit.text().strip() else None)
        if dst is not None and dst.is_dir():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(dst)))

    # ------------------------------------------------------------------ state
    def _set_status(self, text: str) -> None:
        self.status_label.setText(text)

    def _update_controls(self) -> None:
        batch = self._worker is not None and self._worker.is_running()
        prev = self._preview_worker is not None and self._preview_worker.is_running()
        has_model = self.model_path() is not None
        has_files = self.file_model.total() > 0 or bool(self._inputs)
        self.start_button.setEnabled(not batch and not prev and has_model and has_files
                                     and bool(self.dst_edit.text().strip()))
        self.cancel_button.setEnabled(batch or prev)
        self.preview_button.setEnabled(not batch and not prev and has_model and self.file_model.total() > 0)
        dst = self._last_dst
        self.open_button.setEnabled(not batch and dst is not None and dst.is_dir())
        for w in (self.add_files_button, self.add_folder_button, self.clear_button, self.model_combo,
                  self.import_button, self.recursive_check):
            w.setEnabled(not batch)

    def sizeHint(self) -> QSize:
        return QSize(1000, 640)
