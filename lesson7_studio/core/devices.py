"""Device choice shared by training and restoring."""

from __future__ import annotations

import os

import torch

from .errors import DeviceError


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``None``/"auto": CUDA (the local rank's GPU under torchrun) if present, else MPS, else CPU.

    An explicit device that is not available here raises DeviceError saying what to use.
    """
    if isinstance(device, torch.device):
        dev = device
    else:
        name = (device or "auto").strip().lower()
        if name == "auto":
            if torch.cuda.is_available():
                local = int(os.environ.get("LOCAL_RANK", "0") or 0)
                return torch.device("cuda", local % max(1, torch.cuda.device_count()))
            if _mps_available():
                return torch.device("mps")
            return torch.device("cpu")
        try:
            dev = torch.device(name)
        except RuntimeError:
            raise DeviceError(f"Unknown device '{device}'. Use auto, cpu, cuda, cuda:N or mps.") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"Device '{dev}' was asked for but CUDA is not available here.",
                              hint="Use --device cpu or auto.")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"Device '{dev}' does not exist: {torch.cuda.device_count()} CUDA device(s) found.")
    elif dev.type == "mps":
        if not _mps_available():
            raise DeviceError("Device 'mps' was asked for but Apple's Metal backend is not available here.",
                              hint="Use --device cpu or auto.")
    elif dev.type != "cpu":
        raise DeviceError(f"Unsupported device '{dev}'. Use auto, cpu, cuda, cuda:N or mps.")
    return dev
