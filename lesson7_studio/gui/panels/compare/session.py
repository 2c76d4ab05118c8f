"""The state of the Compare panel's comparison: the image shown, what its job produced so far, and
the worker that runs :func:`lesson7_studio.core.compare.compare_job` (one at a time: a new start
while one runs cancels it and starts again when it has stopped)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from lesson7_studio.core.compare import Loaded, Restored, compare_job
from lesson7_studio.core.events import Event, Progress

from ...widgets.qimage import to_uint8
from .sources import BICUBIC, GT, INPUT, Source

Item = tuple[Path, Path | None]  # (input, ground truth)


class CompareSession(QObject):
    """One comparison at a time. Signals carry only events of the image shown (a cancelled job's
    late events are dropped); ``finished``/``failed``/``cancelled`` are not emitted for a job
    that is being replaced (``pending``)."""

    loaded = Signal()
    restored = Signal(str)  # the key of the new result (BICUBIC or a model path)
    progress = Signal(object)  # core.events.Progress
    finished = Signal(int)  # number of models run
    failed = Signal(object)  # the exception
    cancelled = Signal()
    done = Signal()  # the worker ended (after one of the three above, or silently when pending)

    def __init__(self, ctx, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.current: Item | None = None
        self.loaded_images: tuple[Any, Any] | None = None  # (input, ground truth) ImageData
        self.sources: dict[str, Source] = {}
        self.results: dict[str, Any] = {}  # model key -> restored ImageData
        self.metrics: dict[str, dict[str, float]] = {}
        self.notes: dict[str, str] = {}
        self.seconds: dict[str, float] = {}
        self.cache: dict = {}  # loaded models, kept between jobs
        self.worker = None
        self.pending = False  # start again when the running worker ends
        self.pending_models: list[tuple[str, Path]] = []
        self.job_item: Item | None = None
        self.job_models: list[tuple[str, Path]] = []

    # ------------------------------------------------------------------ state
    def show(self, item: Item) -> None:
        """Make ``item`` the image compared, forgetting the previous one's results."""
        self.current = item
        self.loaded_images = None
        for d in (self.sources, self.results, self.metrics, self.notes, self.seconds):
            d.clear()

    def has_gt(self) -> bool:
        return self.current is not None and self.current[1] is not None

    def is_busy(self) -> bool:
        return self.worker is not None and self.worker.is_running()

    # ------------------------------------------------------------------ the job
    def start(self, models: list[tuple[str, Path]], tile: int | None) -> bool:
        """Restore the current image with ``models``. False when a job still runs: it is cancelled
        and ``pending`` set; start ``pending_models`` again on ``done``."""
        if self.current is None:
            return False
        if self.is_busy():
            self.pending = True
            self.pending_models = models
            self.worker.cancel()
            return False
        self.pending = False
        self.job_models, self.job_item = models, self.current
        # None (auto) while the start-up still detects the device (asking now would load torch here)
        device = self.ctx.device if self.ctx.device_known else None
        self._forget(models, device)
        inp, gt = self.current
        w = self.ctx.start_worker(compare_job, inp, gt, models, loaded=self.loaded_images, cache=self.cache,
                                  tile=tile, device=device)
        self.worker = w
        w.event.connect(self._on_event)
        w.finished.connect(lambda n: None if self.pending else self.finished.emit(n))
        w.failed.connect(lambda exc: None if self.pending else self.failed.emit(exc))
        w.cancelled.connect(lambda: None if self.pending else self.cancelled.emit())
        w.done.connect(self._on_done)
        return True

    def _forget(self, models: list[tuple[str, Path]], device: str | None) -> None:
        """Free the models no longer ticked and drop the stale results of those about to run."""
        keep = {(str(p), device) for _l, p in models}
        for k in [k for k in self.cache if k not in keep]:
            del self.cache[k]
        for _label, path in models:
            for d in (self.sources, self.results, self.metrics):
                d.pop(str(path), None)

    def cancel(self) -> bool:
        """Cancel the running job (and a pending restart); False when none runs."""
        self.pending = False
        if self.worker is None:
            return False
        self.worker.cancel()
        return True

    def shutdown(self, wait_ms: int = 10000) -> None:
        self.pending = False
        if self.worker is not None:
            self.worker.cancel()
            self.worker.wait(wait_ms)

    def _on_done(self) -> None:
        self.worker = None
        self.done.emit()

    def _on_event(self, ev: Event) -> None:
        if self.job_item != self.current:
            return  # a job for an image that is no longer shown (it is being cancelled)
        if isinstance(ev, Loaded):
            self.loaded_images = (ev.input, ev.gt)
            self.sources[INPUT] = Source("Input", to_uint8(ev.input.rgb))
            if ev.gt is not None:
                self.sources[GT] = Source("Ground truth", to_uint8(ev.gt.rgb))
            self.loaded.emit()
        elif isinstance(ev, Restored):
            self.sources[ev.key] = Source(ev.label, ev.display)
            self.metrics[ev.key] = ev.metrics
            self.notes[ev.key] = ev.note
            self.seconds[ev.key] = ev.seconds
            if ev.key != BICUBIC:
                self.results[ev.key] = ev.image
            self.restored.emit(ev.key)
        elif isinstance(ev, Progress):
            self.progress.emit(ev)
