"""Training precision: which of fp32 / bf16 / fp16 to use on a device, and the autocast context
(a no-op for fp32) with its grad scaler (fp16 only)."""

from __future__ import annotations

import contextlib

import torch

from ..devices import cpu_supports_bf16, supports_bf16  # the one bf16 probe (restore uses it too)
from ..errors import TrainingError

__all__ = ["Precision", "cpu_supports_bf16", "resolve_precision"]


def resolve_precision(device: torch.device, precision: str = "auto") -> str:
    """``auto`` -> bf16 on CPUs with native bf16 and on bf16 GPUs, fp16 on older GPUs, else fp32."""
    precision = (precision or "auto").lower()
    if precision not in ("auto", "fp32", "bf16", "fp16"):
        raise TrainingError(f"Unknown precision '{precision}'. Use auto, fp32, bf16 or fp16.")
    if precision != "auto":
        if precision == "fp16" and device.type == "cpu":
            raise TrainingError("fp16 training is for GPUs; on a CPU use bf16 or fp32.")
        return precision
    if device.type == "cuda":
        return "bf16" if supports_bf16(device) else "fp16"
    if device.type == "cpu":
        return "bf16" if supports_bf16(device) else "fp32"
    return "fp32"


class Precision:
    """Autocast context and (for fp16) a grad scaler; a no-op context for fp32."""

    def __init__(self, device: torch.device, mode: str) -> None:
        self.device = device
        self.mode = mode
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mode)
        self.scaler = None
        if mode == "fp16":
            self.scaler = torch.amp.GradScaler(device.type)

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)
