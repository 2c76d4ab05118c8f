"""An exponential moving average (EMA) of a model's weights, as a training callback.

After every optimizer step the callback moves a float32 shadow copy of the network's
state dict towards the current weights: ``shadow = d * shadow + (1 - d) * weights``, with
``d = min(decay, (1 + n) / (10 + n))`` after ``n`` updates (the usual warm-up, so the first
steps do not drag the average back to the starting weights for long). Integer buffers are
copied as they are. The averaged weights usually score better than the last ones at the end of
a run whose learning rate was still moving, and they cost one extra copy of the weights.

``evaluate=True`` (what a run's ``ema`` setting uses) also validates the averaged weights: they
are swapped into the network for the validation pass and the raw ones put back after it, so the
epoch's figures are those of the model the run will hand over, and :meth:`EMACallback.applied`
does the same around any other use (sample grids, best.safetensors, the final model).

Resuming: :meth:`EMACallback.state_dict` holds the shadow tensors and the update count, so a
run's resume state (``checkpoints/*.state.pt``, which stores every callback's state under its
class name) carries the average across interruptions. :func:`ema_weights_from_state` reads it
back from such a file to write the averaged model.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError, TrainingError
from .learner import Callback

STATE_KEY = "EMACallback"


def _net(model: nn.Module) -> nn.Module:
    m = getattr(model, "module", model)  # DDP
    return getattr(m, "net", m)  # Restorer -> the registered net


class EMACallback(Callback):
    """Keep an EMA of ``learn.model``'s network weights (see the module doc).

    ``decay`` in [0, 1): the weight of the old average per update (0.999 averages over roughly
    the last 1,000 steps). ``warmup``: use ``(1 + n) / (10 + n)`` while it is smaller.
    """

    order = 20  # after the optimizer step, before the checkpoint callback (order 90) saves

    def __init__(self, decay: float = 0.999, *, warmup: bool = True, evaluate: bool = False) -> None:
        if not isinstance(decay, (int, float)) or isinstance(decay, bool) or not 0.0 <= float(decay) < 1.0:
            raise TrainingError(f"EMA decay must be a number in [0, 1), got {decay!r}.",
                                hint="Typical values are 0.99 to 0.9999.")
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.evaluate = bool(evaluate)
        self.updates = 0
        self.shadow: dict[str, torch.Tensor] = {}
        self._raw: dict[str, torch.Tensor] | None = None  # the raw weights while the average is applied
        self._validating = False  # the average is in for the validation pass

    # -- the average ------------------------------------------------------------------------
    def _init_from(self, net: nn.Module) -> None:
        self.shadow = {k: (v.detach().float().clone() if v.is_floating_point() else v.detach().clone())
                       for k, v in net.state_dict().items()}

    def current_decay(self) -> float:
        if self.warmup:
            return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        return self.decay

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        """One EMA step towards ``net``'s current weights."""
        sd = net.state_dict()
        if not self.shadow:
            self._init_from(net)
        if set(sd) != set(self.shadow):
            raise TrainingError("The EMA's tensors do not match the model's (was the model changed mid-run?).")
        d = self.current_decay()
        for k, v in sd.items():
            s = self.shadow[k]
            if s.device != v.device:
                s = self.shadow[k] = s.to(v.device)
            if v.is_floating_point():
                s.lerp_(v.detach().float(), 1.0 - d)
            else:
                s.copy_(v)
        self.updates += 1

    def averaged(self) -> dict[str, torch.Tensor]:
        """The averaged state dict (float32 on the CPU); empty before the first update."""
        return {k: v.detach().cpu().clone() for k, v in self.shadow.items()}

    def copy_to(self, model: nn.Module) -> None:
        """Load the averaged weights into ``model`` (a net or a Restorer wrapping one)."""
        if not self.shadow:
            raise TrainingError("The EMA has no weights yet: no optimizer step has run.")
        load_averaged(model, self.shadow)

    def swap_in(self, model: nn.Module) -> bool:
        """Put the averaged weights into ``model``, keeping its raw ones for :meth:`swap_out`;
        False (nothing done) before the first update or when the average is in already."""
        if not self.shadow or self._raw is not None:
            return False
        net = _net(model)
        self._raw = {k: v.detach().clone() for k, v in net.state_dict().items()}
        try:
            load_averaged(net, self.shadow)
        except BaseException:
            self.swap_out(model)
            raise
        return True

    def swap_out(self, model: nn.Module) -> None:
        """Put the raw weights back (a no-op when the average is not in)."""
        raw, self._raw = self._raw, None
        if raw is not None:
            _net(model).load_state_dict(raw)

    @contextmanager
    def applied(self, model: nn.Module) -> Iterator[None]:
        """The averaged weights in ``model`` for the ``with`` block, the raw ones again after it
        (a no-op before the first update, or when they are applied already)."""
        swapped = self.swap_in(model)
        try:
            yield
        finally:
            if swapped:
                self.swap_out(model)

    # -- callback events --------------------------------------------------------------------
    def before_fit(self) -> None:
        if not self.shadow:
            self._init_from(_net(self.learn.model))

    def after_step(self) -> None:
        self.update(_net(self.learn.model))

    def before_validate(self) -> None:
        self._validating = self.evaluate and self.swap_in(self.learn.model)

    def after_validate(self) -> None:
        if self._validating:
            self._validating = False
            self.swap_out(self.learn.model)

    def after_interrupt(self) -> None:
        # cancelled during validation: the raw weights go back before the checkpoint (order 90) saves them
        self.after_validate()

    # -- resume -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"decay": self.decay, "warmup": self.warmup, "updates": int(self.updates),
                "shadow": {k: v.detach().cpu() for k, v in self.shadow.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.updates = int(state.get("updates", 0))
        self.shadow = {k: v.clone() for k, v in dict(state.get("shadow", {})).items()}


def load_averaged(model: nn.Module, weights: Mapping[str, torch.Tensor]) -> None:
    """Copy EMA ``weights`` into ``model``'s network (strict: every tensor must match)."""
    net = _net(model)
    sd = net.state_dict()
    missing = sorted(set(sd) - set(weights))
    unexpected = sorted(set(weights) - set(sd))
    if missing or unexpected:
        raise TrainingError(f"EMA weights do not fit the model: {len(missing)} missing (e.g. "
                            f"{(missing or ['-'])[0]}), {len(unexpected)} unexpected (e.g. {(unexpected or ['-'])[0]}).")
    net.load_state_dict({k: weights[k].to(sd[k].dtype) for k in sd})


def ema_weights_from_state(state_path: str | Path) -> dict[str, torch.Tensor] | None:
    """The EMA shadow stored in a run's resume state file (``checkpoints/<name>.state.pt``),
    or None when that run had no EMA callback or it had not updated yet."""
    path = Path(state_path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same error for the user
        raise CheckpointError(f"Cannot read resume state {path}: {err}") from None
    ema = (state.get("callbacks") or {}).get(STATE_KEY)
    if not ema or not ema.get("shadow"):
        return None
    return dict(ema["shadow"])


__all__ = ["STATE_KEY", "EMACallback", "ema_weights_from_state", "load_averaged"]
