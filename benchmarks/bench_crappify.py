"""Crappify throughput and preview latency.

Builder throughput (images/s) on ../shared/data/train (relative to the repository root) with
1, 2 and 3 worker processes (this process included) and the automatic choice, against plain
single-process Pillow loops doing the same work in the same run:

Every configuration runs ``--repeat`` times, interleaved (round-robin, so a change of machine load
hits all of them alike); the median is the figure, min and max ride along, and the load average
is recorded before and after. A figure taken with a load average above the CPU count is marked
``"loaded": true``: it says how the builder shares a busy machine, not how fast it is.

* ``course_loop``: the lesson's loop, LR only (open, resize, draw the number, save JPEG);
* ``same_outputs_loop``: the same plus the HR PNG the builder writes (copied when the source
  is a PNG), i.e. the builder's outputs without its bookkeeping.

Also the latency of :func:`lesson7_studio.core.crappify.preview` on a 512 px image for each
preset. Writes benchmarks/results/crappify.json (crappify_under_load.json when loaded). Usage::

    python benchmarks/bench_crappify.py --limit 300

The builder's helper processes join only when at least 2 s of single-process work is left
(``crappify.MIN_PARALLEL_WORK_S``), so fewer than ~120 small photos measure the one-process path
whatever ``--workers`` says.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = (ROOT / ".." / "shared" / "data" / "train").resolve()
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "crappify.json"


def course_loop(files: list[Path], out: Path, write_hr: bool) -> float:
    """The lesson's crappify loop in plain Pillow (fastai v1 course notebook), timed."""
    from PIL import Image, ImageDraw

    random.seed(0)
    t = time.perf_counter()
    for i, fn in enumerate(files):
        img = Image.open(fn)
        img.load()
        img = img.convert("RGB")
        if write_hr:
            if fn.suffix.lower() == ".png":
                shutil.copyfile(fn, out / f"hr{i}.png")
            else:
                img.save(out / f"hr{i}.png", compress_level=1)
        w, h = img.size
        ratio = 96 / min(w, h)
        img = img.resize((int(w * ratio), int(h * ratio)), Image.Resampling.BILINEAR)
        w, h = img.size
        q = random.randint(10, 70)
        ImageDraw.Draw(img).text((random.randint(0, w // 2), random.randint(0, h // 2)), str(q), fill=(255, 255, 255))
        img.save(out / f"lr{i}.jpg", quality=q)
    return time.perf_counter() - t


def cpu_seconds() -> float:
    """CPU time of this process plus its finished children (the builder's workers)."""
    try:
        import resource

        c = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + c.ru_utime + c.ru_stime
    except ImportError:  # Windows: this process only
        return time.process_time()


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and its finished children) of one call."""
    c = cpu_seconds()
    wall = fn()
    return wall, cpu_seconds() - c


def interleaved(n: int, fns: dict) -> dict[str, list[tuple[float, float]]]:
    """Each of ``fns`` run ``n`` times, round-robin: {name: [(wall, cpu), ...]}."""
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in fns}
    for _ in range(n):
        for k, fn in fns.items():
            runs[k].append(timed(fn))
    return runs


def load_avg() -> list[float] | None:
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of training images")
    ap.add_argument("--limit", type=int, default=300, help="number of images (evenly spaced, sorted)")
    ap.add_argument("--recipe", default="lesson7")
    ap.add_argument("--repeat", type=int, default=5, help="runs per configuration; the median is reported")
    ap.add_argument("--workers", default="1,2,3", help="worker counts to measure (comma-separated)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()

    # imported here, not at the top: builder workers are spawned and re-import this file
    import numpy as np
    from PIL import Image, features

    from lesson7_studio import __version__
    from lesson7_studio.core.crappify import PRESETS, preview
    from lesson7_studio.core.crappify import build_pairs
    from lesson7_studio.core.images import iter_images

    if not args.data.is_dir():
        print(f"SKIPPED: data folder {args.data} is absent; nothing measured.")
        return 0
    every = list(iter_images(args.data))
    files = every[:: max(1, len(every) // max(1, args.limit))][: args.limit]  # spread over sub-folders
    if not files:
        print(f"SKIPPED: no images in {args.data}.")
        return 0

    result: dict = {
        "benchmark": "crappify",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "pillow": Image.__version__,
            "libjpeg_turbo": features.version("jpg"),
            "numpy": np.__version__,
            "load_avg_at_start": load_avg(),
        },
        "app_version": __version__,
        "data": str(args.data),
        "images": len(files),
        "recipe": args.recipe,
        "repeat": args.repeat,
    }
    with tempfile.TemporaryDirectory(prefix="bench_crappify_") as tmp_s:
        tmp = Path(tmp_s)
        src = tmp / "src"
        for p in files:  # a folder holding exactly the chosen images, tree kept
            rel = p.relative_to(args.data)
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, src / rel)
        mp = sum(Image.open(p).size[0] * Image.open(p).size[1] for p in files) / 1e6
        result["megapixels"] = round(mp, 2)

        def run_loop(write_hr: bool) -> float:
            out = tmp / "loop"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            return course_loop(files, out, write_hr)

        def run_builder(workers: int) -> float:
            dst = tmp / f"dst{workers}"
            shutil.rmtree(dst, ignore_errors=True)
            t = time.perf_counter()
            s = build_pairs(src, dst, args.recipe, workers=workers)
            assert s.built == len(files) and not s.failed, s.failed
            return time.perf_counter() - t

        counts = [int(w) for w in args.workers.split(",") if w.strip()]
        fns = {"course_loop": lambda: run_loop(False), "same_outputs_loop": lambda: run_loop(True)}
        for w in counts:
            fns[f"builder_workers_{w}"] = lambda w=w: run_builder(w)
        fns["builder_workers_auto"] = lambda: run_builder(0)
        runs = interleaved(args.repeat, fns)
        result["throughput"] = {}
        for k, rs in runs.items():
            walls = [w for w, _ in rs]
            med = statistics.median(walls)
            result["throughput"][k] = {
                "seconds_median": round(med, 3), "seconds_min": round(min(walls), 3),
                "seconds_max": round(max(walls), 3), "images_per_s": round(len(files) / med, 1),
                "cpu_seconds_median": round(statistics.median(c for _, c in rs), 3),
            }
        base = result["throughput"]["same_outputs_loop"]["seconds_median"]
        result["builder_speed_vs_same_outputs_loop"] = {
            k.removeprefix("builder_"): round(base / v["seconds_median"], 2)
            for k, v in result["throughput"].items() if k.startswith("builder_")
        }
        result["machine"]["load_avg_after_throughput"] = load_avg()
        worst = max(v[0] for v in (result["machine"]["load_avg_at_start"] or [0.0],
                                   result["machine"]["load_avg_after_throughput"] or [0.0]))
        result["loaded"] = bool(worst > (os.cpu_count() or 1))

        # preview latency on a 512 px image (longest side), each preset
        first = Image.open(files[0]).convert("RGB")
        r = 512 / max(first.size)
        img512 = first.resize((round(first.width * r), round(first.height * r)), Image.Resampling.BICUBIC)
        big = first.resize((first.width * 2, first.height * 2), Image.Resampling.BICUBIC)
        lat: dict = {"input_size": list(img512.size)}
        for name, recipe in PRESETS.items():
            preview(img512, recipe, 0)  # warm-up (font cache, JPEG codec)
            ts, cpu = [], []
            for s in range(30):
                t, c = time.perf_counter(), time.process_time()
                preview(img512, recipe, s)
                ts.append((time.perf_counter() - t) * 1000)
                cpu.append((time.process_time() - c) * 1000)
            ts.sort()
            lat[name] = {
                "median_ms": round(statistics.median(ts), 2),
                "p90_ms": round(ts[int(0.9 * len(ts)) - 1], 2),
                "cpu_median_ms": round(statistics.median(cpu), 2),  # less sensitive to a busy machine
            }
        # a photo of about 1 megapixel (the figure tests/core/test_crappify.py once asserted)
        for recipe in dict.fromkeys([args.recipe, "decrappify-x2"]):
            ts = []
            for s in range(10):
                t = time.perf_counter()
                preview(big, recipe, s)
                ts.append((time.perf_counter() - t) * 1000)
            lat[f"{recipe}_from_{big.width}x{big.height}"] = {"median_ms": round(statistics.median(ts), 2)}
        result["preview_ms"] = lat
        result["preview_under_50ms"] = all(v["median_ms"] < 50 for k, v in lat.items() if k in PRESETS)

    if result.get("loaded") and args.out == DEFAULT_OUT:  # never overwrite quiet figures with loaded ones
        args.out = DEFAULT_OUT.with_name("crappify_under_load.json")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
