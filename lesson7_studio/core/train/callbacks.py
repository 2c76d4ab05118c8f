"""Small callbacks for the :class:`~.learner.Learner` loop.

Recorder (smoothed loss, validation metrics, events), checkpoint trigger, fixed-sample
previews, early stopping and a time/step budget. Side effects that write files go through
functions handed in by :mod:`.run`, so the callbacks stay testable without a run folder.
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import Callable, ContextManager, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..images import atomic_write
from ..events import BatchEnd, CheckpointSaved, EpochEnd, Log, SampleImages
from .. import metrics as _metrics
from ..runs import GRID_BG, GRID_PAD, PAIR_COLUMNS, grid_layout, write_grid_layout
from . import distributed as dist_
from .learner import Callback, CancelFitException


class SmoothLoss:
    """fastai's AvgSmoothLoss: EMA with ``beta`` and debiasing."""

    def __init__(self, beta: float = 0.98) -> None:
        self.beta = beta
        self.count = 0
        self.val = 0.0

    def reset(self) -> None:
        self.count, self.val = 0, 0.0

    def add(self, v: float) -> float:
        self.count += 1
        self.val = self.beta * self.val + (1 - self.beta) * float(v)
        return self.value

    @property
    def value(self) -> float:
        if self.count == 0:
            return float("nan")
        return self.val / (1 - self.beta**self.count)

    def state_dict(self) -> dict:
        return {"count": self.count, "val": self.val}

    def load_state_dict(self, s: dict) -> None:
        self.count, self.val = int(s["count"]), float(s["val"])


