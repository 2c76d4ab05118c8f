"""Restore panel: a model, input files or a folder, an output folder, options; preview the first
image, then restore the batch in a worker with progress, cancel and a table of failures.

The jobs are core's (:mod:`lesson7_studio.core.restore.jobs`: scan the inputs, preview one image,
restore several inputs); this panel builds the form, starts the workers and shows their events."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QSplitter, QVBoxLayout, QWidget

from lesson7_studio.core.events import Event, ItemDone, ItemFailed, ItemSkipped, Progress

from ...widgets.common import invalidate_layouts
from .form import IMAGE_FILTER, NO_INPUTS, InputBox, ModelBox, OutputBox
from .monitor import RunMonitor
from .view import PreviewBox


def _jobs():
    """core.restore.jobs, imported when first needed (it loads torch)."""
    from lesson7_studio.core.restore import jobs

    return jobs


class RestorePanel(QWidget):
    """Batch restoration of files or folders with the chosen model."""

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setAcceptDrops(True)
        self._inputs: list[Path] = []
        self._cache: dict = {}  # the last model loaded, kept between previews and batches
        self._scan = None
        self._rescan_pending = False
        self._worker = None
        self._preview_worker = None
        self._preview_path: Path | None = None
        self._summary = None
        self._last_dst: Path | None = None
        self._build()
        self._connect()
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
        self.model_box = ModelBox(self.ctx, left)
        self.input_box = InputBox(left)
        self.output_box = OutputBox(self.ctx.settings, self.ctx.device, left)
        ll.addWidget(self.model_box)
        ll.addWidget(self.input_box, 1)
        ll.addWidget(self.output_box)
        right = QSplitter(Qt.Orientation.Vertical, split)
        right.setChildrenCollapsible(False)
        self._right_split = right
        self.preview_box = PreviewBox(right)
        self.monitor = RunMonitor(right)
        right.addWidget(self.preview_box)
        right.addWidget(self.monitor)
        right.setStretchFactor(0, 1)
        right.setStretchFactor(1, 0)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setSizes([380, 620])
        self._name_parts()

    def _name_parts(self) -> None:
        """The widgets the panel works with (and tests and screenshots reach) by their names."""
        self.model_picker = self.model_box.picker
        self.model_combo, self.import_button = self.model_picker.model_combo, self.model_picker.import_button
        ib, ob, pb, mon = self.input_box, self.output_box, self.preview_box, self.monitor
        self.add_files_button, self.add_folder_button, self.clear_button = (
            ib.add_files_button, ib.add_folder_button, ib.clear_button)
        self.file_model, self.file_list, self.count_label = ib.file_model, ib.file_list, ib.count_label
        self.dst_edit, self.dst_button = ob.dst_edit, ob.dst_button
        self.recursive_check, self.keep_tree_check, self.skip_check, self.ensemble_check = (
            ob.recursive_check, ob.keep_tree_check, ob.skip_check, ob.ensemble_check)
        self.format_combo, self.tile_combo, self.device_combo = ob.format_combo, ob.tile_combo, ob.device_combo
        self.preview, self.preview_button, self.preview_label = pb.preview, pb.preview_button, pb.preview_label
        self.start_button, self.cancel_button, self.open_button = (
            mon.start_button, mon.cancel_button, mon.open_button)
        self.progress, self.status_label = mon.progress, mon.status_label
        self.failures, self.failures_label = mon.failures, mon.failures_label

    def _connect(self) -> None:
        self.model_picker.refreshed.connect(self._update_controls)
        self.model_picker.changed.connect(self._update_controls)
        self.add_files_button.clicked.connect(self._add_files_dialog)
        self.add_folder_button.clicked.connect(self._add_folder_dialog)
        self.clear_button.clicked.connect(self.clear_inputs)
        self.file_list.doubleClicked.connect(self._preview_index)
        self.dst_edit.textChanged.connect(lambda _t: self._update_controls())
        self.dst_button.clicked.connect(self._dst_dialog)
        self.recursive_check.toggled.connect(self._recursive_toggled)
        self.preview_button.clicked.connect(self.preview_first)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.open_button.clicked.connect(self.open_output)

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
        self.model_picker.refresh()

    def model_path(self) -> Path | None:
        return self.model_picker.path()

    def set_model(self, path: Path | str) -> None:
        self.model_picker.set_model(Path(path))

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
        self.count_label.setText(NO_INPUTS)
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
        w = self.ctx.start_worker(_jobs().scan_inputs, list(self._inputs), self.recursive_check.isChecked())
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
        if isinstance(ev, _jobs().Found) and self.sender() is self._scan:
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

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
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
            self.monitor.set_status("Add images first.")
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
        opts = self.output_box.options()
        w = self.ctx.start_worker(_jobs().preview_image, model, path, tile=opts["tile"], device=opts["device"],
                                  ensemble=opts["ensemble"], cache=self._cache)
        self._preview_worker = w
        self._preview_path = path
        w.finished.connect(self._on_preview)
        w.failed.connect(self._on_preview_failed)
        w.cancelled.connect(lambda: self.preview_label.setText("Preview cancelled."))
        w.done.connect(self._update_controls)
        self._update_controls()

    def _on_preview(self, res) -> None:
        self.preview_box.show_result(self._preview_path.name, res)

    def _on_preview_failed(self, exc: BaseException) -> None:
        from ...errors import show_error

        self.preview_label.setText("Preview failed.")
        show_error(self, exc, context="The preview failed")

    # ------------------------------------------------------------------ batch
    def start(self) -> None:
        """Restore every input into the output folder."""
        model = self.model_path()
        dst_text = self.dst_edit.text().strip()
        if model is None or not self._inputs or not dst_text or self.is_busy():
            self.monitor.set_status("Choose a model, add images and choose an output folder."
                                    if not self.is_busy() else "Already running.")
            return
        dst = Path(dst_text).expanduser()
        self.ctx.settings.set_value("restore/dst", str(dst))
        self.output_box.remember(self.ctx.settings)
        self.monitor.begin(self.file_model.total())
        self.file_model.clear_states()
        self._summary = None
        self._last_dst = dst
        self.monitor.set_status("Loading the model\u2026")
        w = self.ctx.start_worker(_jobs().restore_inputs, model, list(self._inputs), dst,
                                  cache=self._cache, **self.output_box.options())
        self._worker = w
        w.event.connect(self._on_event)
        w.finished.connect(self._on_finished)
        w.failed.connect(self._on_failed)
        w.cancelled.connect(self._on_cancelled)
        w.done.connect(self._update_controls)
        self._update_controls()

    def cancel(self) -> None:
        for w in (self._worker, self._preview_worker):
            if w is not None and w.is_running():
                w.cancel()
        self.monitor.set_status("Cancelling\u2026 (the image being written is finished or removed, never half-written)")

    def _on_event(self, ev: Event) -> None:
        if isinstance(ev, Progress):
            self.monitor.show_progress(ev)
        elif isinstance(ev, ItemDone):
            self.file_model.set_state(ev.path, "done")
        elif isinstance(ev, ItemSkipped):
            self.file_model.set_state(ev.path, "skipped", ev.reason)
        elif isinstance(ev, ItemFailed):
            self.file_model.set_state(ev.path, "failed", ev.reason)
            if self.monitor.add_failure(ev.path, ev.reason):
                sizes = self._right_split.sizes()
                if sum(sizes) > 0:  # make room for the table
                    self._right_split.setSizes([int(sum(sizes) * 0.6), int(sum(sizes) * 0.4)])

    def failure_rows(self) -> list[tuple[str, str]]:
        return self.monitor.failure_rows()

    def _on_finished(self, summary) -> None:
        self._summary = summary
        self.ctx.status_message.emit(self.monitor.finish(summary))

    def _on_failed(self, exc: BaseException) -> None:
        from ...errors import show_error

        self.monitor.set_status("Stopped: " + str(getattr(exc, "message", exc)).splitlines()[0])
        show_error(self, exc, context="The batch restore stopped")

    def _on_cancelled(self) -> None:
        done = sum(1 for p in self.file_model.paths() if self.file_model.state(p) == "done")
        self.monitor.set_status(f"Cancelled after {done:,} images. No partial file was left; tick "
                                "\u201cSkip existing outputs\u201d and Start to resume.")

    def summary(self):
        """The last batch's RestoreSummary (None before one finished)."""
        return self._summary

    def open_output(self) -> None:
        dst = self._last_dst or (Path(self.dst_edit.text().strip()) if self.dst_edit.text().strip() else None)
        if dst is not None and dst.is_dir():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(dst)))

    # ------------------------------------------------------------------ state
    def _set_status(self, text: str) -> None:
        self.monitor.set_status(text)

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

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(1000, 640)
