"""Robustness of restoring models under decrappify-x2: the number's size x the JPEG quality.

    python benchmarks/bench_robustness.py [--models starter v3=/path/model.safetensors]
        [--sets kodak24 live1] [--heights 8 12 16 24 32 48] [--qualities 10 20 35 50 70 90]
        [--sizes 256 1536] [--max-images N] [--seed 0] [--crops DIR] [--out FILE.json]

Every ground-truth photo of ../shared/data/valid/<set> is prepared as `lesson7-studio eval`
prepares it (cropped to even sides; seed per file from --seed and its relative path), then
degraded in two ways:

- the grid: half size (bilinear), the JPEG quality q written in white at a random point of the
  top-left quarter with a *fixed* font size h px (the "number's height at half size"; Pillow's
  font size, the digits' ink is ~0.72 h tall), saved as JPEG at the *fixed* quality q. The
  number's position depends only on the file's seed, so it is the same in every cell;
- other photo sizes: the same photo resized (Lanczos) so that its short side is S px, then
  degraded by decrappify-x2 itself (q drawn in 10..70, the number sized from the photo).

Each model and bicubic upsample the same degraded input. Per cell: mean Y-PSNR (BT.601, 2 px
border cropped) of each model and of bicubic, the gain over bicubic, the gain outside the
number's box, and the share of the model's squared Y error that lies inside the number's box
(the text's ink box grown by 2 px at half size, x2). Several models in one run share the inputs,
so their differences are not sampling noise of the degradation. The JSON (default
benchmarks/results/robustness.json) records the settings, the load average before and after,
the seconds, and per-model summaries: the grid mean gain, the worst cell, the largest box
share. ``--crops DIR`` saves PNG crops around the number (degraded x2 nearest | bicubic | each
model | original) for the smallest and largest heights at the lowest quality.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
BOX_MARGIN = 2  # LR px around the text's ink box (JPEG ringing and blur spread past the ink)
BORDER = 2


def grid_recipe(height: int, quality: int):
    from lesson7_studio.core.crappify import Jpeg, Recipe, Resize, Text

    return Recipe(f"grid-h{height}-q{quality}",
                  [Resize(factor=2, resample="bilinear"), Text(size=height), Jpeg(quality=(quality, quality))])


def text_box(params: dict, scale: int, lr_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """HR (x0, y0, x1, y1) of the number drawn by the text step (``params`` from apply_recipe)."""
    from lesson7_studio.core.crappify import _font

    x, y = params["text_xy"]
    size = int(params["text_size"])
    img = Image.new("RGB", (8, 8))
    x0, y0, x1, y1 = ImageDraw.Draw(img).textbbox((x, y), params["text"], font=_font(size))
    w, h = lr_size
    x0, y0 = max(0, x0 - BOX_MARGIN), max(0, y0 - BOX_MARGIN)
    x1, y1 = min(w, x1 + BOX_MARGIN), min(h, y1 + BOX_MARGIN)
    return x0 * scale, y0 * scale, x1 * scale, y1 * scale


def _y(a: np.ndarray) -> np.ndarray:
    from lesson7_studio.core.metrics import rgb_to_y

    return rgb_to_y(a)[BORDER:-BORDER, BORDER:-BORDER]


def scores(out: np.ndarray, hr_y: np.ndarray, box: tuple[int, int, int, int]) -> dict[str, float]:
    """Y-PSNR, Y-PSNR outside the box, share of the squared error inside the box."""
    err = (_y(out) - hr_y) ** 2
    mask = np.zeros(err.shape, bool)
    x0, y0, x1, y1 = (max(0, v - BORDER) for v in box)
    mask[y0:y1, x0:x1] = True
    total = float(err.sum())
    inside = float(err[mask].sum())
    mse = total / err.size
    mse_out = float(err[~mask].mean()) if (~mask).any() else mse
    return {"psnr_y": 10 * np.log10(1.0 / max(mse, 1e-12)), "psnr_y_outside": 10 * np.log10(1.0 / max(mse_out, 1e-12)),
            "box_share": inside / total if total > 0 else 0.0}


def _load_photos(sets: list[str], max_images: int | None) -> list[tuple[str, str, Image.Image]]:
    from lesson7_studio.core import images
    from lesson7_studio.core.crappify import prepare_hr

    out = []
    for name in sets:
        folder = SHARED / "data" / "valid" / name
        if not folder.is_dir():
            raise SystemExit(f"{folder} is absent: the validation set '{name}' is needed")
        files = list(images.iter_images(folder))[: max_images or None]
        for p in files:
            hr, _ = prepare_hr(images.load_image(p), 2, None)
            out.append((name, p.relative_to(folder).as_posix(), hr))
    return out


def _resized(hr: Image.Image, short: int) -> Image.Image:
    r = short / min(hr.size)
    w, h = round(hr.width * r), round(hr.height * r)
    return hr.resize((w - w % 2, h - h % 2), Image.Resampling.LANCZOS)


class Bench:
    def __init__(self, models: dict[str, Any], precision: str, crops: Path | None) -> None:
        self.models = models
        self.precision = precision
        self.crops = crops
        self.rows: dict[str, list[dict]] = {}  # cell key -> per-image rows

    def run_cell(self, key: str, set_name: str, rel: str, hr: Image.Image, recipe, seed: int,
                 crop_tag: str | None = None) -> None:
        from lesson7_studio.core.crappify import apply_recipe
        from lesson7_studio.core.restore import restore_array

        res = apply_recipe(hr, recipe, seed)
        lr = res.image
        hr_a = np.asarray(hr, dtype=np.float32) / 255.0
        hr_y = _y(hr_a)
        size = int(res.params.get("text_size") or _size_of(recipe, lr))
        box = text_box(dict(res.params, text_size=size), 2, lr.size)
        bic = np.asarray(lr.resize(hr.size, Image.Resampling.BICUBIC), dtype=np.float32) / 255.0
        row = {"set": set_name, "file": rel, "quality": res.params["quality"], "text_size": size,
               "bicubic": scores(bic, hr_y, box)}
        outs = {}
        for name, model in self.models.items():
            out = restore_array(model, np.asarray(lr), precision=self.precision).astype(np.float32) / 255.0
            outs[name] = out
            row[name] = scores(out, hr_y, box)
        self.rows.setdefault(key, []).append(row)
        if crop_tag and self.crops is not None:
            self._save_crop(crop_tag, set_name, rel, lr, bic, outs, hr_a, box)

    def _save_crop(self, tag, set_name, rel, lr, bic, outs, hr_a, box) -> None:
        x0, y0, x1, y1 = box
        pad = max(32, (y1 - y0) // 2)
        H, W = hr_a.shape[:2]
        cx0, cy0, cx1, cy1 = max(0, x0 - pad), max(0, y0 - pad), min(W, x1 + pad), min(H, y1 + pad)
        up = np.asarray(lr.resize((W, H), Image.Resampling.NEAREST), dtype=np.float32) / 255.0
        panels = [up, bic, *outs.values(), hr_a]
        strip = np.concatenate([np.clip(p[cy0:cy1, cx0:cx1], 0, 1) for p in panels], axis=1)
        self.crops.mkdir(parents=True, exist_ok=True)
        name = f"{tag}_{set_name}_{Path(rel).stem}.png"
        Image.fromarray((strip * 255 + 0.5).astype(np.uint8)).save(self.crops / name)

    def summary(self, key: str) -> dict[str, Any]:
        rows = self.rows[key]
        out: dict[str, Any] = {"count": len(rows)}
        b = rows and float(np.mean([r["bicubic"]["psnr_y"] for r in rows]))
        bo = rows and float(np.mean([r["bicubic"]["psnr_y_outside"] for r in rows]))
        out["bicubic"] = {"psnr_y": b, "psnr_y_outside": bo,
                          "box_share": float(np.mean([r["bicubic"]["box_share"] for r in rows]))}
        for name in self.models:
            m = float(np.mean([r[name]["psnr_y"] for r in rows]))
            mo = float(np.mean([r[name]["psnr_y_outside"] for r in rows]))
            out[name] = {"psnr_y": m, "gain": m - b, "gain_outside_box": mo - bo,
                         "box_share": float(np.mean([r[name]["box_share"] for r in rows])),
                         "box_share_max": float(np.max([r[name]["box_share"] for r in rows]))}
        return out


def time_models(models: dict[str, Any], repeats: int, precision: str) -> dict[str, Any]:
    """Median seconds per output megapixel of each model on one 384x256 input (Kodak's
    kodim03 at half size, as decrappify-x2 makes it), the models alternating, after a warm-up."""
    from lesson7_studio.core.crappify import apply_recipe, get_recipe
    from lesson7_studio.core.restore import restore_array

    src = ROOT / "lesson7_studio" / "resources" / "samples" / "kodim03.png"
    if not src.exists():
        src = SHARED / "data" / "valid" / "kodak24" / "kodim03.png"
    lr = np.asarray(apply_recipe(Image.open(src).convert("RGB"), get_recipe("decrappify-x2"), 0).image)
    times: dict[str, list[float]] = {k: [] for k in models}
    for m in models.values():
        restore_array(m, lr, precision=precision)  # warm-up: the precision probe, allocations
    for _ in range(repeats):
        for k, m in models.items():
            t = time.perf_counter()
            out = restore_array(m, lr, precision=precision)
            times[k].append(time.perf_counter() - t)
    mp = out.shape[0] * out.shape[1] / 1e6
    return {"input": list(lr.shape[1::-1]), "output_megapixels": mp, "repeats": repeats, "precision": precision,
            "threads": __import__("torch").get_num_threads(), "loadavg": list(os.getloadavg()),
            "seconds_per_megapixel": {k: float(np.median(v)) / mp for k, v in times.items()},
            "all_seconds": times}


def _size_of(recipe, lr: Image.Image) -> int:
    from lesson7_studio.core.crappify import Text

    t = next(s for s in recipe.steps if isinstance(s, Text))
    return t.font_size(*lr.size)


def main(argv: list[str] | None = None) -> int:
    from lesson7_studio.core.crappify import get_recipe
    from lesson7_studio.core.crappify import item_seed
    from lesson7_studio.core.restore import load_any_model

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["starter"],
                    help="models to score: NAME or LABEL=PATH (default: the bundled starter)")
    ap.add_argument("--sets", nargs="+", default=["kodak24", "live1"])
    ap.add_argument("--heights", nargs="*", type=int, default=[8, 12, 16, 24, 32, 48])
    ap.add_argument("--qualities", nargs="*", type=int, default=[10, 20, 35, 50, 70, 90])
    ap.add_argument("--sizes", nargs="*", type=int, default=[256, 1536],
                    help="short sides to resize the photos to before decrappify-x2 ('--sizes' alone: none)")
    ap.add_argument("--max-images", type=int, default=None, help="first N photos of each set (a quick subset)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--precision", default="auto", help="restore precision: auto (bf16 where it is exact "
                    "enough), fp32, bf16")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--crops", default=None, help="folder for PNG crops of the smallest/largest number at the "
                    "lowest quality")
    ap.add_argument("--speed", type=int, default=0, metavar="N",
                    help="also time each model restoring a 384x256 Kodak input to 768x512 N times, models "
                    "alternating; the median seconds per output megapixel go into the JSON")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "robustness.json"))
    a = ap.parse_args(argv)
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    models = {}
    for spec in a.models:
        label, _, path = spec.partition("=")
        models[label] = load_any_model(path or label, device="cpu")
    load_before = os.getloadavg()
    speed = time_models(models, a.speed, a.precision) if a.speed else None
    t0 = time.perf_counter()
    photos = _load_photos(a.sets, a.max_images)
    bench = Bench(models, a.precision, Path(a.crops) if a.crops else None)
    hs, qs = sorted(a.heights), sorted(a.qualities)
    for set_name, rel, hr in photos:
        seed = item_seed(a.seed, rel)
        for h in hs:
            for q in qs:
                tag = None
                if q == qs[0] and h in (hs[0], hs[-1]):
                    tag = f"h{h}_q{q}"
                bench.run_cell(f"h{h}_q{q}", set_name, rel, hr, grid_recipe(h, q), seed, tag)
        for s in a.sizes:
            bench.run_cell(f"short{s}", set_name, rel, _resized(hr, s), get_recipe("decrappify-x2"), seed)
        print(f"{set_name}/{rel} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    grid = {k: bench.summary(k) for k in bench.rows if k.startswith("h")}
    sizes = {k: bench.summary(k) for k in bench.rows if k.startswith("short")}
    per_model = {}
    for name in models:
        gains = {k: v[name]["gain"] for k, v in grid.items()}
        per_model[name] = {
            "grid_mean_gain": float(np.mean(list(gains.values()))) if gains else None,
            "grid_min_gain": min(gains.values()) if gains else None,
            "grid_min_cell": min(gains, key=gains.get) if gains else None,
            "grid_mean_gain_outside_box": float(np.mean([v[name]["gain_outside_box"] for v in grid.values()]))
            if grid else None,
            "grid_max_box_share": max(v[name]["box_share"] for v in grid.values()) if grid else None,
            "sizes_gain": {k: v[name]["gain"] for k, v in sizes.items()},
        }
    result = {
        "benchmark": "robustness", "recipe": "decrappify-x2", "seed": a.seed, "sets": a.sets,
        "images": len(photos), "max_images": a.max_images, "heights": hs, "qualities": qs, "sizes": a.sizes,
        "precision": a.precision, "models": a.models, "box_margin_lr_px": BOX_MARGIN, "border": BORDER,
        "loadavg_before": list(load_before), "loadavg_after": list(os.getloadavg()),
        "seconds": round(time.perf_counter() - t0, 1), "speed": speed, "summary": per_model, "grid": grid, "sizes_cells": sizes,
    }
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, out)
    _print_table(result, list(models))
    if speed:
        print(f"restore s/MP (median of {speed['repeats']}, load {speed['loadavg'][0]:.1f}): "
              + ", ".join(f"{k} {v:.2f}" for k, v in speed["seconds_per_megapixel"].items()))
    print(f"-> {out}")
    return 0


def _print_table(result: dict, names: list[str]) -> None:
    hs, qs = result["heights"], result["qualities"]
    for name in names:
        print(f"\n{name}: gain over bicubic (dB) / box share of the error, rows = height px, columns = quality")
        print("h \\ q " + "".join(f"{q:>13d}" for q in qs))
        for h in hs:
            cells = []
            for q in qs:
                c = result["grid"].get(f"h{h}_q{q}")
                cells.append(f"{c[name]['gain']:+6.2f}/{100 * c[name]['box_share']:4.1f}%" if c else " " * 13)
            print(f"{h:5d} " + "".join(f"{c:>13s}" for c in cells))
        for k, v in result["sizes_cells"].items():
            print(f"{k}: {v[name]['gain']:+.2f} dB, box share {100 * v[name]['box_share']:.1f} %")
        s = result["summary"][name]
        if s["grid_mean_gain"] is not None:
            print(f"grid mean {s['grid_mean_gain']:+.2f} dB, worst {s['grid_min_gain']:+.2f} ({s['grid_min_cell']}), "
                  f"outside the box {s['grid_mean_gain_outside_box']:+.2f} dB, max box share "
                  f"{100 * s['grid_max_box_share']:.1f} %")


if __name__ == "__main__":
    raise SystemExit(main())
