"""Window-first start-up (issue 14): the window shows before torch is imported; the panels that
need torch are busy pages until a background thread has loaded it, then built in place."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

ROOT = Path(__file__).resolve().parents[2]

# run_app as `lesson7-studio app --project P --settings S` runs it; a spy on after_first_paint notes
# what was imported when the window was first painted, a timer what it holds once start-up is done
CHILD = r"""
import json, os, sys
from PySide6.QtCore import QTimer
from lesson7_studio.gui import app as gapp
app = gapp.create_application()
seen = {}
first_paint = gapp.after_first_paint

def spy(widget, callback, fallback_ms=1000):  # what run_app does right after show()
    def at_first_paint():
        handle = widget.windowHandle()
        seen["at_show"] = {"torch": "torch" in sys.modules, "torchvision": "torchvision" in sys.modules,
                           "exposed": bool(handle is not None and handle.isExposed()),
                           "panels": sorted(widget.panels), "device": widget.device_label.text(),
                           "busy_page": type(widget.stack.widget(1)).__name__,
                           "wheel_guard": widget.panels["compare"].tile_combo.focusPolicy().name}
        callback()
    first_paint(widget, at_first_paint, fallback_ms)

gapp.after_first_paint = spy

def poll():
    wins = [w for w in app.topLevelWidgets() if type(w).__name__ == "MainWindow"]
    if not wins or "at_show" not in seen:
        return
    w = wins[0]
    worker = getattr(w, "startup_worker", None)
    if worker is not None and worker.outcome is not None and not w._deferred:
        seen["ready"] = {"outcome": worker.outcome, "panels": sorted(w.panels), "device": w.device_label.text(),
                         "model_page": type(w.stack.widget(1)).__name__}
        print("SEEN " + json.dumps(seen), flush=True)
        w._force_close = True
        w.close()
        app.quit()

timer = QTimer()
timer.setInterval(10)
timer.timeout.connect(poll)
timer.start()
from lesson7_studio.cli import main
sys.exit(main(["app", "--project", sys.argv[1], "--settings", sys.argv[2]]))
"""


def test_window_is_shown_before_torch_is_imported(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", LESSON7_OFFLINE="1",
               LESSON7_DATA_DIR=str(tmp_path / "data"), LESSON7_CONFIG_DIR=str(tmp_path / "config"))
    proc = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "project"), str(tmp_path / "s.ini")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("SEEN ")), None)
    assert line is not None, f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    seen = json.loads(line[5:])
    shown, ready = seen["at_show"], seen["ready"]
    assert shown["exposed"], "the background start-up began before the window was on screen"
    assert not shown["torch"] and not shown["torchvision"], "the GUI imported torch before its window showed"
    assert set(shown["panels"]) == {"data", "compare", "inspect"}
    assert shown["busy_page"] == "BusyPage"  # the Model panel's place, until torch is there
    assert shown["device"] == "Device: \u2026"
    assert shown["wheel_guard"] == "StrongFocus"  # the app-wide wheel guard: no WheelFocus fields
    assert ready["outcome"] == "finished"
    assert {"data", "model", "train", "compare", "inspect", "restore"} <= set(ready["panels"])
    assert ready["model_page"] == "ModelPanel"
    assert ready["device"].startswith("Device: ") and "\u2026" not in ready["device"]
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.fixture
def deferred_window(qtbot, ctx):
    from lesson7_studio.gui.main_window import MainWindow

    w = MainWindow(ctx, deferred=("model", "train"))
    qtbot.addWidget(w)
    w.show()
    yield w
    w._force_close = True
    for p in w.panels.values():
        p.shutdown()


def test_deferred_panels_are_busy_pages_then_built_in_place(qtbot, deferred_window):
    from lesson7_studio.gui.widgets.common import BusyPage

    w = deferred_window
    assert "model" not in w.panels and "train" not in w.panels and "data" in w.panels
    keys = [w.sidebar.item(i).data(0x0100) for i in range(w.sidebar.count())]
    model_index = keys.index("model")
    w.sidebar.setCurrentRow(model_index)  # the user clicks Model while torch still loads
    page = w.stack.currentWidget()
    assert isinstance(page, BusyPage) and page.bar.maximum() == 0  # a busy indicator
    w.build_deferred_panels()
    assert w.stack.currentIndex() == model_index and w.stack.currentWidget() is w.panels["model"]
    assert w.stack.indexOf(w.panels["train"]) == keys.index("train")
    pages = [w.stack.widget(i) for i in range(w.stack.count())]
    assert len(pages) == len(keys) and not any(isinstance(pg, BusyPage) for pg in pages)
    assert w.current_panel_name() == "model"


def test_asking_for_a_deferred_panel_builds_it(qtbot, deferred_window):
    w = deferred_window
    train = w.show_panel("train")  # e.g. a menu action before the background start-up ended
    assert w.panels["train"] is train and w.stack.currentWidget() is train
    w.build_deferred_panels()
    assert w.panels["train"] is train  # not built twice


def test_background_startup_sets_the_device_and_builds_the_rest(qtbot, qapp, gui_project, gui_settings):
    from lesson7_studio.gui.app import deferred_panels, start_background_startup
    from lesson7_studio.gui.context import AppContext
    from lesson7_studio.gui.main_window import MainWindow

    ctx = AppContext(gui_project, gui_settings)  # no device given: detected in the background
    assert not ctx.device_known
    w = MainWindow(ctx, deferred=deferred_panels())  # as run_app makes it
    qtbot.addWidget(w)
    w.show()
    assert w.device_label.text() == "Device: \u2026" and not ctx.device_known
    worker = start_background_startup(w)
    qtbot.waitUntil(lambda: worker.outcome is not None and not w._deferred, timeout=120000)
    assert worker.outcome == "finished" and ctx.device_known
    assert ctx.device in ("cpu", "cuda", "mps") and "\u2026" not in w.device_label.text()
    assert {"model", "restore"} <= set(w.panels)
    w._force_close = True
    for p in w.panels.values():
        p.shutdown()
    ctx.cancel_all(wait_ms=60000)
