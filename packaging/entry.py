"""Entry point of the PyInstaller bundle: ``lesson7_studio.cli.main`` plus a GUI smoke test.

``lesson7-studio --bundle-smoke-test DIR`` (used only by build_bundle.sh) opens the app on a
fresh project in DIR, waits until the main window is shown and its start-up work is done, closes it
(panels shut down their workers as on a normal quit) and exits with status 0 (1 if that did
not happen within 90 s). Every other argument list goes to the normal command line.
"""

from __future__ import annotations

import multiprocessing
import sys

SMOKE_FLAG = "--bundle-smoke-test"


def smoke_test(folder: str) -> int:
    """Start the real app (``app --project``) with a timer that quits once a window is up."""
    import os
    import time

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from lesson7_studio.cli import main

    app = QApplication(sys.argv[:1])  # create_application() reuses this instance
    started = time.monotonic()
    state = {"shown": False, "closed": False, "idle_since": None}

    def elapsed() -> str:
        return f"{time.monotonic() - started:.1f} s"

    def poll() -> None:  # every 200 ms
        windows = [w for w in app.topLevelWidgets() if w.isVisible() and type(w).__name__ == "MainWindow"]
        if time.monotonic() - started > 90:
            timer.stop()
            print(f"smoke-test: FAILED, no idle main window after {elapsed()}", file=sys.stderr, flush=True)
            app.exit(1)
            return
        if not windows:
            return
        window = windows[0]
        if not state["shown"]:
            state["shown"] = True
            print(f"smoke-test: main window shown ({window.windowTitle()!r}) after {elapsed()}", flush=True)
        if window.ctx.running_workers():
            state["idle_since"] = None
            return
        if state["idle_since"] is None:
            state["idle_since"] = time.monotonic()
        if time.monotonic() - state["idle_since"] < 1.0:
            return  # debounced jobs scheduled at start-up may still begin
        timer.stop()
        print(f"smoke-test: start-up work done after {elapsed()}; closing", flush=True)
        # close it the way a user does: panels shut down and background workers stop
        if not window.close():  # a busy panel asked for confirmation: no one to answer
            window._force_close = True
            window.close()
        state["closed"] = not window.isVisible()
        app.exit(0 if state["closed"] else 1)

    timer = QTimer()
    timer.timeout.connect(poll)
    timer.start(200)
    rc = main(["app", "--project", os.path.join(folder, "project"),
               "--settings", os.path.join(folder, "settings.ini")])
    if rc:
        return rc
    return 0 if state["closed"] else 1


def run() -> int:
    multiprocessing.freeze_support()  # data-loader workers in a frozen app (spawn platforms)
    if len(sys.argv) == 3 and sys.argv[1] == SMOKE_FLAG:
        return smoke_test(sys.argv[2])
    from lesson7_studio.cli import main

    return main()


if __name__ == "__main__":
    sys.exit(run())
