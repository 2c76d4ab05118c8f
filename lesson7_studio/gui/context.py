"""What every panel shares: the project, the settings, the device and the running workers."""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, QSettings, Signal

from lesson7_studio.core.project import Project, config_dir, starter_models

from .workers import Worker

RECENT_LIMIT = 10
IMPORTED_MODELS_KEY = "models/imported"  # the one settings key of the imported-models list
IMPORTED_LIMIT = 20  # the most recent imports kept


class Settings:
    """QSettings in an ini file (``<config dir>/settings.ini`` unless ``path`` is given).

    Values come back with the type of ``default`` (ini files store strings).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else config_dir() / "settings.ini"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.qsettings = QSettings(str(self.path), QSettings.Format.IniFormat)

    def value(self, key: str, default: Any = None) -> Any:
        v = self.qsettings.value(key, default)
        if v is None or default is None or isinstance(v, type(default)) and not isinstance(default, list):
            return v
        try:
            if isinstance(default, bool):
                return v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes", "on")
            if isinstance(default, int):
                return int(float(v))
            if isinstance(default, float):
                return float(v)
            if isinstance(default, list):
                if v in ("", None):
                    return []
                return list(v) if isinstance(v, (list, tuple)) else [v]
            if isinstance(default, str):
                return str(v)
        except (TypeError, ValueError):
            return default
        return v

    def set_value(self, key: str, value: Any) -> None:
        self.qsettings.setValue(key, value)

    def remove(self, key: str) -> None:
        self.qsettings.remove(key)

    def recent(self, key: str) -> list[str]:
        return [str(v) for v in self.value(key, []) if v]

    def add_recent(self, key: str, item: str | os.PathLike[str], limit: int = RECENT_LIMIT) -> list[str]:
        item = str(item)
        items = [item] + [v for v in self.recent(key) if v != item]
        items = items[:limit]
        self.set_value(key, items)
        return items

    def sync(self) -> None:
        self.qsettings.sync()


@dataclass(frozen=True)
class ModelChoice:
    """A restoration model the user can pick: a label for lists and the .safetensors path."""

    label: str
    path: Path
    source: str = "project"  # "starter" | "project" | "run"


def detect_device() -> str:
    """"cuda" when a CUDA GPU is usable, "mps" on Apple silicon, else "cpu" (core's device
    detection; importing it imports torch)."""
    from lesson7_studio.core import devices

    return devices.detect_device()


class AppContext(QObject):
    """Project, settings, device and workers, shared by the main window and all panels."""

    project_changed = Signal(object)  # Project
    models_changed = Signal()
    runs_changed = Signal()
    datasets_changed = Signal()
    status_message = Signal(str)
    model_chosen = Signal(str, object)  # registry name, options dict (Model panel -> Train panel)
    imported_models_changed = Signal()  # the imported-models list changed (Compare, Restore)
    workers_idle = Signal()  # the last running worker has delivered its final signals

    def __init__(
        self,
        project: Project | None = None,
        settings: Settings | None = None,
        device: str | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings if settings is not None else Settings()
        if project is None:
            from lesson7_studio.core.project import default_project

            project = default_project()
        self.project: Project = project
        self._device: str | None = device  # detected on first use (that imports torch)
        self._workers: set[Worker] = set()
        self.shutting_down = False  # set while the main window waits for its workers to end
        self.model_choice: tuple[str, dict[str, Any]] = ("unet-lite", {})
        self._imported: list[Path] = [
            Path(p) for p in self.settings.value(IMPORTED_MODELS_KEY, []) if p and Path(p).is_file()
        ]

    # ------------------------------------------------------------------ device
    @property
    def device(self) -> str:
        """"cuda", "mps" or "cpu"; detected (importing torch) on first use unless set."""
        if self._device is None:
            self._device = detect_device()
        return self._device

    @device.setter
    def device(self, value: str) -> None:
        self._device = value

    @property
    def device_known(self) -> bool:
        """Whether ``device`` is known without importing torch (the app detects it in the
        background at start-up, so the window can show before torch is loaded)."""
        return self._device is not None

    # ------------------------------------------------------------------ model choice
    def set_model_choice(self, name: str, options: dict[str, Any]) -> None:
        """The architecture the Train panel trains next (set by the Model panel)."""
        self.model_choice = (name, dict(options))
        self.model_chosen.emit(name, dict(options))

    # ------------------------------------------------------------------ project
    def set_project(self, project: Project) -> None:
        project.create()
        self.project = project
        self.settings.add_recent("recent/projects", project.root)
        self.settings.set_value("project/last", str(project.root))
        self.project_changed.emit(project)
        self.datasets_changed.emit()
        self.runs_changed.emit()
        self.models_changed.emit()

    # ------------------------------------------------------------------ workers
    def start_worker(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Worker:
        """Start ``fn(*args, on_event=, cancel=, **kwargs)`` in a Worker; kept alive until done.

        Connect to the returned worker's signals right away (they are delivered through the
        event loop, so nothing is missed)."""
        worker = Worker(fn, *args, **kwargs)
        if self.shutting_down:  # the window is closing: the job starts cancelled
            worker.cancel()
        self._workers.add(worker)
        ref = weakref.ref(worker)  # a connection that held the worker would keep it forever
        worker.done.connect(lambda: self._forget(ref()))
        return worker.start()

    def _forget(self, worker: Worker | None) -> None:
        # Panels may still hold the worker (to read its result): Python frees it when unused.
        self._workers.discard(worker)
        if not self.running_workers():
            self.workers_idle.emit()

    def running_workers(self) -> list[Worker]:
        return [w for w in self._workers if w.is_running()]

    def cancel_running(self) -> list[Worker]:
        """Ask every running worker to stop (no waiting); returns them. ``workers_idle`` follows
        when the last one has ended."""
        workers = self.running_workers()
        for w in workers:
            w.cancel()
        return workers

    def cancel_all(self, wait_ms: int = 10000) -> bool:
        """Cancel every running worker and wait for them (blocks: for tests and the end of
        the event loop, never while the window is up); False if one did not stop in time."""
        workers = list(self._workers)
        for w in workers:
            w.cancel()
        return all(w.wait(wait_ms) for w in workers)

    # ------------------------------------------------------------------ imported models
    @property
    def imported_models(self) -> list[Path]:
        """Model files the user imported (outside the project), oldest first; a copy."""
        return list(self._imported)

    def add_imported_model(self, path: str | os.PathLike[str]) -> bool:
        """Add ``path`` to the imported models (kept: the last IMPORTED_LIMIT); persisted at once.
        Returns False (and emits nothing) when it is listed already."""
        path = Path(path)
        if path in self._imported:
            return False
        self._imported = (self._imported + [path])[-IMPORTED_LIMIT:]
        self._save_imported()
        return True

    def remove_imported_model(self, path: str | os.PathLike[str]) -> bool:
        """Drop ``path`` from the imported models; False when it was not listed."""
        path = Path(path)
        if path not in self._imported:
            return False
        self._imported.remove(path)
        self._save_imported()
        return True

    def _save_imported(self) -> None:
        self.settings.set_value(IMPORTED_MODELS_KEY, [str(p) for p in self._imported])
        self.imported_models_changed.emit()

    # ------------------------------------------------------------------ models
    def available_models(self) -> list[ModelChoice]:
        """Starter model(s), every loadable file in the project's models/, then each finished run's model."""
        out: list[ModelChoice] = []
        for p in starter_models():
            out.append(ModelChoice(f"Starter: {p.stem}", p, "starter"))
        for p in self.project.list_models():
            out.append(ModelChoice(p.stem, p, "project"))
        for run in self.project.list_runs():
            if run.has_model:
                out.append(ModelChoice(f"Run: {run.name}", run.model_path, "run"))
        return out
