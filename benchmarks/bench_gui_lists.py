"""How long the GUI thread is held when a long file list arrives: the Restore panel's file list
(``FileListModel.add``) and the Data panel's thumbnail grid (``ThumbnailGrid.set_paths``).

Both must stay lazy: adding thousands of files shows the first rows at once and fetches the
rest on scroll; the grid decodes only the thumbnails of visible rows, off the GUI thread. The
tests check that laziness functionally (tests/gui/test_restore_panel.py,
tests/gui/test_data_panel.py); this measures the time, which no test asserts. Each figure is
the median of ``--repeats`` fresh calls (a new model / grid each time), with the load average
before and after. Target: under 100 ms for 5,000 files on a quiet machine.

    python benchmarks/bench_gui_lists.py [--files 5000] [--repeats 7] [--out benchmarks/results/gui_lists.json]

Runs offscreen unless QT_QPA_PLATFORM says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

OUT = Path(__file__).resolve().parent / "results" / "gui_lists.json"
TARGET_MS = 100.0


def load_avg() -> list[float] | None:
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


def stats_ms(seconds: list[float]) -> dict:
    ms = [s * 1000 for s in seconds]
    return {"median_ms": round(statistics.median(ms), 2), "min_ms": round(min(ms), 2),
            "max_ms": round(max(ms), 2), "runs_ms": [round(v, 2) for v in ms]}


def bench_file_list(n: int, repeats: int) -> dict:
    from lesson7_studio.gui.panels.restore import FileListModel

    paths = [Path(f"/photos/album{i // 500:03d}/{i:06d}.jpg") for i in range(n)]
    times = []
    for _ in range(repeats):
        m = FileListModel()
        t0 = time.perf_counter()
        m.add(paths)
        times.append(time.perf_counter() - t0)
        assert m.total() == n
    return stats_ms(times)


def bench_thumbnails(folder: Path, n: int, repeats: int, app) -> dict:
    from PIL import Image

    from lesson7_studio.gui.widgets.thumbs import ThumbnailGrid

    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (640, 480), (90, 120, 150)).save(folder / "src.png")
    data = (folder / "src.png").read_bytes()
    paths = []
    for i in range(n):
        p = folder / f"img{i:05d}.png"
        p.write_bytes(data)
        paths.append(p)
    times = []
    for _ in range(repeats):
        grid = ThumbnailGrid(64)
        grid.resize(320, 220)
        grid.show()
        app.processEvents()
        t0 = time.perf_counter()
        grid.set_paths(paths)
        times.append(time.perf_counter() - t0)
        grid.thumb_model.shutdown()
        grid.close()
        grid.deleteLater()
        app.processEvents()
    return stats_ms(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=5000, help="paths in each list")
    ap.add_argument("--repeats", type=int, default=7, help="calls per measurement; the median is reported")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    result: dict = {
        "benchmark": "gui_lists",
        "what": "milliseconds the GUI thread spends in FileListModel.add(paths) and "
                "ThumbnailGrid.set_paths(paths) for --files paths; median of fresh calls",
        "files": args.files, "repeats": args.repeats, "target_ms": TARGET_MS,
        "loadavg_before": load_avg(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
        "qt_platform": os.environ.get("QT_QPA_PLATFORM"),
    }
    result["file_list_add"] = bench_file_list(args.files, args.repeats)
    with tempfile.TemporaryDirectory(prefix="bench-gui-lists-") as tmp:
        result["thumbnail_set_paths"] = bench_thumbnails(Path(tmp), args.files, args.repeats, app)
    result["loadavg_after"] = load_avg()
    result["under_target"] = all(result[k]["median_ms"] < TARGET_MS for k in ("file_list_add", "thumbnail_set_paths"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_name(args.out.name + ".tmp")
    tmp_out.write_text(json.dumps(result, indent=2) + "\n")
    tmp_out.replace(args.out)
    print(json.dumps(result, indent=2))
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
