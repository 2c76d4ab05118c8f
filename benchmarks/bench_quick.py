"""Point-and-click training on a CPU: the default `quick` and `finetune` recipes on 30 photos.

    python benchmarks/bench_quick.py [--recipes quick finetune] [--repeats 1] [--seed 0]

(``--seed`` is the training seed; the dataset and the held-out photos' degradations stay fixed.)

Builds a 30-photo `decrappify-x2` dataset (a fixed list of ../shared/data/train/bsds500_train;
10 % of the photos held out as its validation split and every photo degraded 4 times, the Data
panel's defaults for such a folder; ``--variants 1`` builds one pair per photo), then runs each recipe exactly as
the Train panel's Start does (its defaults: `quick` from scratch, `finetune` from the starter
model) and scores the model at the start and at the end, with bicubic as the baseline, on

- ``held_out``: 12 photos of ../shared/data/valid (Kodak24, LIVE1) never seen in training,
  degraded by `decrappify-x2` with a fixed seed (`lesson7-studio eval`);
- ``dataset_pairs``: the dataset's own validation pairs as it built them (its lr/ image restored,
  scored against its hr/ image at full size): the figures the Compare panel shows for them;
- ``dataset_valid``: the same validation photos degraded afresh by `decrappify-x2` with the fixed
  seed (`lesson7-studio eval`): other JPEG qualities and number positions than the pairs'.

Y-PSNR (BT.601 luma, 2 px border) of bicubic, start and end; the run's wall time and steps.
Targets (issue 15): quick finishes in <= 180 s on a quiet 2-core CPU and beats bicubic by
>= +0.5 dB on the held-out photos; finetune does not lower the starter's Y-PSNR on the
dataset's validation photos (``dataset_pairs``). The load average is recorded before and after every run (the
wall time means little under load: the work is fixed in steps). Writes
benchmarks/results/quick.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RECIPE = "decrappify-x2"
SEED = 0  # dataset build, crappify of the held-out photos, training
TRAIN_PHOTOS = [  # bsds500_train: the first 30 by name
    "100075", "100080", "100098", "103041", "104022", "105019", "105053", "106020", "106025", "108041",
    "108073", "109034", "112082", "113009", "113016", "113044", "117054", "118020", "118035", "12003",
    "12074", "122048", "124084", "126039", "130034", "134008", "134052", "135037", "135069", "138032",
]
HELD_OUT = [f"kodak24/kodim{i:02d}.png" for i in (1, 2, 4, 5, 6, 7, 8, 9)] + [
    "live1/bikes.bmp", "live1/building2.bmp", "live1/buildings.bmp", "live1/caps.bmp"]
QUICK_TARGET_S = 180.0
QUICK_TARGET_DB = 0.5


def _link_all(files: list[Path], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        if not f.is_file():
            raise SystemExit(f"skip: {f} is absent")
        (folder / f.name).symlink_to(f)
    return folder


def _auto_variants() -> int:
    from lesson7_studio.core.crappify import auto_variants

    return auto_variants(len(TRAIN_PHOTOS))


def build_dataset(work: Path, variants: int | None = None) -> Path:
    """The Data panel's build of the 30 photos: 10 % validation, its default variants (auto: 4 here)."""
    from lesson7_studio.core.crappify import auto_variants
    from lesson7_studio.core.datasets import build_pairs

    src = _link_all([DATA / "train" / "bsds500_train" / f"{n}.jpg" for n in TRAIN_PHOTOS], work / "src")
    variants = variants or auto_variants(len(TRAIN_PHOTOS))
    summary = build_pairs(src, work / "data", RECIPE, seed=SEED, valid_pct=0.1, workers=1, variants=variants)
    if summary.built != len(TRAIN_PHOTOS) * variants:
        raise SystemExit(f"dataset build failed: {summary}")
    return work / "data"


def _valid_originals(data: Path, work: Path) -> Path:
    """A folder of the dataset's validation HR photos (evaluate() degrades them itself)."""
    meta = json.loads((data / "dataset.json").read_text())
    files = [data / meta["items"][k]["hr"] for k in meta["valid"]]
    return _link_all(files, work / "dataset_valid")


