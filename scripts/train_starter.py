"""Train the starter model (decrappify-x2) end to end with the project's own commands.

    python scripts/train_starter.py --train ../shared/data/train --work /tmp/starter \
        --minutes 2 --device cuda --workers 12

1. Each training photo is listed ``--copies`` times (symlinks with distinct names), so the
   dataset builder crappifies it with that many different seeds: different JPEG qualities,
   number positions, number sizes and crops of the same photo. Only the train/ photos are used.
2. `lesson7-studio crappify SRC DATA --recipe RECIPE` builds the pairs (a rerun skips the pairs
   already built). The default recipe, starter_v3_recipe.json beside this script, is
   decrappify-x2 with the number's font size drawn log-uniformly in 7..64 px whatever the
   photo's size and the JPEG quality in 10..90 (v2 used starter_train_recipe.json: the size
   spread x1..1.8 of the recipe's own size, qualities 10..70).
3. Unless ``--epochs`` is given, a short calibration run measures the time per epoch on this
   machine, so the one-cycle schedule of the real run fits the time budget (a schedule cut off
   half-way leaves the learning rate high and the model worse).
4. The run trains in this process (core.train), with an exponential moving average of the
   weights (``--ema``: the run's ``ema`` setting, core/train/ema.py) carried in every resume
   checkpoint; the run folder is ``WORK/run``. Its validation figures and
   ``WORK/run/model.safetensors`` are the averaged weights (v3 was trained when the average was
   added by a subclass of the run and written to ``model_ema.safetensors`` beside the last ones).
5. ``--resume`` continues an interrupted run from its last checkpoint (same schedule, same EMA);
   ``--export-ema`` writes ``model_ema.safetensors`` from the newest checkpoint of a run that is
   still going (or was stopped), to evaluate it.

v3 (CPU fine-tune of v2, as shipped; see lesson7_studio/resources/models/starter.md for the exact command).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from lesson7_studio.core.images import iter_images

HERE = Path(__file__).resolve().parent

BASE_CONFIG = {
    "recipe": "starter-decrappify-x2",
    "description": "Starter model: unet-lite trained for decrappify-x2 (half size, JPEG q with the number "
    "written on it) with L1 loss and one-cycle.",
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


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", default="../shared/data/train")
    ap.add_argument("--work", default="/tmp/starter")
    ap.add_argument("--copies", type=int, default=8)
    ap.add_argument("--data", default=None, help="use this built dataset (skip the symlinks and crappify)")
    ap.add_argument("--minutes", type=float, default=60.0, help="training time budget")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--nf", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--pct-start", type=float, default=0.2)
    ap.add_argument("--div", type=float, default=25.0, help="one-cycle: start lr = lr / div")
    ap.add_argument("--recipe", default=str(HERE / "starter_v3_recipe.json"),
                    help="crappify recipe of the training pairs (default: starter_v3_recipe.json beside this "
                    "script; v2 used starter_train_recipe.json)")
    ap.add_argument("--epochs", type=int, default=None,
                    help="number of epochs (skips the calibration that sizes them from --minutes)")
    ap.add_argument("--steps-per-epoch", type=int, default=None,
                    help="cap on the batches of an epoch (short epochs: more frequent validation rows)")
    ap.add_argument("--max-minutes", type=float, default=None,
                    help="stop (resumably) after this many minutes even if the schedule has not ended")
    ap.add_argument("--init", default=None, help="start from this checkpoint (fine-tune), e.g. 'starter'")
    ap.add_argument("--ema", type=float, default=0.999, help="EMA decay of the weights (0: no EMA)")
    ap.add_argument("--checkpoint-every", type=int, default=0, help="also checkpoint every N steps (0: per epoch)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--resume", action="store_true", help="continue the run in WORK/run from its last checkpoint")
    ap.add_argument("--export-ema", action="store_true",
                    help="write WORK/run/model_ema.safetensors from the run's newest checkpoint and exit")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    work = Path(a.work)
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    if a.export_ema:
        print(export_ema(work / "run"), flush=True)
        return 0
    if a.resume:
        from lesson7_studio.core.train.run import resume_config

        # --epochs / --max-minutes may change on resume: the one-cycle segment then ends at the new epoch count
        cfg = resume_config(work / "run", device=a.device, workers=a.workers, epochs=a.epochs,
                            max_minutes=a.max_minutes)
        return _train(cfg, a.ema, resume=True)

    data = Path(a.data) if a.data else build_data(a, work)
    cfg = json.loads(json.dumps(BASE_CONFIG))
    cfg.update(data=str(data), device=a.device, workers=a.workers, seed=a.seed, size=a.size,
               batch_size=a.batch_size, checkpoint_every_steps=a.checkpoint_every,
               steps_per_epoch=a.steps_per_epoch)
    cfg["arch_options"]["nf"] = a.nf
    cfg["stages"][0].update(lr=a.lr, pct_start=a.pct_start, div=a.div)
    if a.init:
        cfg["init"] = a.init

    if a.epochs:
        epochs = a.epochs
    else:
        epochs = _calibrate(cfg, work, data, a)
    cfg["stages"][0]["epochs"] = epochs
    if a.max_minutes:
        cfg["max_minutes"] = a.max_minutes
    elif not a.epochs:
        cfg["max_minutes"] = a.minutes * 1.1  # safety net only; the schedule is sized to end first
    cfg["out"] = str(work / "run")
    cfg_path = work / "starter_config.json"
    work.mkdir(parents=True, exist_ok=True)
    cfg_path.write_text(json.dumps(cfg, indent=2))
    return _train(cfg, a.ema, resume=False)


def build_data(a: argparse.Namespace, work: Path) -> Path:
    """Symlink each train/ photo ``--copies`` times into WORK/src and crappify WORK/data."""
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
    t0 = time.time()
    subprocess.run([sys.executable, "-m", "lesson7_studio", "crappify", str(src), str(data), "--recipe", a.recipe,
                    "--seed", str(a.seed), "--valid-pct", "0.02", "--workers", str(a.workers)], check=True,
                   stdout=subprocess.DEVNULL)
    print(f"dataset ready in {time.time() - t0:.1f} s", flush=True)
    return data


def _printer():
    from lesson7_studio.core.events import BatchEnd, EpochEnd, Log

    t0 = time.time()

    def on_event(ev) -> None:
        if isinstance(ev, EpochEnd):
            m = " ".join(f"{k} {v:.4g}" for k, v in ev.metrics.items() if isinstance(v, (int, float)))
            print(f"epoch {ev.epoch + 1}/{ev.n_epochs} step {ev.step} {ev.seconds:.0f}s {m}", flush=True)
        elif isinstance(ev, BatchEnd) and ev.step % 25 == 0:
            print(f"  step {ev.step}/{getattr(ev, 'total_steps', '?')} loss {ev.smooth_loss:.4f} lr {ev.lr:.2e} "
                  f"{time.time() - t0:.0f}s", flush=True)
        elif isinstance(ev, Log):
            print(ev.message if hasattr(ev, "message") else ev, flush=True)

    return on_event


def _train(cfg, ema: float, resume: bool) -> int:
    from lesson7_studio.core.train.recipes import TrainConfig

    from lesson7_studio.core.train.run import train

    if isinstance(cfg, dict):
        cfg = TrainConfig.from_dict(cfg)
    if not resume:  # a resumed run keeps the average it was started with (its config.json)
        cfg.ema = float(ema)
    t0 = time.time()
    result = train(cfg, on_event=_printer(), resume=resume)
    print(f"training {'finished' if result.finished else 'stopped: ' + result.stopped} in "
          f"{time.time() - t0:.1f} s, {result.steps} steps", flush=True)
    return 0 if result.finished else 3


def write_ema_model(model_path: Path, weights: dict) -> Path:
    """``model_ema.safetensors`` beside ``model_path``: its metadata, the averaged weights."""
    from lesson7_studio.core import checkpoint
    from lesson7_studio.core.train.ema import load_averaged

    m = checkpoint.load_model(model_path)
    load_averaged(m.net, weights)
    info = dict(m.meta.get("info") or {})
    info["ema"] = True
    return checkpoint.save_model(Path(model_path).with_name("model_ema.safetensors"), m.net, m.name, m.options,
                                 info=info)


def export_ema(run_dir: Path) -> Path:
    """The EMA weights of the newest checkpoint of ``run_dir`` as ``model_ema.safetensors``."""
    from lesson7_studio.core.errors import TrainingError
    from lesson7_studio.core.train.ema import ema_weights_from_state

    last = run_dir / "checkpoints" / "last.json"
    if not last.exists():
        raise TrainingError(f"{run_dir} has no checkpoint yet ({last} is missing).")
    name = json.loads(last.read_text())["name"]
    weights = ema_weights_from_state(run_dir / "checkpoints" / f"{name}.state.pt")
    if weights is None:
        raise TrainingError(f"{run_dir}: checkpoint {name} holds no EMA (trained with --ema 0?).")
    return write_ema_model(run_dir / "checkpoints" / f"{name}.safetensors", weights)


def _calibrate(cfg: dict, work: Path, data: Path, a: argparse.Namespace) -> int:
    """Epochs that fit ``a.minutes``, from two short epochs (the second one's time is the
    steady-state cost)."""
    from lesson7_studio.core.events import EpochEnd
    from lesson7_studio.core.train.run import train

    n_train = len(json.loads((data / "dataset.json").read_text())["train"])
    steps_full = n_train // a.batch_size
    if a.steps_per_epoch:
        steps_full = min(steps_full, a.steps_per_epoch)
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
