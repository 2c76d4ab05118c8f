"""Event-loop latency of the app while a training run goes on, against idle.

A precise QTimer asks for a tick every 10 ms; the lateness of each tick (time since the
previous one minus 10 ms) is what a user feels as UI stutter. We measure it first with the
main window idle (the baseline), then while the Train panel runs the quick recipe on a small
dataset (curves, samples and log updating live). Target: p99 < 50 ms during training.

    python benchmarks/bench_gui_latency.py [--seconds 15] [--out benchmarks/results/gui_latency.json]

Runs offscreen unless QT_QPA_PLATFORM says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("LESSON7_OFFLINE", "1")

TICK_MS = 10
TARGET_P99_MS = 50.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def measure(app, seconds: float, keep_going=lambda: True) -> dict:
    """Lateness (ms) of a 10 ms PreciseTimer for ``seconds`` (or until keep_going() is false)."""
    from PySide6.QtCore import QEventLoop, Qt, QTimer

    late: list[float] = []
    last = [time.perf_counter()]
    t_end = last[0] + seconds
    loop = QEventLoop()

    def tick():
        now = time.perf_counter()
        late.append(max(0.0, (now - last[0]) * 1000.0 - TICK_MS))
        last[0] = now
        if now >= t_end or not keep_going():
            loop.quit()

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(TICK_MS)
    timer.timeout.connect(tick)
    timer.start()
    loop.exec()
    timer.stop()
    return {
        "ticks": len(late),
        "seconds": round(seconds, 2),
        "p50_ms": round(percentile(late, 0.50), 2),
        "p90_ms": round(percentile(late, 0.90), 2),
        "p99_ms": round(percentile(late, 0.99), 2),
        "max_ms": round(max(late) if late else float("nan"), 2),
    }


def make_photos(folder: Path, n: int, size: int) -> None:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size]
    for i in range(n):
        base = np.stack([(x * (1 + i % 5)) % 256, (y * (2 + i % 3)) % 256, ((x + y + 7 * i) % 256)], -1)
        noise = rng.integers(0, 40, size=(size, size, 3))
        Image.fromarray(((base + noise) % 256).astype("uint8")).save(folder / f"p{i:03d}.png")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=15.0, help="length of each measurement")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "gui_latency.json")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="lesson7-latency-"))
    os.environ["LESSON7_DATA_DIR"] = str(work / "data")
    os.environ["LESSON7_CONFIG_DIR"] = str(work / "config")

    import torch

    from lesson7_studio.core import datasets
    from lesson7_studio.core.events import BatchEnd, EpochEnd
    from lesson7_studio.core.project import Project
    from lesson7_studio.gui.app import create_application
    from lesson7_studio.gui.context import AppContext, Settings
    from lesson7_studio.gui.main_window import MainWindow

    project = Project(work / "project").create()
    make_photos(work / "photos", 24, 192)
    datasets.build_pairs(work / "photos", project.datasets_dir / "bench", "decrappify-x2", valid_pct=0.17)

    app = create_application()
    ctx = AppContext(project, Settings(work / "settings.ini"), device="cpu")
    win = MainWindow(ctx)
    win.resize(1280, 800)
    win.show()
    train = win.show_panel("train")
    train.recipe_combo.setCurrentIndex(train.recipe_combo.findData("quick"))
    train.refresh_datasets()
    measure(app, 1.0)  # warm up: first paints, lazy imports

    idle = measure(app, args.seconds)

    counts = {"batches": 0, "epochs": 0}

    def count(ev):
        if isinstance(ev, BatchEnd):
            counts["batches"] += 1
        elif isinstance(ev, EpochEnd):
            counts["epochs"] += 1

    train.set_stage_epochs(1000)
    train.start()
    train.worker.event.connect(count)
    t0 = time.perf_counter()
    while counts["batches"] < 1 and time.perf_counter() - t0 < 120:  # model built, data loading
        app.processEvents()
        time.sleep(0.01)
    busy = measure(app, args.seconds, keep_going=train.is_busy)
    train.cancel()
    t0 = time.perf_counter()
    while train.is_busy() and time.perf_counter() - t0 < 120:
        app.processEvents()
        time.sleep(0.01)
    busy.update(counts)
    busy["curve_points"] = train.curves.point_count()

    result = {
        "benchmark": "gui_latency",
        "tick_ms": TICK_MS,
        "target_p99_ms": TARGET_P99_MS,
        "idle": idle,
        "training": busy,
        "pass": busy["p99_ms"] < TARGET_P99_MS,
        "training_setup": {"recipe": "quick", "arch": "unet-lite", "dataset_pairs": 24, "photo_size": 192,
                           "crop": 96, "batch_size": 8},
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "qt_platform": os.environ.get("QT_QPA_PLATFORM"),
            "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        },
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.part")
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, args.out)
    print(json.dumps(result, indent=2))
    win._force_close = True
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
