"""Helpers shared by the subcommands: argument types, progress bars and Ctrl-C handling."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from lesson7_studio.core.units import format_rate


def positive_int(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return v


def non_negative_int(text: str) -> int:
    v = int(text)
    if v < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return v


def int_range(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse type: an integer from ``lo`` to ``hi``."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number from {lo} to {hi}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"must be from {lo} to {hi}")
        return v

    parse.__name__ = f"int from {lo} to {hi}"
    return parse


def positive_float(text: str) -> float:
    v = float(text)
    if not v > 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return v


@contextmanager
def cancel_on_sigint(cancel: Any, say: Callable[[str], None], doing: str) -> Iterator[None]:
    """First Ctrl-C sets ``cancel`` (the work stops cleanly, ``say(doing)`` tells how); a second
    one aborts. The previous handler is put back afterwards; off the main thread it does nothing."""
    previous = None
    if threading.current_thread() is threading.main_thread():

        def on_sigint(signum: int, frame: object) -> None:
            if cancel.cancelled:
                raise KeyboardInterrupt
            cancel.cancel()
            say(doing)

        previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


# Seconds between progress lines when stderr is a file or a pipe (a log): one line per event
# would write thousands of lines for a folder.
LOG_INTERVAL_S = 15.0


class LogProgress:
    """The part of tqdm's interface the CLI uses, for a log (stderr is a file or a pipe): plain
    lines ending in a newline, no carriage returns and no redraws. A line is written when
    ``mininterval`` seconds have passed since the last one, and at :meth:`close` unless the last
    line already said the final state, so no state is written twice; :meth:`write` prints a
    message alone (tqdm redraws its bar around each message, and closing repeats its last line:
    in a file every progress line appeared twice)."""

    def __init__(self, total: int | None = None, *, desc: str = "", unit: str = "it", initial: int = 0,
                 mininterval: float = LOG_INTERVAL_S, **_ignored: Any) -> None:
        import time

        self._clock = time.monotonic
        self.total, self.desc, self.unit, self.mininterval = total, desc, unit, mininterval
        self.n = int(initial)
        self.postfix = ""
        self._t0 = self._last = self._clock()
        self._printed: tuple[int, str] | None = None
        self.closed = False

    def _line(self) -> str:
        elapsed = self._clock() - self._t0
        count = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        mins, secs = divmod(int(elapsed), 60)
        tail = f", {self.postfix}" if self.postfix else ""
        return f"{self.desc + ': ' if self.desc else ''}{count} {self.unit}{pct} in {mins}:{secs:02d}{tail}"

    def _emit(self) -> None:
        print(self._line(), file=sys.stderr, flush=True)
        self._printed = (self.n, self.postfix)
        self._last = self._clock()

    def update(self, k: int = 1) -> None:
        self.n += int(k)
        if self._clock() - self._last >= self.mininterval:
            self._emit()

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = str(s)

    def write(self, message: str, file: Any = None) -> None:
        print(message, file=file or sys.stderr, flush=True)

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        if not self.closed and self._printed != (self.n, self.postfix):
            self._emit()
        self.closed = True


def progress_bar(**kwargs: Any) -> Any:
    """A progress display on stderr: a tqdm bar redrawn as often as tqdm likes on a terminal; in
    a log, a :class:`LogProgress` line every ``LOG_INTERVAL_S`` seconds and one at the end. Move
    it with :func:`advance`."""
    tty = bool(getattr(sys.stderr, "isatty", lambda: False)())
    if not tty:
        kwargs.setdefault("mininterval", LOG_INTERVAL_S)
        return LogProgress(**kwargs)
    from tqdm import tqdm

    kwargs.setdefault("mininterval", 0.1)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(file=sys.stderr, **kwargs)


def advance(bar: Any, done: int, postfix: str | None = None) -> None:
    """Set ``bar`` to ``done`` (and its postfix) through ``update``, so tqdm's rate limit holds."""
    if postfix is not None:
        bar.set_postfix_str(postfix, refresh=False)
    if done != bar.n:
        bar.update(done - bar.n)


class ProgressBars:
    """A bar made at the first Progress event of ``stage`` (when the total is known), moved by
    later ones (with their rate as postfix when ``rate``); messages are printed above it."""

    def __init__(self, desc: str, unit: str, stage: str, rate: bool = True) -> None:
        self.desc, self.unit, self.stage, self.rate = desc, unit, stage, rate
        self.bar: Any = None

    def say(self, message: str) -> None:
        if self.bar is not None:
            self.bar.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr)

    def progress(self, ev: Any) -> None:
        if ev.stage == "tiles" and self.bar is not None:  # inside one big image: tiles done
            if ev.total > 1:
                self.bar.set_postfix_str(f"{ev.message}: tile {ev.done}/{ev.total}".lstrip(": "), refresh=False)
                self.bar.update(0)  # redrawn (or logged) at the bar's own pace
            return
        if ev.stage != self.stage:
            return
        if self.bar is None:
            self.bar = progress_bar(total=ev.total, unit=self.unit, desc=self.desc)
        advance(self.bar, ev.done, format_rate(ev.rate, ev.rate_unit) if self.rate and ev.rate else None)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
