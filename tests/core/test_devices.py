"""core/devices.py: device detection, the one bf16 probe, and the malloc setting that lets CPU
restores reuse activation memory."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys

import pytest

from lesson7_studio.core import devices


def test_detection_follows_what_torch_reports(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_mps_available", lambda: False)
    assert devices.detect_device() == "cpu" and devices.available_devices() == ["cpu"]
    monkeypatch.setattr(devices, "_mps_available", lambda: True)
    assert devices.detect_device() == "mps" and devices.available_devices() == ["cpu", "mps"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert devices.detect_device() == "cuda" and devices.available_devices() == ["cpu", "cuda", "mps"]
    assert devices.resolve_device("auto") == torch.device("cuda", 1)  # torchrun's local rank


def test_one_bf16_probe_needs_native_bf16_and_onednn(monkeypatch):
    import torch

    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: True)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert devices.cpu_supports_bf16() is False  # AVX512 alone: bf16 would be emulated, slower than fp32
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert devices.cpu_supports_bf16() is True and devices.supports_bf16("cpu") is True
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    assert devices.cpu_supports_bf16() is False  # no oneDNN kernels to use it
    assert devices.supports_bf16("mps") is False
    from lesson7_studio.core.restore import precision
    from lesson7_studio.core.train import precision as train_precision

    monkeypatch.setattr(devices, "cpu_supports_bf16", lambda: True)  # training and restoring ask the same
    assert train_precision.resolve_precision(torch.device("cpu")) == "bf16"
    assert precision.low_candidate(object(), torch.device("cpu")) is torch.bfloat16
    monkeypatch.setattr(devices, "cpu_supports_bf16", lambda: False)
    assert train_precision.resolve_precision(torch.device("cpu")) == "fp32"
    assert precision.low_candidate(object(), torch.device("cpu")) is None


def test_malloc_tuning_can_be_turned_off(monkeypatch):
    monkeypatch.setattr(devices, "_allocator", {})
    monkeypatch.setenv("LESSON7_MALLOC_TUNING", "0")
    assert devices.keep_freed_memory() is False
    devices.release_freed_memory()  # a no-op, no error


# Runs in a fresh process: the setting is process-wide and once per process, so the rest of the
# suite keeps its own. glibc's mallinfo2 tells whether a 64 MB block came from mmap (given back
# to the system on free, page-faulted in afresh next time) or from the heap (kept for reuse).
_MALLOC_CHILD = r"""
import ctypes, json, os
from lesson7_studio.core import devices

class Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                 "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Mallinfo2
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]

def mmapped_bytes_of_a_64mb_block():
    before = libc.mallinfo2().hblkhd
    p = libc.malloc(64 << 20)
    grew = libc.mallinfo2().hblkhd - before
    libc.free(p)
    return grew

plain = mmapped_bytes_of_a_64mb_block()
os.environ["LESSON7_MALLOC_TUNING"] = "0"
off = devices.keep_freed_memory()
after_off = mmapped_bytes_of_a_64mb_block()
devices._allocator.clear()  # the setting is once per process: forget the "off" answer
os.environ["LESSON7_MALLOC_TUNING"] = "1"
on = devices.keep_freed_memory()
print(json.dumps({"plain": plain, "off": off, "after_off": after_off, "on": on,
                  "after_on": mmapped_bytes_of_a_64mb_block(), "again": devices.keep_freed_memory()}))
devices.release_freed_memory()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_keep_freed_memory_takes_big_blocks_from_the_heap():
    """With the setting a 64 MB activation comes from the heap, whose freed blocks the next
    forward pass reuses; without it (glibc's default, or LESSON7_MALLOC_TUNING=0) it is a fresh
    mmap each time. The page faults this saves are measured by benchmarks/bench_malloc.py."""
    try:
        ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        pytest.skip("not glibc 2.33+: no mallinfo2 to observe the setting")
    env = {k: v for k, v in os.environ.items() if k != "LESSON7_MALLOC_TUNING"}
    res = subprocess.run([sys.executable, "-c", _MALLOC_CHILD], capture_output=True, text=True, env=env,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["plain"] >= 64 << 20, got  # glibc's default: a fresh mmap
    assert got["off"] is False and got["after_off"] >= 64 << 20, got  # LESSON7_MALLOC_TUNING=0
    assert got["on"] is True and got["again"] is True, got  # idempotent
    assert got["after_on"] == 0, got  # from the heap: reused by the next pass
