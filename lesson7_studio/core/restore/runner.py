"""The runner: one model on batches of LR tiles, on its device, in eval mode, channels_last, in
the precision chosen (a bf16 copy of the model on the CPU), optionally as an x8 self-ensemble."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import torch
from torch import nn

from ..devices import resolve_device
from ..errors import ModelError
from . import memory, precision
from .facts import model_cache, model_facts
from .memory import is_oom


def model_device(model: Any, device: str | torch.device | None) -> torch.device:
    """Where ``model`` runs: ``device`` for a torch module (its parameters' device when None);
    a foreign runtime (ONNX) says its own."""
    if not isinstance(model, nn.Module):
        return torch.device(getattr(model, "device", "cpu"))
    if device is None:
        p = next(iter(model.parameters()), None)
        return p.device if p is not None else torch.device("cpu")
    return resolve_device(device)


class Runner:
    """Runs one model on batches of LR tiles: device, eval mode, channels_last, precision."""

    def __init__(self, model: Any, device: torch.device | str | None, precision_name: str) -> None:
        if precision_name not in precision.PRECISIONS:
            raise ModelError(f"Unknown precision '{precision_name}'. Use auto, fp32, bf16 or fp16.")
        self.model = model
        self.facts = model_facts(model)
        self.is_module = isinstance(model, nn.Module)
        self.precision = precision_name
        self.device = model_device(model, device)
        if self.is_module:
            model.to(self.device)
            cache = model_cache(model)
            if not cache.get("channels_last") and self.device.type in ("cpu", "cuda"):
                model.to(memory_format=torch.channels_last)
                cache["channels_last"] = True
        self.dtype: torch.dtype | None = None  # autocast dtype; None = fp32

    # -- decisions made once per model
    def choose_precision(self, probe: torch.Tensor, high_bit_depth: bool, work_px: int | None = None) -> None:
        """Set ``dtype`` (see :func:`.precision.choose_dtype`)."""
        self.dtype = precision.choose_dtype(self, probe, high_bit_depth, work_px)

    def bytes_per_net_px(self, probe: torch.Tensor) -> float | None:
        """The activation-memory estimate (see :func:`.memory.bytes_per_net_px`)."""
        return memory.bytes_per_net_px(self, probe)

    # -- one forward pass
    def _autocast(self, dtype: torch.dtype | None):
        if dtype is None or not self.is_module:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def forward(self, x: torch.Tensor, dtype: torch.dtype | None = None, ensemble: bool = False) -> torch.Tensor:
        """(B,3,h,w) float on CPU, channels_last -> (B,3,h*s,w*s) float32 on CPU, in [0,1].

        ``ensemble``: the mean of the outputs for the eight flips and quarter turns of the input
        (x8 self-ensemble, "EDSR+"), each turned back: eight passes. It evens out what a model
        does differently in each direction (the starter model: +0.017 dB on average on Kodak24,
        -0.22 to +0.40 dB per image; benchmarks/bench_ensemble.py)."""
        if not ensemble:
            return self._forward_one(x, dtype)
        acc: torch.Tensor | None = None
        for k in range(4):
            for flip in (False, True):
                t = torch.rot90(x, k, (2, 3))
                if flip:
                    t = t.flip(3)
                y = self._forward_one(t, dtype)
                if flip:
                    y = y.flip(3)
                y = torch.rot90(y, -k, (2, 3))
                acc = y if acc is None else acc.add_(y)
        assert acc is not None
        return acc.div_(8.0)

    def _forward_one(self, x: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
        s = self.facts.scale
        b, _c, h, w = x.shape
        with torch.inference_mode():
            y = self._module_forward(x, dtype) if self.is_module else self.model(x)
            if tuple(y.shape) != (b, 3, h * s, w * s):
                raise ModelError(
                    f"The model returned shape {tuple(y.shape)} for input {tuple(x.shape)}; "
                    f"expected {(b, 3, h * s, w * s)} (scale {s})."
                )
            return y.float().clamp(0, 1).cpu()

    def _module_forward(self, x: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.device.type in ("cpu", "cuda"):
            x = x.contiguous(memory_format=torch.channels_last)
        low = self._low_copy(dtype)
        if low is not None:  # the whole net in bf16: no per-call weight and activation casts
            try:
                return low(x.to(dtype))
            except RuntimeError as err:  # an op without a bf16 CPU kernel: autocast instead
                if is_oom(err):
                    raise
                model_cache(self.model)[("low_copy", dtype)] = (None, None)
        was_training = self.model.training
        self.model.eval()
        try:
            with self._autocast(dtype):
                return self.model(x)
        finally:
            if was_training:
                self.model.train()

    def _low_copy(self, dtype: torch.dtype | None) -> nn.Module | None:
        """On the CPU, bf16 runs on a bf16 copy of the model (in eval mode) rather than under
        autocast, which re-casts every weight and many activations on every call (measured on
        unet-resnet34 at 768x512: 4.6 s -> 3.8 s a pass on one core). The copy is rebuilt when
        any parameter or buffer of the model changed in place since (training, load_state_dict)
        and skipped (autocast instead) for models that cannot be copied or run that way."""
        if dtype is not torch.bfloat16 or self.device.type != "cpu" or not self.is_module:
            return None
        cache = model_cache(self.model)
        tensors = [*self.model.parameters(), *self.model.buffers()]
        version = tuple((id(t), t._version) for t in tensors)
        entry = cache.get(("low_copy", dtype))
        if entry is not None and entry[0] == version:
            return entry[1]
        if entry is not None and entry[0] is None:  # known not to work
            return None
        try:
            # parameters and float buffers are handed to deepcopy already cast (its memo), so the
            # float32 weights are never copied first
            memo: dict[int, Any] = {}
            for t in tensors:
                if t.is_floating_point():
                    low_t = t.detach().to(dtype)
                    memo[id(t)] = nn.Parameter(low_t, requires_grad=False) if isinstance(t, nn.Parameter) else low_t
            low = copy.deepcopy(self.model, memo).to(dtype).eval()
        except Exception:  # noqa: BLE001 - uncopyable or not castable: autocast is the fallback
            low = None
        cache[("low_copy", dtype)] = (version, low)
        return low
