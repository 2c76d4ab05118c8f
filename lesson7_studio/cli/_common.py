"""Helpers shared by the subcommands: argument types, progress bars and Ctrl-C handling."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator


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


def progress_bar(**kwargs: Any) -> Any:
    """A tqdm bar on stderr: redrawn as often as tqdm likes on a terminal, every
    ``LOG_INTERVAL_S`` seconds (and at the end) in a log. Move it with :func:`advance`."""
    from tqdm import tqdm

    tty = bool(getattr(sys.stderr, "isatty", lambda: False)())
    kwargs.setdefault("mininterval", 0.1 if tty else LOG_INTERVAL_S)
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
        if ev.stage != self.stage:
            return
        if self.bar is None:
            self.bar = progress_bar(total=ev.total, unit=self.unit, desc=self.desc)
        advance(self.bar, ev.done, f"{ev.rate:.2f} {ev.rate_unit}" if self.rate and ev.rate else None)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
