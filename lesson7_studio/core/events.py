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
        self._paused_at: float | None = None
        self._paused_total = 0.0
        self._lock = threading.Lock()

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
        with self._lock:
            if self._paused_at is None:
                self._paused_at = time.perf_counter()
        self._running.clear()

    def resume(self) -> None:
        with self._lock:
            if self._paused_at is not None:
                self._paused_total += time.perf_counter() - self._paused_at
                self._paused_at = None
        self._running.set()

    @property
    def paused_seconds(self) -> float:
        """Seconds spent paused so far (an ETA leaves them out)."""
        with self._lock:
            extra = time.perf_counter() - self._paused_at if self._paused_at is not None else 0.0
            return self._paused_total + extra

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
    # the whole run's plan (filled in by the run): optimizer steps of every stage together, those
    # already done when this stage starts, and this stage's own
    total_steps: int = 0
    steps_done: int = 0
    stage_steps: int = 0


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
    # overall progress of the run (filled in by the run; 0 / None when unknown): ``step`` out of
    # ``total_steps`` across all stages, seconds of training so far (pauses left out), and the ETA
    total_steps: int = 0
    elapsed_s: float = 0.0
    eta_s: float | None = None
    stage_index: int = 0
    n_stages: int = 1


@dataclass
class LRFindPoint(Event):
    """One point of the learning-rate sweep, as it is measured (``done`` of ``total`` batches)."""

    lr: float
    loss: float  # smoothed
    done: int
    total: int


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


def format_lr(lr: float | None) -> str:
    """A learning rate in few characters that keep its exponent: 9.2e-4, 1e-3, 1.25e-5, 0.03, 3."""
    if lr is None or not isinstance(lr, (int, float)) or lr != lr:
        return "—"
    if lr == 0:
        return "0"
    if 1e-2 <= abs(lr) < 1e3:
        return f"{float(lr):.3g}"
    mant, exp = f"{float(lr):.2e}".split("e")
    mant = mant.rstrip("0").rstrip(".")
    return f"{mant}e{int(exp)}"


def format_duration(seconds: float | None) -> str:
    """``75`` -> ``1:15``, ``3725`` -> ``1:02:05``; None -> ``?``."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def emit(on_event: Optional[EventCallback], event: Event) -> None:
    if on_event is not None:
        on_event(event)


class RunProgress:
    """Overall progress of a multi-stage training run, for BatchEnd / StageStart events.

    The run tells it the planned optimizer steps of every stage (:meth:`set_plan`, again when a
    stage's real loader length is known); it wraps the run's event callback and fills in
    ``total_steps``, ``elapsed_s`` and ``eta_s``. The ETA divides the steps left by the rate of
    this stage so far (validation included, pauses left out; the rate of earlier stages until
    the current one has a few steps), so it settles after a few batches and follows a change of
    pace between stages.
    """

    MIN_STEPS_FOR_STAGE_RATE = 3

    def __init__(self, on_event: Optional[EventCallback], cancel: Optional[CancelToken] = None, *,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.on_event = on_event
        self.cancel = cancel
        self.clock = clock
        self.plan: list[int] = []
        self.stage_index = 0
        self.n_stages = 1
        self.t0 = clock()
        self._stage_t0 = self.t0
        self._stage_paused0 = 0.0
        self._stage_step0: int | None = None
        self._rate: float | None = None  # steps/s of the last stage with enough steps

    def set_plan(self, steps_per_stage: list[int]) -> None:
        self.plan = [max(0, int(n)) for n in steps_per_stage]
        self.n_stages = max(1, len(self.plan))

    @property
    def total_steps(self) -> int:
        return sum(self.plan)

    def _active(self) -> float:
        return self.clock() - self.t0 - self._paused()

    def _paused(self) -> float:
        return self.cancel.paused_seconds if self.cancel is not None else 0.0

    def __call__(self, ev: Event) -> None:
        if isinstance(ev, StageStart):
            self.stage_index = ev.index
            self._stage_t0 = self.clock()
            self._stage_paused0 = self._paused()
            self._stage_step0 = None
            if self.plan:
                ev.total_steps = self.total_steps
                ev.steps_done = sum(self.plan[: ev.index])
                ev.stage_steps = self.plan[ev.index] if ev.index < len(self.plan) else 0
        elif isinstance(ev, BatchEnd):
            ev.total_steps = self.total_steps
            ev.stage_index = self.stage_index
            ev.n_stages = self.n_stages
            ev.elapsed_s = self._active()
            ev.eta_s = self._eta(ev.step)
        emit(self.on_event, ev)

    def _eta(self, step: int) -> float | None:
        if self._stage_step0 is None:  # the first batch of a stage carries start-up costs
            self._stage_step0 = step
            self._stage_t0 = self.clock()
            self._stage_paused0 = self._paused()
            return self._eta_from(self._rate, step)
        n = step - self._stage_step0
        dt = self.clock() - self._stage_t0 - (self._paused() - self._stage_paused0)
        if n >= self.MIN_STEPS_FOR_STAGE_RATE and dt > 0:
            self._rate = n / dt
        elif n > 0 and dt > 0 and self._rate is None:
            return self._eta_from(n / dt, step)
        return self._eta_from(self._rate, step)

    def _eta_from(self, rate: float | None, step: int) -> float | None:
        if not rate or not self.total_steps:
            return None
        return max(0.0, (self.total_steps - step) / rate)


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
