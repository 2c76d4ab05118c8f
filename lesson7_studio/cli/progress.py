"""How the CLI shows long work: progress bars on stderr (tqdm on a terminal, plain lines in a
log), messages printed above them, and Ctrl-C as a clean cancel. Every subcommand uses these."""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from lesson7_studio.core.units import format_rate


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


class Console:
    """The current bar of a subcommand and the messages printed above it (tqdm redraws its bar
    around each message; a log gets the message alone)."""

    def __init__(self) -> None:
        self.bar: Any = None

    def say(self, message: str) -> None:
        if self.bar is not None:
            self.bar.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class ProgressBars(Console):
    """A folder job's display: a bar made at the first Progress event of ``stage`` (when the
    total is known), moved by later ones (with their rate as postfix when ``rate``); a failed
    item (``"<failed> <path>: <reason>"``) and log messages are printed above it. Pass it as
    the job's ``on_event``."""

    def __init__(self, desc: str, unit: str, stage: str, rate: bool = True, failed: str = "failed") -> None:
        super().__init__()
        self.desc, self.unit, self.stage, self.rate, self.failed = desc, unit, stage, rate, failed

    def __call__(self, ev: Any) -> None:
        from lesson7_studio.core.events import ItemFailed, Log, Progress

        if isinstance(ev, Progress):
            self.progress(ev)
        elif isinstance(ev, ItemFailed):
            self.say(f"{self.failed} {ev.path}: {ev.reason}")
        elif isinstance(ev, Log):
            self.say(ev.message)

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


@contextmanager
def showing(console: Console, cancel: Any, doing: str) -> Iterator[Console]:
    """Run a job under ``console``: the first Ctrl-C cancels it (``doing`` says how it stops),
    and the console's bar is closed however the job ends."""
    try:
        with cancel_on_sigint(cancel, console.say, doing):
            yield console
    finally:
        console.close()
