"""Learning-rate finder (fastai's ``lr_find``): an exponential sweep with smoothed loss.

The learning rate grows from ``start_lr`` to ``end_lr`` over ``num_it`` batches; the loss is
smoothed (EMA 0.98, debiased) and the sweep stops early once it exceeds 4x its minimum. The
model and optimizer are put back as they were afterwards. Suggestions: ``valley`` (fastai's
default: the middle of the longest descending stretch) and ``steep`` (steepest slope).
The curve can be drawn to a PNG with Pillow.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import TrainingError
from ..events import CancelToken, EventCallback, LRFindPoint, Log, Progress, emit, format_lr
from .callbacks import SmoothLoss, save_png
from .learner import Callback, CancelFitException, CancelValidException, Learner
from .schedule import sched_exp


@dataclass
class LRFindResult:
    lrs: list[float]
    losses: list[float]  # smoothed
    suggestion: float  # = valley
    valley: float
    steep: float
    plot: Optional[Path] = None
    extras: dict = field(default_factory=dict)
    # how ``suggestion`` was picked, in words a front end can show next to it
    rule: str = "valley: halfway along the longest stretch where the smoothed loss keeps falling (fastai's default)"


class LRFinder(Callback):
    order = 55

    def __init__(self, start_lr: float = 1e-7, end_lr: float = 10.0, num_it: int = 100, stop_div: bool = True) -> None:
        self.start_lr, self.end_lr = start_lr, end_lr
        self.num_it = max(6, int(num_it))
        self.stop_div = stop_div
        self.smooth = SmoothLoss(0.98)
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.best = math.inf
        self.n = 0

    def before_batch(self) -> None:
        if not self.learn.training:
            return
        lr = sched_exp(self.start_lr, self.end_lr, self.n / self.num_it)
        for pg in self.learn.opt.param_groups:
            pg["lr"] = lr
        self._lr = lr

    def after_batch(self) -> None:
        if not self.learn.training:
            return
        loss = float(self.learn.loss)
        self.n += 1
        sm = self.smooth.add(loss)
        if math.isnan(sm) or math.isinf(sm):
            raise CancelFitException("diverged")
        self.lrs.append(self._lr)
        self.losses.append(sm)
        self.learn.emit(LRFindPoint(lr=self._lr, loss=sm, done=self.n, total=self.num_it))
        self.learn.emit(Progress(done=self.n, total=self.num_it, message=f"lr {format_lr(self._lr)} loss {sm:.4f}",
                                 stage="lr-find"))
        self.best = min(self.best, sm)
        if self.stop_div and sm > 4 * self.best:
            raise CancelFitException("diverged")
        if self.n >= self.num_it:
            raise CancelFitException("done")

    def before_validate(self) -> None:
        raise CancelValidException()


def valley(lrs: list[float], losses: list[float]) -> float:
    """fastai's valley: longest decreasing run (LIS-style), 1/3 + 1/6 of the way along it."""
    n = len(losses)
    if n == 0:
        raise TrainingError("The learning-rate sweep recorded no losses.")
    max_start, max_end = 0, 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(0, i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return float(lrs[min(idx, n - 1)])


def steep(lrs: list[float], losses: list[float]) -> float:
    """Learning rate at the steepest descent of loss against log(lr)."""
    if len(losses) < 2:
        return float(lrs[0])
    l = np.asarray(losses, dtype=np.float64)
    r = np.log(np.asarray(lrs, dtype=np.float64))
    grads = (l[1:] - l[:-1]) / (r[1:] - r[:-1])
    return float(lrs[int(np.argmin(grads))])


def find_lr(learn: Learner, *, start_lr: float = 1e-7, end_lr: float = 10.0, num_it: int = 100,
            stop_div: bool = True) -> LRFindResult:
    """Sweep on ``learn`` (its model and optimizer are restored afterwards)."""
    if learn.opt is None:
        learn.create_opt()
    model_state = copy.deepcopy(learn.model.state_dict())
    opt_state = copy.deepcopy(learn.opt.state_dict())
    cb = learn.add_cb(LRFinder(start_lr, end_lr, num_it, stop_div))
    try:
        n_iter = max(1, len(learn.train_dl))  # type: ignore[arg-type]
        n_epoch = cb.num_it // n_iter + 1
        learn.fit(n_epoch, start_lr)
    finally:
        learn.remove_cb(cb)
        learn.model.load_state_dict(model_state)
        learn.opt.load_state_dict(opt_state)
    lrs, losses = cb.lrs, cb.losses
    if not lrs:
        raise TrainingError("The learning-rate sweep recorded no losses.")
    lo, hi = cb.num_it // 10, len(lrs) - 5
    sl_lrs, sl_losses = (lrs[lo:hi], losses[lo:hi]) if hi - lo >= 2 else (lrs, losses)
    v = valley(sl_lrs, sl_losses)
    s = steep(sl_lrs, sl_losses)
    return LRFindResult(lrs=list(lrs), losses=list(losses), suggestion=v, valley=v, steep=s)


def plot_curve(result: LRFindResult, path: str | Path, size: tuple[int, int] = (640, 420), skip_end: int = 5) -> Path:
    """Draw loss against log10(lr) with the suggestions marked; write a PNG atomically."""
    from PIL import Image, ImageDraw

    w, h = size
    ml, mr, mt, mb = 64, 20, 24, 48
    img = Image.new("RGB", (w, h), (255, 255, 255))
    d = ImageDraw.Draw(img)
    lrs = result.lrs[:-skip_end] if len(result.lrs) > skip_end + 2 else result.lrs
    losses = result.losses[: len(lrs)]
    x = np.log10(np.asarray(lrs, dtype=np.float64))
    y = np.asarray(losses, dtype=np.float64)
    x0, x1 = float(x.min()), float(x.max()) if x.max() > x.min() else float(x.min()) + 1
    y0, y1 = float(np.nanmin(y)), float(np.nanmax(y))
    if not y1 > y0:
        y1 = y0 + 1e-6
    pad = (y1 - y0) * 0.05
    y0, y1 = y0 - pad, y1 + pad

    def px(xv: float, yv: float) -> tuple[float, float]:
        return (ml + (xv - x0) / (x1 - x0) * (w - ml - mr), mt + (y1 - yv) / (y1 - y0) * (h - mt - mb))

    d.rectangle([ml, mt, w - mr, h - mb], outline=(0, 0, 0))
    for e in range(math.ceil(x0), math.floor(x1) + 1):
        gx, _ = px(e, y0)
        d.line([gx, mt, gx, h - mb], fill=(225, 225, 225))
        d.text((gx - 14, h - mb + 6), f"1e{e}", fill=(0, 0, 0))
    for k in range(5):
        yv = y0 + (y1 - y0) * k / 4
        _, gy = px(x0, yv)
        d.line([ml, gy, w - mr, gy], fill=(235, 235, 235))
        d.text((4, gy - 6), f"{yv:.3g}", fill=(0, 0, 0))
    pts = [px(a, b) for a, b in zip(x, y) if np.isfinite(b)]
    if len(pts) >= 2:
        d.line(pts, fill=(31, 119, 180), width=2)
    for lr, colour, label in ((result.valley, (214, 39, 40), "valley"), (result.steep, (44, 160, 44), "steep")):
        lx = math.log10(lr)
        if x0 <= lx <= x1:
            yv = float(np.interp(lx, x, y))
            cx, cy = px(lx, yv)
            d.ellipse([cx - 5, cy - 5, cx + 5, cy + 5], outline=colour, width=2)
            d.text((cx + 7, cy - 14), f"{label} {lr:.2e}", fill=colour)
    d.text((w // 2 - 60, h - 18), "learning rate (log)", fill=(0, 0, 0))
    d.text((ml, 4), "smoothed loss", fill=(0, 0, 0))
    return save_png(np.asarray(img), Path(path))


def lr_find(config, *, start_lr: float = 1e-7, end_lr: float = 10.0, num_it: int = 100, stop_div: bool = True,
            plot: str | Path | None = None, on_event: Optional[EventCallback] = None,
            cancel: Optional[CancelToken] = None) -> LRFindResult:
    """LR finder for the first training stage of ``config`` (a TrainConfig); optional PNG plot."""
    from .recipes import TrainConfig
    from .run import _Run

    if not isinstance(config, TrainConfig):
        config = TrainConfig.from_dict(config) if isinstance(config, dict) else TrainConfig.load(config)
    stage = next((s for s in config.stages if s.kind == "restore"), None)
    if stage is None:
        raise TrainingError(f"Recipe '{config.recipe}' has no generator stage to find a learning rate for.")
    from .rng import seed_everything

    seed_everything(config.seed)  # the model's initial weights, crops and order: same seed, same curve
    run = _Run(config, on_event, cancel, resume=False)
    run.check_data()
    run.build_models(load_pretrained=True)
    loss = run._restore_loss(stage)
    size = stage.size or config.size
    from .data import paired

    train_ds = paired(run.data, "train", size, config.augment, config.seed)
    tdl, _ = run._loaders(stage, train_ds, None)
    learn = Learner(run.gen, tdl, None, loss, stage="lr-find", device=run.device, precision=config.precision,
                    channels_last=config.channels_last, wd=config.wd, moms=tuple(config.moms), cancel=cancel,
                    on_event=on_event)
    if stage.freeze:
        learn.freeze()
    emit(on_event, Log(f"Learning-rate sweep {start_lr:g} -> {end_lr:g} over {num_it} batches."))
    res = find_lr(learn, start_lr=start_lr, end_lr=end_lr, num_it=num_it, stop_div=stop_div)
    if plot is not None:
        res.plot = plot_curve(res, plot)
    return res