class Recorder(Callback):
    """Smoothed train loss, validation loss / PSNR / SSIM / loss components; BatchEnd & EpochEnd.

    ``image_metrics`` computes PSNR and SSIM on the clamped predictions when they have the
    target's shape, with :mod:`..metrics` in the evaluation convention (Y channel, a border of
    the scale cropped: the numbers ``lesson7-studio eval`` reports). ``on_row(row)`` receives the per-epoch row for metrics.csv (rank 0 only).
    Other callbacks can add numbers to the epoch row through an ``epoch_metrics()`` method.
    """

    order = 50

    def __init__(self, *, image_metrics: bool = True, on_row: Callable[[dict], None] | None = None,
                 beta: float = 0.98, batch_event_every: int = 1,
                 metrics: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] | None = None) -> None:
        self.image_metrics = image_metrics
        self.metrics = dict(metrics or {})  # name -> fn(pred, target), averaged over validation
        self.on_row = on_row
        self.smooth = SmoothLoss(beta)
        self.batch_event_every = max(1, int(batch_event_every))
        self.history: list[dict] = []
        self.losses: list[float] = []  # smoothed train loss per step (this session)
        self.lrs: list[float] = []
        self._t0 = 0.0
        self._sums: dict[str, torch.Tensor] = {}
        self._count = 0

    def state_dict(self) -> dict:
        return {"smooth": self.smooth.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if "smooth" in state:
            self.smooth.load_state_dict(state["smooth"])

    def before_epoch(self) -> None:
        self._t0 = time.perf_counter()

    def after_batch(self) -> None:
        learn = self.learn
        if learn.training:
            loss = float(learn.loss)
            sm = self.smooth.add(loss)
            self.losses.append(sm)
            self.lrs.append(learn.lr)
            if learn.iter % self.batch_event_every == 0 or learn.iter + 1 == learn.n_iter:
                learn.emit(BatchEnd(stage=learn.stage, epoch=learn.epoch, step=learn.step, iteration=learn.iter,
                                    n_iter=learn.n_iter, loss=loss, smooth_loss=sm, lr=learn.lr))
            return
        # validation batch
        n = learn.yb.shape[0] if isinstance(learn.yb, torch.Tensor) else 1
        vals = {"valid_loss": learn.loss.float() * n}
        comps = getattr(learn.loss_func, "components", None) or {}
        for k, v in comps.items():
            vals[k] = v.float() * n
        pred, yb = learn.pred, learn.yb
        if (self.image_metrics and isinstance(pred, torch.Tensor) and isinstance(yb, torch.Tensor)
                and pred.shape == yb.shape and pred.ndim == 4):
            p = pred.float().clamp(0, 1)
            xb = learn.xb  # the evaluation convention: Y channel, the scale's border cropped
            scale = round(yb.shape[-1] / xb.shape[-1]) if isinstance(xb, torch.Tensor) and xb.ndim == 4 else 1
            for k, v in _metrics.batch_sums(p, yb.float(), scale).items():
                vals[k] = torch.tensor(v, device=p.device)
        for name, fn in self.metrics.items():
            vals[name] = fn(pred, yb).float() * n
        for k, v in vals.items():
            self._sums[k] = self._sums.get(k, torch.zeros((), device=v.device)) + v.detach()
        self._count += n

    def before_validate(self) -> None:
        self._sums, self._count = {}, 0

    def after_validate(self) -> None:
        pass

    def take_valid_metrics(self) -> dict[str, float]:
        """The figures of the validation pass just run (``Learner.validate_only``), as floats."""
        return {k: float(v) for k, v in self._valid_metrics().items()}

    def _valid_metrics(self) -> dict[str, float]:
        # every rank takes part (one with an empty validation shard too): sums over exactly the
        # validation items, each counted once, as a single process would count them
        if not self._sums and not dist_.current().enabled:
            return {}
        sums, count = dist_.reduce_sums(self._sums, self._count)
        self._sums, self._count = {}, 0
        if not sums:
            return {}
        return {k: sums[k] / (count or 1.0) for k in sorted(sums)}

    def after_epoch(self) -> None:
        learn = self.learn
        metrics: dict[str, float] = {"train_loss": self.smooth.value}
        metrics.update(self._valid_metrics())
        for cb in learn.cbs:
            extra = getattr(cb, "epoch_metrics", None)
            if extra is not None:
                metrics.update(extra())
        # a figure that was not computed (no batch of that kind yet) is left out, never NaN
        metrics = {k: float(v) for k, v in metrics.items() if not math.isnan(float(v))}
        seconds = time.perf_counter() - self._t0
        row = {"stage": learn.stage, "epoch": learn.epoch, "step": learn.step, **metrics,
               "lr": learn.lr, "seconds": round(seconds, 3)}
        self.history.append(row)
        learn.last_metrics = metrics
        if self.on_row is not None:
            self.on_row(row)
        learn.emit(EpochEnd(stage=learn.stage, epoch=learn.epoch, n_epochs=learn.n_epoch, step=learn.step,
                            metrics=dict(metrics), seconds=seconds))


class CheckpointCallback(Callback):
    """Asks ``saver(reason) -> Path | None`` for a checkpoint every ``every_steps`` optimizer
    steps, after every epoch, when ``monitor`` improves ("best"), on cancel and on a budget stop.
    """

    order = 90

    def __init__(self, saver: Callable[[str], Optional[Path]], *, every_steps: int = 0, every_epochs: int = 1,
                 monitor: str = "valid_loss", mode: str = "min") -> None:
        self.saver = saver
        self.every_steps = int(every_steps or 0)
        self.every_epochs = int(every_epochs or 0)
        self.monitor = monitor
        self.mode = mode
        self.best: float | None = None

    def state_dict(self) -> dict:
        return {"best": self.best}

    def load_state_dict(self, state: dict) -> None:
        self.best = state.get("best")

    def _save(self, reason: str) -> None:
        path = self.saver(reason)
        if path is not None:
            self.learn.emit(CheckpointSaved(path=Path(path), reason=reason))

    def after_batch(self) -> None:
        learn = self.learn
        if learn.training and self.every_steps and learn.step % self.every_steps == 0 and learn.iter + 1 < learn.n_iter:
            self._save("step")

    def after_epoch(self) -> None:
        learn = self.learn
        value = getattr(learn, "last_metrics", {}).get(self.monitor)
        improved = False
        if value is not None and not math.isnan(value):
            if self.best is None or (value < self.best if self.mode == "min" else value > self.best):
                self.best = float(value)
                improved = True
        if self.every_epochs and ((learn.epoch + 1) % self.every_epochs == 0 or learn.epoch + 1 == learn.n_epoch):
            self._save("epoch")
        if improved:
            self._save("best")

    def after_cancel_fit(self) -> None:
        # early stop / budget: the fit ends now; remember where
        self._save(self.learn.fit_stop_reason or "stop")

    def after_interrupt(self) -> None:
        self._save("cancel")


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """(3,H,W) float [0,1] -> HxWx3 uint8."""
    a = img.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)
    return a.permute(1, 2, 0).cpu().numpy()


