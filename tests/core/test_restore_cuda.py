"""The restoration engine on a CUDA GPU: skipped where there is none (CI has none).

Run on a GPU machine with ``python -m pytest tests/core/test_restore_cuda.py``. They check what
the CPU suite cannot: the model and tiles on the GPU, fp16 under precision "auto", a real CUDA
out-of-memory halving the tile, the overlapped file I/O of a GPU folder restore (its cancel and
rerun), and the CLI with ``--device cuda``.
"""

from __future__ import annotations

import argparse
import contextlib
import re

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from lesson7_studio.core import checkpoint, models, restore
from lesson7_studio.core.restore import facts
from lesson7_studio.core.errors import Cancelled
from lesson7_studio.core.events import CancelToken, ItemDone, Log

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@contextlib.contextmanager
def no_tf32():
    """Exact fp32 convolutions and matmuls (TF32 rounds inputs to 10 mantissa bits)."""
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


@pytest.fixture(scope="module")
def lite():
    torch.manual_seed(0)
    return models.restorer("unet-lite", nf=8, blocks=1, self_attention=False).eval()


@pytest.fixture(scope="module")
def r34():
    torch.manual_seed(0)
    return models.restorer("unet-resnet34", pretrained=False, self_attention=True).eval()


def _photo(h, w, seed=0):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(max(2, h // 8), max(2, w // 8), 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    peak = 255.0 if a.dtype == np.uint8 else 1.0
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


def test_tiles_on_the_gpu_equal_the_whole_image_and_the_cpu(lite):
    a = np.random.default_rng(2).random((56, 72, 3), dtype=np.float32)
    with no_tf32():
        whole = restore.restore_array(lite, a, device="cuda", precision="fp32", tile=4096)
        assert next(lite.parameters()).device.type == "cuda"
        tiled = restore.restore_array(lite, a, device="cuda", precision="fp32", tile=32, overlap=12)
    assert np.abs(whole - tiled).max() < 1e-3
    cpu = restore.restore_array(lite, a, device="cpu", precision="fp32", tile=4096)
    assert np.abs(whole - cpu).max() < 1e-4


def test_auto_precision_on_the_gpu_stays_close_to_fp32(r34):
    a = _photo(256, 384)  # 4 probe tiles of work or more: the probe runs (smaller images skip it)
    with no_tf32():
        ref = restore.restore_array(r34, a, device="cuda", precision="fp32")
        facts.MODEL_CACHE.pop(r34, None)
        auto = restore.restore_array(r34, a, device="cuda", precision="auto")
    decisions = {k: v for k, v in facts.model_cache(r34).items() if isinstance(k, tuple) and k[0] == "precision"}
    assert [k[2] for k in decisions] == ["torch.float16"]  # CUDA tries fp16 first
    ok, probe_psnr = next(iter(decisions.values()))
    assert ok == (probe_psnr >= restore.PRECISION_MIN_PSNR)
    assert _psnr(auto, ref) > 38.0  # uint8 outputs; fp16 only where its probe was within 45 dB
    half = restore.restore_array(r34, a, device="cuda", precision="fp16")  # forced: runs, whatever its error
    assert half.shape == ref.shape and half.dtype == np.uint8


def test_a_real_cuda_out_of_memory_halves_the_tile():
    torch.manual_seed(0)
    model = models.restorer("unet-resnet34", pretrained=False, self_attention=False).eval().cuda()
    a = _photo(512, 768, seed=1)
    dev = torch.device("cuda", torch.cuda.current_device())
    with no_tf32():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
        restore.restore_array(model, a, device=dev, precision="fp32", tile=4096)
        need = torch.cuda.max_memory_allocated(dev) - base  # the whole image in one tile
        torch.cuda.empty_cache()
        total = torch.cuda.get_device_properties(dev).total_memory
        cap = base + need / 3  # too little for the whole image, enough for quarter tiles
        events: list = []
        torch.cuda.set_per_process_memory_fraction(cap / total, torch.cuda.current_device())
        try:
            got = restore.restore_array(model, a, device=dev, precision="fp32", tile=4096, on_event=events.append)
        finally:
            torch.cuda.set_per_process_memory_fraction(1.0, torch.cuda.current_device())
            torch.cuda.empty_cache()
        msgs = [e.message for e in events if isinstance(e, Log) and "Out of memory" in e.message]
        assert msgs, "the capped run never ran out of memory"
        th, tw = map(int, re.search(r"retrying with (\d+)x(\d+) px", msgs[-1]).groups())
        same_tiles = restore.restore_array(model, a, device=dev, precision="fp32", tile=max(th, tw))
    assert got.shape == (1024, 1536, 3)
    assert np.abs(got.astype(int) - same_tiles.astype(int)).max() <= 1


def _src(root, n=5):
    (root / "sub").mkdir(parents=True)
    for i in range(n):
        Image.fromarray(_photo(40 + 8 * i, 56, seed=i)).save(root / ("sub" if i % 2 else ".") / f"img{i}.png")
    return root


def test_gpu_folder_restore_matches_the_cpu_and_resumes_after_cancel(lite, tmp_path):
    src = _src(tmp_path / "src")
    with no_tf32():
        cpu = restore.restore_folder(lite, src, tmp_path / "cpu", device="cpu", precision="fp32")
        gpu = restore.restore_folder(lite, src, tmp_path / "gpu", device="cuda", precision="fp32")
    assert cpu.done == gpu.done == 5 and not gpu.failed
    for p in sorted((tmp_path / "cpu").rglob("*.png")):
        q = tmp_path / "gpu" / p.relative_to(tmp_path / "cpu")
        assert np.abs(np.asarray(Image.open(p), int) - np.asarray(Image.open(q), int)).max() <= 1

    tok = CancelToken()
    seen: list = []

    def on_event(e):
        if isinstance(e, ItemDone):
            seen.append(e.path.name)
            if len(seen) == 2:
                tok.cancel()

    many = _src(tmp_path / "many", n=14)  # more than the encodes that may be in flight
    dst = tmp_path / "cancelled"
    with pytest.raises(Cancelled):
        restore.restore_folder(lite, many, dst, device="cuda", on_event=on_event, cancel=tok)
    files = [p for p in dst.rglob("*") if p.is_file()]
    assert 2 <= len(files) < 14 and len(seen) == len(files)  # the writes in flight completed, reported
    assert not [p for p in files if p.name.endswith(".part")]
    for p in files:  # whatever was written is complete
        Image.open(p).load()
    s = restore.restore_folder(lite, many, dst, device="cuda", skip_existing=True)
    assert s.skipped == len(files) and s.done == 14 - len(files) and not s.failed


def test_cli_restore_on_cuda(lite, tmp_path, capsys):
    from lesson7_studio.cli import restore_cmd

    ckpt = checkpoint.save_model(tmp_path / "lite.safetensors", lite.cpu(), "unet-lite", lite.info.options)
    src = _src(tmp_path / "src", n=3)
    (src / "broken.jpg").write_bytes(b"not a jpeg")
    parser = argparse.ArgumentParser(prog="lesson7-studio")
    restore_cmd.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["restore", str(src), str(tmp_path / "out"), "--model", str(ckpt), "--device", "cuda"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "3 restored" in out and "broken.jpg" in out
    assert Image.open(tmp_path / "out" / "img0.png").size == (112, 80)


def test_foreign_module_without_info_runs_on_the_gpu():
    """A bare nn.Module whose weights sit on the GPU: the engine follows the module's device."""

    class Up(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 12, 3, padding=1)
            self.up = nn.PixelShuffle(2)
            self.info = models.registry.ModelInfo("up", "up", "restorer", {}, 0, 3, 3, 2, 2, 1, None, None)

        def forward(self, x):
            return self.up(self.conv(x))

    m = Up().cuda().eval()
    a = _photo(30, 50)
    out = restore.restore_array(m, a, precision="fp32")
    assert out.shape == (60, 100, 3)
