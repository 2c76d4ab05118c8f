"""Train the starter model (decrappify-x2) end to end with the project's own commands.

    python scripts/train_starter.py --train ../shared/data/train --work /tmp/starter \
        --minutes 2 --device cuda --workers 12

1. Each training photo is listed ``--copies`` times (symlinks with distinct names), so the
   dataset builder crappifies it with that many different seeds: different JPEG qualities,
   number positions, number sizes and crops of the same photo. Only the train/ photos are used.
2. `lesson7-studio crappify SRC DATA --recipe RECIPE` builds the pairs. The default recipe,
   starter_train_recipe.json beside this script, is decrappify-x2 with the number's font
   size multiplied by a random 1..1.8: the training photos (481x321) are smaller than most
   photos, and a model that has only seen their small numbers leaves bigger ones half-erased.
3. Unless ``--epochs`` is given, a short calibration run measures the time per epoch on this
   machine, so the one-cycle schedule of the real run fits the time budget (a schedule cut off
   half-way leaves the learning rate high and the model worse).
4. `lesson7-studio train CONFIG.json` trains (``--init`` fine-tunes an existing checkpoint);
   the run folder is ``WORK/run``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from lesson7_studio.core.images import iter_images

BASE_CONFIG = {
    "recipe": "starter-decrappify-x2",
    "description": "Starter model: unet-lite trained from scratch for decrappify-x2 (half size, JPEG q10..70 "
    "with the number written on it) with L1 loss and one-cycle.",
    "arch": "unet-lite",
    "arch_options": {"nf": 48, "blocks": 2, "scale": 2, "self_attention": True, "blur": True, "norm_type": "none"},
    "pretrained": False,
    "size": 192,
    "batch_size": 32,
    "loss": "l1",
    "wd": 1e-4,
    "stages": [{"name": "train", "kind": "restore", "epochs": 10, "lr": 2e-3, "pct_start": 0.2}],
    "valid_batches": 4,
    "preview_samples": 4,
    "keep_checkpoints": 1,
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", default="../shared/data/train")
    ap.add_argument("--work", default="/tmp/starter")
    ap.add_argument("--copies", type=int, default=8)
    ap.add_argument("--minutes", type=float, default=60.0, help="training time budget")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--nf", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--pct-start", type=float, default=0.2)
    ap.add_argument("--recipe", default=str(Path(__file__).with_name("starter_train_recipe.json")),
                    help="crappify recipe of the training pairs (default: decrappify-x2 with the number's "
                    "font size spread x1..1.8, see the file)")
    ap.add_argument("--epochs", type=int, default=None,
                    help="number of epochs (skips the calibration that sizes them from --minutes)")
    ap.add_argument("--init", default=None, help="start from this checkpoint (fine-tune), e.g. 'starter'")
    a = ap.parse_args()

    work = Path(a.work)
    src = work / "src"
    data = work / "data"
    src.mkdir(parents=True, exist_ok=True)
    train_root = Path(a.train).resolve()
    for p in iter_images(train_root):
        rel = p.relative_to(train_root)
        for k in range(a.copies):
            link = src / rel.parent / f"{rel.stem}_c{k}{rel.suffix}"
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(p)
    cli = [sys.executable, "-m", "lesson7_studio"]
    t0 = time.time()
    subprocess.run(cli + ["crappify", str(src), str(data), "--recipe", a.recipe, "--seed", str(a.seed),
                          "--valid-pct", "0.02", "--workers", str(a.workers)], check=True,
                   stdout=subprocess.DEVNULL)
    print(f"dataset built in {time.time() - t0:.1f} s", flush=True)

    cfg = json.loads(json.dumps(BASE_CONFIG))
    cfg.update(data=str(data), device=a.device, workers=a.workers, seed=a.seed, size=a.size,
               batch_size=a.batch_size)
    cfg["arch_options"]["nf"] = a.nf
    cfg["stages"][0]["lr"] = a.lr
    cfg["stages"][0]["pct_start"] = a.pct_start
    if a.init:
        cfg["init"] = a.init

    if a.epochs:
        epochs = a.epochs
    else:
        epochs = _calibrate(cfg, work, data, a)
    cfg["stages"][0]["epochs"] = epochs
    if not a.epochs:
        cfg["max_minutes"] = a.minutes * 1.1  # safety net only; the schedule is sized to end first
    cfg["out"] = str(work / "run")
    cfg_path = work / "starter_config.json"
    cfg_path.write_text(json.dumps(cfg, indent=2))
    t0 = time.time()
    r = subprocess.run(cli + ["train", str(cfg_path)])
    print(f"training finished in {time.time() - t0:.1f} s (rc {r.returncode})", flush=True)
    return r.returncode


def _calibrate(cfg: dict, work: Path, data: Path, a: argparse.Namespace) -> int:
    """Epochs that fit ``a.minutes``, from two short epochs (the second one's time is the
    steady-state cost)."""
    from lesson7_studio.core.events import EpochEnd
    from lesson7_studio.core.train.run import train

    n_train = len(json.loads((data / "dataset.json").read_text())["train"])
    steps_full = n_train // a.batch_size
    calib_steps = min(30, steps_full)
    ccfg = dict(cfg, out=str(work / "calib"), steps_per_epoch=calib_steps, valid_batches=1,
                preview_samples=1, stages=[dict(cfg["stages"][0], epochs=2)])
    secs: list[float] = []
    train(ccfg, on_event=lambda e: secs.append(e.seconds) if isinstance(e, EpochEnd) else None)
    per_step = secs[-1] / calib_steps
    per_epoch = per_step * steps_full + 0.1 * secs[-1]
    epochs = max(1, int(a.minutes * 60 * 0.92 / per_epoch))
    print(f"calibration: {per_step * 1000:.1f} ms/step, {steps_full} steps/epoch -> {epochs} epochs", flush=True)

    return epochs


if __name__ == "__main__":
    raise SystemExit(main())
