"""Compare panel: restore one image with one or several models and look at the difference.

Open any image (file dialog, drop, or a dataset's valid split, whose high-resolution image is
then the ground truth), restore it in a worker (:func:`lesson7_studio.core.compare.compare_job`),
and compare any two of: the input (bicubic upscaled), the ground truth and each model's result,
as a split view, side by side with synced zoom and pan, flicker, or an amplified difference
heatmap. Metrics: PSNR/SSIM (Y and RGB) against the ground truth when there is one, else each
model against bicubic. The parts: form.py (side column), views.py, table.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QSplitter, QWidget

from lesson7_studio.core.compare import dataset_pair
from lesson7_studio.core.events import Progress

from ...widgets.common import invalidate_layouts
from .form import CompareForm
from .session import CompareSession
from .sources import BICUBIC, IMAGE_FILTER, Source
from .table import MetricsTable
from .views import MODES, CompareViews

COMPACT_BELOW = 1000  # panel width (px) under which the short mode names are used


class ComparePanel(QWidget):
    """Open an image, restore it with the chosen models, compare and save the result."""

    results_changed = Signal()

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setAcceptDrops(True)
        self.session = CompareSession(ctx, self)
        self._build()
        self.refresh_datasets()
        ctx.project_changed.connect(self._on_project_changed)
        if hasattr(ctx, "datasets_changed"):
            ctx.datasets_changed.connect(self._on_datasets_changed)
        self._update_controls()
        invalidate_layouts(self)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        root = QHBoxLayout(self)
        root.setContentsMargins(8, 8, 8, 8)
        root.setSpacing(8)
        self.form = CompareForm(self.ctx, self)
        root.addWidget(self.form)
        right = QSplitter(Qt.Orientation.Vertical, self)
        right.setChildrenCollapsible(False)
        self.views = CompareViews(self.ctx.settings, right)
        self.views.sources = self.session.sources  # the one dict: the session fills it, the views show it
        right.addWidget(self.views)
        self.metrics_table = MetricsTable(right)
        right.addWidget(self.metrics_table)
        right.setStretchFactor(0, 1)
        right.setStretchFactor(1, 0)
        right.setSizes([640, 100])
        root.addWidget(right, 1)
        self._right_splitter = right
        self._expose_parts()
        self._connect_parts()
        mode = str(self.ctx.settings.value("compare/mode", "split"))
        self.set_view_mode(mode if mode in dict(MODES) else "split")

    def _expose_parts(self) -> None:
        """Short names for the widgets of the parts that the panel (and the app, its tests) use."""
        ib, mb, v = self.form.image_box, self.form.models_box, self.views
        self.open_button, self.image_combo, self.image_info = ib.open_button, ib.image_combo, ib.image_info
        self.dataset_combo, self.valid_combo = ib.dataset_combo, ib.valid_combo
        self.picker, self.model_list, self.import_button = mb.picker, mb.model_list, mb.import_button
        self.tile_combo, self.auto_check, self.progress = mb.tile_combo, mb.auto_check, mb.progress
        self.restore_button, self.cancel_button = mb.restore_button, mb.cancel_button
        self.status_label = mb.status_label
        self.save_button = self.form.save_button
        self.before_combo, self.after_combo = v.before_combo, v.after_combo
        self.zoom_bar, self.legend = v.zoom_bar, v.legend
        self.split_view, self.left_view, self.right_view = v.split_view, v.left_view, v.right_view
        self.flicker_view, self.diff_view = v.flicker_view, v.diff_view

    def _connect_parts(self) -> None:
        box = self.form.image_box
        self.open_button.clicked.connect(self._open_dialog)
        self.image_combo.activated.connect(self._image_chosen)
        box.pair_chosen.connect(self.open_pair)
        box.status.connect(self._set_status)
        self.picker.changed.connect(self._update_controls)
        self.picker.refreshed.connect(self._update_controls)
        self.restore_button.clicked.connect(self.restore_now)
        self.cancel_button.clicked.connect(self.cancel)
        self.save_button.clicked.connect(self._save_dialog)
        ses = self.session
        ses.loaded.connect(self._on_loaded)
        ses.restored.connect(self._on_restored)
        ses.progress.connect(self._on_progress)
        ses.finished.connect(self._on_finished)
        ses.failed.connect(self._on_failed)
        ses.cancelled.connect(self._on_cancelled)
        ses.done.connect(self._on_done)

    # the comparison's state lives in the session
    @property
    def _current(self) -> tuple[Path, Path | None] | None:
        return self.session.current

    @property
    def _sources(self) -> dict[str, Source]:
        return self.session.sources

    @property
    def _paths(self) -> list[tuple[Path, Path | None]]:
        return self.form.image_box.items

    def _on_project_changed(self, _project) -> None:
        self.refresh_datasets()  # the model picker follows the project itself

    def _on_datasets_changed(self) -> None:
        self.refresh_datasets()
        # e.g. the demo dataset just got built while this panel is shown with nothing open
        if self._current is None and self.isVisible() and bool(self.ctx.settings.value("compare/open_sample", True)):
            self.open_dataset_sample()

    # ------------------------------------------------------------------ panel protocol
    def on_shown(self) -> None:
        self.refresh_datasets()
        if self._current is None and bool(self.ctx.settings.value("compare/open_sample", True)):
            self.open_dataset_sample()

    def open_dataset_sample(self, dataset: Path | str | None = None, index: int = 0) -> bool:
        """Open a dataset's valid image ``index`` (crappified input + ground truth); default: the
        demo dataset, else the first with valid images. False when there is none."""
        if not self.form.image_box.select_dataset(dataset):
            return False
        if not 0 <= index < self.valid_combo.count():
            return False
        self.valid_combo.setCurrentIndex(index)
        self._valid_chosen(index)
        return True

    def is_busy(self) -> bool:
        return self.session.is_busy()

    def shutdown(self) -> None:
        self.flicker_view.set_flicker(False)
        self.session.shutdown()

    # ------------------------------------------------------------------ models
    def refresh_models(self) -> None:
        self.picker.refresh()

    def selected_models(self) -> list[tuple[str, Path]]:
        return self.picker.selected()

    def set_models(self, paths: list[Path | str]) -> None:
        """Tick exactly these models (adding files not listed yet)."""
        self.picker.set_models(paths)
        self._update_controls()

    # ------------------------------------------------------------------ datasets
    def refresh_datasets(self) -> None:
        self.form.image_box.refresh_datasets(self._current)

    def _sync_valid_combo(self) -> None:
        self.form.image_box.sync_valid(self._current)

    def _valid_chosen(self, i: int) -> None:
        self.form.image_box.valid_chosen(i)

    # ------------------------------------------------------------------ opening images
    def open_images(self, paths) -> None:
        """Open these images (the first is shown). A dataset's lr/hr image opens as a pair."""
        items: list[tuple[Path, Path | None]] = []
        for p in paths:
            p = Path(p)
            pair = dataset_pair(p)
            items.append(pair if pair is not None else (p, None))
        if not items:
            return
        self.form.image_box.add_items(items)
        self._show_item(items[0])

    def open_pair(self, input_path, ground_truth) -> None:
        """Open ``input_path`` to restore with ``ground_truth`` as the reference."""
        item = (Path(input_path), Path(ground_truth) if ground_truth is not None else None)
        self.form.image_box.add_items([item])
        self._show_item(item)

    def _image_chosen(self, index: int) -> None:
        if 0 <= index < len(self._paths):
            self._show_item(self._paths[index])

    def _show_item(self, item: tuple[Path, Path | None]) -> None:
        self.image_combo.setCurrentIndex(self._paths.index(item))
        self.session.show(item)
        self._sync_valid_combo()
        self.ctx.settings.set_value("compare/last_dir", str(item[0].parent))
        self.views.refresh_combos()
        self.views.refresh()
        self._refresh_table()
        models = self.selected_models() if self.auto_check.isChecked() else []
        self._start(models)

    def _open_dialog(self) -> None:
        start = str(self.ctx.settings.value("compare/last_dir", str(Path.home())))
        paths, _ = QFileDialog.getOpenFileNames(self, "Open images", start, IMAGE_FILTER)
        if paths:
            self.open_images(paths)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        paths = [p for p in paths if p.is_file()]
        if paths:
            event.acceptProposedAction()
            self.open_images(paths)

    # ------------------------------------------------------------------ restoring
    def restore_now(self) -> None:
        """Restore the current image with the ticked models."""
        if self._current is None:
            self._set_status("Open an image first.")
            return
        models = self.selected_models()
        if not models:
            self._set_status("Tick at least one model.")
            return
        self._start(models)

    def _start(self, models: list[tuple[str, Path]]) -> None:
        if not self.session.start(models, self.tile_combo.currentData()):
            return  # nothing shown, or the running job is being cancelled first
        self.progress.setRange(0, 0)
        self.progress.setFormat("")
        first = self.session.loaded_images is None
        self._set_status(f"Reading {self._current[0].name}\u2026" if first else "Restoring\u2026")
        self._update_controls()

    def cancel(self) -> None:
        if self.session.cancel():
            self._set_status("Cancelling\u2026")

    def _on_loaded(self) -> None:
        self.form.image_box.show_info(self._current[0], *self.session.loaded_images)
        self.views.refresh_combos()
        self.views.refresh()

    def _on_restored(self, key: str) -> None:
        if key != BICUBIC:
            self._set_status(f"{self._sources[key].label}: {self.session.seconds[key]:.1f} s")
        self.views.refresh_combos(prefer_after=key if key != BICUBIC else None)
        self.views.refresh(keep_view=True)
        self._refresh_table()
        self.results_changed.emit()

    def _on_progress(self, ev: Progress) -> None:
        if ev.total > 0 and ev.stage != "":
            self.progress.setRange(0, ev.total)
            self.progress.setValue(ev.done)
            self.progress.setFormat(f"{ev.stage} %v/%m")
        if ev.message:
            self._set_status(ev.message)

    def _on_finished(self, n: int) -> None:
        if n:
            total = sum(self.session.seconds.get(str(p), 0.0) for _l, p in self.session.job_models)
            self._set_status(f"Restored with {n} model{'s' if n > 1 else ''} in {total:.1f} s.")
        else:
            self._set_status("Tick a model and press Restore." if self.model_list.count()
                             else "No model yet: import one or train one.")

    def _on_failed(self, exc: BaseException) -> None:
        from ...errors import show_error

        self._set_status("Failed: " + str(getattr(exc, "message", exc)).splitlines()[0])
        show_error(self, exc, context="Restoring the image failed")

    def _on_cancelled(self) -> None:
        self._set_status("Cancelled.")

    def _on_done(self) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")
        self._update_controls()
        if self.session.pending:  # the image changed meanwhile: restore the new one
            self._start(self.session.pending_models)

    # ------------------------------------------------------------------ views
    def set_view_mode(self, mode: str) -> None:
        """"split", "side", "flicker" or "diff"."""
        self.views.set_mode(mode)

    def view_mode(self) -> str:
        return self.views.mode()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.views.set_compact(self.width() < COMPACT_BELOW)

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Space and self.views.next_flicker():
            return
        super().keyPressEvent(event)

    # ------------------------------------------------------------------ metrics
    def _refresh_table(self) -> None:
        ses = self.session
        self.metrics_table.show_metrics(ses.metrics, ses.sources, ses.seconds, ses.notes, ses.has_gt())
        self.metrics_table.fit(self._right_splitter)

    def metrics(self) -> dict[str, dict[str, float]]:
        """Metrics by key (``"bicubic"`` or the model path)."""
        return {k: dict(v) for k, v in self.session.metrics.items()}

    def result(self, model_path: Path | str) -> Any:
        """The restored ImageData of a model, or None."""
        return self.session.results.get(str(Path(model_path)))

    # ------------------------------------------------------------------ saving
    def _result_to_save(self) -> tuple[str, Any] | None:
        results = self.session.results
        key = self.after_combo.currentData()
        if key in results:
            return key, results[key]
        for k, v in results.items():
            return k, v
        return None

    def _save_dialog(self) -> None:
        got = self._result_to_save()
        if got is None or self._current is None:
            return
        key, _img = got
        src = self._current[0]
        start_dir = Path(str(self.ctx.settings.value("compare/save_dir", str(src.parent))))
        suggestion = start_dir / f"{src.stem}_restored{src.suffix if src.suffix.lower() != '.gif' else '.png'}"
        path, _ = QFileDialog.getSaveFileName(self, "Save the restored image", str(suggestion), IMAGE_FILTER)
        if path:
            self.ctx.settings.set_value("compare/save_dir", str(Path(path).parent))
            self.save_result(path, key)

    def save_result(self, path, model_path: Path | str | None = None) -> Path | None:
        """Save a model's result (default: the one shown as After) to ``path``."""
        from lesson7_studio.core import images

        if model_path is not None:
            img = self.session.results.get(str(Path(model_path)))
        else:
            got = self._result_to_save()
            img = got[1] if got else None
        if img is None:
            return None
        try:
            out = images.save_image(img, path)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            from ...errors import show_error

            show_error(self, exc, context="Saving the image failed")
            return None
        self._set_status(f"Saved {out}")
        self.ctx.status_message.emit(f"Saved {out}")
        return out

    # ------------------------------------------------------------------ state
    def _set_status(self, text: str) -> None:
        self.status_label.setText(text)

    def _update_controls(self) -> None:
        busy = self.is_busy()
        self.restore_button.setEnabled(not busy and self._current is not None and bool(self.selected_models()))
        self.cancel_button.setEnabled(busy)
        self.progress.setVisible(busy)
        self.save_button.setEnabled(bool(self.session.results))

    def sizeHint(self) -> QSize:
        return QSize(1000, 640)