def score(model, folders: dict[str, Path], data: Path) -> dict[str, dict[str, float]]:
    """Each folder degraded afresh (`lesson7-studio eval`), then the dataset's own pairs."""
    from lesson7_studio.core.restore import evaluate

    out = {}
    for name, folder in folders.items():
        r = evaluate(model, folder, RECIPE, seed=SEED, device="cpu", precision="fp32")
        out[name] = {"model_psnr_y": round(r["mean"]["model"]["psnr_y"], 3),
                     "bicubic_psnr_y": round(r["mean"]["bicubic"]["psnr_y"], 3), "images": r["count"]}
    out["dataset_pairs"] = score_pairs(model, data)
    return out


def score_pairs(model, data: Path) -> dict[str, float]:
    """Y-PSNR on the dataset's own validation pairs as built (its lr/ -> its hr/, full size): what the
    Compare panel shows for them. Bicubic is Pillow's from the pair's lr image."""
    from lesson7_studio.core import images
    from lesson7_studio.core.compare import bicubic_upscale
    from lesson7_studio.core.restore import restore_image
    from lesson7_studio.core.restore.evaluate import metric_row

    meta = json.loads((data / "dataset.json").read_text())
    scale = int(meta.get("scale") or 2)
    rows = {"model": [], "bicubic": []}
    for key in meta["valid"]:
        item = meta["items"][key]
        lr = images.load_image(data / item["lr"])
        hr = images.to_float(images.load_image(data / item["hr"]))
        out = images.to_float(restore_image(model, lr, device="cpu", precision="fp32"))
        rows["model"].append(metric_row(out, hr, scale)["psnr_y"])
        rows["bicubic"].append(metric_row(bicubic_upscale(lr.rgb, *hr.shape[:2]), hr, scale)["psnr_y"])
    return {"model_psnr_y": round(statistics.fmean(rows["model"]), 3),
            "bicubic_psnr_y": round(statistics.fmean(rows["bicubic"]), 3), "images": len(rows["model"])}


def start_model(cfg, data: Path):
    """The generator the run starts from (the same seed, options and init as train() uses)."""
    from lesson7_studio.core import models
    from lesson7_studio.core.restore import load_any_model
    from lesson7_studio.core.train.run import dataset_scale, seed_everything

    if cfg.init:
        return load_any_model(cfg.init, device="cpu")
    seed_everything(cfg.seed)
    return models.restorer(cfg.arch, **{**cfg.arch_options, "scale": dataset_scale(data)}).eval()


def run_one(recipe: str, data: Path, work: Path, folders: dict[str, Path], rep: int, seed: int = SEED,
            **overrides) -> dict:
    from lesson7_studio.core.restore import load_any_model
    from lesson7_studio.core.train import apply_overrides, get_recipe, train

    out = work / f"run-{recipe}-{rep}"
    cfg = apply_overrides(get_recipe(recipe), data=str(data), out=str(out), device="cpu", seed=seed, **overrides)
    start = score(start_model(cfg, data), folders, data)
    load_before = os.getloadavg()
    t0, c0 = time.perf_counter(), time.process_time()
    result = train(cfg)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    load_after = os.getloadavg()
    end = score(load_any_model(result.model_path, device="cpu"), folders, data)
    row = {"recipe": recipe, "repeat": rep, "seed": seed, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "steps": result.steps,
           "finished": result.finished, "loadavg_before": [round(v, 2) for v in load_before],
           "loadavg_after": [round(v, 2) for v in load_after], "sets": {}}
    for name in start:
        b = start[name]["bicubic_psnr_y"]
        row["sets"][name] = {"images": start[name]["images"], "bicubic_psnr_y": b,
                             "start_psnr_y": start[name]["model_psnr_y"], "end_psnr_y": end[name]["model_psnr_y"],
                             "end_gain_over_bicubic_db": round(end[name]["model_psnr_y"] - b, 3),
                             "end_minus_start_db": round(end[name]["model_psnr_y"] - start[name]["model_psnr_y"], 3)}
    print(json.dumps(row), flush=True)
    shutil.rmtree(out, ignore_errors=True)
    return row


