"""``lesson7-studio train`` and ``lesson7-studio lr-find``."""

from __future__ import annotations

import argparse

from ._common import ema_decay, non_negative_int, positive_float, positive_int
from .progress import Console, advance, progress_bar, showing


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", metavar="CONFIG.json", help="a saved training config (instead of --recipe)")
    p.add_argument("--recipe", metavar="NAME", help="training recipe: superres-feature, superres-gan, wgan, colorize, quick")
    p.add_argument("--data", metavar="DATASET", help="dataset folder (made by `lesson7-studio crappify`)")
    p.add_argument("--out", metavar="RUN", help="run folder to create (or to continue with --resume)")
    p.add_argument("--arch", metavar="NAME", help="generator model name (see `lesson7-studio models`)")
    p.add_argument("--epochs", type=positive_int, metavar="N", help="epochs of every training stage")
    p.add_argument("--size", type=positive_int, metavar="PX", help="HR crop size in pixels")
    p.add_argument("--batch-size", type=positive_int, metavar="B", help="batch size")
    p.add_argument("--lr", type=positive_float, metavar="LR",
                   help="learning rate of the first stage (later stages keep the recipe's ratios)")
    p.add_argument("--device", metavar="D", help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), help="mixed precision (default auto)")
    p.add_argument("--workers", type=non_negative_int, metavar="N", help="data loader worker processes (default 0)")
    p.add_argument("--seed", type=non_negative_int, help="random seed (default 0)")
    p.add_argument("--no-pretrained", action="store_true",
                   help="do not use ImageNet weights (encoder and feature loss start random)")
    p.add_argument("--init", metavar="MODEL",
                   help="where the weights start: 'starter' (the bundled model), a checkpoint (.safetensors), "
                   "'imagenet' (encoder weights, U-Nets over a ResNet) or 'scratch'; a checkpoint's or the starter's "
                   "architecture replaces the recipe's")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a restoration model (or a WGAN) with one of the lesson's recipes",
        description="Train with a recipe and a dataset into a run folder (config.json, metrics.csv, "
        "checkpoints/, samples/, model.safetensors). Ctrl-C stops after the current batch and "
        "writes a checkpoint; --resume continues exactly there, and with a larger --epochs extends "
        "a finished run. Works the same under `torchrun --nproc_per_node N`.",
    )
    _common(p)
    p.add_argument("--max-minutes", type=positive_float, metavar="M", help="stop (resumably) after M minutes")
    p.add_argument("--max-steps", type=positive_int, metavar="N", help="stop (resumably) after N optimizer steps")
    p.add_argument("--steps-per-epoch", type=positive_int, metavar="N", help="N training batches per epoch: a larger dataset is cut, a smaller one repeats "
                   "with new random crops (default: the recipe's, or one pass over the data)")
    p.add_argument("--snapshots", type=non_negative_int, metavar="N",
                   help="keep the newest N weights-only (half-precision) generator snapshots besides the one "
                   "full resumable state (default: the recipe's; 3 for the GAN recipes)")
    p.add_argument("--ema", type=ema_decay, metavar="D",
                   help="keep an exponential moving average of the weights (decay D in [0, 1), e.g. 0.99; 0: off) "
                   "in the restore stages: the validation figures, samples and the final model are the average "
                   "(default: the recipe's)")
    p.add_argument("--keep-best", action=argparse.BooleanOptionalAction, default=None,
                   help="save as the model the best-validated weights of the last stage (a fresh run's starting "
                   "weights included) instead of the last ones (default: the recipe's; finetune keeps the best)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--list", action="store_true", help="list the recipes and exit")
    p.set_defaults(func=run_train)

    q = subparsers.add_parser(
        "lr-find",
        help="sweep the learning rate and suggest one (saves a plot)",
        description="Exponential learning-rate sweep on the first training stage of a recipe; prints "
        "the suggested rate (valley) and the steepest-slope rate and saves the curve as a PNG.",
    )
    _common(q)
    q.add_argument("--start-lr", type=positive_float, default=1e-7, help="first learning rate (default 1e-7)")
    q.add_argument("--end-lr", type=positive_float, default=10.0, help="last learning rate (default 10)")
    q.add_argument("--num-it", type=positive_int, default=100, help="batches in the sweep (default 100)")
    q.add_argument("--plot", metavar="FILE.png", help="where to save the plot (default RUN/lr_find.png or lr_find.png)")
    q.set_defaults(func=run_lr_find)


