"""PySide6 must not drop references to None / True / False (issue 14, item 1).

PySide6 6.12.0 on CPython 3.11 dropped one reference to ``None`` on every call of a
void-returning Qt method and one to ``True`` on every ``emit()``; a long session then aborted
with "Fatal Python error: none_dealloc". pyproject.toml excludes that release; this test keeps
a later upgrade from bringing the bug back unnoticed. It counts in chunks and stops at the first
chunk that loses references, so a leaking PySide6 fails the test instead of aborting pytest.
"""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QObject, Signal  # noqa: E402
from PySide6.QtWidgets import QLabel, QProgressBar  # noqa: E402

ROUNDS = 20_000
CHUNK = 1_000
# None's count moves a little while the loop runs (frames, the labels' strings); a leak loses
# one reference per call, i.e. CHUNK per chunk
TOLERANCE = 50


class _Emitter(QObject):
    changed = Signal(object)
    flag = Signal(bool)


def _counts() -> dict[str, int]:
    return {"None": sys.getrefcount(None), "True": sys.getrefcount(True), "False": sys.getrefcount(False)}


def test_void_calls_and_emits_keep_refcounts(qapp):
    label = QLabel()
    bar = QProgressBar()
    bar.setRange(0, ROUNDS)
    emitter = _Emitter()
    received: list[int] = []
    emitter.changed.connect(lambda v: received.append(1))
    texts = [f"step {i}" for i in range(CHUNK)]
    start = _counts()
    done = 0
    while done < ROUNDS:
        for i in range(CHUNK):
            label.setText(texts[i])
            label.setEnabled(i % 2 == 0)
            bar.setValue(done + i)
            emitter.changed.emit(None)
            emitter.flag.emit(i % 2 == 1)
        done += CHUNK
        now = _counts()
        lost = {k: start[k] - now[k] for k in start if start[k] - now[k] > TOLERANCE}
        assert not lost, (
            f"after {done} rounds of QLabel.setText / setEnabled / QProgressBar.setValue / emit, "
            f"references lost: {lost}. This PySide6 ({_pyside_version()}) has the reference-count "
            "bug of 6.12.0; pyproject.toml must exclude it."
        )
    assert len(received) == ROUNDS  # the emits really were delivered


def _pyside_version() -> str:
    import PySide6

    return PySide6.__version__
