"""The Restore panel's list of input files: shown relative to their input folder, exposed lazily
(fetchMore) so that a folder of many thousands of files keeps the view responsive, each with a
state ("done", "failed", "skipped") and its reason."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QAbstractListModel, QModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

FETCH_CHUNK = 2000
_MARKS = {"done": "\u2713 ", "failed": "\u2717 ", "skipped": "\u2013 "}
_COLOURS = {"done": (40, 150, 60), "failed": (200, 40, 40), "skipped": (130, 130, 130)}


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
            return (_MARKS.get(state[0], "") if state else "") + self._names[r]
        if role == Qt.ItemDataRole.ToolTipRole:
            return str(self._paths[r]) + (f"\n{state[0]}: {state[1]}" if state and state[1] else "")
        if role == Qt.ItemDataRole.ForegroundRole and state:
            return QBrush(QColor(*_COLOURS[state[0]]))
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
