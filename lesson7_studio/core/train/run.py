"""A training run: config -> run folder, stage by stage, resumable.

``train(config)`` checks the dataset and builds the models and losses before anything is
written, then runs the stages of the recipe in order into the run folder (laid out as
:mod:`.run_folder` describes). ``train(config, resume=True)`` continues from
``checkpoints/last.json``: mid-epoch positions resume exactly (each epoch's order is a function
of (seed, epoch); the batches already done are skipped; RNG states are restored, see
:mod:`.resume`). A finished run resumed with more epochs extends its last stage with a new
schedule segment.

The parts: :mod:`.data` (dataset checks, stage datasets, loaders), :mod:`.build` (model options,
fine-tune start, losses), :mod:`.stages` (one runner per stage kind, the step plan),
:mod:`.run_folder` (files), :mod:`.resume` (the resume state). ``_Run`` holds one run's state;
subclasses may extend ``_common_callbacks(i, stage, monitor_best, previews)``. ``ema`` adds an
:class:`~.ema.EMACallback` to restore stages (validated, sampled and saved as the average);
``keep_best`` validates a fresh run's starting weights and hands back ``best.safetensors`` at the
end when the last weights validated worse (``RunResult.kept`` says so).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from ..errors import Cancelled, TrainingError
from ..events import CancelToken, EventCallback, Finished, Log, RunProgress, StageStart, emit
from . import distributed as dist_
from .build import StageLosses, build_critic, build_generator
from .build import options_for as _options_for
from .callbacks import BudgetCallback, CheckpointCallback, EarlyStopping, Recorder
from .ema import EMACallback
from .data import check_dataset, dataset_scale, paired, scale_of, stage_loaders
from .data import LimitSampler as _Limit
from .learner import Learner, resolve_device
from .recipes import StageConfig, TrainConfig
from .resume import RESUME_CHANGEABLE, STATE_FORMAT, Position, ResumeState, as_config, resume_config, stage_position
from .resume import load_opt_state as _load_opt_state
from .rng import rng_state, seed_everything, set_rng_state
from .run_folder import (
    RunFolder, atomic_bytes, atomic_copy, atomic_torch_save, checkpoint_name, load_weights, save_weights,
)
from .stages import RUNNERS, budget_spent_at, cap_plan, plan_steps, run_save_preds

_paired = paired  # the names this module had before its split, imported elsewhere

__all__ = [  # importable from here as before the split (tests, scripts, core.lessons, the GUI)
    "RESUME_CHANGEABLE", "STATE_FORMAT", "RunFolder", "RunResult", "_Limit", "_Run", "_load_opt_state",
    "_options_for", "_paired", "atomic_bytes", "atomic_torch_save", "dataset_scale", "resume_config",
    "rng_state", "seed_everything", "set_rng_state", "train",
]


@dataclass
class RunResult:
    out: Path
    model_path: Optional[Path]
    finished: bool  # every stage ran to its end
    stopped: str = ""  # "" | "budget" (resumable)
    steps: int = 0
    metrics: dict = field(default_factory=dict)  # last epoch's metrics
    stages_done: list = field(default_factory=list)
    seconds: float = 0.0
    generator: Any = field(default=None, repr=False)  # the trained generator (Restorer) in memory
    kept: Optional[dict] = None  # keep_best: the earlier weights the model is ({"step", "valid_loss", ...})


class _Run:
    """One training run's state: models, losses, run folder, resume position and step plan.
    ``run()`` prepares everything, then runs each stage through :data:`.stages.RUNNERS`."""

    def __init__(self, cfg: TrainConfig, on_event, cancel, resume: bool) -> None:
        self.cfg = cfg
        self.cancel = cancel
        self.resume = resume
        self.t_start = time.perf_counter()
        self.device = resolve_device(cfg.device)
        self.dinfo = dist_.init_from_env(self.device.type)
        if self.dinfo.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dinfo.local_rank)
        self.main = self.dinfo.is_main
        # every event passes through the overall-progress tracker (total steps, ETA)
        self.progress = RunProgress(on_event if self.main else None, cancel)
        self.on_event = self.progress if self.main and on_event is not None else None
        self.folder = RunFolder(Path(cfg.out), writer=self.main)
        self.data = Path(cfg.data) if cfg.data else None
        self.global_step = 0
        self.state: ResumeState | None = None
        self.segments: dict[str, list[list[int]]] = {}
        self.stage_status: dict[str, str] = {}
        self.gen: nn.Module | None = None  # the Restorer (or WGAN generator)
        self.gen_name = cfg.arch
        self.gen_opts: dict = {}
        self.critic: nn.Module | None = None
        self.critic_opts: dict = {}
        self.gen_opt: torch.optim.Optimizer | None = None
        self.losses: dict[str, nn.Module] = {}
        self.last_metrics: dict = {}
        self.stopped = ""
        self.scale = 1
        self.dataset_meta: dict = {}
        self.elapsed_before = 0.0
        self._loss_bank = StageLosses(cfg, self.on_event)
        self._plan: list[int] = []
        self._pending_gen_opt: dict | None = None
        self._last_saved: tuple[int, Path] | None = None
        self._learn: Learner | None = None
        self.ema: EMACallback | None = None  # the weight average of the restore stage running (cfg.ema)
        self.best_step: int | None = None  # the step of checkpoints/best.safetensors (this session)
        self.kept: dict | None = None  # what keep_best handed back instead of the last weights

    def emit(self, ev) -> None:
        emit(self.on_event, ev)

    # -- setup --------------------------------------------------------------------------------
    def check_data(self) -> None:
        self.dataset_meta = check_dataset(self.cfg, self.data, self.dinfo)
        if self.dataset_meta:
            self.scale = scale_of(self.dataset_meta)

    def build_models(self, load_pretrained: bool) -> None:
        """The generator (from ``cfg.init`` when set: its architecture is adopted) and the critic."""
        self.gen, self.gen_opts, init = build_generator(self.cfg, self.scale, self.data, load_pretrained)
        if init is not None and load_pretrained:  # on resume the run's own checkpoint wins
            self.emit(Log(f"Fine-tuning from {init} ({self.cfg.arch})."))
        self.gen_name = self.cfg.arch
        self.critic, self.critic_opts = build_critic(self.cfg)

    def build_losses(self) -> None:
        """Construct every loss the stages need now, so missing weights fail before training."""
        self.losses = self._loss_bank.all_stages()

    def _restore_loss(self, s: StageConfig) -> nn.Module:
        return self._loss_bank.restore(s)

    # -- checkpoints --------------------------------------------------------------------------
    def _info(self, extra: Optional[dict] = None) -> dict:
        info = {"recipe": self.cfg.recipe, "training": {"config": self.cfg.to_dict(), "step": self.global_step,
                                                      "metrics": self.last_metrics}}
        if self.dataset_meta.get("recipe") is not None:
            info["crappify_recipe"] = self.dataset_meta.get("recipe")
            info["crappify_recipe_hash"] = self.dataset_meta.get("recipe_hash")
        if extra:
            info.update(extra)
        return info

    def _save_gen(self, path: Path, extra: dict, half: bool = False) -> Path:
        return save_weights(path, self.gen, self.gen_name, self.gen_opts, self._info(extra), half=half)

    def _save_best(self, learn: Learner, stage: StageConfig) -> Optional[Path]:
        if stage.kind != "restore":
            return None
        best = self.folder.best_path
        last = self._last_saved
        self.best_step = learn.step
        if self.ema is None and last is not None and last[0] == learn.step and last[1].exists():  # same weights
            atomic_copy(last[1], best)
            return best
        with self.averaged():  # the figures that made it the best are the average's
            return self._save_gen(best, {"stage": stage.name, "best": True})

    def validate_start(self, learn: Learner, stage: StageConfig) -> None:
        """``keep_best``: validate the starting weights; they are the best so far (best.safetensors)."""
        learn.validate_only()
        metrics = learn.get_cb(Recorder).take_valid_metrics()
        value = metrics.get("valid_loss")
        if value is None:
            return
        learn.get_cb(CheckpointCallback).best = value
        if self.main:
            self._save_best(learn, stage)
        psnr = f", PSNR {metrics['psnr']:.2f} dB" if "psnr" in metrics else ""
        self.emit(Log(f"The starting weights validate at loss {value:.4g}{psnr}; the run keeps the best "
                      "validated weights (keep_best), these included."))

    def keep_best(self) -> Optional[dict]:
        """``keep_best`` at the end: load best.safetensors into the generator when it validated better
        than the last weights; what was kept (step, valid loss), or None."""
        learn = self._learn
        ck = learn.get_cb(CheckpointCallback) if learn is not None else None
        last = self.last_metrics.get("valid_loss")
        best = self.folder.best_path
        if ck is None or ck.best is None or not best.exists():
            return None
        if last is not None and math.isfinite(last) and last <= ck.best:  # the last weights are (one of) the best
            return None
        load_weights(best, self.gen)
        self.ema = None  # the kept weights are what they were when validated
        where = "the starting weights" if self.best_step == 0 else (
            f"step {self.best_step}" if self.best_step is not None else "an earlier epoch")
        then = f"{last:.4g}" if last is not None else "no figure"
        self.emit(Log(f"Kept {where} (valid loss {ck.best:.4g}; the last weights: {then})."))
        self.kept = {"step": self.best_step, "valid_loss": ck.best, "last_valid_loss": last}
        return self.kept

    def averaged(self):
        """A ``with`` block in which the generator holds the EMA weights (when the running stage keeps them)."""
        return self.ema.applied(self.gen) if self.ema is not None else contextlib.nullcontext()

    def adopt_average(self) -> None:
        """At the end of a restore stage with an EMA: the average becomes the stage's result."""
        if self.ema is not None and self.ema.shadow:
            self.ema.copy_to(self.gen)
        self.ema = None

    def save_checkpoint(self, learn: Learner, stage_index: int, reason: str) -> Optional[Path]:
        if not self.main:
            return None
        stage = self.cfg.stages[stage_index]
        self.global_step = learn.step
        if reason == "best":
            return self._save_best(learn, stage)
        epoch, batches = learn.position()
        stage_done = reason == "early-stop" or (epoch >= learn.n_epoch and batches == 0)
        name = checkpoint_name(stage.name, learn.step)
        weights = self.folder.checkpoint(name, ".safetensors")
        if stage.kind in ("restore", "gan", "wgan") or self.gen is not None:
            self._save_gen(weights, {"stage": stage.name})
        critic_kinds = ("critic", "gan", "wgan")
        critic_trained = stage.kind in critic_kinds or any(
            s.kind in critic_kinds and self.stage_status.get(s.name) for s in self.cfg.stages)
        critic_path = self.folder.checkpoint(name, ".critic.safetensors")
        if self.critic is not None and critic_trained:
            save_weights(critic_path, self.critic, self.cfg.critic, self.critic_opts,
                         {"recipe": self.cfg.recipe, "stage": stage.name})
        status = dict(self.stage_status)
        status[stage.name] = "done" if stage_done else "partial"
        ResumeState.of_learner(
            learn, stage_index=stage_index, stage=stage, reason=reason, stage_done=stage_done, segments=self.segments,
            stage_status=status, elapsed=self.elapsed_before + time.perf_counter() - self.t_start,
            has_critic=self.critic is not None and critic_path.exists(),
        ).save(self.folder.checkpoint(name, ".state.pt"))
        self.folder.write_last(name, learn.step)
        self.folder.prune(name, self.cfg.keep_checkpoints)
        if self.cfg.snapshots and self.gen is not None and stage.kind in ("restore", "gan", "wgan"):
            self._snapshot(name, stage.name)
        self._last_saved = (learn.step, weights)
        return weights

    def _snapshot(self, name: str, stage: str) -> None:
        """A weights-only, half-precision copy of the generator in checkpoints/snapshots/, the newest
        ``snapshots`` kept: for picking the best moment of a GAN phase (DeOldify's practice)."""
        self.folder.snapshots.mkdir(exist_ok=True)
        self._save_gen(self.folder.snapshots / f"{name}.safetensors", {"stage": stage, "snapshot": True}, half=True)
        self.folder.prune_snapshots(self.cfg.snapshots)

    def load_last(self) -> bool:
        name = self.folder.read_last()
        if name is None:
            return False
        self.state = ResumeState.load(self.folder.checkpoint(name, ".state.pt"))
        gen_path = self.folder.checkpoint(name, ".safetensors")
        if gen_path.exists():
            load_weights(gen_path, self.gen)
        crit_path = self.folder.checkpoint(name, ".critic.safetensors")
        if self.critic is not None and crit_path.exists():
            load_weights(crit_path, self.critic)
        self.global_step = self.state.step
        self.segments = {k: [list(s) for s in v] for k, v in self.state.segments.items()}
        self.stage_status = dict(self.state.stage_status)
        self.elapsed_before = self.state.elapsed
        return True

    # -- overall progress ------------------------------------------------------------------------
    def _set_plan(self, plan: list[int]) -> None:
        self._plan = list(plan)
        self.progress.set_plan(cap_plan(self._plan, self.cfg.max_steps))

    def _update_plan(self, i: int, learn: Learner, seg_end: int) -> None:
        """The stage's real loader length replaces the estimate."""
        if not self._plan or i >= len(self._plan):
            return
        try:
            n = len(learn.train_dl)  # type: ignore[arg-type]
        except TypeError:
            return
        self._plan[i] = seg_end * n
        self._set_plan(self._plan)

    # -- stage plumbing --------------------------------------------------------------------------
    def _position(self, i: int, stage: StageConfig) -> Position | None:
        """(start_epoch, skip_batches, segment) for stage ``i``, or None if it is done."""
        pos, note = stage_position(self.state, self.segments, self.stage_status, i, stage,
                                   is_last=i == len(self.cfg.stages) - 1)
        if note:
            self.emit(Log(note))
        return pos

    def _restore_boundary(self, i: int) -> None:
        """Resuming at a stage boundary: RNG as it was when the previous stage ended, and the
        generator's optimizer when that stage trained the generator too."""
        st = self.state
        if st is None or st.stage_index == i:
            return
        if st.opt_owner == "gen" and st.opt is not None and self.cfg.stages[i].kind == "restore":
            self._pending_gen_opt = st.opt
        set_rng_state(st.rng)
        self.state = None

    def _restore_state_into(self, learn: Learner, i: int) -> None:
        pending = self._pending_gen_opt
        if pending is not None and learn.opt is not None and learn.opt is self.gen_opt:
            _load_opt_state(learn.opt, pending, learn.model)
            self._pending_gen_opt = None
        if self.state is not None and self.state.stage_index == i:
            self.state.apply_to(learn)

    def _common_callbacks(self, i: int, stage: StageConfig, monitor_best: bool, previews) -> list:
        """The callbacks every stage's learner gets (subclasses may add to them)."""
        cfg = self.cfg
        cbs: list = [Recorder(image_metrics=stage.kind in ("restore", "gan"),
                              on_row=self._on_row if self.main else None)]
        every = stage.checkpoint_every_steps if stage.checkpoint_every_steps is not None else cfg.checkpoint_every_steps
        cbs.append(CheckpointCallback(lambda reason, i=i: self._saver(reason, i), every_steps=every or 0,
                                      monitor="valid_loss" if monitor_best else "__none__"))
        if cfg.max_minutes or cfg.max_steps:
            cbs.append(BudgetCallback(max_seconds=cfg.max_minutes * 60 if cfg.max_minutes else None,
                                      max_steps=cfg.max_steps, started=self.t_start))
        if cfg.early_stop_patience and stage.kind == "restore":
            cbs.append(EarlyStopping(patience=cfg.early_stop_patience))
        self.ema = None
        if cfg.ema and stage.kind == "restore":
            self.ema = EMACallback(cfg.ema, evaluate=True)
            cbs.append(self.ema)
        if previews is not None:
            previews.weights = self.averaged
            cbs.append(previews)
        return cbs

    def _saver(self, reason: str, i: int) -> Optional[Path]:
        return self.save_checkpoint(self._learn, i, reason)

    def _on_row(self, row: dict) -> None:
        self.folder.add_row(row)
        self.last_metrics = {k: v for k, v in row.items() if k not in ("stage", "epoch", "step")}

    def _loaders(self, stage: StageConfig, train_ds, valid_ds):
        return stage_loaders(stage, self.cfg, train_ds, valid_ds, self.dinfo, self.device)

    # -- main ----------------------------------------------------------------------------------
    def final_model(self) -> Optional[Path]:
        if not self.main or self.gen is None:
            return None
        summary = {
            "recipe": self.cfg.recipe,
            "steps": self.global_step,
            "stages": self._stages_done(),
            "stopped": self.stopped,
            "seconds": round(self.elapsed_before + time.perf_counter() - self.t_start, 1),
            "metrics": self.last_metrics,
            "dataset": str(self.data) if self.data else None,
        }
        if self.cfg.keep_best:
            summary["kept"] = self.keep_best() or "last"
        with self.averaged():  # a run stopped inside an EMA stage hands over the average
            return self._save_gen(self.folder.model_path, {"summary": summary, "ema": bool(self.cfg.ema)})

    def _stages_done(self) -> list[str]:
        return [s.name for s in self.cfg.stages if self.stage_status.get(s.name) == "done"]

    def _budget_spent(self) -> bool:
        """Before a stage with work left: the budget is used up, so the run stops here (resumable)."""
        if not budget_spent_at(self.cfg, self.global_step, time.perf_counter() - self.t_start):
            return False
        self.stopped = "budget"
        self.emit(Log("Training budget reached at a stage boundary; stopping (resumable)."))
        return True

    def _prepare(self) -> bool:
        """Checks, models and losses (nothing written until they pass), then the run folder;
        whether it resumes a run."""
        cfg = self.cfg
        cfg.validate()
        resuming = self.resume and self.folder.holds_run()
        if self.resume and not resuming:
            raise TrainingError(f"Nothing to resume in {self.folder.root}: it holds no run.",
                                hint="Start the run without --resume.")
        if not self.resume and self.folder.holds_run():
            raise TrainingError(f"{self.folder.root} already holds a training run.",
                                hint="Continue it with --resume, or choose another --out folder.")
        self.check_data()
        seed_everything(cfg.seed)
        self.build_models(load_pretrained=not (resuming and self.folder.last_path.exists()))
        self.build_losses()
        if self.dinfo.enabled and any(s.kind in ("gan", "wgan") for s in cfg.stages):
            raise TrainingError("GAN stages run in a single process; start this recipe without torchrun.")
        self.folder.create()
        self.folder.write_config(cfg.to_json())
        dist_.barrier()
        return resuming

    def _load_resume(self) -> None:
        """Clean up after a killed write, load the newest checkpoint, drop the rows it will redo."""
        if self.main:
            stale = self.folder.remove_stale()
            if stale:
                self.emit(Log(f"Removed {len(stale)} unfinished file(s) left by an interrupted write "
                              f"({', '.join(p.name for p in stale[:3])}{', ...' if len(stale) > 3 else ''})."))
        self.folder.load_rows()
        if self.load_last():
            st = self.state
            self.folder.keep_rows_before([s.name for s in self.cfg.stages], st.stage, st.epoch, st.stage_done)
            self.emit(Log(f"Resuming {self.folder.root}: stage '{st.stage}' at {st.where()} (step {st.step})."))

    def _run_stage(self, i: int, stage: StageConfig) -> bool:
        """Run stage ``i`` if it has work left; False when the budget stops the run before it."""
        total = len(self.cfg.stages)
        if stage.kind == "save-preds":
            if self.stage_status.get(stage.name) == "done":
                return True
            if self._budget_spent():
                return False
            self.emit(StageStart(name=stage.name, index=i, total=total, epochs=0))
            self._restore_boundary(i)
            run_save_preds(self, i, stage)
            return True
        pos = self._position(i, stage)
        if pos is None:
            return True
        if self._budget_spent():
            return False
        self.emit(StageStart(name=stage.name, index=i, total=total, epochs=stage.epochs))
        self._restore_boundary(i)
        RUNNERS[stage.kind](self, i, stage, pos)
        self.state = None
        return True

    def run(self) -> RunResult:
        if self._prepare():
            self._load_resume()
        if self.main:
            self._set_plan(plan_steps(self))
        for i, stage in enumerate(self.cfg.stages):
            if self.stopped or not self._run_stage(i, stage):
                break
        model_path = self.final_model()
        dist_.barrier()
        done = self._stages_done()
        finished = not self.stopped and all(self.stage_status.get(s.name) == "done" for s in self.cfg.stages)
        result = RunResult(out=self.folder.root, model_path=model_path, finished=finished, stopped=self.stopped,
                           steps=self.global_step, metrics=dict(self.last_metrics), stages_done=done,
                           seconds=time.perf_counter() - self.t_start, generator=self.gen, kept=self.kept)
        self.emit(Finished(summary={"out": str(self.folder.root), "model": str(model_path) if model_path else None,
                                    "finished": finished, "stopped": self.stopped, "steps": self.global_step,
                                    "metrics": dict(self.last_metrics), "kept": self.kept}))
        return result


def train(config: TrainConfig | dict | str | Path, *, on_event: Optional[EventCallback] = None,
          cancel: Optional[CancelToken] = None, resume: bool = False) -> RunResult:
    """Run (or with ``resume=True`` continue) the training described by ``config``.

    Raises TrainingError / DatasetError / WeightsError before anything is written when the run
    cannot start; Cancelled after writing a resumable checkpoint when ``cancel`` is set.
    """
    config = as_config(config, TrainConfig)
    run = _Run(config, on_event, cancel, resume)
    try:
        return run.run()
    except Cancelled:
        emit(run.on_event, Log(f"Cancelled; resume with: lesson7-studio train --out {config.out} --resume"))
        raise
