"""Background work for the GUI: a core function in a QThread, its events as Qt signals.

``Worker(fn, *args, **kwargs)`` calls ``fn(*args, on_event=..., cancel=..., **kwargs)`` in its
own thread. Core events are queued and handed to the GUI thread in batches (one queued wake-up
per batch, however many events a fast loop emits), then emitted one by one as ``event``.
Exactly one of ``finished(result)``, ``failed(exc)`` or ``cancelled()`` follows the last
event, then ``done()``; the thread has ended before the first of them is emitted, so a receiver
may drop the worker. A started worker is kept alive until then (a QThread destroyed while it
runs aborts the process): dropping every reference to a running worker is safe, it runs to its
end, reports, and is freed. Widgets are only ever touched on the GUI thread.

Functions that take no ``on_event``/``cancel`` can be wrapped in a lambda::

    Worker(lambda on_event, cancel: crappify(img, recipe, seed))
"""

from __future__ import annotations

import atexit
import threading
import traceback
import weakref
from collections import deque
from typing import Any, Callable

from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from lesson7_studio.core.errors import Cancelled
from lesson7_studio.core.events import CancelToken, Event

_FINISHED, _FAILED, _CANCELLED = "finished", "failed", "cancelled"
EXIT_WAIT_MS = 30000  # at interpreter exit: how long to wait for each cancelled worker

# started workers whose final signals are not delivered yet: held here so that a worker nobody
# references any more is not destroyed with its thread still running
_live: set["Worker"] = set()


def live_workers() -> list["Worker"]:
    """Every started worker that has not delivered its final signals yet."""
    return list(_live)


@atexit.register
def _stop_at_exit() -> None:
    """Cancel and wait for the workers still running when the interpreter exits."""
    for w in list(_live):
        w.cancel()
    for w in list(_live):
        if w._thread is not None:
            w._thread.wait(EXIT_WAIT_MS)


class _Thread(QThread):
    def __init__(self, worker: "Worker") -> None:
        super().__init__()
        # weak: a cycle of Qt wrappers is never collected (the worker is kept alive by _live)
        self._worker = weakref.ref(worker)

    def run(self) -> None:  # runs in the new thread
        worker = self._worker()
        if worker is not None:
            worker._run()


class _Waker(QObject):
    """Receives the thread's queued wake-ups for a Worker. The Worker cannot receive them
    itself: its ``event`` signal shadows ``QObject.event``, and every event delivered to it
    would then keep a reference to it (it would never be freed)."""

    wake = Signal()

    def __init__(self, worker: "Worker") -> None:
        super().__init__()
        self._worker = weakref.ref(worker)
        self.wake.connect(self._drain)

    @Slot()
    def _drain(self) -> None:
        worker = self._worker()
        if worker is not None:
            worker._drain()


class Worker(QObject):
    """Run ``fn(*args, on_event=, cancel=, **kwargs)`` in a QThread; re-emit its events."""

    event = Signal(object)  # a core Event, on the GUI thread
    finished = Signal(object)  # fn's return value
    failed = Signal(object)  # the exception (traceback in exc.__traceback__, text in .traceback_text)
    cancelled = Signal()
    done = Signal()  # after finished / failed / cancelled, always

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
        self._waker = _Waker(self)

    # ---------------------------------------------------------------- control (GUI thread)
    def start(self) -> "Worker":
        if self._thread is not None:
            raise RuntimeError("a Worker runs once; make a new one")
        self._running = True
        _live.add(self)
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
            self._waker.wake.emit()  # queued: the waker lives in the GUI thread

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
    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    return
                kind, payload = self._queue.popleft()
            if kind == "event":
                self.event.emit(payload)
                continue
            # the outcome is the thread's last post: it is ending. Wait for it, so that whoever
            # drops the worker on the signals below does not destroy a running QThread.
            self._thread.wait()
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
            # let go of the keep-alive reference from the event loop, not inside our own slot
            QTimer.singleShot(0, lambda w=self: _live.discard(w))
            return
