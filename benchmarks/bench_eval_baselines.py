"""Reference figures for the decrappify-x2 task: bicubic, FSRCNN x2 and ESPCN x2 (and a model).

Each ground-truth image of Kodak24 and LIVE1 (../shared/data/valid) is degraded with the
decrappify-x2 recipe (seed 0, per-image seeds as datasets.build_pairs draws them) and upsampled
back by every method; Y-PSNR, RGB-PSNR and SSIM (Y) against the original, border 2, are computed
by ``restore.evaluate`` (the same code as ``lesson7-studio eval``). FSRCNN / ESPCN are the
published OpenCV dnn_superres graphs in ../shared/baselines (opencv-contrib-python-headless, the
``bench`` extra). ``--model PATH|starter`` adds a model (skipped with a note when missing).

Writes benchmarks/results/restore_eval_baselines.json.
Usage: python benchmarks/bench_eval_baselines.py [--model starter] [--datasets kodak24 live1]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT / ".." / "shared").resolve()
OUT = ROOT / "benchmarks" / "results" / "restore_eval_baselines.json"


def _opencv_baseline(name: str, algo: str, scale: int):
    """(name, fn(lr_pil, (w, h)) -> PIL) running an OpenCV dnn_superres graph."""
    import cv2
    from PIL import Image

    path = SHARED / "baselines" / f"{name}_x{scale}.pb"
    sr = cv2.dnn_superres.DnnSuperResImpl_create()
    sr.readModel(str(path))
    sr.setModel(algo, scale)

    def run(lr, size):
        bgr = np.ascontiguousarray(np.asarray(lr.convert("RGB"))[:, :, ::-1])
        out = Image.fromarray(np.ascontiguousarray(sr.upsample(bgr)[:, :, ::-1]))
        return out if out.size == tuple(size) else out.resize(size, Image.Resampling.BICUBIC)

    return f"{name.lower()}-x{scale}", run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model file or 'starter' (optional)")
    ap.add_argument("--datasets", nargs="+", default=["kodak24", "live1"])
    ap.add_argument("--recipe", default="decrappify-x2")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()

    from lesson7_studio.core import restore
    from lesson7_studio.core.crappify import get_recipe
    from lesson7_studio.core.errors import CheckpointError

    recipe = get_recipe(args.recipe)
    scale = int(recipe.scale)
    baselines: list = ["bicubic", "lanczos"]
    notes = []
    try:
        baselines.append(_opencv_baseline("FSRCNN", "fsrcnn", scale))
        baselines.append(_opencv_baseline("ESPCN", "espcn", scale))
    except ImportError:
        notes.append('FSRCNN/ESPCN skipped: pip install "lesson7-studio[bench]" (opencv-contrib-python-headless)')
    model = None
    if args.model:
        try:
            model = restore.load_any_model(args.model, device=args.device)
        except CheckpointError as err:
            notes.append(f"model skipped: {err}")
    result: dict = {
        "benchmark": "bench_eval_baselines",
        "recipe": recipe.name,
        "recipe_hash": recipe.hash(),
        "seed": args.seed,
        "border": scale,
        "model_file": args.model if model is not None else None,
        "notes": notes,
        "command": "python benchmarks/bench_eval_baselines.py" + (f" --model {args.model}" if args.model else ""),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "datasets": {},
    }
    for name in args.datasets:
        folder = SHARED / "data" / "valid" / name
        if not folder.is_dir():
            notes.append(f"{name} skipped: {folder} is absent")
            continue
        t0 = time.perf_counter()
        res = restore.evaluate(model, folder, recipe, seed=args.seed, baselines=baselines, precision="fp32")
        summary = {k: {m: round(v, 4) for m, v in d.items()} for k, d in res["mean"].items()}
        result["datasets"][name] = {
            "count": res["count"],
            "mean": summary,
            "gain_psnr_y_over_bicubic": {
                k: round(d["psnr_y"] - res["mean"]["bicubic"]["psnr_y"], 4) for k, d in res["mean"].items() if k != "bicubic"
            },
            "skipped": res["skipped"],
            "seconds": round(time.perf_counter() - t0, 1),
            "images": res["images"],
        }
        print(name, json.dumps(result["datasets"][name]["mean"]), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.part")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, out)
    for name, d in result["datasets"].items():
        print(f"{name}: Y-PSNR gain over bicubic {d['gain_psnr_y_over_bicubic']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
