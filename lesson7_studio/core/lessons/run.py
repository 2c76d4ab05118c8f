"""Training a lesson model into a run folder, resumable, with the Learner and its callbacks.

The run folder is laid out as for the restorers (see :mod:`..train.run`)::

    config.json        the LessonConfig ("kind": "lesson")
    metrics.csv        one row per epoch: train_loss, valid_loss, accuracy, lr, seconds
    checkpoints/       <arch>-s<step>.safetensors + .state.pt (optimizer, position, RNG), last.json,
                       best.safetensors (highest validation accuracy)
    model.safetensors  the final model; its metadata holds what prediction needs: the classes
                       and normalisation, or the vocabulary and bptt, and the training summary
    interpretation.npz classifiers: confusion matrix and top losses on the validation set

``train_lesson(cfg, resume=True)`` continues from ``checkpoints/last.json`` (mid-epoch too: the
batches of an epoch are a function of the seed and the epoch); a finished run resumed with a
larger ``epochs`` trains on with a new one-cycle schedule over the extra epochs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn.functional as F

from ..errors import Cancelled, CheckpointError, TrainingError
from ..events import CancelToken, EventCallback, Finished, Log, StageStart, emit
from ..train.callbacks import BudgetCallback, CheckpointCallback, Recorder
from ..train.learner import Callback, Learner
from ..train.resume import as_config, saved_config
from ..train.run import RunFolder, atomic_bytes, atomic_torch_save, rng_state, seed_everything, set_rng_state
from .recipes import RESUME_CHANGEABLE, LessonConfig, apply_overrides

STATE_FORMAT = 1


@dataclass
class LessonResult:
    out: Path
    model_path: Optional[Path]
    finished: bool
    stopped: str = ""  # "" | "budget"
    steps: int = 0
    epochs_done: int = 0
    metrics: dict = field(default_factory=dict)
    seconds: float = 0.0


# ---------------------------------------------------------------------------------------------
# loss and metric shared by every lesson model


def lesson_loss(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy; a single prediction per sequence (Model0/1) is scored on the last target."""
    if pred.dim() == 2 and y.dim() == 2:
        y = y[:, -1]
    return F.cross_entropy(pred.reshape(-1, pred.shape[-1]), y.reshape(-1))


