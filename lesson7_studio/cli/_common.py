"""Helpers shared by the subcommands: argument types and Ctrl-C handling."""

from __future__ import annotations

import argparse
import signal
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
