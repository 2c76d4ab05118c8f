"""The stages of a run: one function per stage kind (restore, save-preds, critic, gan, wgan)
that builds its datasets, loaders, loss and learner and fits it, and the plan of optimizer
steps the overall progress bar counts down.

Each runner takes the :class:`~.run._Run` (models, run folder, resume state, callbacks) and the
stage's position ``(start_epoch, skip_batches, (segment_start, segment_end))``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional

import torch
from torch import nn

from ..errors import DatasetError, TrainingError
from ..events import Log
from . import distributed as dist_
from .callbacks import PreviewCallback, Recorder
from .data import CriticDataset, hr_root, image_folder, paired, paired_valid
from .learner import Callback, Learner
from .recipes import StageConfig, TrainConfig
from .resume import Position

if TYPE_CHECKING:
    from .run import _Run



def learner_kwargs(run: "_Run") -> dict:
    """The Learner settings every stage shares."""
    cfg = run.cfg
    return dict(device=run.device, precision=cfg.precision, channels_last=cfg.channels_last, wd=cfg.wd,
                moms=tuple(cfg.moms), grad_clip=cfg.grad_clip, cancel=run.cancel, on_event=run.on_event)


def preview_samples(run: "_Run", size: int) -> list:
    """The first ``preview_samples`` pairs of the validation split (else of the training split)."""
    n = int(run.cfg.preview_samples or 0)
    if n <= 0:
        return []
    seed = run.cfg.seed
    ds = paired_valid(run.data, size, seed, run.dataset_meta) or paired(run.data, "train", size, False, seed)
    return [ds[j] for j in range(min(n, len(ds)))]


def critic_size(cfg: TrainConfig) -> int:
    """The crop size of the critic's data: that of the first critic or gan stage."""
    for s in cfg.stages:
        if s.kind in ("critic", "gan"):
            return s.size or cfg.size
    return cfg.size


def _paired_loaders(run: "_Run", stage: StageConfig, size: int):
    """Loaders of the paired train / valid splits at crop ``size`` (restore and gan stages)."""
    cfg = run.cfg
    train_ds = paired(run.data, "train", size, cfg.augment, cfg.seed, cfg.max_zoom)
    valid_ds = paired_valid(run.data, size, cfg.seed, run.dataset_meta)
    return run._loaders(stage, train_ds, valid_ds)


def _previews(run: "_Run", size: int, critic: Optional[Callable] = None) -> Optional[PreviewCallback]:
    """The preview callback (rank 0, ``preview_samples`` > 0), else None."""
    if not (run.main and run.cfg.preview_samples):
        return None
    return PreviewCallback(preview_samples(run, size), run.folder.samples, critic=critic)


def run_restore(run: "_Run", i: int, stage: StageConfig, pos: Position) -> None:
    cfg = run.cfg
    size = stage.size or cfg.size
    tdl, vdl = _paired_loaders(run, stage, size)
    previews = _previews(run, size)
    learn = Learner(run.gen, tdl, vdl, run.losses[stage.name], opt=run.gen_opt, stage=stage.name,
                    ddp=run.dinfo.enabled, **learner_kwargs(run))
    for cb in run._common_callbacks(i, stage, True, previews):
        learn.add_cb(cb)
    if learn.opt is None:
        learn.create_opt()
    run.gen_opt = learn.opt
    if stage.freeze and len(learn.layer_groups) > 1:
        learn.freeze()
    else:
        if stage.freeze:
            run.emit(Log(f"{run.gen_name} has no separate encoder; stage '{stage.name}' trains all of it."))
        learn.unfreeze()
    if run.cfg.keep_best and run.global_step == 0 and run.state is None:  # a fresh run: its start counts
        run.validate_start(learn, stage)
    fit_stage(run, learn, i, stage, pos)


