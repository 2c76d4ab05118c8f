"""Memory: what is available now, what a model's activations need per pixel (measured without
arithmetic where the model allows), and the tile size and batch that fit."""

from __future__ import annotations

import contextlib
import copy
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..devices import keep_freed_memory
from .facts import model_cache

if TYPE_CHECKING:
    from .runner import Runner

# Peak memory of a forward pass over the sum of all layer outputs' sizes: measured 0.27 for
# unet-resnet34 (1024 px tiles, CPU, fp32 and bf16); 0.35 leaves headroom.
PEAK_OVER_OUTPUTS = 0.35
# Global self-attention at inference runs in query chunks (models.layers.chunked_attention): no
# N x N map, a few chunk buffers of at most 16 MB each; this much is reserved per attention layer.
ATTENTION_RESERVE = 64 << 20

# largest network-input tile side: past it, bigger tiles buy nothing but memory
MAX_NET_TILE = {"cpu": 1024, "cuda": 2048, "mps": 1024}
# share of the available memory one restore may use for activations
MEMORY_SHARE = {"cpu": 0.3, "cuda": 0.6, "mps": 0.4}
CPU_MEMORY_CAP = 5 << 28  # 1.25 GiB: with torch, the model and the image, a 24 MP restore stays under 3 GB
# share of that cap the activations of a tiled image may use while malloc keeps freed memory for
# reuse (devices.keep_freed_memory): unet-resnet34, 4 tiles of 608k network px: peak RSS 2.92 GB
# with it, 2.07 GB without; at 0.6, 2.13 GB on 35 tiles of a 6 MP image (and 18 % faster than
# without). An image done in one tile gets the whole cap.
KEPT_MEMORY_SHARE = 0.6


class TileOutOfMemory(Exception):
    """A single tile did not fit: the caller halves the tile size and starts again."""