def grid_image(rows: Sequence[Sequence[np.ndarray]], pad: int = GRID_PAD, bg: int = GRID_BG) -> np.ndarray:
    """Rows of HxWx3 uint8 images -> one uint8 grid (cells padded to the largest image), laid
    out as :func:`~lesson7_studio.core.runs.grid_layout` describes it."""
    layout = grid_layout([[im.shape[:2] for im in r] for r in rows], pad)
    out = np.full((layout.height, layout.width, 3), bg, np.uint8)
    for r, boxes in zip(rows, layout.boxes):
        for im, (x, y, w, h) in zip(r, boxes):
            out[y : y + h, x : x + w] = im
    return out


def save_grid(rows: Sequence[Sequence[np.ndarray]], path: Path, *, pad: int = GRID_PAD,
              columns: Sequence[str] = PAIR_COLUMNS, kind: str = "pairs", caption: str | None = None) -> Path:
    """Write the sample grid of ``rows`` as PNG and its layout (cell boxes, column names, caption)
    as JSON beside it, both atomically; readers use :func:`lesson7_studio.core.runs.sample_cells`."""
    layout = grid_layout([[im.shape[:2] for im in r] for r in rows], pad, columns=columns, kind=kind,
                         caption=" | ".join(columns) if caption is None else caption)
    path = save_png(grid_image(rows, pad), path)
    write_grid_layout(path, layout)
    return path


