"""Progress in a log (stderr a file or a pipe): plain lines, each state written once."""

import io
import sys

from lesson7_studio.cli import progress
from lesson7_studio.cli.progress import LogProgress, ProgressBars, progress_bar
from lesson7_studio.core.events import Progress


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def _on_clock(bar):
    clock = Clock()
    bar._clock, bar._t0, bar._last = clock, 0.0, 0.0
    return clock


def test_log_lines_are_written_once_and_never_redrawn(monkeypatch):
    err = io.StringIO()  # not a terminal
    monkeypatch.setattr(sys, "stderr", err)
    bars = ProgressBars("restore (x)", "img", "restore")
    bars.progress(Progress(done=0, total=3, stage="restore"))
    assert isinstance(bars.bar, LogProgress)
    clock = _on_clock(bars.bar)
    for i in range(1, 4):
        clock.t += 1.0
        bars.progress(Progress(done=i, total=3, stage="restore", rate=0.004, rate_unit="MP/s"))
        bars.say(f"message {i}")
    bars.close()
    text = err.getvalue()
    lines = text.splitlines()
    assert "\r" not in text
    assert [l for l in lines if l.startswith("message")] == ["message 1", "message 2", "message 3"]
    progress = [l for l in lines if l.startswith("restore (x)")]
    assert progress == ["restore (x): 3/3 img (100%) in 0:03, 4 kpx/s"]  # the final state, once
    assert len(lines) == len(set(lines))  # nothing twice


def test_log_writes_a_line_per_interval_and_the_last_state_only_if_new(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    bar = progress_bar(total=10, desc="train epoch 1", unit="batch")
    assert isinstance(bar, LogProgress) and bar.mininterval == progress.LOG_INTERVAL_S
    clock = _on_clock(bar)
    for i in range(10):
        clock.t += 5.0  # a line every 3 updates at 15 s
        progress.advance(bar, i + 1, f"loss {i}")
    assert err.getvalue().count("\n") == 3
    bar.close()  # 10/10 not written yet: written now, once
    bar.close()
    lines = err.getvalue().splitlines()
    assert len(lines) == 4 and lines[-1].startswith("train epoch 1: 10/10 batch (100%)") and lines[-1].endswith("loss 9")
    again = progress_bar(total=2, mininterval=0.0)
    progress.advance(again, 2)  # written at once (interval 0): close adds nothing
    again.close()
    assert err.getvalue().splitlines()[-1].startswith("2/2") and err.getvalue().count("2/2") == 1


def test_terminal_keeps_tqdm(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", Tty())
    bar = progress_bar(total=2, desc="x")
    assert not isinstance(bar, LogProgress) and bar.mininterval == 0.1
    bar.close()


def test_a_folder_display_is_the_jobs_on_event_and_closes_however_the_job_ends(monkeypatch):
    import signal
    from pathlib import Path

    import pytest

    from lesson7_studio.core.events import CancelToken, ItemFailed, Log

    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    handler = signal.getsignal(signal.SIGINT)
    bars = ProgressBars("eval (x)", "img", "eval", failed="skipped")
    with pytest.raises(RuntimeError, match="job broke"):
        with progress.showing(bars, CancelToken(), "stopping ...") as shown:
            assert shown is bars and signal.getsignal(signal.SIGINT) is not handler
            bars(Progress(done=1, total=2, stage="eval"))
            bars(ItemFailed(path=Path("a.png"), reason="not an image"))
            bars(Log(message="a note"))
            bars(Progress(done=5, total=9, stage="another stage"))  # not this display's stage
            raise RuntimeError("job broke")
    assert bars.bar is None and signal.getsignal(signal.SIGINT) is handler
    lines = err.getvalue().splitlines()
    assert lines[:2] == ["skipped a.png: not an image", "a note"] and len(lines) == 3
    assert lines[2].startswith("eval (x): 1/2 img (50%) in ")  # the bar's last state, at close
