"""Data panel: a photo folder, the crappify recipe with a preview of exactly what the build
writes, and the dataset builder. The jobs are core's: listing (:func:`~lesson7_studio.core.images.list_images`),
previews (:class:`~lesson7_studio.core.crappify.PreviewSource`) and the build
(:func:`~lesson7_studio.core.crappify.build_pairs`, with the seed the user sees)."""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QGroupBox, QScrollArea, QSplitter, QVBoxLayout, QWidget

from lesson7_studio.core import crappify
from lesson7_studio.core.crappify import Preview, PreviewSource
from lesson7_studio.core.events import ItemFailed, ItemSkipped
from lesson7_studio.core.images import list_images

from ...context import AppContext
from ...errors import show_error
from ...widgets.common import debouncer, header, panel_layout
from ...widgets.recipe_editor import RecipeEditor
from ...widgets.thumbs import ThumbnailGrid
from .build_form import BuildForm, safe_name
from .folder_bar import FolderBar
from .preview_pane import PreviewPane
from .summary import BuildSummaryDialog

SYNC_PREVIEW_MS = 50  # previews faster than this may run on the GUI thread
RIGHT_WIDTH = 340  # recipe and build column


class DataPanel(QWidget):
    """Choose photos, tune the crappifier with a live preview, build a paired dataset."""

    preview_updated = Signal()

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setAcceptDrops(True)
        self.folder: Path | None = None
        self._source: PreviewSource | None = None  # the selected photo, loaded for previews
        self._source_path: Path | None = None
        self._new_photo = False  # the next preview is the first of a newly selected photo
        self._list_worker = self._load_worker = self._preview_worker = self.build_worker = None
        self._preview_pending = False
        self._last_preview_s = 1.0  # unknown: the first preview runs in a worker
        self.preview_count = 0
        self.preview_params: dict[str, Any] = {}
        self.summary_dialog: BuildSummaryDialog | None = None
        self._skipped: list[tuple[Path, str]] = []
        s = ctx.settings
        self.folder_bar = FolderBar()
        self.grid = ThumbnailGrid(88)
        self.preview_pane = PreviewPane(s.value("data/seed", s.value("data/preview_seed", 0)))
        self.recipe_editor = RecipeEditor()
        self.build_form = BuildForm(s)
        self._expose_parts()
        self._build_layout()
        self._connect()
        self._debounce = debouncer(self, 120, self._run_preview)
        saved = s.value("data/recipe", "")
        if not (saved and self.recipe_editor.restore_state(saved)):
            self.recipe_editor.set_preset("decrappify-x2")
        self._refresh_recent()
        last = s.value("data/folder", "")
        if last and Path(last).is_dir():
            self.set_folder(Path(last))

    def _expose_parts(self) -> None:
        """The controls the panel's tests and callers reach by name."""
        bar, pane, form = self.folder_bar, self.preview_pane, self.build_form
        self.folder_combo, self.choose_button, self.count_label = bar.folder_combo, bar.choose_button, bar.count_label
        self.original_view, self.crappy_view, self.views_split = pane.original_view, pane.crappy_view, pane.views_split
        self.seed_spin, self.new_seed_button, self.params_label = pane.seed_spin, pane.new_seed_button, pane.params_label
        self.name_edit, self.valid_spin = form.name_edit, form.valid_spin
        self.max_size_spin, self.workers_spin = form.max_size_spin, form.workers_spin
        self.build_button, self.cancel_button = form.build_button, form.cancel_button
        self.progress, self.build_status = form.progress, form.build_status

    def _build_layout(self) -> None:
        lay = panel_layout(self)
        lay.addWidget(header("Data", "Pick a folder of good photos, choose how to damage them, "
                             "and build a dataset of (damaged, original) pairs to train on."))
        lay.addWidget(self.folder_bar)
        self.grid.setMinimumWidth(140)
        recipe_box = QGroupBox("Crappify recipe")
        QVBoxLayout(recipe_box).addWidget(self.recipe_editor)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 6, 0)
        rl.addWidget(recipe_box)
        rl.addWidget(self.build_form)
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
        for i, (w, stretch) in enumerate(((self.grid, 0), (self.preview_pane, 1), (scroll, 0))):
            split.addWidget(w)
            split.setStretchFactor(i, stretch)
        split.setSizes([200, 600, scroll.minimumWidth()])
        split.setCollapsible(1, False)
        self.split = split
        lay.addWidget(split, 1)

    def _connect(self) -> None:
        self.folder_bar.folder_chosen.connect(self.set_folder)
        self.grid.selectionModel().currentChanged.connect(lambda cur, _prev: self._photo_selected())
        self.preview_pane.seed_changed.connect(lambda _v: self.schedule_preview())
        self.recipe_editor.recipe_changed.connect(lambda _r: self.schedule_preview())
        self.build_form.max_size_changed.connect(self.schedule_preview)
        self.build_form.build_requested.connect(self.build_dataset)
        self.build_form.cancel_requested.connect(self.cancel_build)

    # ------------------------------------------------------------------ folder
    def _refresh_recent(self) -> None:
        self.folder_bar.show_folders(self.ctx.settings.recent("recent/folders"), self.folder)

    def choose_folder(self) -> None:
        self.folder_bar.choose_folder()

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
        if self.build_form.name_is_auto():
            self._auto_name()
        if self._list_worker is not None and self._list_worker.is_running():
            self._list_worker.cancel()
        w = self.ctx.start_worker(list_images, folder)
        self._list_worker = w
        ref = weakref.ref(w)  # a lambda holding the worker itself would keep it alive for good
        w.finished.connect(lambda paths, sel=select: self._listed(ref(), paths, sel))
        w.failed.connect(lambda exc: (self.count_label.setText("Cannot list this folder."), show_error(self, exc)))

    def _auto_name(self) -> None:
        if self.folder is not None:
            self.build_form.set_auto_name(f"{self.folder.name}-{self.recipe_editor.recipe().name}")

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
            self.preview_pane.clear()

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
        root = self.folder
        w = self.ctx.start_worker(lambda on_event, cancel: PreviewSource(path, root=root))
        self._load_worker = w
        ref = weakref.ref(w)
        w.finished.connect(lambda source: self._source_loaded(ref(), source))
        w.failed.connect(lambda exc: self._source_failed(ref(), exc))

    def _source_loaded(self, worker, source: PreviewSource) -> None:
        if worker is not self._load_worker:
            return
        self._source = source
        self._new_photo = True
        self.schedule_preview()

    def _source_failed(self, worker, exc) -> None:
        if worker is not self._load_worker:
            return
        self._source = None
        self.preview_pane.show_message(f"Cannot read this photo: {getattr(exc, 'reason', exc)}", clear=True)

    def new_seed(self) -> None:
        self.preview_pane.new_seed()

    def schedule_preview(self) -> None:
        if self.build_form.name_is_auto():
            self._auto_name()
        self._debounce.start()

    def _run_preview(self) -> None:
        if self._source is None:
            return
        source, recipe = self._source, self.recipe_editor.recipe()
        seed, max_size = self.preview_pane.seed(), self.build_form.max_size()
        if self._last_preview_s * 1000 < SYNC_PREVIEW_MS:
            try:
                self._show_preview(source.render(recipe, seed, max_size=max_size))
            except Exception as exc:  # noqa: BLE001 - shown, not raised
                self.preview_pane.show_message(f"Preview failed: {exc}")
            return
        if self._preview_worker is not None and self._preview_worker.is_running():
            self._preview_pending = True  # run again with the latest values when this one ends
            return
        w = self.ctx.start_worker(lambda on_event, cancel: source.render(recipe, seed, max_size=max_size))
        self._preview_worker = w
        w.finished.connect(self._show_preview)
        w.failed.connect(lambda exc: self.preview_pane.show_message(f"Preview failed: {exc}"))
        w.done.connect(self._preview_done)

    def _preview_done(self) -> None:
        if self._preview_pending:
            self._preview_pending = False
            self._run_preview()

    def _show_preview(self, pv: Preview) -> None:
        self._last_preview_s = pv.seconds
        self.preview_pane.show_preview(pv, new_photo=self._new_photo)
        self._new_photo = False
        self.preview_params = dict(pv.params)
        self.preview_count += 1
        self.preview_updated.emit()

    @property
    def last_preview(self) -> Preview | None:
        """The pair shown now: what the build writes for the selected photo."""
        return self.preview_pane.last

    # ------------------------------------------------------------------ build
    def build_dataset(self) -> None:
        if self.folder is None:
            show_error(self, FileNotFoundError("Choose a folder of photos first."))
            return
        name = safe_name(self.name_edit.text().strip() or f"{self.folder.name}")
        seed = self.preview_pane.seed()
        self.save_settings()
        self.build_form.set_building(True)
        self._show_progress()
        self.build_status.setText(f"Building {name} (seed {seed})…")
        self._skipped = []
        w = self.ctx.start_worker(
            crappify.build_pairs,
            self.folder,
            self.ctx.project.datasets_dir / name,
            self.recipe_editor.recipe(),
            seed=seed,
            valid_pct=self.build_form.valid_pct(),
            max_size=self.build_form.max_size(),
            workers=self.workers_spin.value(),
            variants=self.build_form.variants(),
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
        if isinstance(ev, (ItemFailed, ItemSkipped)):
            self._skipped.append((ev.path, ev.reason))
        else:
            self.build_form.show_event(ev)

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
        self.build_form.set_building(False)

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
        s.set_value("data/seed", self.preview_pane.seed())
        self.build_form.save_settings(s)

    def is_busy(self) -> bool:
        return self.build_worker is not None and self.build_worker.is_running()

    def shutdown(self) -> None:
        workers = [w for w in (self.build_worker, self._list_worker, self._load_worker, self._preview_worker)
                   if w is not None]
        for w in workers:
            if w.is_running():
                w.cancel()
        for w in workers:
            w.wait(30000)
        self.grid.thumb_model.shutdown()