def save_png(arr: np.ndarray, path: Path) -> Path:
    """Write a uint8 array as PNG atomically (temp file in the same folder, then rename)."""
    from PIL import Image

    path = Path(path)
    with atomic_write(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")
    return path


class PreviewCallback(Callback):
    """After each epoch: the model on fixed validation samples -> SampleImages (+ PNG grid).

    ``samples`` is a list of (input, target) tensors (3,h,w)/(3,H,W). ``folder`` (rank 0 only)
    receives ``<stage>_epoch<NNN>.png``. ``critic`` (optional, GAN stages) adds the critic's
    per-row patch maps.
    """

    order = 60

    def __init__(self, samples: Sequence[tuple[torch.Tensor, torch.Tensor]], folder: Path | None = None,
                 critic: Callable[[], Optional[torch.nn.Module]] | None = None,
                 weights: Callable[[], ContextManager] | None = None) -> None:
        self.samples = list(samples)
        self.folder = Path(folder) if folder is not None else None
        self.critic = critic
        self.weights = weights  # a ``with`` block around the predictions (a run's EMA weights)

    @torch.no_grad()
    def after_epoch(self) -> None:
        if not self.samples:
            return
        learn = self.learn
        xs = torch.stack([s[0] for s in self.samples])
        ys = torch.stack([s[1] for s in self.samples])
        with self.weights() if self.weights is not None else contextlib.nullcontext():
            preds = learn.predict(xs).clamp(0, 1).cpu()
        rows = []
        for x, p, y in zip(xs, preds, ys):
            if x.shape[-2:] != y.shape[-2:]:
                x = F.interpolate(x[None], size=y.shape[-2:], mode="nearest")[0]
            rows.append((to_uint8(x), to_uint8(p), to_uint8(y)))
        scores = None
        critic = self.critic() if self.critic is not None else None
        if critic is not None:
            was = critic.training
            critic.eval()
            dev = next(critic.parameters()).device
            with learn.precision.autocast():
                out = critic(preds.to(dev))
            critic.train(was)
            scores = [o.float().sigmoid().cpu().numpy() for o in out]
        path = None
        if self.folder is not None:
            path = save_grid(rows, self.folder / f"{learn.stage}_epoch{learn.epoch:03d}.png")
        learn.emit(SampleImages(stage=learn.stage, epoch=learn.epoch, rows=rows, path=path, critic_scores=scores))


class EarlyStopping(Callback):
    """End the fit when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs."""

    order = 80

    def __init__(self, monitor: str = "valid_loss", patience: int = 3, min_delta: float = 0.0, mode: str = "min") -> None:
        self.monitor, self.patience, self.min_delta, self.mode = monitor, int(patience), float(min_delta), mode
        self.best: float | None = None
        self.wait = 0

    def state_dict(self) -> dict:
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.wait = state.get("best"), int(state.get("wait", 0))

    def after_epoch(self) -> None:
        value = getattr(self.learn, "last_metrics", {}).get(self.monitor)
        if value is None or math.isnan(value):
            return
        better = (self.best is None or (value < self.best - self.min_delta if self.mode == "min"
                                        else value > self.best + self.min_delta))
        if better:
            self.best, self.wait = float(value), 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.learn.emit(Log(f"Early stop: {self.monitor} has not improved for {self.wait} epochs."))
            raise CancelFitException("early-stop")


class BudgetCallback(Callback):
    """Stop the fit (resumably) after ``max_seconds`` of this session or at global step ``max_steps``.

    A budget that runs out on an epoch's last batch lets the epoch end first (validation, its
    metrics row, previews, checkpoint), and one that runs out on the fit's very last batch stops
    nothing: the stage simply ends, so ``--max-steps`` equal to the run's total finishes the run.
    Under DDP the decision is taken on rank 0 and shared, so every rank stops on the same batch.
    """

    order = 85

    def __init__(self, *, max_seconds: float | None = None, max_steps: int | None = None,
                 started: float | None = None, step_offset: Callable[[], int] | None = None) -> None:
        self.max_seconds = max_seconds
        self.max_steps = max_steps
        self.started = started if started is not None else time.perf_counter()
        self.step_offset = step_offset
        self._stop_after_epoch = False

    def before_fit(self) -> None:
        self._stop_after_epoch = False

    def _spent(self) -> bool:
        learn = self.learn
        stop = False
        if self.max_seconds is not None and time.perf_counter() - self.started >= self.max_seconds:
            stop = True
        total = learn.step + (self.step_offset() if self.step_offset else 0)
        if self.max_steps is not None and total >= self.max_steps:
            stop = True
        if dist_.current().enabled and self.max_seconds is not None:
            flag = dist_.all_reduce_sum(torch.tensor([1.0 if stop and dist_.current().is_main else 0.0]))
            stop = bool(flag.item() > 0) or (self.max_steps is not None and total >= self.max_steps)
        return stop

    def after_batch(self) -> None:
        learn = self.learn
        if not learn.training or self._stop_after_epoch:
            return
        if not self._spent():
            return
        if learn.iter + 1 >= learn.n_iter:  # the epoch's last batch: end the epoch first
            self._stop_after_epoch = True
            return
        learn.emit(Log("Training budget reached; stopping after this batch (resumable)."))
        raise CancelFitException("budget")

    def after_epoch(self) -> None:
        if not self._stop_after_epoch:
            return
        self._stop_after_epoch = False
        if self.learn.epoch + 1 >= self.learn.n_epoch:  # the fit ends here anyway: nothing to stop
            return
        self.learn.emit(Log("Training budget reached at the end of an epoch; stopping (resumable)."))
        raise CancelFitException("budget")
