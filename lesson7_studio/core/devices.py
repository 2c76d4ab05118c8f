"""Devices shared by training, restoring and the front ends: which device "auto" means, which
devices exist here, whether one computes bf16 natively, the key a numeric verdict holds for, and
the malloc setting of CPU restores."""

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


def detect_device() -> str:
    """The kind of device "auto" picks here: "cuda", "mps" or "cpu" (see :func:`resolve_device`)."""
    return resolve_device("auto").type


def available_devices() -> list[str]:
    """The device kinds usable here, CPU first: ["cpu"], ["cpu", "cuda"], ["cpu", "mps"] ..."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found.append("cuda")
    if _mps_available():
        found.append("mps")
    return found


def cpu_supports_bf16() -> bool:
    """True when this CPU computes bf16 natively (AVX512-BF16 or AMX) and torch's oneDNN kernels
    can use it: the one bf16 probe for training's and restoring's "auto" precision.

    A CPU with AVX512 but without those instructions runs bf16 only by emulation (oneDNN converts
    to fp32 and back), which is slower than fp32: "auto" keeps fp32 there. An explicit "bf16" still
    runs anywhere."""
    try:
        if not (torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()):
            return False
    except (AttributeError, RuntimeError):
        return False
    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        fn = getattr(cpu, probe, None)
        try:
            if fn is not None and fn():
                return True
        except (AttributeError, RuntimeError):  # a probe missing or failing on exotic builds
            continue
    return False


def supports_bf16(device: str | torch.device) -> bool:
    """Whether ``device`` computes bf16 natively: a bf16 GPU, or a CPU per :func:`cpu_supports_bf16`."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if dev.type == "cpu":
        return cpu_supports_bf16()
    return False


def _cpu_model() -> str:
    import platform

    try:
        for line in open("/proc/cpuinfo", encoding="utf-8", errors="replace"):
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def device_key(device: str | torch.device) -> str:
    """Names the hardware and software a numeric verdict holds for: the device type, its model
    (CPU model name, GPU name and compute capability) and the torch version, e.g.
    ``cpu:Intel(R) Xeon(R) ...|torch 2.4``. Two machines with the same key compute alike."""
    dev = torch.device(device)
    torch_v = "torch " + ".".join(torch.__version__.split("+")[0].split(".")[:2])
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        major, minor = torch.cuda.get_device_capability(index)
        return f"cuda:{torch.cuda.get_device_name(index)} sm{major}{minor}|{torch_v}"
    if dev.type == "cpu":
        return f"cpu:{_cpu_model()}|{torch_v}"
    return f"{dev.type}|{torch_v}"


# glibc mallopt parameters
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_allocator: dict[str, object] = {}


def _libc():
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse instead of giving it back to the system
    at once (Linux only; once per process; ``LESSON7_MALLOC_TUNING=0`` turns it off).

    By default every allocation over 32 MB is a fresh ``mmap``, so each CPU forward pass of a
    restoration net page-faults its activations in again: unet-resnet34 on a 768x512 image
    touches ~770 MB of new pages a pass (190,000 page faults), which is 15 % of its bf16 time.
    With large thresholds those pages are reused. It acts on the main thread's allocations (the
    CLI's restore and eval run there); other threads keep glibc's per-thread arenas and defaults.
    Call :func:`release_freed_memory` when the batch is over. Returns whether it is active."""
    if "active" in _allocator:
        return bool(_allocator["active"])
    active = False
    libc = None if os.environ.get("LESSON7_MALLOC_TUNING", "1") == "0" else _libc()
    if libc is not None:
        active = bool(libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30))  # C ints
    _allocator.update(active=active, libc=libc)
    return active


def release_freed_memory() -> None:
    """Give the memory malloc keeps (see :func:`keep_freed_memory`) back to the system."""
    libc = _allocator.get("libc")
    if _allocator.get("active") and libc is not None:
        libc.malloc_trim(0)
