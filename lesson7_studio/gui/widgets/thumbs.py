"""A lazily loaded thumbnail grid that stays fast with thousands of photos.

The model only loads a thumbnail when the view asks for it (visible rows), in a small
QThreadPool: QImageReader decodes at a reduced size (cheap for JPEG) and applies the EXIF
orientation. Results come back to the GUI thread through a queued signal; stale results
from a previous folder are dropped.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QRunnable,
    QSize,
    Qt,
    QThreadPool,
    Signal,
    Slot,
)
from PySide6.QtGui import QColor, QImage, QImageReader, QPainter, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListView, QWidget

PathRole = Qt.ItemDataRole.UserRole + 1


def load_thumbnail(path: str | Path, size: int) -> QImage:
    """A QImage no larger than size x size (EXIF orientation applied); null on failure."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    src = reader.size()
    if src.isValid() and (src.width() > size or src.height() > size):
        reader.setScaledSize(src.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio))
    img = reader.read()
    if img.isNull():
        return img
    if img.width() > size or img.height() > size:
        img = img.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    return img


class _Signals(QObject):
    loaded = Signal(int, int, QImage)  # generation, row, image


class _Job(QRunnable):
    def __init__(self, signals: _Signals, generation: int, row: int, path: Path, size: int) -> None:
        super().__init__()
        self.signals, self.generation, self.row, self.path, self.size = signals, generation, row, path, size

    def run(self) -> None:  # pool thread
        img = load_thumbnail(self.path, self.size)
        self.signals.loaded.emit(self.generation, self.row, img)


class ThumbnailModel(QAbstractListModel):
    """Image paths with thumbnails loaded on demand in a thread pool."""

    thumbnail_ready = Signal(int)  # row

    def __init__(self, size: int = 112, parent: QObject | None = None, *, threads: int = 2, cache: int = 2000) -> None:
        super().__init__(parent)
        self.size = size
        self._paths: list[Path] = []
        self._cache: OrderedDict[int, QPixmap] = OrderedDict()
        self._cache_limit = cache
        self._pending: set[int] = set()
        self._failed: set[int] = set()
        self._generation = 0
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._signals = _Signals()
        self._signals.loaded.connect(self._on_loaded, Qt.ConnectionType.QueuedConnection)
        self._placeholder = self._make_placeholder(QColor("#e3e6ea"))
        self._broken = self._make_placeholder(QColor("#f3d6d4"), "?")

    def _make_placeholder(self, color: QColor, text: str = "") -> QPixmap:
        pix = QPixmap(self.size, self.size)
        pix.fill(Qt.GlobalColor.transparent)
        p = QPainter(pix)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setBrush(color)
        p.setPen(Qt.PenStyle.NoPen)
        m = self.size // 8
        p.drawRoundedRect(m, m, self.size - 2 * m, self.size - 2 * m, 6, 6)
        if text:
            p.setPen(QColor("#b3261e"))
            p.drawText(pix.rect(), Qt.AlignmentFlag.AlignCenter, text)
        p.end()
        return pix

    # ------------------------------------------------------------------ content
    def set_paths(self, paths: list[Path]) -> None:
        self.beginResetModel()
        self._generation += 1
        self.pool.clear()  # drop queued jobs of the previous folder
        self._paths = [Path(p) for p in paths]
        self._cache.clear()
        self._pending.clear()
        self._failed.clear()
        self.endResetModel()

    def paths(self) -> list[Path]:
        return list(self._paths)

    def path(self, row: int) -> Path:
        return self._paths[row]

    def loaded_count(self) -> int:
        return len(self._cache)

    def shutdown(self) -> None:
        self._generation += 1
        self.pool.clear()
        self.pool.waitForDone(3000)

    # ------------------------------------------------------------------ Qt model
    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self._paths)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self._paths):
            return None
        row = index.row()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._paths[row].name
        if role == Qt.ItemDataRole.ToolTipRole:
            return str(self._paths[row])
        if role == PathRole:
            return str(self._paths[row])
        if role == Qt.ItemDataRole.DecorationRole:
            pix = self._cache.get(row)
            if pix is not None:
                self._cache.move_to_end(row)
                return pix
            if row in self._failed:
                return self._broken
            self._request(row)
            return self._placeholder
        return None

    def _request(self, row: int) -> None:
        if row in self._pending:
            return
        self._pending.add(row)
        self.pool.start(_Job(self._signals, self._generation, row, self._paths[row], self.size))

    @Slot(int, int, QImage)
    def _on_loaded(self, generation: int, row: int, img: QImage) -> None:
        if generation != self._generation:
            return
        self._pending.discard(row)
        if img.isNull():
            self._failed.add(row)
        else:
            self._cache[row] = QPixmap.fromImage(img)
            while len(self._cache) > self._cache_limit:
                self._cache.popitem(last=False)
        idx = self.index(row)
        self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])
        self.thumbnail_ready.emit(row)


class ThumbnailGrid(QListView):
    """Icon-mode list view over a ThumbnailModel."""

    def __init__(self, size: int = 112, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("thumbGrid")
        self.thumb_model = ThumbnailModel(size, self)
        self.setModel(self.thumb_model)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(200)
        self.setIconSize(QSize(size, size))
        self.setGridSize(QSize(size + 12, size + 26))
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setSpacing(2)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)

    def set_paths(self, paths: list[Path]) -> None:
        self.thumb_model.set_paths(paths)
        if paths:
            self.setCurrentIndex(self.thumb_model.index(0))

    def current_path(self) -> Path | None:
        idx = self.currentIndex()
        return self.thumb_model.path(idx.row()) if idx.isValid() else None

    def select_path(self, path: Path) -> bool:
        try:
            row = self.thumb_model.paths().index(Path(path))
        except ValueError:
            return False
        self.setCurrentIndex(self.thumb_model.index(row))
        return True
