"""Events and cancellation: the one protocol for long work (DESIGN.md rule 2).

Long-running core functions take ``on_event: Callable[[Event], None] | None`` and
``cancel: CancelToken | None``. They report typed events through the callback (never print)
and call ``cancel.check()`` at safe points, which raises :class:`~.errors.Cancelled` once the
token is set; they clean up partial output before letting it propagate. Front ends turn the
events into progress bars (CLI) or Qt signals (GUI worker thread).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from .errors import Cancelled


class CancelToken:
    """Thread-safe cancel (and pause) flag shared between a front end and a worker."""

    def __init__(self) -> None:
        self._cancel = threading.Event()
        self._running = threading.Event()
        self._running.set()

    # cancel
    def cancel(self) -> None:
        self._cancel.set()
        self._running.set()  # a paused worker must wake up to see the cancel

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Block while paused; raise Cancelled once cancelled. Call at safe points."""
        self.wait_if_paused()
        if self._cancel.is_set():
            raise Cancelled()

    # pause
    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_if_paused(self, poll: float = 0.1) -> None:
        while not self._running.wait(poll):
            if self._cancel.is_set():
                return


def check(cancel: Optional[CancelToken]) -> None:
    """``cancel.check()`` that accepts None."""
    if cancel is not None:
        cancel.check()


@dataclass
class Event:
    """Base class of all events."""


@dataclass
class Progress(Event):
    done: int
    total: int
    message: str = ""
    stage: str = ""
    rate: float | None = None  # items (or megapixels) per second
    rate_unit: str = "it/s"
    eta_s: float | None = None


@dataclass
class ItemDone(Event):
    path: Path
    output: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class ItemSkipped(Event):
    path: Path
    reason: str


@dataclass
class ItemFailed(Event):
    path: Path
    reason: str


@dataclass
class StageStart(Event):
    name: str
    index: int
    total: int
    epochs: int = 0


@dataclass
class BatchEnd(Event):
    stage: str
    epoch: int
    step: int  # global step within the run
    iteration: int  # batch index within the epoch
    n_iter: int
    loss: float
    smooth_loss: float
    lr: float
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class EpochEnd(Event):
    stage: str
    epoch: int  # 0-based epoch within the stage
    n_epochs: int
    step: int
    metrics: dict[str, float] = field(default_factory=dict)  # train_loss, valid_loss, psnr, ...
    seconds: float = 0.0


@dataclass
class SampleImages(Event):
    """Fixed samples after an epoch: rows of (input, prediction, target) HxWx3 uint8 arrays."""

    stage: str
    epoch: int
    rows: list[tuple[Any, Any, Any]]
    path: Path | None = None  # PNG grid written in the run folder, when there is one
    critic_scores: list[Any] | None = None  # per-row critic patch maps (GAN stages)


@dataclass
class CheckpointSaved(Event):
    path: Path
    reason: str = ""  # "epoch", "step", "best", "last", "cancel"


@dataclass
class Log(Event):
    message: str
    level: str = "info"


@dataclass
class Finished(Event):
    summary: dict[str, Any] = field(default_factory=dict)


EventCallback = Callable[[Event], None]


def emit(on_event: Optional[EventCallback], event: Event) -> None:
    if on_event is not None:
        on_event(event)


class RateMeter:
    """Items/s and ETA over a sliding window, for Progress events."""

    def __init__(self, total: int, window: int = 20) -> None:
        self.total = total
        self.window = window
        self.start = time.perf_counter()
        self._marks: list[tuple[float, float]] = [(self.start, 0.0)]

    def update(self, done: float) -> tuple[float | None, float | None]:
        now = time.perf_counter()
        self._marks.append((now, float(done)))
        self._marks = self._marks[-self.window :]
        t0, d0 = self._marks[0]
        if now - t0 <= 0 or done - d0 <= 0:
            return None, None
        rate = (done - d0) / (now - t0)
        eta = max(0.0, (self.total - done) / rate) if self.total else None
        return rate, eta