def fit_stage(run: "_Run", learn: Learner, i: int, stage: StageConfig, pos: Position) -> None:
    """Fit ``learn`` over the stage's segment, from its resume position; record how it ended."""
    start_epoch, skip, (seg_start, seg_end) = pos
    learn.step = run.global_step
    run._learn = learn
    run._update_plan(i, learn, seg_end)
    if learn.opt is None:
        learn.create_opt()  # before restoring: the optimizer state must have somewhere to go
    run._restore_state_into(learn, i)
    learn.fit(seg_end, stage.lr, one_cycle=stage.one_cycle, div=stage.div, div_final=stage.div_final,
              pct_start=stage.pct_start, start_epoch=start_epoch, skip_batches=skip, segment_start=seg_start)
    run.global_step = learn.step
    if learn.fit_stop_reason == "budget":
        run.stopped = "budget"
        return
    run.stage_status[stage.name] = "done"
    averaged = run.ema is not None
    run.adopt_average()  # with cfg.ema the stage's result is the weight average
    # a finished stage always ends with a checkpoint that says so (holding that result)
    if run.main and (averaged or (learn.fit_stop_reason != "early-stop" and learn.position() != (seg_end, 0))):
        run.save_checkpoint(learn, i, "epoch")


def run_save_preds(run: "_Run", i: int, stage: StageConfig) -> None:
    """Write the generator's predictions for every train/valid crop to preds/<split>/NNNNNN.png."""
    from ..events import Progress
    from .callbacks import save_png, to_uint8

    cfg = run.cfg
    g = run.gen.to(run.device)
    g.eval()
    size = critic_size(cfg)
    bs = stage.batch_size or cfg.batch_size
    for split in ("train", "valid"):
        ds = (paired(run.data, split, size, False, cfg.seed) if split == "train"
              else paired_valid(run.data, size, cfg.seed, run.dataset_meta))
        if ds is None or not run.main:  # rank 0 alone writes the run folder
            continue
        out = run.folder.preds / split
        out.mkdir(parents=True, exist_ok=True)
        n = len(ds)
        for start in range(0, n, bs):
            if run.cancel is not None:
                run.cancel.check()
            idx = [j for j in range(start, min(n, start + bs)) if not (out / f"{j:06d}.png").exists()]
            if not idx:
                continue
            xb = torch.stack([ds[j][0] for j in idx]).to(run.device)
            with torch.no_grad():
                pred = g(xb).float().clamp(0, 1).cpu()
            for j, p in zip(idx, pred):
                save_png(to_uint8(p), out / f"{j:06d}.png")
            run.emit(Progress(done=min(n, start + bs), total=n, message=f"saving {split} predictions",
                              stage=stage.name))
    dist_.barrier()
    run.stage_status[stage.name] = "done"


def run_critic(run: "_Run", i: int, stage: StageConfig, pos: Position) -> None:
    from ..losses import AdaptiveLoss, accuracy_thresh_expand

    cfg = run.cfg
    size = stage.size or critic_size(cfg)
    train_ds = CriticDataset(paired(run.data, "train", size, False, cfg.seed), run.folder.preds / "train",
                             seed=cfg.seed)
    vpaired = paired_valid(run.data, size, cfg.seed, run.dataset_meta)
    valid_ds = CriticDataset(vpaired, run.folder.preds / "valid", flip=False) if vpaired is not None else None
    tdl, vdl = run._loaders(stage, train_ds, valid_ds)
    loss = AdaptiveLoss(nn.BCEWithLogitsLoss())
    learn = Learner(run.critic, tdl, vdl, loss, stage=stage.name, ddp=run.dinfo.enabled, **learner_kwargs(run))
    for cb in run._common_callbacks(i, stage, False, None):
        learn.add_cb(cb)
    learn.get_cb(Recorder).metrics = {"accuracy": accuracy_thresh_expand}
    fit_stage(run, learn, i, stage, pos)


def run_gan(run: "_Run", i: int, stage: StageConfig, pos: Position) -> None:
    from ..models.registry import IMAGENET_STD
    from .gan import AdaptiveGANSwitcher, GANLearner, GANLoss, GANModule, GANTrainer

    cfg = run.cfg
    size = stage.size or cfg.size
    tdl, vdl = _paired_loaders(run, stage, size)
    gan = GANModule(run.gen, run.critic)
    # the pixel term in the lesson's (ImageNet-normalised) units, so gan_weights mean what they did there
    loss = GANLoss(run.losses[stage.name], kind="bce", weights=cfg.gan_weights,
                   pixel_std=IMAGENET_STD if cfg.gan_pixel_loss in ("mse", "l1") else None)
    previews = _previews(run, size, critic=lambda: run.critic)
    learn = GANLearner(gan, tdl, vdl, loss, critic_lr_mult=cfg.critic_lr_mult, betas=tuple(cfg.gan_betas),
                       switch_eval=cfg.switch_eval, stage=stage.name, **learner_kwargs(run))
    learn.add_cb(GANTrainer(gen_first=False))
    learn.add_cb(AdaptiveGANSwitcher(gen_thresh=cfg.gen_thresh, critic_thresh=cfg.critic_thresh))
    for cb in run._common_callbacks(i, stage, False, previews):
        learn.add_cb(cb)
    learn.create_opt()
    fit_stage(run, learn, i, stage, pos)


