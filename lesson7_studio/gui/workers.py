"""Background work for the GUI: a core function in a QThread, its events as Qt signals.

``Worker(fn, *args, **kwargs)`` calls ``fn(*args, on_event=..., cancel=..., **kwargs)`` in its
own thread. Core events are queued and handed to the GUI thread in batches (one queued wake-up
per batch, however many events a fast loop emits), then emitted one by one as ``event``.
Exactly one of ``finished(result)``, ``failed(exc)`` or ``cancelled()`` follows the last
event, then ``done()``. Widgets are only ever touched on the GUI thread.

Functions that take no ``on_event``/``cancel`` can be wrapped in a lambda::

    Worker(lambda on_event, cancel: crappify(img, recipe, seed))
"""

from __future__ import annotations

import threading
import traceback
from collections import deque
from typing import Any, Callable

from PySide6.QtCore import QObject, QThread, Signal, Slot

from lesson7_studio.core.errors import Cancelled
from lesson7_studio.core.events import CancelToken, Event

_FINISHED, _FAILED, _CANCELLED = "finished", "failed", "cancelled"


class _Thread(QThread):
    def __init__(self, worker: "Worker") -> None:
        super().__init__()
        self._worker = worker

    def run(self) -> None:  # runs in the new thread
        self._worker._run()


class Worker(QObject):
    """Run ``fn(*args, on_event=, cancel=, **kwargs)`` in a QThread; re-emit its events."""

    event = Signal(object)  # a core Event, on the GUI thread
    finished = Signal(object)  # fn's return value
    failed = Signal(object)  # the exception (traceback in exc.__traceback__, text in .traceback_text)
    cancelled = Signal()
    done = Signal()  # after finished / failed / cancelled, always
    _wake = Signal()

    def __init__(self, fn: Callable[..., Any], *args: Any, name: str = "", **kwargs: Any) -> None:
        super().__init__()
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.name = name or getattr(fn, "__name__", "work")
        self.token = CancelToken()
        self.result: Any = None
        self.error: BaseException | None = None
        self.outcome: str | None = None  # "finished" | "failed" | "cancelled" once done
        self._queue: deque = deque()
        self._lock = threading.Lock()
        self._thread: _Thread | None = None
        self._running = False
        self._wake.connect(self._drain)

    # ---------------------------------------------------------------- control (GUI thread)
    def start(self) -> "Worker":
        if self._thread is not None:
            raise RuntimeError("a Worker runs once; make a new one")
        self._running = True
        self._thread = _Thread(self)
        self._thread.setObjectName(f"worker:{self.name}")
        self._thread.start()
        return self

    def cancel(self) -> None:
        self.token.cancel()

    def pause(self) -> None:
        self.token.pause()

    def resume(self) -> None:
        self.token.resume()

    def is_paused(self) -> bool:
        return self.token.paused

    def is_running(self) -> bool:
        """True from start() until the final signal has been delivered."""
        return self._running

    def wait(self, ms: int = -1) -> bool:
        """Wait for the thread to end (ms < 0: forever); then deliver pending signals."""
        if self._thread is None:
            return True
        ok = self._thread.wait() if ms < 0 else self._thread.wait(int(ms))
        if ok and QThread.currentThread() == self.thread():
            self._drain()
        return ok

    # ---------------------------------------------------------------- worker thread
    def _post(self, item: tuple[str, Any]) -> None:
        with self._lock:
            wake = not self._queue
            self._queue.append(item)
        if wake:
            self._wake.emit()  # queued: the Worker lives in the GUI thread

    def _on_event(self, ev: Event) -> None:
        self._post(("event", ev))

    def _run(self) -> None:
        try:
            result = self.fn(*self.args, on_event=self._on_event, cancel=self.token, **self.kwargs)
        except Cancelled:
            self._post((_CANCELLED, None))
        except BaseException as exc:  # noqa: BLE001 - reported to the GUI, never swallowed
            exc.traceback_text = "".join(traceback.format_exception(exc))  # type: ignore[attr-defined]
            self._post((_FAILED, exc))
        else:
            if self.token.cancelled and result is None:
                self._post((_CANCELLED, None))
            else:
                self._post((_FINISHED, result))

    # ---------------------------------------------------------------- GUI thread
    @Slot()
    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    return
                kind, payload = self._queue.popleft()
            if kind == "event":
                self.event.emit(payload)
                continue
            self.outcome = kind
            self._running = False
            if kind == _FINISHED:
                self.result = payload
                self.finished.emit(payload)
            elif kind == _FAILED:
                self.error = payload
                self.failed.emit(payload)
            else:
                self.cancelled.emit()
            self.done.emit()