def lesson_accuracy(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if pred.dim() == 2 and y.dim() == 2:
        y = y[:, -1]
    return (pred.argmax(dim=-1) == y).float().mean()


class ResetState(Callback):
    """Stateful RNNs start every training and validation pass from a zero hidden state."""

    order = -10

    def _reset(self) -> None:
        reset = getattr(self.learn.model, "reset", None)
        if reset is not None:
            reset()

    before_train = _reset
    before_validate = _reset


# ---------------------------------------------------------------------------------------------
# data


@dataclass
class LessonData:
    train: Any
    valid: Any
    options: dict  # model options the data decides (classes, channels, vocabulary)
    info: dict  # stored in the checkpoint: what prediction needs
    valid_set: Any = None  # classifiers: the validation ImageSet (interpretation)


def prepare_data(cfg: LessonConfig, on_event: Optional[EventCallback] = None,
                 cancel: Optional[CancelToken] = None) -> LessonData:
    if cfg.lesson == "human-numbers":
        from .numbers import StreamBatches, human_numbers, read_text_files

        hn = read_text_files(cfg.data) if cfg.data else human_numbers()
        emit(on_event, Log(f"Human numbers: {len(hn.train):,} training and {len(hn.valid):,} validation tokens, "
                           f"vocabulary {len(hn.vocab)}."))
        tdl = StreamBatches(hn.train, cfg.batch_size, cfg.bptt, limit=cfg.steps_per_epoch)
        vdl = StreamBatches(hn.valid, cfg.batch_size, cfg.bptt, limit=cfg.valid_batches)
        info = {"vocab": list(hn.vocab.itos), "bptt": cfg.bptt}
        return LessonData(tdl, vdl, {"n_vocab": len(hn.vocab)}, info)
    from .images import ImageBatches, image_stats, load_folder, load_mnist

    if cfg.data in (None, "", "mnist"):
        train, valid = load_mnist(on_event=on_event, cancel=cancel)
        if cfg.channels != 1:
            raise TrainingError("MNIST is grey: train it with channels 1.")
    else:
        train, valid = load_folder(cfg.data, size=cfg.size, channels=cfg.channels, valid_pct=cfg.valid_pct,
                                   seed=cfg.seed, on_event=on_event, cancel=cancel)
    if len(train) < cfg.batch_size:
        raise TrainingError(f"{len(train)} training images is fewer than one batch of {cfg.batch_size}.",
                            hint="Lower the batch size or add images.")
    if int(train.x.shape[-1]) != 28 or int(train.x.shape[-2]) != 28:
        raise TrainingError(f"The lesson's nets take 28x28 images; these are {tuple(train.x.shape[-2:])}.",
                            hint="Train with size 28.")
    mean, std = image_stats(train.x)
    emit(on_event, Log(f"{len(train):,} training and {len(valid):,} validation images, "
                       f"{len(train.classes)} classes; mean {mean[0]:.3f}, std {std[0]:.3f}."))
    tdl = ImageBatches(train, cfg.batch_size, mean=mean, std=std, shuffle=True, seed=cfg.seed, pad=cfg.augment_pad,
                       drop_last=True, limit=cfg.steps_per_epoch)
    vdl = ImageBatches(valid, cfg.batch_size, mean=mean, std=std, shuffle=False, limit=cfg.valid_batches)
    info = {"classes": list(train.classes), "mean": mean, "std": std, "size": cfg.size, "channels": cfg.channels}
    return LessonData(tdl, vdl, {"n_in": cfg.channels, "n_classes": len(train.classes)}, info, valid)


# ---------------------------------------------------------------------------------------------
# the run


class _LessonRun:
    def __init__(self, cfg: LessonConfig, on_event, cancel, resume: bool) -> None:
        self.cfg, self.on_event, self.cancel, self.resume = cfg, on_event, cancel, resume
        self.folder = RunFolder(Path(cfg.out))
        self.t_start = time.perf_counter()
        self.elapsed_before = 0.0
        self.segment = [0, cfg.epochs]
        self.state: dict | None = None
        self.last_metrics: dict = {}

    def emit(self, ev) -> None:
        emit(self.on_event, ev)

    # -- checkpoints ---------------------------------------------------------------------------
    def _info(self, extra: dict | None = None) -> dict:
        info = {"lesson": self.cfg.lesson, "recipe": self.cfg.lesson, **self.data.info,
                "training": {"config": self.cfg.to_dict(), "metrics": self.last_metrics}}
        info.update(extra or {})
        return info

    def _save_net(self, path: Path, extra: dict | None = None) -> Path:
        from .. import checkpoint

        return checkpoint.save_model(path, self.net, self.cfg.arch, self.options, info=self._info(extra))

    def save(self, reason: str) -> Optional[Path]:
        learn = self.learn
        ck = self.folder.ckpt
        if reason == "best":
            return self._save_net(ck / "best.safetensors", {"best": True})
        epoch, batches = learn.position()
        name = f"{self.cfg.arch}-s{learn.step:07d}"
        self._save_net(ck / f"{name}.safetensors")
        state = {
            "format": STATE_FORMAT, "epoch": int(epoch), "batches": int(batches), "step": int(learn.step),
            "segment": [int(v) for v in self.segment], "reason": reason,
            "done": bool(epoch >= self.segment[1] and batches == 0),
            "opt": learn.opt.state_dict() if learn.opt is not None else None,
            "callbacks": {type(cb).__name__: cb.state_dict() for cb in learn.cbs},
            "rng": rng_state(),
            "elapsed": float(self.elapsed_before + time.perf_counter() - self.t_start),
        }
        atomic_torch_save(state, ck / f"{name}.state.pt")
        atomic_bytes(ck / "last.json", json.dumps({"name": name, "step": int(learn.step)}).encode("utf-8"))
        names = sorted({p.name.split(".")[0] for p in ck.glob("*-s*.state.pt")}, key=lambda n: int(n.rsplit("-s", 1)[1]))
        for old in names[:-max(1, int(self.cfg.keep_checkpoints))]:
            if old != name:
                for p in ck.glob(f"{old}.*"):
                    p.unlink(missing_ok=True)
        return ck / f"{name}.safetensors"

    def load_last(self) -> None:
        from safetensors.torch import load_file

        last = self.folder.ckpt / "last.json"
        try:
            name = json.loads(last.read_text())["name"]
        except (OSError, ValueError, KeyError) as err:
            raise CheckpointError(f"{last} is damaged or missing: {err}") from None
        state_path = self.folder.ckpt / f"{name}.state.pt"
        try:
            self.state = torch.load(state_path, map_location="cpu", weights_only=True)
            sd = load_file(str(self.folder.ckpt / f"{name}.safetensors"), device="cpu")
        except Exception as err:
            raise CheckpointError(f"Cannot read the resume state {state_path}: {err}") from None
        if self.state.get("format") != STATE_FORMAT:
            raise CheckpointError(f"{state_path} has an unknown format {self.state.get('format')}.")
        self.net.load_state_dict(sd)
        self.elapsed_before = float(self.state.get("elapsed", 0.0))

    # -- main ----------------------------------------------------------------------------------
    def run(self) -> LessonResult:
        from .. import models

        cfg = self.cfg
        cfg.validate()
        holds = self.folder.holds_run()
        if self.resume and not holds:
            raise TrainingError(f"Nothing to resume in {self.folder.root}: it holds no run.",
                                hint="Start the run without --resume.")
        if not self.resume and holds:
            raise TrainingError(f"{self.folder.root} already holds a training run.",
                                hint="Continue it with --resume, or choose another --out folder.")
        self.data = prepare_data(cfg, self.on_event, self.cancel)
        seed_everything(cfg.seed)
        self.options = models.resolve_options(cfg.arch, **{**cfg.arch_options, **self.data.options})
        self.net = models.create(cfg.arch, **self.options)
        learn = Learner(self.net, self.data.train, self.data.valid, lesson_loss, device=cfg.device,
                        precision=cfg.precision, channels_last=False, wd=cfg.wd, cancel=self.cancel,
                        on_event=self.on_event, stage=cfg.arch)
        self.learn = learn
        learn.add_cb(ResetState())
        learn.add_cb(Recorder(image_metrics=False, metrics={"accuracy": lesson_accuracy}, on_row=self._on_row))
        learn.add_cb(CheckpointCallback(self.save, monitor="accuracy", mode="max"))
        if cfg.max_minutes:
            learn.add_cb(BudgetCallback(max_seconds=cfg.max_minutes * 60, started=self.t_start))
        learn.create_opt()
        start_epoch, skip = 0, 0
        self.folder.ckpt.mkdir(parents=True, exist_ok=True)
        if self.resume and (self.folder.ckpt / "last.json").exists():
            start_epoch, skip = self._restore(learn)
        elif self.resume:
            self.folder.load_rows()
        atomic_bytes(self.folder.config_path, cfg.to_json().encode("utf-8"))
        self.emit(StageStart(name=cfg.arch, index=0, total=1, epochs=cfg.epochs))
        stopped = ""
        try:
            learn.fit(self.segment[1], cfg.lr, one_cycle=True, div=cfg.div, div_final=cfg.div_final,
                      pct_start=cfg.pct_start, start_epoch=start_epoch, skip_batches=skip,
                      segment_start=self.segment[0])
        except Cancelled:
            self.emit(Log(f"Cancelled; resume with: lesson7-studio lesson train --resume --out {cfg.out}"))
            raise
        if learn.fit_stop_reason == "budget":
            stopped = "budget"
        elif learn.position() != (self.segment[1], 0) or not (self.folder.ckpt / "last.json").exists():
            self.save("epoch")
        epochs_done = learn.position()[0]
        summary = {"lesson": cfg.lesson, "arch": cfg.arch, "steps": learn.step, "epochs": epochs_done,
                   "stopped": stopped, "metrics": self.last_metrics,
                   "seconds": round(self.elapsed_before + time.perf_counter() - self.t_start, 1)}
        model_path = self._save_net(self.folder.model_path, {"summary": summary})
        if self.data.valid_set is not None and not stopped:
            from .interpret import save_interpretation

            save_interpretation(self.folder.root, self.net, self.data, device=learn.device)
        result = LessonResult(out=self.folder.root, model_path=model_path, finished=not stopped, stopped=stopped,
                              steps=learn.step, epochs_done=epochs_done, metrics=dict(self.last_metrics),
                              seconds=time.perf_counter() - self.t_start)
        self.emit(Finished(summary={"out": str(self.folder.root), "model": str(model_path), "finished": not stopped,
                                    "stopped": stopped, "steps": learn.step, "metrics": dict(self.last_metrics)}))
        return result

    def _restore(self, learn: Learner) -> tuple[int, int]:
        self.load_last()
        st = self.state
        self.folder.load_rows()
        self.folder.rows = [r for r in self.folder.rows if int(float(r.get("epoch", 0))) < st["epoch"]]
        self.folder.write_rows()
        if self.folder.rows:
            self.last_metrics = {k: float(v) for k, v in self.folder.rows[-1].items()
                                 if k not in ("stage", "epoch", "step") and _is_number(v)}
        seg = list(st["segment"])
        if st["done"] or st["epoch"] >= seg[1]:
            if self.cfg.epochs <= seg[1]:
                raise TrainingError(f"{self.folder.root} has finished its {seg[1]} epochs.",
                                    hint="Resume with a larger --epochs to train on.")
            self.segment = [seg[1], self.cfg.epochs]
            self.emit(Log(f"Extending the run from {seg[1]} to {self.cfg.epochs} epochs (a new one-cycle schedule)."))
            start, skip = seg[1], 0
        else:
            self.segment = [seg[0], self.cfg.epochs if self.cfg.epochs > st["epoch"] else seg[1]]
            start, skip = st["epoch"], st["batches"]
            where = f"epoch {start + 1}" + (f", batch {skip + 1}" if skip else "")
            self.emit(Log(f"Resuming {self.folder.root} at {where} (step {st['step']})."))
        if st.get("opt") is not None:
            learn.opt.load_state_dict(st["opt"])
        for cb in learn.cbs:
            if type(cb).__name__ in st.get("callbacks", {}):
                cb.load_state_dict(st["callbacks"][type(cb).__name__])
        learn.step = int(st["step"])
        set_rng_state(st["rng"])
        return start, skip

    def _on_row(self, row: dict) -> None:
        self.folder.add_row(row)
        self.last_metrics = {k: v for k, v in row.items() if k not in ("stage", "epoch", "step")}


def _is_number(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def train_lesson(config: LessonConfig | dict | str | Path, *, on_event: Optional[EventCallback] = None,
                 cancel: Optional[CancelToken] = None, resume: bool = False) -> LessonResult:
    """Train (or with ``resume=True`` continue) a lesson model; see the module doc.

    Raises TrainingError / DatasetError before anything is written when the run cannot start,
    and Cancelled after writing a resumable checkpoint when ``cancel`` is set.
    """
    config = as_config(config, LessonConfig)
    before = torch.get_num_threads()
    # One intra-op thread by default: on a 2-core CPU under load, two made an epoch of the GRU
    # 8-15x slower (22.6 s against 1.5 s): with ops this small the threads mostly wait.
    torch.set_num_threads(max(1, int(config.threads or 1)))
    try:
        return _LessonRun(config, on_event, cancel, resume).run()
    finally:
        torch.set_num_threads(before)


def resume_lesson_config(out: str | Path, **overrides: Any) -> LessonConfig:
    """The saved config of lesson run ``out`` with the settings a resume may change."""
    return saved_config(out, LessonConfig.load, RESUME_CHANGEABLE, apply_overrides, overrides)