class NoiseEpoch(Callback):
    """Tell the NoiseDataset which epoch it serves (noise depends on (seed, epoch, index))."""

    order = 0

    def __init__(self, ds) -> None:
        self.ds = ds

    def before_train(self) -> None:
        self.ds.set_epoch(self.learn.epoch)


def run_wgan(run: "_Run", i: int, stage: StageConfig, pos: Position) -> None:
    from .gan import FixedGANSwitcher, GANLearner, GANLoss, GANModule, GANTrainer, NoiseDataset, NoiseGrid

    cfg = run.cfg
    images = image_folder(run.data, cfg.size)
    if len(images) == 0:
        raise DatasetError(f"No images found in {hr_root(run.data)}.")
    train_ds = NoiseDataset(images, cfg.noise_size, seed=cfg.seed)
    tdl, _ = run._loaders(stage, train_ds, None)
    gan = GANModule(run.gen, run.critic)
    loss = GANLoss(kind="wasserstein")
    g = torch.Generator().manual_seed(cfg.seed + 12345)
    noise = torch.randn(max(1, cfg.preview_samples), cfg.noise_size, generator=g)
    learn = GANLearner(gan, tdl, None, loss, critic_lr_mult=cfg.critic_lr_mult, betas=tuple(cfg.gan_betas),
                       clip=cfg.clip, switch_eval=cfg.switch_eval, real_transform=lambda t: t * 2 - 1,
                       stage=stage.name, **learner_kwargs(run))
    learn.add_cb(GANTrainer(gen_first=False))
    learn.add_cb(FixedGANSwitcher(n_crit=cfg.n_critic, n_gen=1))
    learn.add_cb(NoiseEpoch(train_ds))
    grid = NoiseGrid(noise, run.folder.samples if run.main else None) if cfg.preview_samples else None
    for cb in run._common_callbacks(i, stage, False, grid):
        learn.add_cb(cb)
    learn.create_opt()
    fit_stage(run, learn, i, stage, pos)


RUNNERS: dict[str, Callable[["_Run", int, StageConfig, Position], None]] = {
    "restore": run_restore, "critic": run_critic, "gan": run_gan, "wgan": run_wgan,
}


# ---------------------------------------------------------------------------------------------
# the plan of optimizer steps


def stage_batches(run: "_Run", stage: StageConfig) -> int:
    """Training batches per epoch of ``stage``, from the loader the stage will use."""
    cfg = run.cfg
    if stage.kind == "wgan":
        n = len(image_folder(run.data, cfg.size))
    else:
        size = stage.size or (critic_size(cfg) if stage.kind == "critic" else cfg.size)
        n = len(paired(run.data, "train", size, cfg.augment, cfg.seed)) * (2 if stage.kind == "critic" else 1)
    tdl, _ = run._loaders(stage, range(n), None)
    return len(tdl)


def plan_steps(run: "_Run") -> list[int]:
    """Optimizer steps of each stage (0 for save-preds), before the ``max_steps`` cap."""
    plan = []
    for s in run.cfg.stages:
        try:
            plan.append(s.epochs * stage_batches(run, s) if s.trains else 0)
        except (TrainingError, DatasetError, OSError):  # that stage will fail with its own message
            plan.append(0)
    return plan


def cap_plan(plan: list[int], max_steps: Optional[int]) -> list[int]:
    """``plan`` cut so that its sum is at most ``max_steps`` (the run stops there)."""
    if not max_steps:
        return list(plan)
    out, left = [], int(max_steps)
    for n in plan:
        out.append(min(n, left))
        left -= out[-1]
    return out


def budget_spent_at(cfg: TrainConfig, step: int, seconds: float) -> bool:
    """Whether ``--max-steps`` / ``--max-minutes`` are used up at ``step`` after ``seconds``."""
    if cfg.max_steps and step >= cfg.max_steps:
        return True
    return bool(cfg.max_minutes) and seconds >= cfg.max_minutes * 60
