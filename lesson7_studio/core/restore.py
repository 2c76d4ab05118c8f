"""The restoration engine: tiled inference on images of any size, batch restore of folders,
loading of our and foreign models, and evaluation against bicubic upsampling.

A *model* here is anything that follows the Restorer convention (core/models/registry.py):
called with a float tensor (B,3,h,w) of degraded RGB in [0,1] it returns (B,3,h*s,w*s) in
[0,1], and ``model.info`` tells ``scale`` (s), ``model_scale`` and ``size_multiple`` (the
network input's H and W must be multiples of it, after the Restorer's own ``scale/model_scale``
bicubic resize). Our :class:`~.models.Restorer`, the spandrel adapter below and
:class:`~.export.OnnxRestorer` all qualify.

Tiling: the low-resolution (LR) image is cut into equal tiles of ``T`` px whose *cores*
partition the image. A tile at the image border sees the border exactly as one whole-image
pass would (the image reflect-padded at its end to the model's size multiple); at every inner
core boundary the tiles carry ``margin`` px of real context, and neighbouring outputs are
blended over ``2*feather`` px with linear ramps that sum to one, so no seam shows. The image is
never padded in memory (tiles index it with reflected coordinates) and the output is
accumulated one tile row at a time, so memory stays bounded for any image size.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import os
import time
import weakref
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from .errors import (
    Cancelled,
    CheckpointError,
    DeviceError,
    ImageReadError,
    ImageWriteError,
    Lesson7Error,
    ModelError,
    RecipeError,
)
from .devices import keep_freed_memory, release_freed_memory, resolve_device
from .events import (
    CancelToken,
    EventCallback,
    Finished,
    ItemDone,
    ItemFailed,
    ItemSkipped,
    Log,
    Progress,
    RateMeter,
    check,
    emit,
)
from .files import check_output_folder, os_error_reason

__all__ = [
    "RestoreSummary",
    "ModelFacts",
    "model_facts",
    "restore_array",
    "restore_image",
    "restore_folder",
    "load_any_model",
    "evaluate",
    "resolve_device",
    "available_memory",
    "OUTPUT_FORMATS",
    "SpandrelRestorer",
]

# --------------------------------------------------------------------------- model facts


@dataclass(frozen=True)
class ModelFacts:
    """What tiling needs to know about a model."""

    scale: int  # output px per input px (per side)
    pre_scale: int  # the model's own bicubic resize before its network (scale / model_scale)
    size_multiple: int  # network input H, W multiple
    lr_multiple: int  # LR tile H, W multiple: size_multiple / gcd(size_multiple, pre_scale)
    min_size: int  # smallest LR tile side the model accepts
    square: bool = False  # tiles must be square (some foreign architectures)


def model_facts(model: Any) -> ModelFacts:
    """Scale and size constraints of a Restorer-like model (reads ``model.info``)."""
    info = getattr(model, "info", None)
    if info is None or not hasattr(info, "scale"):
        raise ModelError(
            f"{type(model).__name__} does not describe itself (no .info.scale); "
            "wrap the network with models.restorer(name, net=...) or load it with load_any_model()."
        )
    scale = int(info.scale)
    model_scale = int(getattr(info, "model_scale", scale) or scale)
    pre = scale // model_scale if scale >= model_scale else 1
    m = max(1, int(getattr(info, "size_multiple", 1) or 1))
    lr_mult = m // math.gcd(m, pre)
    min_size = int(getattr(model, "min_size", 0) or 0)
    min_lr = max(1, -(-min_size // pre)) if min_size else 1
    return ModelFacts(
        scale=scale, pre_scale=pre, size_multiple=m, lr_multiple=lr_mult, min_size=min_lr,
        square=bool(getattr(model, "square", False)),
    )


# --------------------------------------------------------------------------- devices, memory




def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    if not text or text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def available_memory(device: torch.device | str = "cpu") -> int:
    """Bytes that can be used now: free GPU memory, or the RAM available to this process
    (MemAvailable, bounded by a cgroup limit where one is set)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        free, _total = torch.cuda.mem_get_info(dev)
        return int(free)
    if dev.type == "mps":
        try:
            return int(torch.mps.recommended_max_memory() - torch.mps.current_allocated_memory())
        except (AttributeError, RuntimeError):
            pass
    avail: int | None = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
                break
    except OSError:
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = 4 << 30
    limit = _read_int("/sys/fs/cgroup/memory.max")
    if limit is not None:
        used = _read_int("/sys/fs/cgroup/memory.current") or 0
        avail = min(avail, max(0, limit - used))
    else:
        limit = _read_int("/sys/fs/cgroup/memory/memory.limit_in_bytes")
        if limit is not None and limit < (1 << 60):
            used = _read_int("/sys/fs/cgroup/memory/memory.usage_in_bytes") or 0
            avail = min(avail, max(0, limit - used))
    return int(avail)


