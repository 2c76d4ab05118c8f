"""What ``--ensemble`` (x8 self-ensemble) really does, per model: dB gained and time taken.

For each model (default: the bundled starter) and each ground-truth image (default: Kodak24 at
../shared/data/valid/kodak24), the image is degraded with the model's task recipe (the crappify
recipe in its metadata, else --recipe; the same seeded degradation ``lesson7-studio eval`` uses),
then restored the way ``lesson7-studio restore`` does (restore_array, defaults: tiles from free
memory, precision "auto"), once plainly and once with ``ensemble=True``. Scores: Y-PSNR (BT.601
luma, the recipe's scale cropped from each border) against the original. Per image: the gain in
dB and the time factor (ensemble seconds / plain seconds; the median over --repeats runs, plain
and ensemble alternating so that a change of load hits both). Summary per model: mean and median
gain, the share of images that gain, the worst and best image, the median and total time factor.

The machine this runs on may be shared: os.getloadavg() is recorded before and after every model,
and the time factor (a ratio of two runs made side by side) is what to read rather than the
seconds themselves.

Writes benchmarks/results/ensemble.json (or --out).
Usage: python benchmarks/bench_ensemble.py [--model PATH|starter ...] [--images 24] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KODAK = (ROOT / ".." / "shared" / "data" / "valid" / "kodak24").resolve()
sys.path.insert(0, str(ROOT))


def _load_avg() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def _pairs(folder: Path, recipe, n: int, seed: int):
    """(name, degraded uint8 array, original float array) for the first n images of folder."""
    from lesson7_studio.core import images
    from lesson7_studio.core.crappify import apply_recipe, prepare_hr
    from lesson7_studio.core.crappify import item_seed

    out = []
    for path in list(images.iter_images(folder))[:n]:
        rel = path.relative_to(folder).as_posix()
        hr_pil, _ = prepare_hr(images.load_image(path), recipe.scale, None)
        lr = np.asarray(apply_recipe(hr_pil, recipe, item_seed(seed, rel)).image.convert("RGB"))
        out.append((rel, lr, np.asarray(hr_pil, dtype=np.float32) / 255.0))
    return out


def _timed(fn):
    t0 = time.perf_counter()
    y = fn()
    return y, time.perf_counter() - t0


def bench_model(spec: str, args) -> dict:
    from lesson7_studio.core import restore
    from lesson7_studio.core.crappify import get_recipe
    from lesson7_studio.core.restore import metric_row
    from lesson7_studio.core.restore.runner import Runner
    from lesson7_studio.core.restore.tiling import probe_tile

    model = restore.load_any_model(spec, device="cpu")
    meta = getattr(model, "checkpoint_meta", None) or {}
    recipe = get_recipe(meta.get("crappify_recipe") or args.recipe)
    border = int(recipe.scale or model.info.scale)
    pairs = _pairs(Path(args.data), recipe, args.images, args.seed)
    # warm-up, untimed: one ensemble restore settles precision "auto"'s verdict for this model
    # (kept in the cache folder), so plain and ensemble runs are timed in the same precision
    restore.restore_array(model, pairs[0][1], precision=args.precision, ensemble=True)
    runner = Runner(model, None, args.precision)
    runner.choose_precision(probe_tile(pairs[0][1], runner.facts), False, work_px=0)
    used = "fp32" if runner.dtype is None else str(runner.dtype).replace("torch.", "")
    load_before = _load_avg()
    rows = []
    for name, lr, hr in pairs:
        plain_t, ens_t = [], []
        plain = ens = None
        for r in range(args.repeats):
            order = (False, True) if r % 2 == 0 else (True, False)  # alternate which runs first
            for ensemble in order:
                y, t = _timed(lambda: restore.restore_array(model, lr, precision=args.precision, ensemble=ensemble))
                if ensemble:
                    ens, _ = y, ens_t.append(t)
                else:
                    plain, _ = y, plain_t.append(t)
        f = lambda a: a.astype(np.float32) / 255.0  # noqa: E731
        if plain.shape[:2] != hr.shape[:2]:
            raise SystemExit(f"{spec} returns {plain.shape[:2]} for {name}, not the original's {hr.shape[:2]}.")
        p_score = metric_row(f(plain), hr, border)
        e_score = metric_row(f(ens), hr, border)
        row = {
            "image": name,
            "lr_size": [int(lr.shape[1]), int(lr.shape[0])],
            "psnr_y_plain": round(p_score["psnr_y"], 4),
            "psnr_y_ensemble": round(e_score["psnr_y"], 4),
            "gain_db": round(e_score["psnr_y"] - p_score["psnr_y"], 4),
            "seconds_plain": round(statistics.median(plain_t), 4),
            "seconds_ensemble": round(statistics.median(ens_t), 4),
        }
        row["time_factor"] = round(row["seconds_ensemble"] / row["seconds_plain"], 3)
        rows.append(row)
        print(f"  {name}: {row['gain_db']:+.3f} dB, x{row['time_factor']:.2f} time "
              f"({row['seconds_plain']:.2f} s -> {row['seconds_ensemble']:.2f} s)", flush=True)
    gains = [r["gain_db"] for r in rows]
    factors = [r["time_factor"] for r in rows]
    worst = min(rows, key=lambda r: r["gain_db"])
    best = max(rows, key=lambda r: r["gain_db"])
    return {
        "model": spec,
        "architecture": model.info.name,
        "recipe": recipe.name,
        "images": len(rows),
        "precision": args.precision,
        "precision_used": used,
        "load_avg_before": load_before,
        "load_avg_after": _load_avg(),
        "mean_gain_db": round(statistics.mean(gains), 4),
        "median_gain_db": round(statistics.median(gains), 4),
        "images_that_gain": sum(g > 0 for g in gains),
        "worst": {"image": worst["image"], "gain_db": worst["gain_db"]},
        "best": {"image": best["image"], "gain_db": best["gain_db"]},
        "median_time_factor": round(statistics.median(factors), 3),
        "total_time_factor": round(sum(r["seconds_ensemble"] for r in rows) / sum(r["seconds_plain"] for r in rows), 3),
        "per_image": rows,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", action="append", default=None, metavar="PATH|starter",
                    help="model file to measure (repeatable; default: the starter)")
    ap.add_argument("--data", default=str(KODAK), help="folder of ground-truth images (default: Kodak24)")
    ap.add_argument("--images", type=int, default=24, help="use the first N images (default 24)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per image and method; median kept (default 3)")
    ap.add_argument("--recipe", default="decrappify-x2", help="recipe for models without one in their metadata")
    ap.add_argument("--precision", default="auto", help="restore precision (default auto, as the CLI)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ensemble.json"))
    args = ap.parse_args(argv)
    import torch

    from lesson7_studio.core.images import atomic_write

    if args.threads:
        torch.set_num_threads(args.threads)
    if not os.environ.get("LESSON7_CACHE_DIR"):  # a fresh precision verdict, not the user's cache
        import tempfile

        os.environ["LESSON7_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-ensemble-cache-")
    results = {
        "benchmark": "bench_ensemble",
        "command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "torch": torch.__version__},
        "note": "Shared machine: read the time factors (side by side, alternating), not the seconds; "
                "load averages recorded per model.",
        "models": [],
    }
    for spec in args.model or ["starter"]:
        print(f"{spec}:", flush=True)
        r = bench_model(spec, args)
        results["models"].append(r)
        print(f"{spec}: mean {r['mean_gain_db']:+.3f} dB (median {r['median_gain_db']:+.3f}; "
              f"{r['images_that_gain']}/{r['images']} images gain; worst {r['worst']['image']} "
              f"{r['worst']['gain_db']:+.3f} dB), time x{r['median_time_factor']:.2f} (median per image), "
              f"load {r['load_avg_before']} -> {r['load_avg_after']}", flush=True)
    with atomic_write(args.out) as tmp:
        tmp.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
