"""`lesson7-studio` without a display: one line that says how to run it, exit status 1 (issue 14)
instead of Qt's plugin text and an abort (exit 134)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

ROOT = Path(__file__).resolve().parents[2]
NO_DISPLAY = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")


def _env(tmp_path, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in NO_DISPLAY}
    env.update(LESSON7_DATA_DIR=str(tmp_path / "data"), LESSON7_CONFIG_DIR=str(tmp_path / "config"),
               LESSON7_OFFLINE="1", **extra)
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def _unused_x_display() -> str:
    for n in range(231, 299):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return f":{n}"
    pytest.skip("no unused X display number")


@pytest.mark.parametrize(
    ("env", "platform", "fails"),
    [
        ({}, "linux", True),
        ({"DISPLAY": ":0"}, "linux", False),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", False),
        ({"QT_QPA_PLATFORM": "offscreen"}, "linux", False),
        ({"QT_QPA_PLATFORM": "xcb"}, "linux", True),
        ({"QT_QPA_PLATFORM": "xcb", "WAYLAND_DISPLAY": "wayland-0"}, "linux", True),
        ({"QT_QPA_PLATFORM": "wayland", "WAYLAND_DISPLAY": "wayland-0"}, "linux", False),
        ({"DISPLAY": "  "}, "freebsd14", True),
        ({}, "win32", False),
        ({}, "darwin", False),
    ],
)
def test_check_display(env, platform, fails):
    from lesson7_studio.gui.app import NoDisplayError, check_display

    if not fails:
        check_display(env, platform)
        return
    with pytest.raises(NoDisplayError) as info:
        check_display(env, platform)
    msg = str(info.value)
    assert "\n" not in msg and "display" in msg.lower()
    assert "desktop session" in msg and "QT_QPA_PLATFORM=offscreen" in msg and "Xvfb" in msg


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the display servers of Linux")
def test_no_display_prints_one_line_and_exits_1(tmp_path):
    env = _env(tmp_path)
    # without our check Qt itself fails here (its xcb plugin finds no display): the case is real
    bare = _run(["-c", "from PySide6.QtWidgets import QApplication; QApplication([])"], env)
    if bare.returncode == 0:
        pytest.skip("Qt starts without a display on this machine")
    assert bare.returncode != 0 and "platform plugin" in bare.stderr
    proc = _run(["-m", "lesson7_studio", "app", "--project", str(tmp_path / "p"),
                 "--settings", str(tmp_path / "s.ini")], env)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: No display") and "QT_QPA_PLATFORM=offscreen" in lines[0]
    assert "Xvfb" in lines[0] and "desktop session" in lines[0]
    assert "qt.qpa" not in proc.stderr and proc.stdout == ""
    # no arguments opens the app too: the same message
    proc = _run(["-m", "lesson7_studio"], env)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[0].startswith("error: No display")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11's xcb plugin")
def test_a_display_qt_cannot_use_is_one_line_too(tmp_path):
    """DISPLAY names no running X server (or a library Qt's xcb plugin needs is missing): Qt's
    fatal message becomes our line, exit status 1 instead of an abort."""
    env = _env(tmp_path, DISPLAY=_unused_x_display())
    proc = _run(["-m", "lesson7_studio", "app", "--project", str(tmp_path / "p"),
                 "--settings", str(tmp_path / "s.ini")], env)
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    ours = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(ours) == 1 and "Qt could not start its display plugin" in ours[0]
    assert "libxcb-cursor0" in ours[0] and "QT_QPA_PLATFORM=offscreen" in ours[0]
    assert "This application failed to start" not in proc.stderr