def _is_oom(err: BaseException) -> bool:
    if isinstance(err, MemoryError):
        return True
    oom_type = getattr(torch, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(err, oom_type):
        return True
    if isinstance(err, RuntimeError):
        msg = str(err).lower()
        return "out of memory" in msg or "can't allocate memory" in msg or "cannot allocate memory" in msg
    return False


class _TileOutOfMemory(Exception):
    """A single tile did not fit: the caller halves the tile size and starts again."""


# --------------------------------------------------------------------------- the runner

# Per-model cache: precision decisions and the activation-memory estimate, keyed by model.
_MODEL_CACHE: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()

# Low precision is used only where its output on a probe tile stays this close to fp32's:
# PSNR(fp32, low) >= 45 dB, an RMS difference under 1.5/255 (about what JPEG at quality 95 changes).
PRECISION_MIN_PSNR = 45.0
# Without a known verdict the probe runs only when the restore computes at least this many times
# the probe's pixels: the probe costs an fp32 and a low-precision pass over its tile, and bf16
# saves well under half of a pass, so on less work it cannot pay (a community ESRGAN x4 on a
# 96x64 photo: 9.9 s with the probe, 1.0 s in fp32).
PROBE_PAYS_AT = 4


def _precision_store():
    from . import precision_cache

    return precision_cache


# Peak memory of a forward pass over the sum of all layer outputs' sizes: measured 0.27 for
# unet-resnet34 (1024 px tiles, CPU, fp32 and bf16); 0.35 leaves headroom.
_PEAK_OVER_OUTPUTS = 0.35
# Global self-attention at inference runs in query chunks (models.layers.chunked_attention): no
# N x N map, a few chunk buffers of at most 16 MB each; this much is reserved per attention layer.
_ATTENTION_RESERVE = 64 << 20

# largest network-input tile side: past it, bigger tiles buy nothing but memory
_MAX_NET_TILE = {"cpu": 1024, "cuda": 2048, "mps": 1024}
# share of the available memory one restore may use for activations
_MEMORY_SHARE = {"cpu": 0.3, "cuda": 0.6, "mps": 0.4}
_CPU_MEMORY_CAP = 5 << 28  # 1.25 GiB: with torch, the model and the image, a 24 MP restore stays under 3 GB
# share of that cap the activations of a tiled image may use while malloc keeps freed memory for
# reuse (devices.keep_freed_memory): unet-resnet34, 4 tiles of 608k network px: peak RSS 2.92 GB
# with it, 2.07 GB without; at 0.6, 2.13 GB on 35 tiles of a 6 MP image (and 18 % faster than
# without). An image done in one tile gets the whole cap.
_KEPT_MEMORY_SHARE = 0.6


def _cache(model: Any) -> dict:
    try:
        return _MODEL_CACHE.setdefault(model, {})
    except TypeError:  # not weak-referenceable: no caching
        return {}


def _cpu_supports_bf16() -> bool:
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _model_device(model: Any, device: str | torch.device | None) -> torch.device:
    """Where ``model`` runs: ``device`` for a torch module (its parameters' device when None);
    a foreign runtime (ONNX) says its own."""
    if not isinstance(model, nn.Module):
        return torch.device(getattr(model, "device", "cpu"))
    if device is None:
        p = next(iter(model.parameters()), None)
        return p.device if p is not None else torch.device("cpu")
    return resolve_device(device)


def _precision_note(model: Any, precision: str) -> str | None:
    """What to tell a user who asked for a precision that ``model`` (a foreign runtime) ignores."""
    if isinstance(model, nn.Module) or precision in ("auto", "fp32"):
        return None
    return (f"Precision {precision} does not apply to {type(model).__name__} models: the file runs in the "
            "precision it was exported with (float32).")


class _Runner:
    """Runs one model on batches of LR tiles: device, eval mode, channels_last, precision."""

    def __init__(self, model: Any, device: torch.device | str | None, precision: str) -> None:
        if precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ModelError(f"Unknown precision '{precision}'. Use auto, fp32, bf16 or fp16.")
        self.model = model
        self.facts = model_facts(model)
        self.is_module = isinstance(model, nn.Module)
        self.precision = precision
        self.device = _model_device(model, device)
        if self.is_module:
            model.to(self.device)
            cache = _cache(model)
            if not cache.get("channels_last") and self.device.type in ("cpu", "cuda"):
                model.to(memory_format=torch.channels_last)
                cache["channels_last"] = True
        self.dtype: torch.dtype | None = None  # autocast dtype; None = fp32

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
            if self.is_module:
                x = x.to(self.device, non_blocking=True)
                if self.device.type in ("cpu", "cuda"):
                    x = x.contiguous(memory_format=torch.channels_last)
                low = self._low_copy(dtype)
                y = None
                if low is not None:  # the whole net in bf16: no per-call weight and activation casts
                    try:
                        y = low(x.to(dtype))
                    except RuntimeError as err:  # an op without a bf16 CPU kernel: autocast instead
                        if _is_oom(err):
                            raise
                        _cache(self.model)[("low_copy", dtype)] = (None, None)
                if y is None:
                    was_training = self.model.training
                    self.model.eval()
                    try:
                        with self._autocast(dtype):
                            y = self.model(x)
                    finally:
                        if was_training:
                            self.model.train()
            else:
                y = self.model(x)
            if tuple(y.shape) != (b, 3, h * s, w * s):
                raise ModelError(
                    f"The model returned shape {tuple(y.shape)} for input {tuple(x.shape)}; "
                    f"expected {(b, 3, h * s, w * s)} (scale {s})."
                )
            return y.float().clamp(0, 1).cpu()

    def _low_copy(self, dtype: torch.dtype | None) -> nn.Module | None:
        """On the CPU, bf16 runs on a bf16 copy of the model (in eval mode) rather than under
        autocast, which re-casts every weight and many activations on every call (measured on
        unet-resnet34 at 768x512: 4.6 s -> 3.8 s a pass on one core). The copy is rebuilt when
        any parameter or buffer of the model changed in place since (training, load_state_dict)
        and skipped (autocast instead) for models that cannot be copied or run that way."""
        if dtype is not torch.bfloat16 or self.device.type != "cpu" or not self.is_module:
            return None
        cache = _cache(self.model)
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

    # -- decisions made once per model
    def choose_precision(self, probe: torch.Tensor, high_bit_depth: bool, work_px: int | None = None) -> None:
        """Pick the autocast dtype: fp32 unless a low precision stays within tolerance.

        Under "auto" the verdict of the probe is known per model object and device, and per model
        *file* and device across sessions (:mod:`.precision_cache`). Without a verdict, the probe
        (an fp32 and a low-precision pass over ``probe``) runs only where it can pay for itself:
        when ``work_px`` (the LR pixels this restore computes, x8 with the ensemble) is at least
        ``PROBE_PAYS_AT`` times the probe's; a small image is restored in fp32 directly.
        """
        self.dtype = None
        if not self.is_module or self.precision == "fp32":
            return
        if self.precision == "bf16":
            self.dtype = torch.bfloat16
            return
        if self.precision == "fp16":
            self.dtype = torch.float16
            return
        if high_bit_depth:  # 16-bit images keep full precision
            return
        cand = self._low_candidate()
        if cand is None:
            return
        key = ("precision", str(self.device), str(cand))
        cache = _cache(self.model)
        if key not in cache:
            stored_key = self._stored_key(cand)
            stored = _precision_store().lookup(stored_key) if stored_key else None
            if stored is not None:
                cache[key] = stored
            elif work_px is not None and work_px < PROBE_PAYS_AT * probe.shape[2] * probe.shape[3]:
                return  # fp32 for this small image, no verdict recorded: a larger one will probe
            else:
                cache[key] = self._probe_verdict(probe, cand)
                if stored_key:
                    _precision_store().store(stored_key, *cache[key])
        if cache[key][0]:
            self.dtype = cand

    def _low_candidate(self) -> torch.dtype | None:
        """The low precision "auto" would try on this device for this model, if any."""
        allowed = getattr(self.model, "precisions", None)
        if self.device.type == "cuda":
            cand = torch.float16 if (allowed is None or "fp16" in allowed) else None
            if cand is None and (allowed is None or "bf16" in allowed) and torch.cuda.is_bf16_supported():
                cand = torch.bfloat16
            return cand
        if self.device.type == "cpu":
            return torch.bfloat16 if _cpu_supports_bf16() and (allowed is None or "bf16" in allowed) else None
        if self.device.type == "mps":
            return torch.float16 if (allowed is None or "fp16" in allowed) else None
        return None

    def _stored_key(self, cand: torch.dtype) -> str | None:
        """The persistent verdict's key: the model file's hash, the device, the precision."""
        source = getattr(self.model, "source_file", None)
        if not source:
            return None
        try:
            digest = _precision_store().file_hash(source)
        except OSError:
            return None
        from .devices import device_key

        return _precision_store().verdict_key(digest, device_key(self.device), str(cand).replace("torch.", ""))

    def _probe_verdict(self, probe: torch.Tensor, cand: torch.dtype) -> tuple[bool, float]:
        """(cand is fine, PSNR of cand's output against fp32's on ``probe``)."""
        ref = self._forward_measured(probe)  # the fp32 reference also sizes the tiles
        try:
            low = self.forward(probe, cand)
        except RuntimeError as err:  # an op without a low-precision kernel
            if _is_oom(err):
                raise
            return False, float("nan")
        mse = float(((low - ref) ** 2).mean())
        psnr = math.inf if mse == 0 else 10 * math.log10(1.0 / mse)
        return bool(torch.isfinite(low).all()) and psnr >= PRECISION_MIN_PSNR, psnr

    def bytes_per_net_px(self, probe: torch.Tensor) -> float | None:
        """Estimated peak activation bytes per network-input pixel (fp32): the sizes of every
        layer output on a probe, times a measured ratio of peak to that sum. The sizes come from
        a pass on fake tensors (shapes only, no arithmetic) where the model allows, else from a
        real fp32 pass. A foreign runtime (ONNX) has the estimate its exporter measured on the
        PyTorch model (``memory_estimate``), so it gets the same tiles; None without one."""
        if not self.is_module:
            est = getattr(self.model, "memory_estimate", None)
            if not est:
                return None
            cache = _cache(self.model)
            cache.setdefault("attention_per_px", list(est[1]))
            return float(est[0])
        cache = _cache(self.model)
        if "bytes_per_px" not in cache and not self._measure_shapes_only(probe):
            self._forward_measured(probe)
        return cache.get("bytes_per_px")

    @contextlib.contextmanager
    def _size_hooks(self, probe: torch.Tensor, module: nn.Module | None = None):
        """Hooks on ``module`` (the model, or a shapes-only copy of it) that add up every leaf
        module's output size and note each global self-attention's positions; on exit they record
        ``bytes_per_px`` (activations, linear in the tile's pixels) and ``attention_per_px``
        (positions per network pixel of each global self-attention) in the model's cache (only if
        the body ran without an exception)."""
        from .models.layers import SelfAttention

        total = [0]
        positions: list[int] = []

        def hook(_mod, _inp, out):
            if isinstance(out, torch.Tensor):
                total[0] += out.numel() * 4
            elif isinstance(out, (tuple, list)):
                total[0] += sum(o.numel() * 4 for o in out if isinstance(o, torch.Tensor))

        def attention_hook(_mod, inp):
            positions.append(int(inp[0][0, 0].numel()))  # H*W at that layer

        handles = []
        for name, m in (module if module is not None else self.model).named_modules():
            if "parametrizations" in name.split("."):
                continue  # weight/spectral norm: their outputs are weights, not activations
            if isinstance(m, SelfAttention):
                handles.append(m.register_forward_pre_hook(attention_hook))
            if not list(m.children()):
                handles.append(m.register_forward_hook(hook))
        try:
            yield
        finally:
            for h in handles:
                h.remove()
        cache = _cache(self.model)
        net_px = probe.shape[0] * (probe.shape[2] * self.facts.pre_scale) * (probe.shape[3] * self.facts.pre_scale)
        cache["bytes_per_px"] = max(total[0] * _PEAK_OVER_OUTPUTS / net_px, 64.0)
        cache["attention_per_px"] = [n * probe.shape[0] / net_px for n in positions]

    def _measure_shapes_only(self, probe: torch.Tensor) -> bool:
        """The memory estimate from a pass that computes nothing: what a real fp32 probe pass costs
        (a sixth of a 768x512 image's time for unet-resnet34), saved where the precision needs no
        fp32 reference. First on a copy of the model on the meta device (tensors with shapes and
        no storage), else on fake tensors (torch's FakeTensorMode, which also takes models that
        mix devices; its first use in a process costs ~0.4 s more). False where the model runs
        neither way (then a real pass measures)."""
        return self._measure_on_meta(probe) or self._measure_on_fake(probe)

    def _measure_on_meta(self, probe: torch.Tensor) -> bool:
        try:
            memo: dict[int, Any] = {}
            for t in [*self.model.parameters(), *self.model.buffers()]:
                meta_t = torch.empty_like(t, device="meta")
                memo[id(t)] = nn.Parameter(meta_t, requires_grad=False) if isinstance(t, nn.Parameter) else meta_t
            shadow = copy.deepcopy(self.model, memo).eval()
            x = torch.empty(probe.shape, device="meta").contiguous(memory_format=torch.channels_last)
            with self._size_hooks(probe, shadow), torch.inference_mode():
                shadow(x)
        except Exception:  # noqa: BLE001 - uncopyable, a tensor kept outside its parameters, .item()...
            return False
        return True

    def _measure_on_fake(self, probe: torch.Tensor) -> bool:
        try:
            from torch._subclasses.fake_tensor import FakeTensorMode
        except ImportError:
            return False
        x = probe.to(self.device)
        if self.device.type in ("cpu", "cuda"):
            x = x.contiguous(memory_format=torch.channels_last)
        was_training = self.model.training
        self.model.eval()
        try:
            with self._size_hooks(probe), FakeTensorMode(allow_non_fake_inputs=True) as mode:
                with torch.inference_mode():
                    self.model(mode.from_tensor(x))
        except Exception:  # noqa: BLE001 - an op without a fake kernel, a data-dependent branch...
            return False
        finally:
            if was_training:
                self.model.train()
        return True

    def _forward_measured(self, probe: torch.Tensor) -> torch.Tensor:
        """fp32 forward of the probe; records the memory estimate on the way if not known yet."""
        if not self.is_module or "bytes_per_px" in _cache(self.model):
            return self.forward(probe, None)
        with self._size_hooks(probe):
            y = self.forward(probe, None)
        return y


# --------------------------------------------------------------------------- tiling plan


def _ceil_to(n: int, q: int) -> int:
    return -(-n // q) * q


def _reflect_index(idx: np.ndarray, n: int) -> np.ndarray:
    """Indices into a length-n axis, reflected (without repeating the edge) any number of times."""
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * (n - 1)
    i = np.mod(idx, period)
    return np.where(i >= n, period - i, i)


@dataclass
class _Axis:
    n: int  # image length (LR px)
    t: int  # tile length (LR px)
    starts: list[int]  # window start of each tile (LR px)
    bounds: list[int]  # core boundaries: 0 = b_0 < b_1 < ... < b_k = n
    feather: int  # half-width of the blend around each inner boundary (LR px)

    @property
    def count(self) -> int:
        return len(self.starts)

    def weights(self, i: int, s: int) -> np.ndarray:
        """Blend weights of tile i over its output window (length t*s); they sum to 1 across tiles."""
        p = self.starts[i] * s + np.arange(self.t * s, dtype=np.float64) + 0.5
        w = np.ones_like(p)
        f = self.feather * s
        if i > 0:
            b = self.bounds[i] * s
            w *= np.clip((p - (b - f)) / (2 * f), 0, 1) if f else (p >= b)
        if i < self.count - 1:
            b = self.bounds[i + 1] * s
            w *= np.clip(((b + f) - p) / (2 * f), 0, 1) if f else (p < b)
        return w.astype(np.float32)


def _plan_axis(n: int, tile: int, margin: int, q: int, min_t: int) -> _Axis:
    """Tiles along one axis of length n.

    The axis is seen as a single whole-image pass sees it: reflect-padded at its end to
    ``full`` (the model's multiple). Windows of ``tile`` px lie inside [0, full), so tiles at the
    image border see exactly what the whole-image pass sees there; inner core boundaries get at
    least ``margin`` px of context on both sides.
    """
    full = max(_ceil_to(n, q), _ceil_to(max(min_t, 1), q))
    if full <= tile:
        return _Axis(n, full, [0], [0, n], 0)
    k = 2
    while True:
        bounds = [round(i * n / k) for i in range(k + 1)]
        starts = [min(max(b - margin, 0), full - tile) for b in bounds[:-1]]
        if all(s + tile >= min(b1 + margin, full) for s, b1 in zip(starts, bounds[1:])):
            break
        k += 1
    min_core = min(b - a for a, b in zip(bounds, bounds[1:]))
    feather = min(margin // 4, min_core // 2)
    return _Axis(n, tile, starts, bounds, feather)


def _default_margin(facts: ModelFacts) -> int:
    # 64 network px of context on each side of an inner tile boundary, at least 8 LR px (with 48,
    # the starter model's 256 px tiles differed from its whole-image output by up to 102/255
    # at a few pixels; with 64, by 31/255)
    return max(8, -(-64 // facts.pre_scale))


def _fit_tile(tile: int, margin: int, facts: ModelFacts) -> tuple[int, int]:
    """Round a requested tile side (LR px) to the model's multiple and shrink the margin to fit."""
    q = facts.lr_multiple
    t = max(_ceil_to(max(facts.min_size, 1), q), (tile // q) * q, q)
    margin = max(0, min(margin, (t - q) // 2, t // 4))
    return t, margin


def _tile_shape(h: int, w: int, area: int, margin: int, facts: ModelFacts) -> tuple[int, int]:
    """(tile height, tile width) in LR px holding at most ``area`` pixels: the whole image when it
    fits, a full-height (or full-width) strip when one side is short, else a square."""
    q = facts.lr_multiple
    full_h = max(_ceil_to(h, q), _ceil_to(max(facts.min_size, 1), q))
    full_w = max(_ceil_to(w, q), _ceil_to(max(facts.min_size, 1), q))
    if full_h * full_w <= area:
        return full_h, full_w
    side = max((math.isqrt(area) // q) * q, 2 * margin + q, q)
    if full_h <= side:
        return full_h, max(side, (area // full_h // q) * q)
    if full_w <= side:
        return max(side, (area // full_w // q) * q), full_w
    return side, side


def _auto_tile(runner: _Runner, probe: torch.Tensor, many_tiles: bool = False) -> tuple[int, int]:
    """(LR pixels per tile, tiles per batch) from the memory available now.

    Tile memory ~ a*P for P network pixels (``a`` the activations per pixel) plus a fixed reserve
    per global self-attention layer (its chunked inference needs no N x N map); P is the largest
    that fits the budget, at most the square of the device's largest useful tile side.
    """
    dev = runner.device.type
    pre = runner.facts.pre_scale
    max_px = _MAX_NET_TILE.get(dev, 1024) ** 2
    per_px = runner.bytes_per_net_px(probe)
    if per_px is None:  # foreign runtime (ONNX): a safe fixed size
        return 256 * 256 // (pre * pre), 1
    budget = available_memory(runner.device) * _MEMORY_SHARE.get(dev, 0.3)
    if dev == "cpu":
        budget = min(budget, _CPU_MEMORY_CAP)
        if many_tiles and keep_freed_memory():  # malloc keeps freed blocks: from tile to tile the
            budget *= _KEPT_MEMORY_SHARE  # peak grew to ~1.7x the live activations
    budget = max(budget - _ATTENTION_RESERVE * len(_cache(runner.model).get("attention_per_px", [])), budget / 2)
    p = min(budget / per_px, float(max_px))
    per_tile = per_px * p
    batch = 1 if dev == "cpu" else int(max(1, min(8, budget // max(per_tile, 1.0))))
    return max(1, int(p) // (pre * pre)), batch


# --------------------------------------------------------------------------- restore arrays


def _to_float_tiles(tiles: list[np.ndarray]) -> torch.Tensor:
    """Stack HxWx3 tiles into a (B,3,H,W) float32 tensor in [0,1] (channels_last memory)."""
    arr = np.stack(tiles)
    t = torch.from_numpy(arr).permute(0, 3, 1, 2)
    if arr.dtype == np.uint8:
        return t.float().div_(255.0)
    if arr.dtype == np.uint16:
        return t.to(torch.float32).div_(65535.0)
    return t.float()


def _quantize(band: np.ndarray, dtype: np.dtype) -> np.ndarray:
    np.clip(band, 0.0, 1.0, out=band)
    if dtype == np.uint8:
        return np.rint(band * 255.0).astype(np.uint8)
    if dtype == np.uint16:
        return np.rint(band * 65535.0).astype(np.uint16)
    return band.astype(dtype, copy=True)


def _probe_tile(arr: np.ndarray, facts: ModelFacts) -> torch.Tensor:
    """A tile of about 256 network px from the middle of the image (reflected where the image is
    smaller): big enough for the precision check to see the model's deep features at work."""
    q = facts.lr_multiple
    p = _ceil_to(max(256 // facts.pre_scale, facts.min_size, 8), q)
    h, w = arr.shape[:2]
    rows = _reflect_index(np.arange(p) + (h - p) // 2, h)
    cols = _reflect_index(np.arange(p) + (w - p) // 2, w)
    return _to_float_tiles([arr[rows][:, cols]])


def _run_tiles(
    runner: _Runner,
    arr: np.ndarray,
    tile: tuple[int, int],
    margin: int,
    batch_size: int,
    on_event: Optional[EventCallback],
    cancel: Optional[CancelToken],
    ensemble: bool = False,
) -> np.ndarray:
    facts = runner.facts
    s = facts.scale
    h, w = arr.shape[:2]
    q = facts.lr_multiple
    ay = _plan_axis(h, tile[0], margin, q, facts.min_size)
    ax = _plan_axis(w, tile[1], margin, q, facts.min_size)
    if facts.square and ay.t != ax.t:
        side = max(ay.t, ax.t)
        ay, ax = _plan_axis(h, side, margin, q, side), _plan_axis(w, side, margin, q, side)
    total = ay.count * ax.count
    out = np.empty((h * s, w * s, 3), dtype=arr.dtype)
    wxs = [ax.weights(j, s) for j in range(ax.count)]
    carry: np.ndarray | None = None
    done = 0
    for i in range(ay.count):
        lo = 0 if i == 0 else (ay.bounds[i] - ay.feather) * s
        hi = h * s if i == ay.count - 1 else (ay.bounds[i + 1] + ay.feather) * s
        band = np.zeros((hi - lo, w * s, 3), dtype=np.float32)
        if carry is not None:
            band[: carry.shape[0]] += carry
        wy = ay.weights(i, s)
        y0 = ay.starts[i] * s  # output row of the window's first row
        r0, r1 = max(lo, y0), min(hi, y0 + ay.t * s)
        wy_cut = wy[r0 - y0 : r1 - y0, None, None]
        rows = _reflect_index(np.arange(ay.starts[i], ay.starts[i] + ay.t), h)
        strip = arr[rows]  # (t, W, 3)
        j = 0
        while j < ax.count:
            check(cancel)
            js = list(range(j, min(j + batch_size, ax.count)))
            tiles = [strip[:, _reflect_index(np.arange(ax.starts[k], ax.starts[k] + ax.t), w)] for k in js]
            x = _to_float_tiles(tiles)
            try:
                y = runner.forward(x, runner.dtype, ensemble)
            except Exception as err:
                if not _is_oom(err):
                    raise
                del x
                if runner.device.type == "cuda":
                    torch.cuda.empty_cache()
                if batch_size > 1:
                    batch_size = max(1, batch_size // 2)
                    continue
                raise _TileOutOfMemory() from err
            yn = y.permute(0, 2, 3, 1).numpy()  # (B, t*s, t*s, 3)
            for b, k in enumerate(js):
                x0 = ax.starts[k] * s
                c0, c1 = max(0, x0), min(w * s, x0 + ax.t * s)
                wx = wxs[k][c0 - x0 : c1 - x0]
                band[r0 - lo : r1 - lo, c0:c1] += yn[b, r0 - y0 : r1 - y0, c0 - x0 : c1 - x0] * wy_cut * wx[None, :, None]
            done += len(js)
            j += len(js)
            emit(on_event, Progress(done=done, total=total, stage="tiles"))
        fin = hi if i == ay.count - 1 else (ay.bounds[i + 1] - ay.feather) * s
        out[lo:fin] = _quantize(band[: fin - lo], arr.dtype)
        carry = band[fin - lo :].copy() if i < ay.count - 1 else None
        del band
    return out


def restore_array(
    model: Any,
    arr: np.ndarray,
    *,
    tile: int | None = None,
    overlap: int | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    precision: str = "auto",
    ensemble: bool = False,
    on_event: Optional[EventCallback] = None,
    cancel: Optional[CancelToken] = None,
) -> np.ndarray:
    """Restore an HxWx3 array (uint8, uint16, or float in [0,1]) -> (H*s)x(W*s)x3, same dtype.

    ``tile``: LR tile side in px (rounded to the model's multiple); None picks it from the
    memory available. ``overlap``: LR context px at each inner tile boundary (None: 64 network
    px). ``precision``: "auto" (bf16 on CPUs that support it, fp16 on CUDA, each only where the
    model's output on a ~256 px probe tile has a PSNR >= 45 dB against fp32's; decided once per
    model and device, and kept per model file across sessions; an image too small for the probe to
    pay is restored in fp32 without it; fp32 for 16-bit images), "fp32", "bf16" or "fp16". ``ensemble``:
    x8 self-ensemble (eight flipped/turned passes averaged; eight times the time). Out of memory
    halves the tile and starts the image again.
    """
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ModelError(f"restore_array needs an HxWx3 array, got shape {arr.shape}.")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ModelError("Cannot restore an empty image.")
    if arr.dtype not in (np.uint8, np.uint16):
        arr = np.ascontiguousarray(arr, dtype=np.float32)
    runner = _Runner(model, device, precision)
    note = _precision_note(model, precision)
    if note:
        emit(on_event, Log(note, level="warning"))
    if runner.device.type == "cpu":
        keep_freed_memory()  # reuse activation memory from pass to pass instead of page-faulting it in
    facts = runner.facts
    probe = _probe_tile(arr, facts)
    work_px = arr.shape[0] * arr.shape[1] * (8 if ensemble else 1)
    runner.choose_precision(probe, high_bit_depth=arr.dtype == np.uint16, work_px=work_px)
    margin = _default_margin(facts) if overlap is None else max(0, int(overlap))
    h, w = arr.shape[:2]
    if tile:
        th = tw = int(tile)
        auto_batch = 1 if runner.device.type == "cpu" else 4
    else:
        area, auto_batch = _auto_tile(runner, probe)
        th, tw = _tile_shape(h, w, area, margin, facts)
        if (th, tw) != _tile_shape(h, w, 1 << 62, margin, facts):  # tiled: the budget for many tiles
            area, auto_batch = _auto_tile(runner, probe, many_tiles=True)
            th, tw = _tile_shape(h, w, area, margin, facts)
    (th, m1), (tw, m2) = _fit_tile(th, margin, facts), _fit_tile(tw, margin, facts)
    margin = min(m1, m2)
    if batch_size is None:
        batch_size = auto_batch
    while True:
        try:
            return _run_tiles(runner, arr, (th, tw), margin, max(1, int(batch_size)), on_event, cancel, ensemble)
        except _TileOutOfMemory as err:
            q = facts.lr_multiple
            smaller = ((th // 2) // q * q, (tw // 2) // q * q)
            if min(smaller) < max(q, facts.min_size):
                raise DeviceError(
                    f"Out of memory on {runner.device} even with {th}x{tw} px tiles. Close other programs "
                    "or use a smaller model or another device."
                ) from err.__cause__
            emit(on_event, Log(f"Out of memory with {th}x{tw} px tiles; retrying with {smaller[0]}x{smaller[1]} px.",
                               level="warning"))
            (th, m1), (tw, m2) = _fit_tile(smaller[0], margin, facts), _fit_tile(smaller[1], margin, facts)
            margin = min(m1, m2)
            batch_size = 1


# --------------------------------------------------------------------------- restore images


def _luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma (as PIL's "L" conversion), same dtype as the input."""
    y = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if rgb.dtype == np.uint8:
        return np.clip(np.rint(y), 0, 255).astype(np.uint8)
    if rgb.dtype == np.uint16:
        return np.clip(np.rint(y), 0, 65535).astype(np.uint16)
    return y.astype(rgb.dtype)


def _resize_plane(plane: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bicubic resize of one HxW plane (alpha) keeping its dtype."""
    from PIL import Image

    if plane.shape[1] == width and plane.shape[0] == height:
        return plane.copy()
    img = Image.fromarray(plane.astype(np.float32), mode="F")
    out = np.asarray(img.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)
    if plane.dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    if plane.dtype == np.uint16:
        return np.clip(np.rint(out), 0, 65535).astype(np.uint16)
    return out.astype(plane.dtype)


def restore_image(
    model: Any,
    img: Any,
    *,
    tile: int | None = None,
    overlap: int | None = None,
    device: str | torch.device | None = None,
    precision: str = "auto",
    ensemble: bool = False,
    on_event: Optional[EventCallback] = None,
    cancel: Optional[CancelToken] = None,
) -> Any:
    """Restore an :class:`~.images.ImageData`; returns a new one at ``scale`` times the size.

    Alpha is resized (bicubic) separately and put back, greyscale inputs are restored as RGB and
    returned grey, 16-bit stays 16-bit (and fp32, under precision "auto"); EXIF, ICC, format
    and path are kept. See :func:`restore_array` for the other arguments.
    """
    out = restore_array(
        model, img.rgb, tile=tile, overlap=overlap, device=device, precision=precision, ensemble=ensemble,
        on_event=on_event, cancel=cancel,
    )
    if getattr(img, "is_grey", False):
        out = np.repeat(_luma(out)[:, :, None], 3, axis=2)
    alpha = img.alpha
    if alpha is not None:
        alpha = _resize_plane(alpha, out.shape[1], out.shape[0])
    extra = dict(getattr(img, "extra", None) or {})
    return dataclasses.replace(img, rgb=out, alpha=alpha, extra=extra)


# --------------------------------------------------------------------------- restore folders

# --format choices -> (PIL format, file extension)
OUTPUT_FORMATS: dict[str, tuple[str, str]] = {
    "png": ("PNG", ".png"),
    "jpg": ("JPEG", ".jpg"),
    "jpeg": ("JPEG", ".jpg"),
    "webp": ("WEBP", ".webp"),
    "tiff": ("TIFF", ".tif"),
    "tif": ("TIFF", ".tif"),
}


@dataclass
class RestoreSummary:
    """What a folder restore did. ``failed``: (source path, reason) pairs."""

    done: int = 0
    skipped: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)
    megapixels: float = 0.0  # input megapixels restored
    seconds: float = 0.0
    dst: Path | None = None
    total: int = 0  # files this process was responsible for
    unreadable: int = 0  # how many of ``failed`` could not be read (not images, damaged)
    rank: int = 0
    world_size: int = 1
    # (source, frames) of animated / multi-frame files (GIF, TIFF, WebP ...): only the first frame is restored
    first_frame_only: list[tuple[Path, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every readable image was restored (or skipped as already done)."""
        return len(self.failed) == self.unreadable

    @property
    def megapixels_per_s(self) -> float:
        return self.megapixels / self.seconds if self.seconds > 0 else 0.0

    @property
    def speed_text(self) -> str:
        """The speed for people: "12.3 MP/s", "6.14 kpx/s, 1.0 s an image" ("" before any image)."""
        from .units import format_speed

        text = format_speed(self.megapixels_per_s) if self.done else ""
        if text and self.megapixels_per_s < 0.1:  # small images: the time each one took says more
            each = self.seconds / self.done
            text += f", {each:.1f} s an image" if each >= 1 else f", {each:.2g} s an image"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "done": self.done,
            "skipped": self.skipped,
            "failed": [{"path": str(p), "reason": r} for p, r in self.failed],
            "megapixels": round(self.megapixels, 4),
            "seconds": round(self.seconds, 3),
            "dst": str(self.dst) if self.dst else None,
            "total": self.total,
            "unreadable": self.unreadable,
            "first_frame_only": [{"path": str(p), "frames": n} for p, n in self.first_frame_only],
            "rank": self.rank,
            "world_size": self.world_size,
        }


def _dist_share() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) outside it."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1") or 1)
        rank = int(os.environ.get("RANK", "0") or 0)
    except ValueError:
        return 0, 1
    if world < 1 or not 0 <= rank < world:
        return 0, 1
    return rank, world


def _writable_ext(ext: str) -> bool:
    from PIL import Image

    Image.init()
    fmt = Image.registered_extensions().get(ext.lower())
    return fmt is not None and fmt in Image.SAVE


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def _plan_outputs(
    files: list[Path], src_root: Path, dst: Path, keep_tree: bool, out_format: str
) -> list[tuple[Path, Path, str | None]]:
    """(source, output path, PIL format or None for "by extension") for every file."""
    fmt = out_format.lower()
    if fmt != "keep" and fmt not in OUTPUT_FORMATS:
        raise Lesson7Error(f"Unknown output format '{out_format}'. Use keep, {', '.join(sorted(set(OUTPUT_FORMATS)))}.")
    plan = []
    used: set[Path] = set()
    for f in files:
        rel = f.relative_to(src_root) if src_root != f else Path(f.name)
        if fmt == "keep":
            if _writable_ext(f.suffix):
                ext, pil = f.suffix, None
            else:  # e.g. HEIC without its writer
                ext, pil = ".png", "PNG"
        else:
            pil, ext = OUTPUT_FORMATS[fmt]
        name = rel.with_suffix(ext) if keep_tree else Path(rel.stem + ext)
        out = dst / name
        n = 2
        while out in used:  # flat output: same stem in two folders
            out = dst / name.with_name(f"{name.stem}-{n}{ext}")
            n += 1
        used.add(out)
        plan.append((f, out, pil))
    return plan


def _clean_stale_parts(folder: Path, name: str) -> None:
    """Remove temp files that a killed earlier run left for output ``name``.

    atomic_write names them '.<name>.<pid>-<hex>.part'; only those of dead processes go.
    """
    try:
        stale = list(folder.glob(f".{name}.*.part"))
    except OSError:
        return
    for p in stale:
        pid_text = p.name[len(name) + 2 :].split("-", 1)[0]
        if pid_text.isdigit():
            pid = int(pid_text)
            if pid == os.getpid():
                continue
            try:
                os.kill(pid, 0)
                continue  # that writer is alive
            except ProcessLookupError:
                pass
            except (PermissionError, OSError):
                continue
        with contextlib.suppress(OSError):
            p.unlink()


class _InlineExecutor:
    """The ``submit``/``shutdown`` of a ThreadPoolExecutor, running each call at once."""

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as err:  # noqa: BLE001 - delivered through the future, as a pool would
            fut.set_exception(err)
        return fut

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass




_MAX_IO_THREADS = 6  # decode + up to 5 encodes in flight (each holds its restored image)
_MAX_PENDING_BYTES = 1 << 30  # restored images held by the writes in flight (one is always allowed)


def _io_pool(dev: torch.device) -> tuple[Any, int]:
    """(executor for file decodes and encodes, how many encodes may be in flight) on ``dev``."""
    if dev.type == "cpu":
        return _InlineExecutor(), 1
    workers = max(2, min(_MAX_IO_THREADS, os.cpu_count() or 2))
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="restore-io"), workers - 1  # one free to decode


def restore_folder(
    model: Any,
    src: str | Path,
    dst: str | Path,
    *,
    recursive: bool = True,
    keep_tree: bool = True,
    skip_existing: bool = False,
    out_format: str = "keep",
    tile: int | None = None,
    device: str | torch.device | None = None,
    precision: str = "auto",
    ensemble: bool = False,
    allow_in_place: bool = False,
    max_pixels: int | None = None,
    quality: int = 95,
    on_event: Optional[EventCallback] = None,
    cancel: Optional[CancelToken] = None,
) -> RestoreSummary:
    """Restore every image of ``src`` (a folder, or one file) into the folder ``dst``.

    Keeps the folder tree (``keep_tree``) and each file's format (``out_format="keep"``, else
    png/jpg/webp/tiff with the extension changed). Writes are atomic, so an output that exists is
    complete: ``skip_existing`` makes a rerun resume where a cancelled or killed run stopped.
    A file that cannot be read, restored or written is reported (ItemFailed, ``summary.failed``)
    and the batch goes on. Files inside ``dst`` are never taken as sources. No source file is
    overwritten unless ``allow_in_place``. Under torchrun (RANK / WORLD_SIZE set) each rank
    restores its share ``files[rank::world]`` of the sorted list. Cancel stops between tiles and
    leaves no partial file.
    """
    from . import images

    src = Path(src).expanduser()
    dst = Path(dst).expanduser()
    if not src.exists():
        raise Lesson7Error(f"Source {src} does not exist.")
    src_r, dst_r = src.resolve(), dst.resolve()
    if dst_r.exists() and not dst_r.is_dir():
        raise Lesson7Error(f"Destination {dst} is a file; give a folder.")
    if not 1 <= int(quality) <= 100:
        raise Lesson7Error(f"Quality must be between 1 and 100; got {quality}.")
    if src_r.is_dir():
        if dst_r == src_r and not allow_in_place:
            raise Lesson7Error(
                f"Refusing to write into the source folder {src}: choose another destination "
                "(or allow in-place writes explicitly)."
            )
        files = [p for p in images.iter_images(src, recursive=recursive) if not _is_within(p.resolve(), dst_r) or dst_r == src_r]
        src_root = src
    else:
        files = [src]
        src_root = src
    plan = _plan_outputs(files, src_root, dst, keep_tree, out_format)
    sources = {f.resolve() for f in files}
    rank, world = _dist_share()
    plan = plan[rank::world]
    summary = RestoreSummary(dst=dst, total=len(plan), rank=rank, world_size=world)
    note = _precision_note(model, precision)
    if note:  # said once for the folder, not again for each image
        emit(on_event, Log(note, level="warning"))
        precision = "auto"
    meter = RateMeter(len(plan))
    t0 = time.perf_counter()
    load_kw = {} if max_pixels is None else {"max_pixels": max_pixels}

    def load(path: Path):
        return images.load_image(path, **load_kw)

    # On a GPU, decoding the next file and encoding the last ones overlap the network, several
    # encodes at a time (Pillow releases the GIL while it compresses; a PNG encode takes longer
    # than the network's pass there). On the CPU the network's threads already use every core,
    # and an encoder thread beside them only preempts one of them while the others wait for it
    # (4 Kodak images with unet-resnet34 in bf16, 2 cores: 5.56 s overlapped, 5.33 s in line).
    pool, max_pending = _io_pool(_model_device(model, device))
    pending_saves: deque[tuple[Path, Path, float, int, Future]] = deque()  # (src, out, MP, bytes held, write)

    def finish_save() -> None:
        """Wait for the oldest write in flight and report it."""
        path, out, mp, _nbytes, fut = pending_saves.popleft()
        try:
            fut.result()
        except Exception as err:  # reported, never fatal to the batch
            reason = err.reason if isinstance(err, ImageWriteError) else f"cannot write {out}: {type(err).__name__}: {err}"
            summary.failed.append((path, reason))
            emit(on_event, ItemFailed(path=path, reason=reason))
            return
        summary.done += 1
        summary.megapixels += mp
        emit(on_event, ItemDone(path=path, output=out, info={"megapixels": mp}))

    def finish_saves(keep: int = 0, room_for: int = 0) -> None:
        """Finish the oldest writes until at most ``keep`` are in flight and the images they hold
        leave ``room_for`` more bytes within _MAX_PENDING_BYTES."""
        while len(pending_saves) > keep or (
                pending_saves and sum(e[3] for e in pending_saves) + room_for > _MAX_PENDING_BYTES):
            finish_save()

    def progress(done: int, name: str) -> None:
        _rate, eta = meter.update(done)
        elapsed = time.perf_counter() - t0
        mps = summary.megapixels / elapsed if elapsed > 0 and summary.megapixels else None
        emit(
            on_event,
            Progress(done=done, total=len(plan), message=name, stage="restore", rate=mps, rate_unit="MP/s", eta_s=eta),
        )

    todo: list[tuple[Path, Path, str | None]] = []
    for path, out, pil in plan:
        if not allow_in_place and out.resolve() in sources:
            reason = f"output {out} would overwrite a source file"
            summary.failed.append((path, reason))
            emit(on_event, ItemFailed(path=path, reason=reason))
        elif skip_existing and out.exists():
            summary.skipped += 1
            emit(on_event, ItemSkipped(path=path, reason=f"{out} exists"))
        else:
            todo.append((path, out, pil))
    handled = len(plan) - len(todo)
    if todo:
        check_output_folder(dst)  # before restoring anything (OutputFolderError)
    progress(handled, "")

    def fail(idx: int, path: Path, reason: str) -> None:
        summary.failed.append((path, reason))
        emit(on_event, ItemFailed(path=path, reason=reason))
        progress(handled + idx + 1, path.name)

    said: set[str] = set()
    try:
        next_load: Future | None = pool.submit(load, todo[0][0]) if todo else None
        for idx, (path, out, pil) in enumerate(todo):
            check(cancel)
            fut, next_load = next_load, None
            if idx + 1 < len(todo):  # decode the next file while this one is restored
                next_load = pool.submit(load, todo[idx + 1][0])
            try:
                img = fut.result()
            except ImageReadError as err:
                summary.unreadable += 1
                fail(idx, path, err.reason)
                continue
            except (OSError, ValueError) as err:
                summary.unreadable += 1
                fail(idx, path, f"cannot read: {err}")
                continue
            mp = img.rgb.shape[0] * img.rgb.shape[1] / 1e6
            frames = int(img.extra.get("frames", 1) or 1)
            if frames > 1:
                summary.first_frame_only.append((path, frames))
                emit(on_event, Log(f"{path.name} has {frames} frames; only the first one is restored.",
                                   level="warning"))

            def tile_progress(ev: Any, name: str = path.name) -> None:  # tiles done inside this image
                if isinstance(ev, Progress) and ev.stage == "tiles":
                    ev = dataclasses.replace(ev, message=name)
                elif isinstance(ev, Log):  # the same note for every image is said once
                    if ev.message in said:
                        return
                    said.add(ev.message)
                emit(on_event, ev)

            try:
                restored = restore_image(model, img, tile=tile, device=device, precision=precision,
                                         ensemble=ensemble, on_event=tile_progress, cancel=cancel)
            except (Cancelled, DeviceError):
                raise
            except (Lesson7Error, RuntimeError, ValueError) as err:
                fail(idx, path, f"cannot restore: {err}")
                continue
            del img
            nbytes = restored.rgb.nbytes + (0 if restored.alpha is None else restored.alpha.nbytes)
            finish_saves(keep=max_pending - 1, room_for=nbytes)  # earlier writes, which ran while this one was restored
            try:
                out.parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                fail(idx, path, f"cannot create the folder {out.parent}: {os_error_reason(err, out.parent)}")
                continue
            _clean_stale_parts(out.parent, out.name)
            pending_saves.append((path, out, mp, nbytes, pool.submit(images.save_image, restored, out, format=pil, quality=quality)))
            del restored
            while pending_saves and pending_saves[0][4].done():  # report finished writes now (in line: this one)
                finish_save()
            progress(handled + idx + 1, path.name)
        finish_saves()
    except Cancelled:
        finish_saves()  # writes in flight complete (atomic either way) and are reported
        raise
    finally:
        for *_rest, fut in pending_saves:
            with contextlib.suppress(Exception):
                fut.result()
        pool.shutdown(wait=True, cancel_futures=True)
        release_freed_memory()
    summary.seconds = time.perf_counter() - t0
    emit(on_event, Finished(summary=summary.to_dict()))
    return summary


# --------------------------------------------------------------------------- loading models

SPANDREL_HINT = 'Install the optional extra: pip install "lesson7-studio[spandrel]"'
_FOREIGN_TORCH_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")


def starter_model_path() -> Path:
    """Where the bundled starter model lives (resources/models/starter.safetensors)."""
    from .project import resources_dir

    return resources_dir() / "models" / "starter.safetensors"


class SpandrelRestorer(nn.Module):
    """A spandrel ``ImageModelDescriptor`` behind the Restorer convention: (B,3,h,w) in [0,1]
    -> (B,3,h*s,w*s) in [0,1], with ``.info`` (a ModelInfo), ``min_size``, ``square`` and the
    ``precisions`` the architecture supports."""

    def __init__(self, descriptor: Any, source: Path | None = None) -> None:
        super().__init__()
        from .models.registry import ModelInfo

        self.net = descriptor.model
        self.source_file = source  # keys the precision verdict (precision_cache)
        self.in_channels = int(descriptor.input_channels)
        self.out_channels = int(descriptor.output_channels)
        if self.in_channels not in (1, 3) or self.out_channels not in (1, 3):
            raise ModelError(
                f"{source.name if source else 'The model'} takes {self.in_channels} and gives "
                f"{self.out_channels} channels; only RGB or grey image models can restore photos."
            )
        req = descriptor.size_requirements
        self.min_size = int(getattr(req, "minimum", 0) or 0)
        self.square = bool(getattr(req, "square", False))
        arch = descriptor.architecture
        arch_name = getattr(arch, "name", None) or str(getattr(arch, "id", "model"))
        self.precisions = {"fp32"}
        if getattr(descriptor, "supports_half", False):
            self.precisions.add("fp16")
        if getattr(descriptor, "supports_bfloat16", False):
            self.precisions.add("bf16")
        self.info = ModelInfo(
            name=f"spandrel:{arch_name}",
            description=f"{arch_name} x{descriptor.scale} ({descriptor.purpose}) loaded by spandrel"
            + (f" from {source.name}" if source else ""),
            kind="restorer",
            options={"architecture": str(getattr(arch, "id", arch_name)), "file": str(source) if source else None},
            params=sum(p.numel() for p in self.net.parameters()),
            in_channels=3,
            out_channels=3,
            scale=int(descriptor.scale),
            model_scale=int(descriptor.scale),
            size_multiple=int(getattr(req, "multiple_of", 1) or 1),
            mean=None,
            std=None,
        )
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_channels == 1:
            x = (x * x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        y = self.net(x)
        if self.out_channels == 1:
            y = y.expand(-1, 3, -1, -1)
        return y.clamp(0, 1) if not self.training else y


def _load_spandrel(path: Path, device: torch.device) -> SpandrelRestorer:
    from . import checkpoint

    # Tensors first, through our safe reader: a pickle with code is refused before anything else.
    sd = checkpoint.load_foreign_state_dict(path)
    try:
        import spandrel
    except ImportError:
        raise ModelError(
            f"{path.name} is not a Lesson7 Studio checkpoint; community models (ESRGAN, Real-ESRGAN, "
            "SwinIR, ...) are loaded with spandrel, which is not installed.",
            hint=SPANDREL_HINT,
        ) from None
    try:
        desc = spandrel.ModelLoader(device=torch.device("cpu")).load_from_state_dict(sd)
    except Exception as err:  # spandrel's UnsupportedModelError and shape mismatches
        raise CheckpointError(f"{path.name}: spandrel does not recognise this architecture ({err}).") from None
    if not isinstance(desc, spandrel.ImageModelDescriptor):
        raise ModelError(f"{path.name} is a {type(desc).__name__} (e.g. inpainting); it cannot restore photos.")
    return SpandrelRestorer(desc, path).to(device)


def load_any_model(path_or_name: str | os.PathLike, device: str | torch.device | None = None) -> Any:
    """A Restorer-like model from a file or the name "starter".

    Our ``.safetensors`` checkpoints are rebuilt from their metadata; ``.onnx`` files run with
    onnxruntime (:class:`~.export.OnnxRestorer`); other ``.safetensors`` / ``.pth`` / ``.pt`` /
    ``.ckpt`` files are read safely (never unpickling code: UnsafeFileError) and their
    architecture is recognised by spandrel (optional extra). ``device``: see
    :func:`resolve_device`.
    """
    from . import checkpoint
    from .models import registry

    dev = resolve_device(device)
    key = str(path_or_name)
    if key == "starter":
        path = starter_model_path()
        if not path.is_file():
            raise CheckpointError(
                f"The bundled starter model is missing ({path}).",
                hint="Reinstall Lesson7 Studio, or pass a model file with --model.",
            )
    else:
        path = Path(key).expanduser()
        if not path.exists():
            if key in registry.names():
                raise ModelError(
                    f"'{key}' names an architecture, not a trained model: its weights would be random.",
                    hint="Train one (lesson7-studio train) and pass its model.safetensors, or use the starter model.",
                )
            raise CheckpointError(f"Model file not found: {path}")
        if path.is_dir():
            found = path / "model.safetensors"
            if not found.is_file():
                raise CheckpointError(f"{path} is a folder without a model.safetensors; pass the model file itself.")
            path = found
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from .export import OnnxRestorer

        return OnnxRestorer(path)
    if suffix == ".safetensors":
        if checkpoint.has_lesson7_metadata(path):  # ours, even when too new: its own error
            from .models.layers import bake_parametrizations

            loaded = checkpoint.load_model(path, device=dev)
            # for inference: plain weights, not recomputed from their weight/spectral norm each call
            model = bake_parametrizations(loaded.restorer()).eval()
            model.checkpoint_meta = loaded.meta  # type: ignore[attr-defined]
            model.source_file = path  # type: ignore[attr-defined]  # keys the precision verdict
            return model
        return _load_spandrel(path, dev)
    if suffix in _FOREIGN_TORCH_SUFFIXES or suffix in checkpoint.FOREIGN_SUFFIXES:
        return _load_spandrel(path, dev)
    raise CheckpointError(
        f"Cannot load {path.name}: use a .safetensors checkpoint, an .onnx file or community "
        ".pth/.pt/.ckpt weights."
    )


# --------------------------------------------------------------------------- evaluation

_BASELINE_FILTERS = {"bicubic": "BICUBIC", "lanczos": "LANCZOS", "bilinear": "BILINEAR", "nearest": "NEAREST"}


def _metric_row(out: np.ndarray, hr: np.ndarray, border: int) -> dict[str, float]:
    from . import metrics

    return {
        "psnr_y": metrics.psnr(out, hr, y_channel=True, crop=border),
        "psnr_rgb": metrics.psnr(out, hr, crop=border),
        "ssim_y": metrics.ssim(out, hr, y_channel=True, crop=border),
    }


def _mean_rows(rows: list[dict[str, float]]) -> dict[str, float]:
    if not rows:
        return {}
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def evaluate(
    model: Any,
    folder: str | os.PathLike,
    recipe: Any,
    seed: int = 0,
    *,
    baselines: Sequence[str | tuple[str, Callable[[Any, tuple[int, int]], Any]]] = ("bicubic",),
    tile: int | None = None,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    ensemble: bool = False,
    recursive: bool = True,
    max_images: int | None = None,
    on_event: Optional[EventCallback] = None,
    cancel: Optional[CancelToken] = None,
) -> dict[str, Any]:
    """Crappify each ground-truth image of ``folder`` with ``recipe`` (its seed derived from
    ``seed`` and the file's relative path, as datasets.build_pairs does), restore it, and score
    the model and each baseline against the original (``model=None``: the baselines alone).

    Scores: Y-PSNR and SSIM on BT.601 luma and RGB-PSNR, with ``border`` = the recipe's scale
    (the model's when the recipe has none) cropped from every side; outputs of another size
    than the original (recipes without a fixed scale) are resized to it (bicubic) first. The
    HR image is cropped top-left to a multiple of the scale. Baselines: "bicubic", "lanczos",
    "bilinear", "nearest" (Pillow upsampling of the degraded image) or ``(name, fn)`` with
    ``fn(lr_pil, (w, h)) -> PIL image``. Unreadable images are listed under "skipped".
    Returns per-image rows, means and the mean Y-PSNR gain of the model over each baseline.
    """
    from PIL import Image

    from . import images
    from .crappify import apply_recipe, get_recipe, prepare_hr
    from .datasets import item_seed

    rec = get_recipe(recipe)
    folder = Path(folder).expanduser()
    files = list(images.iter_images(folder, recursive=recursive))
    if max_images is not None:
        files = files[: max(0, int(max_images))]
    if not files:
        raise Lesson7Error(f"No images found in {folder}.")
    if model is None:  # baselines only
        if not rec.scale:
            raise RecipeError(f"Recipe '{rec.name}' has no fixed scale; scoring baselines alone needs one.")
        facts = None
        border = int(rec.scale)
    else:
        facts = model_facts(model)
        border = int(rec.scale or facts.scale)
    if facts is not None and rec.scale and rec.scale != facts.scale:
        emit(on_event, Log(
            f"The model restores x{facts.scale} but recipe '{rec.name}' degrades x{rec.scale}; "
            "outputs are resized to the original size before scoring.", level="warning"))
    named: list[tuple[str, Callable[[Any, tuple[int, int]], Any]]] = []
    for b in baselines:
        if isinstance(b, tuple):
            named.append((str(b[0]), b[1]))
        elif b in _BASELINE_FILTERS:
            flt = getattr(Image.Resampling, _BASELINE_FILTERS[b])
            named.append((b, lambda lr, size, flt=flt: lr.resize(size, flt)))
        else:
            raise Lesson7Error(f"Unknown baseline '{b}'. Use {', '.join(_BASELINE_FILTERS)} or (name, function).")
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    t0 = time.perf_counter()
    meter = RateMeter(len(files))
    try:
        for i, path in enumerate(files):
            check(cancel)
            rel = path.relative_to(folder).as_posix()
            try:
                data = images.load_image(path)
                hr_pil, _changed = prepare_hr(data, rec.scale, None)
            except (ImageReadError, Lesson7Error) as err:
                reason = getattr(err, "reason", None) or str(err)
                skipped.append({"path": str(path), "reason": reason})
                emit(on_event, ItemFailed(path=path, reason=reason))
                continue
            lr_pil = apply_recipe(hr_pil, rec, item_seed(seed, rel)).image
            hr = np.asarray(hr_pil, dtype=np.float32) / 255.0
            row: dict[str, Any] = {"file": rel, "size": [hr_pil.width, hr_pil.height], "lr_size": [lr_pil.width, lr_pil.height]}
            if model is not None:
                out_img = restore_image(model, images.from_pil(lr_pil), tile=tile, device=device, precision=precision,
                                        ensemble=ensemble, cancel=cancel)
                out = images.to_float(out_img)
                if out.shape[:2] != hr.shape[:2]:
                    pil = Image.fromarray(out_img.rgb).resize(hr_pil.size, Image.Resampling.BICUBIC)
                    out = np.asarray(pil, dtype=np.float32) / 255.0
                    row["resized"] = True
                row["model"] = _metric_row(out, hr, border)
            for name, fn in named:
                base = np.asarray(fn(lr_pil, hr_pil.size).convert("RGB"), dtype=np.float32) / 255.0
                row[name] = _metric_row(base, hr, border)
            rows.append(row)
            emit(on_event, ItemDone(path=path, info={k: row[k] for k in row if k not in ("file",)}))
            _rate, eta = meter.update(i + 1)
            emit(on_event, Progress(done=i + 1, total=len(files), message=rel, stage="eval", eta_s=eta))
    finally:
        release_freed_memory()
    if not rows:
        raise Lesson7Error(f"None of the {len(files)} images in {folder} could be read.")
    mean = {} if model is None else {"model": _mean_rows([r["model"] for r in rows])}
    for name, _fn in named:
        mean[name] = _mean_rows([r[name] for r in rows])
    info = getattr(model, "info", None)
    result = {
        "model": None if model is None else getattr(info, "name", type(model).__name__),
        "folder": str(folder),
        "recipe": rec.name,
        "recipe_hash": rec.hash(),
        "seed": int(seed),
        "scale": facts.scale if facts is not None else int(rec.scale),
        "border": border,
        "precision": precision,
        "ensemble": bool(ensemble),
        "count": len(rows),
        "metrics": ["psnr_y", "psnr_rgb", "ssim_y"],
        "mean": mean,
        "gain_psnr_y": {} if model is None else {name: mean["model"]["psnr_y"] - mean[name]["psnr_y"] for name, _ in named},
        "images": rows,
        "skipped": skipped,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    emit(on_event, Finished(summary={k: result[k] for k in ("model", "count", "mean", "gain_psnr_y")}))
    return result
