"""Work-around for a PySide6 reference-count bug, applied once on import.

PySide6 6.12.0 on CPython < 3.12 returns ``True`` from ``SignalInstance.emit()`` without taking
a reference, so every emit from Python (ours, pyqtgraph's, pytest-qt's) drops one reference to
``True``; after a few hundred emits the interpreter aborts with "bool_dealloc: deallocating
True or False". CPython 3.12+ makes ``True`` immortal, so it is unaffected. We measure the
leak on a private signal and, only if it is there, give ``True`` a reference count no program
can exhaust.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal

_PROBE_EMITS = 8
applied = False


class _Probe(QObject):
    sig = Signal(object)


def _leaks_true() -> bool:
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(_PROBE_EMITS):
        probe.sig.emit(None)
    leaked = before - sys.getrefcount(True)
    if leaked > 0:  # put back what the probe took
        for _ in range(leaked):
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(True))
    return leaked >= _PROBE_EMITS


def apply() -> bool:
    """Make ``True`` effectively immortal if this PySide6 leaks it. Returns whether it did."""
    global applied
    if applied or sys.version_info >= (3, 12):
        return applied
    if _leaks_true():
        refcnt = ctypes.c_ssize_t.from_address(id(True))  # ob_refcnt is the first field
        refcnt.value += 1 << 40
        applied = True
    return applied


apply()
