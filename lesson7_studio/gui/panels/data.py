"""Data panel: a photo folder, the crappify recipe with a live preview, and the dataset builder."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QProgressBar,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from lesson7_studio.core import crappify
from lesson7_studio.core.events import ItemFailed, ItemSkipped, Log, Progress

from ..context import AppContext
from ..errors import show_error
from ..widgets.common import button, debouncer, header, label, panel_layout
from ..widgets.image_view import ImageView
from ..widgets.recipe_editor import RecipeEditor
from ..widgets.thumbs import ThumbnailGrid

PREVIEW_SIDE = 768  # the preview works on the photo fitted into this many pixels
SYNC_PREVIEW_MS = 50  # previews faster than this may run on the GUI thread
RIGHT_WIDTH = 340  # recipe and build column


def list_images(folder: Path, on_event=None, cancel=None) -> list[Path]:
    from lesson7_studio.core.images import iter_images

    out = []
    for i, p in enumerate(iter_images(folder, recursive=True)):
        if cancel is not None and i % 256 == 0:
            cancel.check()
        out.append(p)
    return out


def load_preview_source(path: Path, on_event=None, cancel=None):
    """The photo as an RGB PIL image fitted into PREVIEW_SIDE (EXIF orientation applied)."""
    from PIL import Image

    from lesson7_studio.core.images import load_image, to_pil

    img = to_pil(load_image(path), alpha=False).convert("RGB")
    if max(img.size) > PREVIEW_SIDE:
        r = PREVIEW_SIDE / max(img.size)
        img = img.resize((max(1, round(img.width * r)), max(1, round(img.height * r))), Image.Resampling.LANCZOS)
    return img


def render_preview(src, recipe: crappify.Recipe, seed: int) -> tuple[Any, dict[str, Any], float]:
    """(crappified image at the source's display size, drawn parameters, seconds)."""
    from PIL import Image

    t0 = time.perf_counter()
    res = crappify.apply_recipe(src, recipe, seed)
    out = res.image
    if out.size != src.size:  # show degraded pixels enlarged, blocks visible
        out = out.resize(src.size, Image.Resampling.NEAREST)
    return out, res.params, time.perf_counter() - t0


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._") or "dataset"


class BuildSummaryDialog(QDialog):
    """What the builder did, with every skipped file and its reason."""

    def __init__(self, summary, parent: QWidget | None = None, *, cancelled: bool = False) -> None:
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


class DataPanel(QWidget):
    """Choose photos, tune the crappifier with a live preview, build a paired dataset."""

    preview_updated = Signal()

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setAcceptDrops(True)
        self.folder: Path | None = None
        self._source = None  # PIL image of the selected photo, fitted for preview
        self._source_path: Path | None = None
        self._list_worker = None
        self._load_worker = None
        self._preview_worker = None
        self._preview_pending = False
        self._last_preview_s = 1.0  # unknown: the first preview runs in a worker
        self.preview_count = 0
        self.preview_params: dict[str, Any] = {}
        self.build_worker = None
        self.summary_dialog: BuildSummaryDialog | None = None
        s = ctx.settings

        lay = panel_layout(self)
        lay.addWidget(header("Data", "Pick a folder of good photos, choose how to damage them, "
                             "and build a dataset of (damaged, original) pairs to train on."))

        # folder row
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
        row = QHBoxLayout()
        row.addWidget(label("Photos"))
        row.addWidget(self.folder_combo, 1)
        row.addWidget(self.choose_button)
        row.addWidget(self.count_label)
        lay.addLayout(row)

        # thumbnails
        self.grid = ThumbnailGrid(88)
        self.grid.setMinimumWidth(140)
        self.grid.selectionModel().currentChanged.connect(lambda cur, _prev: self._photo_selected())

        # preview
        self.original_view = ImageView(label="Original", placeholder="Select a photo")
        self.crappy_view = ImageView(label="Crappified", placeholder="Preview")
        self.original_view.link(self.crappy_view)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setValue(s.value("data/preview_seed", 0))
        self.seed_spin.setMaximumWidth(120)
        self.seed_spin.setToolTip("The random draws (JPEG quality, text position, noise) depend on the seed")
        self.seed_spin.valueChanged.connect(lambda _v: self.schedule_preview())
        self.new_seed_button = button("New seed", tooltip="Draw other random values")
        self.new_seed_button.clicked.connect(self.new_seed)
        self.fit_button = button("Fit")
        self.fit_button.clicked.connect(self.original_view.fit)
        self.one_button = button("1:1")
        self.one_button.clicked.connect(self.original_view.one_to_one)
        self.params_label = label("", "hint")
        self.params_label.setMinimumWidth(0)
        self.params_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        preview_box = QWidget()
        pl = QVBoxLayout(preview_box)
        pl.setContentsMargins(0, 0, 0, 0)
        self.views_split = QSplitter(Qt.Orientation.Horizontal)
        self.views_split.setObjectName("previewSplit")
        self.views_split.setChildrenCollapsible(False)
        self.views_split.addWidget(self.original_view)
        self.views_split.addWidget(self.crappy_view)
        pl.addWidget(self.views_split, 1)
        bar = QHBoxLayout()
        bar.addWidget(label("Seed"))
        bar.addWidget(self.seed_spin)
        bar.addWidget(self.new_seed_button)
        bar.addWidget(self.params_label, 1)
        bar.addWidget(self.fit_button)
        bar.addWidget(self.one_button)
        pl.addLayout(bar)

        # recipe + build (right column)
        self.recipe_editor = RecipeEditor()
        saved = s.value("data/recipe", "")
        if not (saved and self.recipe_editor.restore_state(saved)):
            self.recipe_editor.set_preset("decrappify-x2")
        self.recipe_editor.recipe_changed.connect(lambda _r: self.schedule_preview())
        recipe_box = QGroupBox("Crappify recipe")
        rb = QVBoxLayout(recipe_box)
        rb.addWidget(self.recipe_editor)

        build_box = QGroupBox("Build dataset")
        bf = QFormLayout(build_box)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("name (a folder under the project's datasets/)")
        self.name_edit.textEdited.connect(lambda _t: self.name_edit.setProperty("auto", False))
        self.valid_spin = QSpinBox()
        self.valid_spin.setRange(0, 90)
        self.valid_spin.setSuffix(" %")
        self.valid_spin.setValue(s.value("data/valid_pct", 10))
        self.valid_spin.setToolTip("Share of the photos kept aside to measure the model")
        self.max_size_spin = QSpinBox()
        self.max_size_spin.setRange(0, 16384)
        self.max_size_spin.setSingleStep(128)
        self.max_size_spin.setSpecialValueText("no limit")
        self.max_size_spin.setSuffix(" px")
        self.max_size_spin.setValue(s.value("data/max_size", 1024))
        self.max_size_spin.setToolTip("Longest side of the originals is reduced to this first")
        self.workers_spin = QSpinBox()
        self.workers_spin.setRange(1, max(1, os.cpu_count() or 1))
        self.workers_spin.setValue(min(s.value("data/workers", 2), self.workers_spin.maximum()))
        self.workers_spin.setToolTip("Processes used to build the pairs")
        for w in (self.valid_spin, self.max_size_spin, self.workers_spin):
            w.setMaximumWidth(130)
        self.build_button = button("Build dataset", "primary")
        self.build_button.clicked.connect(self.build_dataset)
        self.cancel_button = button("Cancel", "danger")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_build)
        self.progress = QProgressBar()
        self.progress.setValue(0)
        self.progress.setFormat("%v / %m")
        self.progress.setVisible(False)
        self.build_status = label("", "hint", wrap=True)
        bf.addRow("Name", self.name_edit)
        bf.addRow("Validation", self.valid_spin)
        bf.addRow("Max size", self.max_size_spin)
        bf.addRow("Workers", self.workers_spin)
        brow = QHBoxLayout()
        brow.addWidget(self.build_button, 1)
        brow.addWidget(self.cancel_button)
        bf.addRow(brow)
        bf.addRow(self.progress)
        bf.addRow(self.build_status)

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 6, 0)
        rl.addWidget(recipe_box)
        rl.addWidget(build_box)
        rl.addStretch(1)
        scroll = QScrollArea()
        scroll.setObjectName("recipeScroll")
        scroll.setWidgetResizable(True)
        scroll.setWidget(right)
        # the steps fit RIGHT_WIDTH; a scroll bar rather than cut-off buttons if one does not
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        scroll.setMinimumWidth(RIGHT_WIDTH)
        self.right_scroll = scroll

        split = QSplitter()
        split.setObjectName("dataSplit")
        split.addWidget(self.grid)
        split.addWidget(preview_box)
        split.addWidget(scroll)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setStretchFactor(2, 0)
        split.setSizes([200, 600, scroll.minimumWidth()])
        split.setCollapsible(1, False)
        self.split = split
        lay.addWidget(split, 1)

        self._debounce = debouncer(self, 120, self._run_preview)
        self._refresh_recent()
        last = s.value("data/folder", "")
        if last and Path(last).is_dir():
            self.set_folder(Path(last))

    # ------------------------------------------------------------------ folder
    def _refresh_recent(self) -> None:
        self.folder_combo.blockSignals(True)
        self.folder_combo.clear()
        for p in self.ctx.settings.recent("recent/folders"):
            self.folder_combo.addItem(p, p)
        if self.folder is not None:
            i = self.folder_combo.findData(str(self.folder))
            if i < 0:
                self.folder_combo.insertItem(0, str(self.folder), str(self.folder))
                i = 0
            self.folder_combo.setCurrentIndex(i)
        else:
            self.folder_combo.setCurrentIndex(-1)
            self.folder_combo.setPlaceholderText("No folder chosen")
        self.folder_combo.blockSignals(False)

    def _recent_chosen(self, index: int) -> None:
        path = self.folder_combo.itemData(index)
        if path and Path(path) != self.folder:
            self.set_folder(Path(path))

    def choose_folder(self) -> None:
        start = str(self.folder or Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder of photos", start)
        if folder:
            self.set_folder(Path(folder))

    def set_folder(self, folder: Path, select: Path | None = None) -> None:
        """Show the photos under ``folder`` (listed in the background)."""
        folder = Path(folder).expanduser().resolve()
        if not folder.is_dir():
            show_error(self, FileNotFoundError(f"Not a folder: {folder}"))
            return
        self.folder = folder
        self.ctx.settings.set_value("data/folder", str(folder))
        self.ctx.settings.add_recent("recent/folders", folder)
        self._refresh_recent()
        self.count_label.setText("Looking for photos…")
        if not self.is_busy():  # the last build's "Done: ..." was about the previous folder
            self.build_status.setText("")
        if not self.name_edit.text() or self.name_edit.property("auto"):
            self._auto_name()
        if self._list_worker is not None and self._list_worker.is_running():
            self._list_worker.cancel()
        w = self.ctx.start_worker(list_images, folder)
        self._list_worker = w
        w.finished.connect(lambda paths, w=w, sel=select: self._listed(w, paths, sel))
        w.failed.connect(lambda exc: (self.count_label.setText("Cannot list this folder."), show_error(self, exc)))

    def _auto_name(self) -> None:
        if self.folder is None:
            return
        self.name_edit.setText(safe_name(f"{self.folder.name}-{self.recipe_editor.recipe().name}"))
        self.name_edit.setProperty("auto", True)

    def _listed(self, worker, paths: list[Path], select: Path | None) -> None:
        if worker is not self._list_worker:
            return
        n = len(paths)
        self.count_label.setText(f"{n:,} photo{'s' if n != 1 else ''}" if n else "No photos in this folder.")
        self.grid.set_paths(paths)
        if select is not None:
            self.grid.select_path(select)
        if not paths:
            self._source = None
            self.original_view.clear()
            self.crappy_view.clear()

    def photo_paths(self) -> list[Path]:
        return self.grid.thumb_model.paths()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            return
        p = paths[0]
        if p.is_dir():
            self.set_folder(p)
        elif p.is_file():
            self.set_folder(p.parent, select=p)
        event.acceptProposedAction()

    # ------------------------------------------------------------------ preview
    def _photo_selected(self) -> None:
        path = self.grid.current_path()
        if path is None or path == self._source_path:
            return
        self._source_path = path
        if self._load_worker is not None and self._load_worker.is_running():
            self._load_worker.cancel()
        w = self.ctx.start_worker(load_preview_source, path)
        self._load_worker = w
        w.finished.connect(lambda img, w=w: self._source_loaded(w, img))
        w.failed.connect(lambda exc, w=w: self._source_failed(w, exc))

    def _source_loaded(self, worker, img) -> None:
        if worker is not self._load_worker:
            return
        self._source = img
        self._update_orientation()
        self.original_view.set_image(img)
        self.schedule_preview()

    def _update_orientation(self) -> None:
        """Side by side for tall photos, one above the other for wide ones: bigger previews."""
        if self._source is None:
            return
        w, h = self._source.size
        area = self.views_split.size()
        wide = w / max(h, 1) > area.width() / max(area.height(), 1)
        orient = Qt.Orientation.Vertical if wide else Qt.Orientation.Horizontal
        if self.views_split.orientation() != orient:
            self.views_split.setOrientation(orient)
            n = area.height() if wide else area.width()
            self.views_split.setSizes([n // 2, n - n // 2])
            self.original_view.fit()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._update_orientation()

    def _source_failed(self, worker, exc) -> None:
        if worker is not self._load_worker:
            return
        self._source = None
        self.original_view.clear()
        self.crappy_view.clear()
        self.params_label.setText(f"Cannot read this photo: {getattr(exc, 'reason', exc)}")

    def new_seed(self) -> None:
        import random

        self.seed_spin.setValue(random.randrange(0, 2**31 - 1))

    def schedule_preview(self) -> None:
        if not self.name_edit.text() or self.name_edit.property("auto"):
            self._auto_name()
        self._debounce.start()

    def _run_preview(self) -> None:
        if self._source is None:
            return
        recipe, seed, src = self.recipe_editor.recipe(), self.seed_spin.value(), self._source
        if self._last_preview_s * 1000 < SYNC_PREVIEW_MS:
            try:
                self._show_preview(render_preview(src, recipe, seed))
            except Exception as exc:  # noqa: BLE001 - shown, not raised
                self.params_label.setText(f"Preview failed: {exc}")
            return
        if self._preview_worker is not None and self._preview_worker.is_running():
            self._preview_pending = True  # run again with the latest values when this one ends
            return
        w = self.ctx.start_worker(lambda on_event, cancel: render_preview(src, recipe, seed))
        self._preview_worker = w
        w.finished.connect(self._show_preview)
        w.failed.connect(lambda exc: self.params_label.setText(f"Preview failed: {exc}"))
        w.done.connect(self._preview_done)

    def _preview_done(self) -> None:
        if self._preview_pending:
            self._preview_pending = False
            self._run_preview()

    def _show_preview(self, result) -> None:
        img, params, seconds = result
        self._last_preview_s = seconds
        self.crappy_view.set_image(img, keep_view=True)
        self.preview_params = dict(params)
        shown = []
        if "quality" in params:
            shown.append(f"JPEG quality {params['quality']}")
        if "noise_sigma" in params:
            shown.append(f"noise σ {params['noise_sigma']:.1f}")
        if "blur_radius" in params:
            shown.append(f"blur {params['blur_radius']:.2f} px")
        shown.append(f"{seconds * 1000:.0f} ms")
        self.params_label.setText(" · ".join(shown))
        self.preview_count += 1
        self.preview_updated.emit()

    # ------------------------------------------------------------------ build
    def build_dataset(self) -> None:
        from lesson7_studio.core import datasets

        if self.folder is None:
            show_error(self, FileNotFoundError("Choose a folder of photos first."))
            return
        name = safe_name(self.name_edit.text().strip() or f"{self.folder.name}")
        dst = self.ctx.project.datasets_dir / name
        recipe = self.recipe_editor.recipe()
        max_size = self.max_size_spin.value() or None
        self.save_settings()
        self._swap_buttons(building=True)
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self._show_progress()
        self.build_status.setText(f"Building {name}…")
        self._skipped: list[tuple[Path, str]] = []
        w = self.ctx.start_worker(
            datasets.build_pairs,
            self.folder,
            dst,
            recipe,
            seed=0,
            valid_pct=self.valid_spin.value() / 100.0,
            max_size=max_size,
            workers=self.workers_spin.value(),
        )
        self.build_worker = w
        w.event.connect(self._build_event)
        w.finished.connect(self._build_finished)
        w.failed.connect(self._build_failed)
        w.cancelled.connect(self._build_cancelled)
        w.done.connect(self._build_done)

    def cancel_build(self) -> None:
        if self.build_worker is not None:
            self.build_worker.cancel()
            self.build_status.setText("Cancelling…")

    def _build_event(self, ev) -> None:
        if isinstance(ev, Progress):
            self.progress.setRange(0, max(ev.total, 1))
            self.progress.setValue(ev.done)
            eta = f", {ev.eta_s:.0f} s left" if ev.eta_s is not None else ""
            rate = f"{ev.rate:.1f} {ev.rate_unit}" if ev.rate else ""
            self.build_status.setText(f"{ev.done}/{ev.total} {rate}{eta}")
        elif isinstance(ev, (ItemFailed, ItemSkipped)):
            self._skipped.append((ev.path, ev.reason))
        elif isinstance(ev, Log):
            self.build_status.setText(ev.message)

    def _build_finished(self, summary) -> None:
        self.build_status.setText(
            f"Done: {summary.train} train / {summary.valid} valid pairs, {len(summary.failed)} skipped."
        )
        self.ctx.datasets_changed.emit()
        self.summary_dialog = BuildSummaryDialog(summary, self)
        self.summary_dialog.open()

    def _build_failed(self, exc) -> None:
        self.build_status.setText("Build failed.")
        show_error(self, exc, context="The dataset could not be built")

    def _build_cancelled(self) -> None:
        self.build_status.setText("Cancelled. Pairs already written are kept; build again to finish.")
        self.ctx.datasets_changed.emit()

    def _build_done(self) -> None:
        self._swap_buttons(building=False)
        self.progress.setVisible(False)

    def _swap_buttons(self, building: bool) -> None:
        """Enable Cancel or Build. The focus moves to the button enabled first: a disabled
        focused button would pass the focus down the tab chain, and the scroll area would
        scroll to wherever it lands (the top of the column)."""
        on, off = (self.cancel_button, self.build_button) if building else (self.build_button, self.cancel_button)
        on.setEnabled(True)
        if off.hasFocus():
            on.setFocus(Qt.FocusReason.OtherFocusReason)
        off.setEnabled(False)

    def _show_progress(self) -> None:
        """Scroll the column so the progress bar and status line are in view (once laid out)."""
        def show() -> None:
            if self.progress.isVisible():
                self.right_scroll.ensureWidgetVisible(self.build_status, 0, 8)
                self.right_scroll.ensureWidgetVisible(self.progress, 0, 8)

        QTimer.singleShot(0, self, show)

    # ------------------------------------------------------------------ panel protocol
    def save_settings(self) -> None:
        s = self.ctx.settings
        s.set_value("data/recipe", self.recipe_editor.state())
        s.set_value("data/preview_seed", self.seed_spin.value())
        s.set_value("data/valid_pct", self.valid_spin.value())
        s.set_value("data/max_size", self.max_size_spin.value())
        s.set_value("data/workers", self.workers_spin.value())

    def is_busy(self) -> bool:
        return self.build_worker is not None and self.build_worker.is_running()

    def shutdown(self) -> None:
        for w in (self.build_worker, self._list_worker, self._load_worker, self._preview_worker):
            if w is not None and w.is_running():
                w.cancel()
        for w in (self.build_worker, self._list_worker, self._load_worker, self._preview_worker):
            if w is not None:
                w.wait(30000)
        self.grid.thumb_model.shutdown()
