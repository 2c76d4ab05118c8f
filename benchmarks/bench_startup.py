"""Time from launching the app to its window on screen: window-first start-up against the old
way (torch and the core modules imported before the window is built).

Each repeat is a fresh process running ``lesson7-studio app --project DIR`` (the real command
line, in-process via ``lesson7_studio.cli.main``), noting when the main window has been painted
for the first time (a spy on ``after_first_paint``, which run_app calls after ``show()``) and,
with a 5 ms timer, when the background start-up has finished (torch loaded, every panel built). The first launch of each mode only warms the file cache and is not counted;
the median of the repeats is reported. Target: window visible in under 1.5 s on a warm cache.

    python benchmarks/bench_startup.py [--repeats 5] [--out benchmarks/results/startup.json]

Uses the X server in DISPLAY when there is one (e.g. ``Xvfb :99``), else QT_QPA_PLATFORM=offscreen.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 1.5

# The child: `python -c CHILD MODE PROJECT SETTINGS`; prints one JSON line and exits.
CHILD = r"""
import json, os, sys, time
mode, project, settings = sys.argv[1:4]
from lesson7_studio.gui import app as gapp
if mode == "eager":  # the old way: torch and the core modules first, every panel built at once
    import importlib
    for name in gapp.STARTUP_MODULES:
        importlib.import_module(name)
    from lesson7_studio.core import models
    models.names()
    gapp.deferred_panels = lambda: ()
from PySide6.QtCore import QTimer
app = gapp.create_application()  # run_app reuses it; the timer needs it now
marks = {}
first_paint = gapp.after_first_paint

def spy(widget, callback, fallback_ms=1000):  # run_app calls it right after show()
    def painted():
        handle = widget.windowHandle()
        marks["shown"] = time.time()
        marks["exposed"] = bool(handle is not None and handle.isExposed())
        marks["torch_at_show"] = "torch" in sys.modules
        callback()
    first_paint(widget, painted, fallback_ms)

gapp.after_first_paint = spy

def poll():
    wins = [w for w in app.topLevelWidgets() if type(w).__name__ == "MainWindow"]
    if not wins or "shown" not in marks:
        return
    w = wins[0]
    worker = getattr(w, "startup_worker", None)
    if worker is not None and worker.outcome is not None and not w._deferred:
        marks["ready"] = time.time()
        print("STARTUP " + json.dumps(marks), flush=True)
        os._exit(0)

timer = QTimer()
timer.setInterval(5)
timer.timeout.connect(poll)
timer.start()
from lesson7_studio.cli import main
sys.exit(main(["app", "--project", project, "--settings", settings]))
"""


def launch(mode: str, work: Path, timeout_s: float = 120.0) -> dict:
    env = dict(os.environ)
    env.setdefault("LESSON7_OFFLINE", "1")
    env["LESSON7_DATA_DIR"] = str(work / "data")
    env["LESSON7_CONFIG_DIR"] = str(work / "config")
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        env["QT_QPA_PLATFORM"] = "offscreen"
    settings = work / f"settings-{mode}.ini"
    settings.unlink(missing_ok=True)
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-c", CHILD, mode, str(work / "project"), str(settings)],
                          env=env, capture_output=True, text=True, timeout=timeout_s)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("STARTUP ")), None)
    if line is None:
        raise RuntimeError(f"{mode}: no start-up figures (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    marks = json.loads(line.split(" ", 1)[1])
    return {"shown_s": marks["shown"] - t0, "ready_s": marks["ready"] - t0, "torch_at_show": marks["torch_at_show"],
            "exposed": marks["exposed"]}


def summarise(runs: list[dict]) -> dict:
    return {
        "shown_s_median": statistics.median(r["shown_s"] for r in runs),
        "ready_s_median": statistics.median(r["ready_s"] for r in runs),
        "torch_at_show": sorted({r["torch_at_show"] for r in runs}),
        "exposed_at_show": sorted({r["exposed"] for r in runs}),
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "startup.json")
    args = p.parse_args(argv)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="lesson7-startup-") as tmp:
        work = Path(tmp)
        for mode in ("window-first", "eager"):  # warm the file cache; not counted
            launch(mode, work)
        runs: dict[str, list[dict]] = {"window-first": [], "eager": []}
        for _ in range(args.repeats):  # interleaved, so both modes see the same load
            for mode in runs:
                runs[mode].append(launch(mode, work))
    load_after = os.getloadavg()
    result = {
        "benchmark": "startup",
        "what": "seconds from launching `lesson7-studio app --project DIR` to the main window's first paint "
                "(shown_s) and to every panel built with torch loaded (ready_s); median of repeats, warm cache",
        "display": os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or "offscreen",
        "repeats": args.repeats,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "target_shown_s": TARGET_S,
        "window_first": summarise(runs["window-first"]),
        "baseline_eager": summarise(runs["eager"]),
    }
    result["meets_target"] = result["window_first"]["shown_s_median"] < TARGET_S
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_name(f".{args.out.name}.part")
    tmp_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    tmp_out.replace(args.out)
    wf, ea = result["window_first"], result["baseline_eager"]
    print(f"window shown: {wf['shown_s_median']:.2f} s window-first vs {ea['shown_s_median']:.2f} s eager; "
          f"all panels ready: {wf['ready_s_median']:.2f} s vs {ea['ready_s_median']:.2f} s "
          f"(load {load_before[0]:.1f} -> {load_after[0]:.1f}); {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