def summarise(rows: list[dict]) -> dict:
    """Medians over the repeats, and the issue's targets checked on them."""
    out: dict = {}
    for recipe in sorted({r["recipe"] for r in rows}):
        mine = [r for r in rows if r["recipe"] == recipe]
        med = {"wall_s": statistics.median(r["wall_s"] for r in mine), "steps": mine[0]["steps"]}
        for name in mine[0]["sets"]:
            for k in ("bicubic_psnr_y", "start_psnr_y", "end_psnr_y", "end_gain_over_bicubic_db", "end_minus_start_db"):
                med[f"{name}.{k}"] = round(statistics.median(r["sets"][name][k] for r in mine), 3)
        if recipe == "quick":
            med["target_gain_met"] = med["held_out.end_gain_over_bicubic_db"] >= QUICK_TARGET_DB
            med["target_time_met_here"] = med["wall_s"] <= QUICK_TARGET_S
        if recipe == "finetune":  # the figure a user sees: Compare on the dataset's validation pairs
            med["target_not_lower_met"] = med["dataset_pairs.end_minus_start_db"] >= 0.0
        out[recipe] = med
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipes", nargs="+", default=["quick", "finetune"], choices=["quick", "finetune"])
    ap.add_argument("--repeats", type=int, default=1, help="runs of each recipe (the median is reported)")
    ap.add_argument("--seed", type=int, default=SEED,
                    help="training seed (init, crops, order); the dataset and held-out photos stay fixed")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "quick.json"))
    ap.add_argument("--epochs", type=int,
                    help="smoke runs only: override the recipes' epochs (the targets are for the defaults)")
    ap.add_argument("--steps-per-epoch", type=int, help="smoke runs only: override the recipes' batches per epoch")
    ap.add_argument("--variants", type=int, help="degraded pairs per photo (default: the Data panel's auto, 4)")
    ap.add_argument("--ema", type=float, help="trials: override the recipes' weight average (0: off)")
    ap.add_argument("--lr", type=float, help="trials: override the recipes' head learning rate")
    ap.add_argument("--size", type=int, help="trials: override the recipes' crop size")
    ap.add_argument("--max-zoom", type=float, help="trials: override the recipes' zoom augmentation")
    ap.add_argument("--arch-options", type=json.loads, help="trials: JSON merged into the recipes' arch options")
    ap.add_argument("--batch-size", type=int, help="trials: override the recipes' batch size")
    ap.add_argument("--precision", choices=["auto", "fp32", "bf16"], help="trials: override the recipes' precision")
    ap.add_argument("--keep-best", type=int, choices=[0, 1], help="trials: override the recipes' keep_best")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's, 2 here)")
    a = ap.parse_args()
    overrides = {"epochs": a.epochs, "steps_per_epoch": a.steps_per_epoch, "ema": a.ema, "lr": a.lr, "precision": a.precision,
                 "size": a.size, "batch_size": a.batch_size, "arch_options": a.arch_options,
                 "max_zoom": a.max_zoom,
                 "keep_best": None if a.keep_best is None else bool(a.keep_best)}
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)

    work = Path(tempfile.mkdtemp(prefix="bench_quick_"))
    try:
        data = build_dataset(work, a.variants)
        folders = {"held_out": _link_all([DATA / "valid" / f for f in HELD_OUT], work / "held_out"),
                   "dataset_valid": _valid_originals(data, work)}
        rows = [run_one(r, data, work, folders, i, a.seed, **overrides) for i in range(a.repeats) for r in a.recipes]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "benchmark": "bench_quick", "recipe": RECIPE, "seed": SEED, "train_seed": a.seed, "train_photos": len(TRAIN_PHOTOS),
        "held_out_photos": HELD_OUT, "variants": a.variants or _auto_variants(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "repeats": a.repeats,
        "overrides": {k: v for k, v in overrides.items() if v is not None},
        "note": "wall times were measured on the machine as it was (see loadavg_*); the work of each "
                "recipe is fixed in steps, so a quiet machine changes the time, not the figures",
        "runs": rows, "median": summarise(rows),
    }
    path = Path(a.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.part")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(path)
    print(json.dumps(result["median"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
