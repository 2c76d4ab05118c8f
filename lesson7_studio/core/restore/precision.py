"""Precision "auto": which low precision a device would try for a model, the probe that checks
its output against fp32's, and the verdict kept per model object and per model file."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .. import devices, precision_cache
from .facts import model_cache
from .memory import forward_measured, is_oom

if TYPE_CHECKING:
    from .runner import Runner

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# Low precision is used only where its output on a probe tile stays this close to fp32's:
# PSNR(fp32, low) >= 45 dB, an RMS difference under 1.5/255 (about what JPEG at quality 95 changes).
PRECISION_MIN_PSNR = 45.0
# Without a known verdict the probe runs only when the restore computes at least this many times
# the probe's pixels: the probe costs an fp32 and a low-precision pass over its tile, and bf16
# saves well under half of a pass, so on less work it cannot pay (a community ESRGAN x4 on a
# 96x64 photo: 9.9 s with the probe, 1.0 s in fp32).
PROBE_PAYS_AT = 4


def precision_note(model: Any, precision: str) -> str | None:
    """What to tell a user who asked for a precision that ``model`` (a foreign runtime) ignores."""
    if isinstance(model, nn.Module) or precision in ("auto", "fp32"):
        return None
    return (f"Precision {precision} does not apply to {type(model).__name__} models: the file runs in the "
            "precision it was exported with (float32).")


def choose_dtype(runner: Runner, probe: torch.Tensor, high_bit_depth: bool,
                 work_px: int | None = None) -> torch.dtype | None:
    """The autocast dtype for ``runner``'s precision: None (fp32) unless a low precision stays
    within tolerance.

    Under "auto" the verdict of the probe is known per model object and device, and per model
    *file* and device across sessions (:mod:`..precision_cache`). Without a verdict, the probe
    (an fp32 and a low-precision pass over ``probe``) runs only where it can pay for itself:
    when ``work_px`` (the LR pixels this restore computes, x8 with the ensemble) is at least
    ``PROBE_PAYS_AT`` times the probe's; a small image is restored in fp32 directly.
    """
    if not runner.is_module or runner.precision == "fp32":
        return None
    if runner.precision == "bf16":
        return torch.bfloat16
    if runner.precision == "fp16":
        return torch.float16
    if high_bit_depth:  # 16-bit images keep full precision
        return None
    cand = low_candidate(runner.model, runner.device)
    if cand is None:
        return None
    key = ("precision", str(runner.device), str(cand))
    cache = model_cache(runner.model)
    if key not in cache:
        stored_key = verdict_key(runner.model, runner.device, cand)
        stored = precision_cache.lookup(stored_key) if stored_key else None
        if stored is not None:
            cache[key] = stored
        elif work_px is not None and work_px < PROBE_PAYS_AT * probe.shape[2] * probe.shape[3]:
            return None  # fp32 for this small image, no verdict recorded: a larger one will probe
        else:
            cache[key] = probe_verdict(runner, probe, cand)
            if stored_key:
                precision_cache.store(stored_key, *cache[key])
    return cand if cache[key][0] else None


def low_candidate(model: Any, device: torch.device) -> torch.dtype | None:
    """The low precision "auto" would try on ``device`` for ``model``, if any (a model may list
    the ``precisions`` its architecture supports)."""
    allowed = getattr(model, "precisions", None)
    if device.type == "cuda":
        cand = torch.float16 if (allowed is None or "fp16" in allowed) else None
        if cand is None and (allowed is None or "bf16" in allowed) and devices.supports_bf16(device):
            cand = torch.bfloat16
        return cand
    if device.type == "cpu":
        return torch.bfloat16 if devices.cpu_supports_bf16() and (allowed is None or "bf16" in allowed) else None
    if device.type == "mps":
        return torch.float16 if (allowed is None or "fp16" in allowed) else None
    return None


def verdict_key(model: Any, device: torch.device, cand: torch.dtype) -> str | None:
    """The persistent verdict's key: the model file's hash, the device, the precision."""
    source = getattr(model, "source_file", None)
    if not source:
        return None
    try:
        digest = precision_cache.file_hash(source)
    except OSError:
        return None
    return precision_cache.verdict_key(digest, devices.device_key(device), str(cand).replace("torch.", ""))


def probe_verdict(runner: Runner, probe: torch.Tensor, cand: torch.dtype) -> tuple[bool, float]:
    """(cand is fine, PSNR of cand's output against fp32's on ``probe``)."""
    ref = forward_measured(runner, probe)  # the fp32 reference also sizes the tiles
    try:
        low = runner.forward(probe, cand)
    except RuntimeError as err:  # an op without a low-precision kernel
        if is_oom(err):
            raise
        return False, float("nan")
    mse = float(((low - ref) ** 2).mean())
    psnr = math.inf if mse == 0 else 10 * math.log10(1.0 / mse)
    return bool(torch.isfinite(low).all()) and psnr >= PRECISION_MIN_PSNR, psnr
