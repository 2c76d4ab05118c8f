"""The resume state of a run (``checkpoints/<name>.state.pt``) and what a resume may change.

The file is a plain dict of tensors and primitives (it loads with ``weights_only=True``); its
keys have stayed the same since format 1. :class:`ResumeState` is its typed form: ``to_dict``
writes exactly those keys, ``from_dict`` reads files written by every version so far (keys
added later default to what older versions meant by their absence).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from ..errors import CheckpointError, TrainingError
from .recipes import StageConfig, TrainConfig
from .rng import set_rng_state
from .run_folder import atomic_torch_save

STATE_FORMAT = 1
RESUME_CHANGEABLE = ("epochs", "max_minutes", "max_steps", "device", "workers", "precision", "valid_batches",
                     "preview_samples", "data", "out")
_REQUIRED = ("stage_index", "stage", "epoch", "batches", "step", "stage_done", "rng")


@dataclass
class ResumeState:
    """Where a run stopped and everything needed to continue it exactly."""

    stage_index: int  # the stage the checkpoint was written in
    stage: str
    epoch: int  # resume at this epoch ...
    batches: int  # ... after this many of its training batches
    step: int  # optimizer steps so far (all stages)
    stage_done: bool
    rng: dict  # see .rng.rng_state
    reason: str = ""  # what wrote it: "epoch", "steps", "cancel", "budget", "early-stop" ...
    segments: dict[str, list[list[int]]] = field(default_factory=dict)  # stage -> [[start, end) epochs]
    stage_status: dict[str, str] = field(default_factory=dict)  # stage -> "done" | "partial"
    opt: Optional[dict] = None  # the optimizer of this stage's learner
    opt_owner: str = ""  # "gen" (restore stages: the generator's optimizer) or the stage kind
    crit_opt: Optional[dict] = None
    scaler: Optional[dict] = None  # fp16 grad scaler
    callbacks: dict[str, dict] = field(default_factory=dict)  # callback class name -> its state_dict
    elapsed: float = 0.0  # seconds trained before this checkpoint, all sessions
    has_critic: bool = False  # a <name>.critic.safetensors sits beside it
    format: int = STATE_FORMAT

    def to_dict(self) -> dict[str, Any]:
        """The dict written to disk (keys and order as every version wrote them)."""
        return {
            "format": self.format,
            "stage_index": int(self.stage_index),
            "stage": self.stage,
            "epoch": int(self.epoch),
            "batches": int(self.batches),
            "step": int(self.step),
            "stage_done": bool(self.stage_done),
            "reason": self.reason,
            "segments": {k: [list(map(int, s)) for s in v] for k, v in self.segments.items()},
            "stage_status": dict(self.stage_status),
            "opt": self.opt,
            "opt_owner": self.opt_owner,
            "crit_opt": self.crit_opt,
            "scaler": self.scaler,
            "callbacks": dict(self.callbacks),
            "rng": self.rng,
            "elapsed": float(self.elapsed),
            "has_critic": bool(self.has_critic),
        }

    @classmethod
    def from_dict(cls, d: Any, path: Path | str = "resume state") -> "ResumeState":
        """CheckpointError naming ``path`` and the field when ``d`` is not a resume state."""
        if not isinstance(d, dict) or d.get("format") != STATE_FORMAT:
            fmt = d.get("format") if isinstance(d, dict) else type(d).__name__
            raise CheckpointError(f"{path} has an unknown format {fmt!r}.")
        missing = [k for k in _REQUIRED if k not in d]
        if missing:
            raise CheckpointError(f"{path} is not a complete resume state: it lacks {', '.join(missing)}.",
                                  hint="Delete that checkpoint (or the run folder) and train again.")
        try:
            return cls(
                stage_index=int(d["stage_index"]), stage=str(d["stage"]), epoch=int(d["epoch"]),
                batches=int(d["batches"]), step=int(d["step"]), stage_done=bool(d["stage_done"]), rng=d["rng"],
                reason=str(d.get("reason") or ""),
                segments={k: [list(s) for s in v] for k, v in (d.get("segments") or {}).items()},
                stage_status=dict(d.get("stage_status") or {}),
                opt=d.get("opt"), opt_owner=str(d.get("opt_owner") or ""), crit_opt=d.get("crit_opt"),
                scaler=d.get("scaler"), callbacks=dict(d.get("callbacks") or {}),
                elapsed=float(d.get("elapsed") or 0.0), has_critic=bool(d.get("has_critic", False)),
            )
        except (TypeError, ValueError, AttributeError) as err:
            raise CheckpointError(f"{path} holds a damaged resume state: {err}",
                                  hint="Delete that checkpoint (or the run folder) and train again.") from None

    @classmethod
    def of_learner(cls, learn: Any, *, stage_index: int, stage: StageConfig, reason: str, stage_done: bool,
                   segments: dict, stage_status: dict, elapsed: float, has_critic: bool) -> "ResumeState":
        """The state of ``learn`` (a Learner or GANLearner) now, at its position."""
        from .rng import rng_state

        epoch, batches = learn.position()
        crit_opt = getattr(learn, "crit_opt", None)
        scaler = learn.precision.scaler
        return cls(
            stage_index=stage_index, stage=stage.name, epoch=epoch, batches=batches, step=learn.step,
            stage_done=stage_done, reason=reason, segments=segments, stage_status=stage_status,
            opt=learn.opt.state_dict() if learn.opt is not None else None,
            opt_owner="gen" if stage.kind == "restore" else stage.kind,
            crit_opt=crit_opt.state_dict() if crit_opt is not None else None,
            scaler=scaler.state_dict() if scaler is not None else None,
            callbacks={type(cb).__name__: cb.state_dict() for cb in learn.cbs}, rng=rng_state(),
            elapsed=elapsed, has_critic=has_critic,
        )

    def save(self, path: Path) -> None:
        atomic_torch_save(self.to_dict(), path)

    @classmethod
    def load(cls, path: Path) -> "ResumeState":
        from ..checkpoint import safe_torch_load

        raw = safe_torch_load(path, "resume state", hint="Delete that checkpoint (or the run folder) and train again.")
        return cls.from_dict(raw, path)

    def apply_to(self, learn: Any) -> None:
        """Put the saved optimizers, grad scaler, callback states and RNG into ``learn`` (a
        Learner of the stage this state was written in, its optimizer created)."""
        if self.opt is not None and learn.opt is not None:
            load_opt_state(learn.opt, self.opt, learn.model)
        if self.crit_opt is not None and getattr(learn, "crit_opt", None) is not None:
            learn.crit_opt.load_state_dict(self.crit_opt)
        if self.scaler is not None and learn.precision.scaler is not None:
            learn.precision.scaler.load_state_dict(self.scaler)
        for cb in learn.cbs:
            if type(cb).__name__ in self.callbacks:
                cb.load_state_dict(self.callbacks[type(cb).__name__])
        set_rng_state(self.rng)

    def where(self) -> str:
        """Where the run continues, in words: "its end", "epoch 2", "epoch 2, batch 4"."""
        if self.stage_done:
            return "its end"
        return f"epoch {self.epoch + 1}" + (f", batch {self.batches + 1}" if self.batches else "")


Position = tuple[int, int, tuple[int, int]]  # (start epoch, batches to skip, schedule segment [start, end))


def stage_position(st: Optional[ResumeState], segments: dict[str, list[list[int]]], status: dict[str, str],
                   i: int, stage: StageConfig, is_last: bool) -> tuple[Optional[Position], str]:
    """Where stage ``i`` starts (None: it is done) and, when a finished last stage is extended by
    more epochs, a line saying so. Updates ``segments`` and ``status`` (the run's)."""
    segs = segments.setdefault(stage.name, [[0, stage.epochs]])
    if st is not None and st.stage_index == i and not st.stage_done:
        if stage.epochs > segs[-1][0]:  # --epochs changed on resume: the current segment follows
            segs[-1][1] = stage.epochs
        if st.epoch >= segs[-1][1]:
            status[stage.name] = "done"
            return None, ""
        return (st.epoch, st.batches, (segs[-1][0], segs[-1][1])), ""
    if status.get(stage.name) == "done":
        done_to = segs[-1][1]
        if is_last and stage.trains and stage.epochs > done_to and st is not None and st.reason != "early-stop":
            segs.append([done_to, stage.epochs])
            return ((done_to, 0, (done_to, stage.epochs)),
                    f"Extending stage '{stage.name}' from {done_to} to {stage.epochs} epochs.")
        return None, ""
    segs[-1] = [0, stage.epochs]
    return (0, 0, (0, stage.epochs)), ""


def load_opt_state(opt: torch.optim.Optimizer, saved: dict, model: nn.Module) -> None:
    """``opt.load_state_dict(saved)``; a state saved when the model had one layer group (unet-lite
    before its three) is regrouped: same parameters, its (decay, no-decay) order mapped to ours."""
    try:
        opt.load_state_dict(saved)
        return
    except ValueError:
        groups = saved.get("param_groups", [])
        if not groups or any(g.get("layer_group", 0) != 0 for g in groups):
            raise
    ours = [p for g in opt.param_groups for p in g["params"]]
    decays = {id(p) for g in opt.param_groups if g["weight_decay"] for p in g["params"]}
    mine = {id(p) for p in ours}
    order = [p for p in model.parameters() if id(p) in mine]  # the one layer group's order
    old = [p for p in order if id(p) in decays] + [p for p in order if id(p) not in decays]
    sizes = [len(g["params"]) for g in groups]
    if sum(sizes) != len(ours) or len(old) != len(ours) or (len(groups) == 2 and sizes[0] != len(decays)):
        raise TrainingError("The saved optimizer state does not fit this model's parameters; "
                            "start the run again rather than resume it.")
    index = {id(p): j for j, p in enumerate(ours)}
    flat = [k for g in groups for k in g["params"]]
    state = {index[id(old[n])]: saved["state"][k] for n, k in enumerate(flat) if k in saved["state"]}
    fresh = opt.state_dict()
    opt.load_state_dict({"state": state, "param_groups": fresh["param_groups"]})


def saved_config(out: str | Path, load: Any, changeable: tuple[str, ...], apply: Any, overrides: dict) -> Any:
    """The config a run folder ``out`` saved (``load(config.json)``), with the ``overrides`` a
    resume may change (names in ``changeable``; None values are ignored) applied by ``apply``.
    Shared by training runs and lesson runs."""
    path = Path(out) / "config.json"
    if not path.exists():
        raise TrainingError(f"Nothing to resume in {out}: no config.json.", hint="Start the run without --resume.")
    cfg = load(path)
    bad = sorted(k for k, v in overrides.items() if v is not None and k not in changeable)
    if bad:
        raise TrainingError(f"A resumed run keeps its settings; cannot change {', '.join(bad)} with --resume.",
                            hint=f"Changeable on resume: {', '.join(changeable)}.")
    cfg = apply(cfg, **{k: v for k, v in overrides.items() if k != "out"})
    cfg.out = str(out)
    return cfg


def as_config(config: Any, cls: Any) -> Any:
    """``config`` as a ``cls`` (a config dataclass with ``load``/``from_dict``): a path to its
    JSON, a dict, or one already; it must name its run folder."""
    if isinstance(config, (str, Path)):
        config = cls.load(config)
    elif isinstance(config, dict):
        config = cls.from_dict(config)
    if not config.out:
        raise TrainingError("No run folder given: pass --out RUN.")
    return config


def resume_config(out: str | Path, **overrides: Any) -> TrainConfig:
    """The saved config of run ``out`` with the overrides a resume may change."""
    from .recipes import apply_overrides

    return saved_config(out, TrainConfig.load, RESUME_CHANGEABLE, apply_overrides, overrides)
