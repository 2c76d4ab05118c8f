"""The fit loop: one loop, ordered events, small callbacks (fastai v2's design, plain PyTorch).

Events, in order, each dispatched to every callback sorted by its ``order``::

    before_fit
      before_epoch
        before_train
          before_batch, after_pred, after_loss, before_backward, after_backward,
          before_step, after_step, after_batch          (per training batch)
        after_train
        before_validate ... after_validate                (no backward/step events)
      after_epoch
    after_fit

Callbacks stop work by raising the exceptions below (``CancelBatchException`` skips the
rest of a batch, ``CancelEpochException`` the rest of an epoch, ``CancelFitException`` ends
the fit). A set :class:`~lesson7_studio.core.events.CancelToken` is checked before every
batch; the resulting :class:`~lesson7_studio.core.errors.Cancelled` first runs
``after_cancel_fit`` (where the checkpoint callback writes a resumable checkpoint) and is
then re-raised.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Sequence

import torch
from torch import nn

from ..devices import resolve_device
from ..errors import Cancelled, TrainingError
from ..events import CancelToken, Event, EventCallback, emit
from .hooks import (  # noqa: F401  (the loop's protocol, importable from here as before)
    EVENTS, Callback, CancelBatchException, CancelEpochException, CancelFitException, CancelTrainException,
    CancelValidException,
)
from .params import (  # noqa: F401
    NORM_TYPES, layer_groups_of, make_optimizer, norm_bias_params, norm_params, unclamped, unwrap,
)
from .precision import Precision, cpu_supports_bf16, resolve_precision  # noqa: F401
from .schedule import Constant, OneCycle, group_lrs


class Learner:
    """Trains ``model`` on ``train_dl`` with ``loss_func(pred, target)``; see the module doc.

    ``model`` maps a batch's inputs to predictions compared with the targets (for restorers:
    the Restorer, LR [0,1] -> HR [0,1]). Learning rates are set per *layer group*
    (``net.layer_groups()``); ``freeze()`` trains only the last group (plus every norm layer,
    fastai's ``train_bn``), ``unfreeze()`` all of them.
    """

    def __init__(
        self,
        model: nn.Module,
        train_dl: Iterable,
        valid_dl: Optional[Iterable],
        loss_func: Callable[..., torch.Tensor],
        *,
        callbacks: Sequence[Callback] = (),
        device: str | torch.device = "auto",
        precision: str = "auto",
        channels_last: bool | None = None,
        wd: float = 1e-2,
        wd_bn_bias: bool = False,
        train_bn: bool = True,
        moms: tuple[float, float, float] = (0.95, 0.85, 0.95),
        sqr_mom: float = 0.99,
        eps: float = 1e-5,
        grad_clip: float | None = None,
        opt: torch.optim.Optimizer | None = None,
        layer_groups: list[list[nn.Parameter]] | None = None,
        cancel: CancelToken | None = None,
        on_event: EventCallback | None = None,
        stage: str = "train",
        ddp: bool = False,
    ) -> None:
        self.device = resolve_device(device)
        self.precision = Precision(self.device, resolve_precision(self.device, precision))
        if channels_last is None:  # auto: faster on CUDA; measured slower on CPU (oneDNN, bench_train.py)
            channels_last = self.device.type == "cuda"
        self.channels_last = bool(channels_last) and self.device.type in ("cpu", "cuda")
        self.model = model.to(self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.loss_func = loss_func
        if isinstance(loss_func, nn.Module):
            loss_func.to(self.device)
        self.train_dl = train_dl
        self.valid_dl = valid_dl
        self.wd, self.wd_bn_bias, self.train_bn = wd, wd_bn_bias, train_bn
        self.moms, self.sqr_mom, self.eps = tuple(moms), sqr_mom, eps
        self.grad_clip = grad_clip
        self.cancel = cancel
        self.on_event = on_event
        self.stage = stage
        self.layer_groups = layer_groups if layer_groups is not None else layer_groups_of(self.model)
        self.opt = opt
        self.ddp_model: nn.Module | None = None
        if ddp:
            self._wrap_ddp()
        self.cbs: list[Callback] = []
        for cb in callbacks:
            self.add_cb(cb)
        self._reset_loop_state()

    def _reset_loop_state(self) -> None:
        """Epoch, batch and step counters; the current batch, prediction and loss."""
        self.epoch = 0
        self.n_epoch = 0
        self.iter = 0
        self.n_iter = 0
        self.step = 0  # optimizer steps in this learner's life (restored on resume)
        self.pct_train = 0.0
        self.training = False
        self.schedules: list[Any] = []
        self.lr_mult = 1.0
        self.xb: Any = None
        self.yb: Any = None
        self.pred: Any = None
        self.loss: torch.Tensor = torch.tensor(0.0)
        self.loss_grad: torch.Tensor | None = None
        self.skip_batches = 0
        self.batches_done = 0  # training batches finished in the current epoch
        self.epoch_done = False  # the current epoch's training and validation are finished
        self.last_metrics: dict[str, float] = {}
        self.segment = (0, 0)  # epochs [start, end) the current schedule spans
        self.fit_stop_reason = ""

    # -- callbacks --------------------------------------------------------------------------
    def add_cb(self, cb: Callback) -> Callback:
        cb.learn = self
        self.cbs.append(cb)
        return cb

    def remove_cb(self, cb: Callback) -> None:
        if cb in self.cbs:
            self.cbs.remove(cb)

    def get_cb(self, cls: type) -> Any:
        for cb in self.cbs:
            if isinstance(cb, cls):
                return cb
        return None

    def __call__(self, event: str) -> None:
        for cb in sorted(self.cbs, key=lambda c: c.order):
            fn = getattr(cb, event, None)
            if fn is not None:
                fn()

    def emit(self, ev: Event) -> None:
        emit(self.on_event, ev)

    # -- model / optimizer --------------------------------------------------------------------
    @property
    def fwd_model(self) -> nn.Module:
        """The module to call in the loop: the DDP wrapper under torchrun while training; the model
        itself for validation, whose shards differ in length between ranks (no collectives)."""
        return self.ddp_model if self.ddp_model is not None and self.training else self.model

    def _wrap_ddp(self) -> None:
        from .distributed import wrap_ddp

        self.ddp_model = wrap_ddp(self.model, self.device)

    def create_opt(self) -> torch.optim.Optimizer:
        self.opt = make_optimizer(
            self.layer_groups, self.model, wd=self.wd, wd_bn_bias=self.wd_bn_bias,
            betas=(self.moms[0], self.sqr_mom), eps=self.eps, device=self.device,
        )
        return self.opt

    def freeze_to(self, n: int) -> None:
        """Train layer groups ``n`` and later only (negative ``n`` counts from the end)."""
        k = n if n >= 0 else len(self.layer_groups) + n
        for i, g in enumerate(self.layer_groups):
            for p in g:
                p.requires_grad_(i >= k)
        if self.train_bn:
            for p in norm_params(self.model):
                p.requires_grad_(True)
        if self.ddp_model is not None:  # DDP caches which parameters need grads
            self._wrap_ddp()

    def freeze(self) -> None:
        """Only the last group (decoder/head) and norm layers train."""
        if len(self.layer_groups) < 2:
            raise TrainingError("This model has a single layer group; it cannot be frozen.")
        self.freeze_to(-1)

    def unfreeze(self) -> None:
        self.freeze_to(0)

    def set_schedule(self, schedules: list[Any]) -> None:
        """One schedule (OneCycle/Constant) per layer group."""
        self.schedules = schedules

    def apply_hypers(self, pct: float) -> None:
        if self.opt is None or not self.schedules:
            return
        for pg in self.opt.param_groups:
            s = self.schedules[pg.get("layer_group", 0)]
            pg["lr"] = s.lr(pct) * self.lr_mult
            pg["betas"] = (s.mom(pct), pg["betas"][1])

    @property
    def lr(self) -> float:
        """Current learning rate of the last (head) layer group."""
        if self.opt is None:
            return 0.0
        return float(self.opt.param_groups[-1]["lr"])

    # -- data movement ------------------------------------------------------------------------
    def to_device(self, b: Any) -> Any:
        if isinstance(b, torch.Tensor):
            b = b.to(self.device, non_blocking=True)
            if self.channels_last and b.ndim == 4:
                b = b.contiguous(memory_format=torch.channels_last)
            return b
        if isinstance(b, (list, tuple)):
            return type(b)(self.to_device(o) for o in b)
        return b

    # -- the loop -------------------------------------------------------------------------------
    def _with_events(self, f: Callable[[], None], name: str, ex: type[BaseException]) -> None:
        try:
            self(f"before_{name}")
            f()
        except ex as e:
            if isinstance(e, CancelFitException):
                self.fit_stop_reason = e.reason or "stopped"
            self(f"after_cancel_{name}")
        self(f"after_{name}")

    def _split(self, b: Any) -> None:
        if isinstance(b, (list, tuple)) and len(b) >= 2:
            self.xb, self.yb = b[0], b[1]
        else:
            self.xb, self.yb = b, None

    def compute_loss(self) -> torch.Tensor:
        pred = self.pred.float() if isinstance(self.pred, torch.Tensor) else self.pred
        return self.loss_func(pred, self.yb)

    def _do_one_batch(self) -> None:
        with self.precision.autocast():
            self.pred = self.fwd_model(self.xb)
            self("after_pred")
            self.loss_grad = self.compute_loss()
        self.loss = self.loss_grad.detach()
        self("after_loss")
        if not self.training:
            return
        self("before_backward")
        self._backward()
        self("after_backward")
        self._with_events(self._do_step, "step", CancelBatchException)
        # under DDP the gradients are views of its buckets: zeroed in place (distributed.wrap_ddp)
        self.opt.zero_grad(set_to_none=self.ddp_model is None)
        self.step += 1
        self.batches_done = self.iter + 1

    def _backward(self) -> None:
        if self.precision.scaler is not None:
            self.precision.scaler.scale(self.loss_grad).backward()
        else:
            self.loss_grad.backward()

    def _do_step(self) -> None:
        scaler = self.precision.scaler
        if self.grad_clip:
            if scaler is not None:
                scaler.unscale_(self.opt)
            params = [p for g in self.opt.param_groups for p in g["params"] if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
        if scaler is not None:
            scaler.step(self.opt)
            scaler.update()
        else:
            self.opt.step()

    def one_batch(self, i: int, b: Any) -> None:
        self.iter = i
        b = self.to_device(b)
        self._split(b)
        if self.training:
            self.pct_train = self._pct(self.epoch, i)
            self.apply_hypers(self.pct_train)
        self._with_events(self._do_one_batch, "batch", CancelBatchException)
        if self.training:
            self.batches_done = i + 1

    def _pct(self, epoch: int, it: int) -> float:
        start, end = self.segment
        span = max(1, end - start)
        return min(1.0, ((epoch - start) + it / max(1, self.n_iter)) / span)

    def _do_epoch_train(self) -> None:
        sampler = getattr(self.train_dl, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(self.epoch)
        first = 0
        if self.skip_batches:
            first = self.skip_batches
            bs = getattr(self.train_dl, "batch_size", None) or 1
            if hasattr(sampler, "skip"):
                sampler.skip(first * bs)
            else:
                raise TrainingError("This data loader cannot resume mid-epoch (its sampler cannot skip).")
            self.skip_batches = 0
        self.batches_done = first
        self._all_batches_train(first)

    def _all_batches_train(self, first: int) -> None:
        self.n_iter = len(self.train_dl)  # type: ignore[arg-type]
        it = iter(self.train_dl)
        i = first
        while True:
            # check before fetching: a fetched batch has already used the RNG (augmentation)
            if self.cancel is not None:
                self.cancel.check()
            try:
                b = next(it)
            except StopIteration:
                break
            self.one_batch(i, b)
            i += 1

    def _do_epoch_validate(self) -> None:
        if self.valid_dl is None:
            raise CancelValidException()
        with torch.no_grad(), unclamped(unwrap(self.model)):
            self.n_iter = len(self.valid_dl)  # type: ignore[arg-type]
            for i, b in enumerate(self.valid_dl):
                if self.cancel is not None:
                    self.cancel.check()
                self.iter = i
                b = self.to_device(b)
                self._split(b)
                self._with_events(self._do_one_batch, "batch", CancelBatchException)

    def _do_epoch(self) -> None:
        self.training = True
        self.fwd_model.train()
        self._with_events(self._do_epoch_train, "train", CancelTrainException)
        self.training = False
        self.fwd_model.eval()
        if self.ddp_model is not None:  # validation runs on the model itself: rank 0's buffers
            from .distributed import broadcast_buffers

            broadcast_buffers(self.model)
        self._with_events(self._do_epoch_validate, "validate", CancelValidException)
        self.epoch_done = True

    def validate_only(self) -> None:
        """One validation pass outside ``fit`` (the callbacks see its validate events; nothing trains)."""
        self.training = False
        self.model.eval()
        self._with_events(self._do_epoch_validate, "validate", CancelValidException)

    def position(self) -> tuple[int, int]:
        """(epoch, training batches done in it) to resume from: the next unfinished work."""
        if self.epoch_done:
            return self.epoch + 1, 0
        return self.epoch, self.batches_done

    def _do_fit(self) -> None:
        for epoch in range(self.epoch, self.n_epoch):
            self.epoch = epoch
            self.epoch_done = False
            self._with_events(self._do_epoch, "epoch", CancelEpochException)
            self.skip_batches = 0

    def fit(
        self,
        n_epoch: int,
        lr: float | slice | Sequence[float] = 1e-3,
        *,
        one_cycle: bool = False,
        div: float = 25.0,
        div_final: float = 1e5,
        pct_start: float = 0.25,
        moms: tuple[float, float, float] | None = None,
        start_epoch: int = 0,
        skip_batches: int = 0,
        segment_start: int | None = None,
    ) -> None:
        """Train to epoch ``n_epoch`` (exclusive), from ``start_epoch`` (and ``skip_batches`` in it).

        ``one_cycle=True`` is fastai's ``fit_one_cycle``; otherwise a constant ``lr`` (``fit``).
        The schedule spans epochs ``[segment_start, n_epoch)`` (default ``[0, n_epoch)``), so a
        resumed fit lands on the same learning rate as the uninterrupted one.
        """
        if self.opt is None:
            self.create_opt()
        lrs = group_lrs(lr, len(self.layer_groups))
        moms = tuple(moms or self.moms)
        if one_cycle:
            scheds = [OneCycle(v, div=div, div_final=div_final, pct_start=pct_start, moms=moms) for v in lrs]
        else:
            scheds = [Constant(v, mom_value=moms[0] if moms else 0.9) for v in lrs]
        self.set_schedule(scheds)
        self.segment = (segment_start if segment_start is not None else 0, n_epoch)
        self.n_epoch = n_epoch
        self.epoch = start_epoch
        self.epoch_done = False
        self.batches_done = skip_batches
        self.skip_batches = skip_batches
        self.fit_stop_reason = ""
        self.apply_hypers(self._pct(start_epoch, skip_batches))
        try:
            self._with_events(self._do_fit, "fit", CancelFitException)
        except Cancelled:  # at a batch boundary: the state is consistent, so callbacks may checkpoint it
            self("after_interrupt")
            raise

    # -- inference helpers -----------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, xb: torch.Tensor) -> torch.Tensor:
        was = self.model.training
        self.model.eval()
        try:
            with self.precision.autocast():
                out = self.model(self.to_device(xb))
            return out.float()
        finally:
            self.model.train(was)