def _overrides(args: argparse.Namespace) -> dict:
    ov = {
        "data": args.data, "out": args.out, "arch": args.arch, "epochs": args.epochs, "size": args.size,
        "batch_size": args.batch_size, "lr": args.lr, "device": args.device, "precision": args.precision,
        "workers": args.workers, "seed": args.seed,
        "max_minutes": getattr(args, "max_minutes", None), "max_steps": getattr(args, "max_steps", None),
        "steps_per_epoch": getattr(args, "steps_per_epoch", None), "init": args.init,
        "snapshots": getattr(args, "snapshots", None), "ema": getattr(args, "ema", None),
        "keep_best": getattr(args, "keep_best", None),
    }
    if args.no_pretrained:
        ov["pretrained"] = False
    return {k: v for k, v in ov.items() if v is not None}


def _config(args: argparse.Namespace, need_out: bool = True):
    from lesson7_studio.core.errors import TrainingError
    from lesson7_studio.core.train import TrainConfig, apply_overrides, get_recipe

    if args.config and args.recipe:
        raise TrainingError("Give either CONFIG.json or --recipe, not both.")
    if args.config:
        cfg = TrainConfig.load(args.config)
    elif args.recipe:
        cfg = get_recipe(args.recipe)
    else:
        raise TrainingError("Nothing to train: give --recipe NAME (see --list) or a CONFIG.json.")
    cfg = apply_overrides(cfg, **_overrides(args))
    if not cfg.data:
        raise TrainingError("No dataset: pass --data DATASET.")
    if need_out and not cfg.out:
        raise TrainingError("No run folder: pass --out RUN.")
    return cfg


def _list_recipes() -> int:
    from lesson7_studio.core.train import RECIPES

    width = max(len(n) for n in RECIPES)
    for name, cfg in RECIPES.items():
        stages = ", ".join(f"{s.name}" + (f" x{s.epochs}" if s.trains else "") for s in cfg.stages)
        print(f"{name:<{width}}  {cfg.arch}, {cfg.size} px, batch {cfg.batch_size}, loss {cfg.loss}")
        print(f"{'':<{width}}  {cfg.description}")
        print(f"{'':<{width}}  stages: {stages}")
    return 0


RUN_BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} steps [{elapsed}{postfix}]"