def is_oom(err: BaseException) -> bool:
    """Whether ``err`` says a device (or the host) ran out of memory."""
    if isinstance(err, MemoryError):
        return True
    oom_type = getattr(torch, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(err, oom_type):
        return True
    if isinstance(err, RuntimeError):
        msg = str(err).lower()
        return "out of memory" in msg or "can't allocate memory" in msg or "cannot allocate memory" in msg
    return False


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


def _host_available() -> int:
    """MemAvailable of /proc/meminfo (else the free pages, else 4 GiB), bounded by a cgroup limit."""
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
    return _host_available()


# --------------------------------------------------------------------------- the estimate


def bytes_per_net_px(runner: Runner, probe: torch.Tensor) -> float | None:
    """Estimated peak activation bytes per network-input pixel (fp32): the sizes of every
    layer output on a probe, times a measured ratio of peak to that sum. The sizes come from
    a pass on fake tensors (shapes only, no arithmetic) where the model allows, else from a
    real fp32 pass. A foreign runtime (ONNX) has the estimate its exporter measured on the
    PyTorch model (``memory_estimate``), so it gets the same tiles; None without one."""
    cache = model_cache(runner.model)
    if not runner.is_module:
        est = getattr(runner.model, "memory_estimate", None)
        if not est:
            return None
        cache.setdefault("attention_per_px", list(est[1]))
        return float(est[0])
    if "bytes_per_px" not in cache and not measure_shapes_only(runner, probe):
        forward_measured(runner, probe)
    return cache.get("bytes_per_px")


@contextlib.contextmanager
def size_hooks(runner: Runner, probe: torch.Tensor, module: nn.Module | None = None):
    """Hooks on ``module`` (the model, or a shapes-only copy of it) that add up every leaf
    module's output size and note each global self-attention's positions; on exit they record
    ``bytes_per_px`` (activations, linear in the tile's pixels) and ``attention_per_px``
    (positions per network pixel of each global self-attention) in the model's cache (only if
    the body ran without an exception)."""
    from ..models.layers import SelfAttention

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
    for name, m in (module if module is not None else runner.model).named_modules():
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
    cache = model_cache(runner.model)
    pre = runner.facts.pre_scale
    net_px = probe.shape[0] * (probe.shape[2] * pre) * (probe.shape[3] * pre)
    cache["bytes_per_px"] = max(total[0] * PEAK_OVER_OUTPUTS / net_px, 64.0)
    cache["attention_per_px"] = [n * probe.shape[0] / net_px for n in positions]


def measure_shapes_only(runner: Runner, probe: torch.Tensor) -> bool:
    """The memory estimate from a pass that computes nothing: what a real fp32 probe pass costs
    (a sixth of a 768x512 image's time for unet-resnet34), saved where the precision needs no
    fp32 reference. First on a copy of the model on the meta device (tensors with shapes and
    no storage), else on fake tensors (torch's FakeTensorMode, which also takes models that
    mix devices; its first use in a process costs ~0.4 s more). False where the model runs
    neither way (then a real pass measures)."""
    return measure_on_meta(runner, probe) or measure_on_fake(runner, probe)


def measure_on_meta(runner: Runner, probe: torch.Tensor) -> bool:
    try:
        memo: dict[int, Any] = {}
        for t in [*runner.model.parameters(), *runner.model.buffers()]:
            meta_t = torch.empty_like(t, device="meta")
            memo[id(t)] = nn.Parameter(meta_t, requires_grad=False) if isinstance(t, nn.Parameter) else meta_t
        shadow = copy.deepcopy(runner.model, memo).eval()
        x = torch.empty(probe.shape, device="meta").contiguous(memory_format=torch.channels_last)
        with size_hooks(runner, probe, shadow), torch.inference_mode():
            shadow(x)
    except Exception:  # noqa: BLE001 - uncopyable, a tensor kept outside its parameters, .item()...
        return False
    return True


def measure_on_fake(runner: Runner, probe: torch.Tensor) -> bool:
    try:
        from torch._subclasses.fake_tensor import FakeTensorMode
    except ImportError:
        return False
    x = probe.to(runner.device)
    if runner.device.type in ("cpu", "cuda"):
        x = x.contiguous(memory_format=torch.channels_last)
    model = runner.model
    was_training = model.training
    model.eval()
    try:
        with size_hooks(runner, probe), FakeTensorMode(allow_non_fake_inputs=True) as mode:
            with torch.inference_mode():
                model(mode.from_tensor(x))
    except Exception:  # noqa: BLE001 - an op without a fake kernel, a data-dependent branch...
        return False
    finally:
        if was_training:
            model.train()
    return True


def forward_measured(runner: Runner, probe: torch.Tensor) -> torch.Tensor:
    """fp32 forward of the probe; records the memory estimate on the way if not known yet."""
    if not runner.is_module or "bytes_per_px" in model_cache(runner.model):
        return runner.forward(probe, None)
    with size_hooks(runner, probe):
        y = runner.forward(probe, None)
    return y


# --------------------------------------------------------------------------- the tile that fits


def auto_tile(runner: Runner, probe: torch.Tensor, many_tiles: bool = False) -> tuple[int, int]:
    """(LR pixels per tile, tiles per batch) from the memory available now.

    Tile memory ~ a*P for P network pixels (``a`` the activations per pixel) plus a fixed reserve
    per global self-attention layer (its chunked inference needs no N x N map); P is the largest
    that fits the budget, at most the square of the device's largest useful tile side.
    """
    dev = runner.device.type
    pre = runner.facts.pre_scale
    max_px = MAX_NET_TILE.get(dev, 1024) ** 2
    per_px = bytes_per_net_px(runner, probe)
    if per_px is None:  # foreign runtime (ONNX): a safe fixed size
        return 256 * 256 // (pre * pre), 1
    budget = available_memory(runner.device) * MEMORY_SHARE.get(dev, 0.3)
    if dev == "cpu":
        budget = min(budget, CPU_MEMORY_CAP)
        if many_tiles and keep_freed_memory():  # malloc keeps freed blocks: from tile to tile the
            budget *= KEPT_MEMORY_SHARE  # peak grew to ~1.7x the live activations
    n_attention = len(model_cache(runner.model).get("attention_per_px", []))
    budget = max(budget - ATTENTION_RESERVE * n_attention, budget / 2)
    p = min(budget / per_px, float(max_px))
    per_tile = per_px * p
    batch = 1 if dev == "cpu" else int(max(1, min(8, budget // max(per_tile, 1.0))))
    return max(1, int(p) // (pre * pre)), batch