class _Bars(Console):
    """One tqdm bar for the whole run (every stage and epoch: steps done of the total, the ETA,
    the live loss and learning rate); other events as lines above it."""

    def __init__(self) -> None:
        super().__init__()
        self.key = None

    def __call__(self, ev) -> None:
        from lesson7_studio.core.events import (BatchEnd, CheckpointSaved, EpochEnd, Log, Progress, SampleImages,
                                                StageStart)

        if isinstance(ev, BatchEnd):
            self._batch(ev)
        elif isinstance(ev, EpochEnd):
            parts = [f"{k} {v:.4g}" for k, v in ev.metrics.items() if isinstance(v, float)]
            self.say(f"{ev.stage} epoch {ev.epoch + 1}/{ev.n_epochs}: " + ", ".join(parts) + f" ({ev.seconds:.1f} s)")
        elif isinstance(ev, StageStart):
            if self.key != "run":
                self.close()
            self.say(f"== stage {ev.index + 1}/{ev.total}: {ev.name}" + (f" ({ev.epochs} epochs)" if ev.epochs else "")
                     + (f", steps {ev.steps_done + 1}-{ev.steps_done + ev.stage_steps} of {ev.total_steps}"
                        if ev.stage_steps else ""))
        elif isinstance(ev, Progress):
            key = ("progress", ev.stage)
            if key != self.key:
                self.close()
                self.key = key
                self.bar = progress_bar(total=ev.total, desc=ev.stage, unit="batch")
            advance(self.bar, ev.done, ev.message)
        elif isinstance(ev, CheckpointSaved):
            if ev.reason in ("cancel", "budget", "early-stop"):
                self.say(f"checkpoint ({ev.reason}): {ev.path}")
        elif isinstance(ev, SampleImages):
            if ev.path is not None:
                self.say(f"samples: {ev.path}")
        elif isinstance(ev, Log):
            self.say(ev.message)


    def _batch(self, ev) -> None:
        from lesson7_studio.core.events import format_duration, format_lr

        total = ev.total_steps or None
        if self.key != "run" or self.bar is None or (total and self.bar.total != total):
            self.close()
            self.key = "run"
            self.bar = progress_bar(total=total, initial=max(0, ev.step - 1), desc="training", unit="step",
                                    leave=True, bar_format=RUN_BAR_FORMAT if total else None)
        stage = f"stage {ev.stage_index + 1}/{ev.n_stages} " if ev.n_stages > 1 else ""
        eta = f", ETA {format_duration(ev.eta_s)}" if ev.eta_s is not None else ""
        self.bar.desc = f"{stage}{ev.stage} epoch {ev.epoch + 1}"  # shown at the next redraw
        advance(self.bar, ev.step, f"loss {ev.smooth_loss:.4f}, lr {format_lr(ev.lr)}{eta}")


STOPPING = "stopping after this batch and writing a checkpoint (Ctrl-C again to abort) ..."


def run_train(args: argparse.Namespace) -> int:
    if args.list:
        return _list_recipes()
    from lesson7_studio.core.errors import TrainingError
    from lesson7_studio.core.events import CancelToken
    from lesson7_studio.core.train import resume_config, train

    if args.resume:
        if args.config:
            raise TrainingError("--resume continues the run in --out with its saved config; "
                                "do not pass CONFIG.json.")
        if not args.out:
            raise TrainingError("--resume needs --out RUN (the run folder to continue).")
        ov = _overrides(args)
        ov.pop("out", None)
        cfg = resume_config(args.out, **ov)
        if args.recipe and args.recipe != cfg.recipe:
            raise TrainingError(f"--recipe {args.recipe} does not match the run in {args.out}, which was "
                                f"started with recipe '{cfg.recipe}'; a resumed run keeps its recipe.",
                                hint=f"Pass --recipe {cfg.recipe}, or leave --recipe out.")
    else:
        cfg = _config(args)
    cancel = CancelToken()
    with showing(_Bars(), cancel, STOPPING) as bars:
        result = train(cfg, on_event=bars, cancel=cancel, resume=args.resume)
    if result.model_path is None:  # not rank 0 under torchrun
        return 0
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in result.metrics.items()
                        if isinstance(v, float) and k in ("train_loss", "valid_loss", "psnr", "ssim"))
    state = "finished" if result.finished else f"stopped ({result.stopped}); continue with --resume"
    print(f"{state}: {result.steps} steps in {result.seconds:.0f} s; {metrics}")
    print(f"model: {result.model_path}")
    return 0


def run_lr_find(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lesson7_studio.core.events import CancelToken
    from lesson7_studio.core.train import lr_find

    cfg = _config(args, need_out=False)
    plot = args.plot or (str(Path(cfg.out) / "lr_find.png") if cfg.out else "lr_find.png")
    cancel = CancelToken()
    with showing(_Bars(), cancel, STOPPING) as bars:
        res = lr_find(cfg, start_lr=args.start_lr, end_lr=args.end_lr, num_it=args.num_it, plot=plot,
                      on_event=bars, cancel=cancel)
    print(f"suggested lr: {res.suggestion:.2e} ({res.rule}); steepest slope at {res.steep:.2e}")
    print(f"plot: {res.plot}")
    return 0
