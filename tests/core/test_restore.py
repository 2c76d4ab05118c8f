import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from lesson7_studio.core import checkpoint, devices, images, models, restore
from lesson7_studio.core.restore import facts, folder, loading, memory, runner, tiling
from lesson7_studio.core.errors import (
    Cancelled,
    CheckpointError,
    Lesson7Error,
    ModelError,
    UnsafeFileError,
)
from lesson7_studio.core.events import CancelToken, ItemDone, ItemFailed, ItemSkipped, Progress
from lesson7_studio.core.models.registry import ModelInfo, Restorer


# --------------------------------------------------------------------------- helpers


def _info(scale, model_scale, mult, mean=None, std=None):
    return ModelInfo("toy", "toy", "restorer", {}, 0, 3, 3, scale, model_scale, mult, mean, std)


class LocalNet(nn.Module):
    """Three 3x3 convs (receptive field radius 3 px), then pixel shuffle by ``up``."""

    def __init__(self, up: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
            nn.Conv2d(8, 3 * up * up, 3, padding=1),
        )
        self.up = nn.PixelShuffle(up) if up > 1 else nn.Identity()

    def forward(self, x):
        return torch.sigmoid(self.up(self.body(x)))


def toy(scale=2, model_scale=1, mult=8):
    torch.manual_seed(0)
    return Restorer(LocalNet(model_scale), _info(scale, model_scale, mult)).eval()


@pytest.fixture(scope="module")
def lite():
    """Smallest registered restorer. Self-attention off: attention is global (every output
    pixel depends on the whole input), so no tiling can reproduce it exactly."""
    torch.manual_seed(0)
    return models.restorer("unet-lite", nf=8, blocks=1, self_attention=False).eval()


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def _photo(h, w, seed=0):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(max(2, h // 4), max(2, w // 4), 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC))


def _folder(root: Path, n=3, size=(24, 20)) -> Path:
    src = root / "src"
    (src / "sub").mkdir(parents=True)
    for i in range(n):
        folder = src / "sub" if i % 2 else src
        Image.fromarray(_photo(size[0], size[1], i)).save(folder / f"img{i}.png")
    return src


def _plain(model, a, q):
    """The model run once on the whole image, reflect-padded at the end to its multiple."""
    x = torch.from_numpy(a).permute(2, 0, 1)[None]
    h, w = a.shape[:2]
    xp = F.pad(x, (0, (-w) % q, 0, (-h) % q), mode="reflect")
    with torch.no_grad():
        y = model(xp)[0].permute(1, 2, 0).numpy()
    s = model.info.scale
    return y[: h * s, : w * s]


# --------------------------------------------------------------------------- tiling


@pytest.mark.parametrize("scale,model_scale,mult", [(1, 1, 1), (2, 1, 8), (2, 2, 4), (4, 2, 16)])
def test_tiles_blend_exactly_for_a_local_net(scale, model_scale, mult):
    model = toy(scale, model_scale, mult)
    a = np.random.default_rng(1).random((70, 90, 3), dtype=np.float32)
    whole = restore.restore_array(model, a, precision="fp32", tile=4096, overlap=8)
    tiled = restore.restore_array(model, a, precision="fp32", tile=32, overlap=8)
    assert tiled.shape == (70 * scale, 90 * scale, 3)
    assert np.abs(whole - tiled).max() < 1e-5
    # and both equal one plain pass over the whole image
    assert np.abs(tiled - _plain(model, a, restore.model_facts(model).lr_multiple)).max() < 1e-5


def test_blend_weights_sum_to_one():
    ax = tiling.plan_axis(200, 48, 12, 8, 1)
    assert ax.count > 3
    for s in (1, 2, 3):
        total = np.zeros(200 * s)
        for i in range(ax.count):
            w = ax.weights(i, s)
            x0 = ax.starts[i] * s
            lo, hi = max(0, x0), min(200 * s, x0 + ax.t * s)
            total[lo:hi] += w[lo - x0 : hi - x0]
        assert np.allclose(total, 1.0, atol=1e-6)


def test_tiled_equals_untiled_on_registered_model(lite):
    a = np.random.default_rng(2).random((56, 72, 3), dtype=np.float32)
    whole = restore.restore_array(lite, a, precision="fp32", tile=4096)
    tiled = restore.restore_array(lite, a, precision="fp32", tile=32, overlap=12)
    assert tiling.plan_axis(72, 32, 8, 8, 1).count > 1  # it really was tiled
    assert np.abs(whole - tiled).max() < 1e-3


def test_lr_multiple_accounts_for_pre_scale():
    m = Restorer(nn.Identity(), _info(2, 1, 32))
    f = restore.model_facts(m)
    assert (f.pre_scale, f.lr_multiple) == (2, 16)
    f = restore.model_facts(Restorer(nn.Identity(), _info(4, 1, 32)))
    assert (f.pre_scale, f.lr_multiple) == (4, 8)
    f = restore.model_facts(Restorer(nn.Identity(), _info(3, 1, 8)))
    assert f.lr_multiple == 8


@pytest.mark.parametrize("hw", [(1, 1), (33, 17), (5000, 3), (3, 700)])
def test_any_size(lite, hw):
    """Any size, down to one pixel and thinner than the model's multiple, gives what one pass of the
    model over the whole image gives (the image reflect-padded at its end to the multiple, an edge of
    one pixel repeated), quantized to uint8."""
    h, w = hw
    rgb = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    out = restore.restore_image(lite, images.ImageData(rgb=rgb), precision="fp32")
    assert out.rgb.shape == (2 * h, 2 * w, 3) and out.rgb.dtype == np.uint8
    q = restore.model_facts(lite).lr_multiple
    padded = np.pad(rgb.astype(np.float32) / 255.0, ((0, (-h) % q), (0, (-w) % q), (0, 0)), mode="reflect")
    with torch.no_grad():
        ref = lite(torch.from_numpy(padded).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()[: 2 * h, : 2 * w]
    ref8 = np.rint(np.clip(ref, 0, 1) * 255.0)
    assert np.abs(out.rgb.astype(np.float32) - ref8).max() <= 1  # rounding at a .5 boundary at most
    assert out.rgb.std() > 0 or h * w == 1  # not a constant image (where there is more than one pixel)


def test_out_of_memory_halves_the_tile():
    base = toy(2, 1, 8)

    class Picky(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = base
            self.info = base.info
            self.sizes = []

        def forward(self, x):
            self.sizes.append(x.shape[-1])
            if x.shape[-1] > 40:
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return self.inner(x)

    a = np.random.default_rng(3).random((50, 60, 3), dtype=np.float32)
    picky = Picky()
    events = []
    out = restore.restore_array(picky, a, precision="fp32", tile=128, overlap=8, on_event=events.append)
    assert max(picky.sizes) > 40 and picky.sizes[-1] <= 40
    ref = restore.restore_array(base, a, precision="fp32", tile=4096, overlap=8)
    assert np.abs(out - ref).max() < 1e-5
    assert any("Out of memory" in getattr(e, "message", "") for e in events)


def test_precision_auto_rejects_a_model_that_low_precision_breaks():
    class Fragile(nn.Module):
        """Adds and removes a large constant inside a matmul: bf16/fp16 lose the signal."""

        def __init__(self):
            super().__init__()
            self.info = _info(1, 1, 1)
            self.lin = nn.Linear(3, 3, bias=False)
            with torch.no_grad():
                self.lin.weight.copy_(torch.eye(3))

        def forward(self, x):
            y = self.lin((x + 300.0).permute(0, 2, 3, 1)).permute(0, 3, 1, 2) - 300.0
            return y.float()

    model = Fragile()
    # 512 px: enough work for the probe to pay (restore.PROBE_PAYS_AT probe tiles); smaller images skip it
    a = np.random.default_rng(4).random((512, 512, 3), dtype=np.float32)
    out = restore.restore_array(model, a, precision="auto")
    assert np.abs(out - a).max() < 1e-4  # fell back to fp32
    decisions = [v for k, v in facts.model_cache(model).items() if isinstance(k, tuple) and k[0] == "precision"]
    if devices.cpu_supports_bf16():
        assert decisions and decisions[0][0] is False
    forced = restore.restore_array(model, a, precision="bf16")
    if devices.cpu_supports_bf16():
        assert np.abs(forced - a).max() > 0.1  # what auto protected against


def test_precision_auto_accepts_a_benign_model():
    if not devices.cpu_supports_bf16():
        pytest.skip("this CPU has no bf16 support")
    model = toy(2, 1, 8)
    a = np.random.default_rng(5).random((256, 256, 3), dtype=np.float32)  # big enough for the probe to pay
    restore.restore_array(model, a, precision="auto")
    decisions = [v for k, v in facts.model_cache(model).items() if isinstance(k, tuple) and k[0] == "precision"]
    assert decisions and decisions[0][0] is True


def test_cancel_between_tiles():
    model = toy(2, 1, 8)
    tok = CancelToken()
    seen = []

    def on_event(ev):
        if isinstance(ev, Progress) and ev.stage == "tiles":
            seen.append(ev.done)
            tok.cancel()

    with pytest.raises(Cancelled):
        restore.restore_array(model, np.zeros((64, 64, 3), np.float32), tile=32, overlap=8, on_event=on_event, cancel=tok)
    assert seen == [1]


# --------------------------------------------------------------------------- images


def _srgb_icc() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def test_alpha_exif_orientation_icc_survive(lite, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    rgba = np.dstack([_photo(16, 24), np.zeros((16, 24), np.uint8)])
    rgba[:, 12:, 3] = 255  # right half opaque
    im = Image.fromarray(rgba, "RGBA")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    icc = _srgb_icc()
    im.save(src / "a.png", exif=exif.tobytes(), icc_profile=icc)
    summary = restore.restore_folder(lite, src, tmp_path / "out", precision="fp32")
    assert summary.done == 1 and not summary.failed
    out = images.load_image(tmp_path / "out" / "a.png")
    assert out.rgb.shape == (48, 32, 3)  # displayed 24x16 (rotated), doubled
    assert out.icc == icc
    assert out.extra.get("orientation", 1) == 1
    assert out.alpha is not None
    # orientation 6: the file's right half (opaque) is displayed at the bottom
    assert out.alpha[:20].max() < 20 and out.alpha[28:].min() > 235


def test_sixteen_bit_and_grey(lite, tmp_path):
    rng = np.random.default_rng(6)
    rgb16 = (np.asarray(Image.fromarray(_photo(16, 16)).resize((20, 18))).astype(np.uint16) * 257 + rng.integers(0, 200, (18, 20, 3))).astype(np.uint16)
    img16 = images.ImageData(rgb=rgb16)
    out16 = restore.restore_image(lite, img16)  # precision auto keeps fp32 for 16-bit
    assert out16.rgb.dtype == np.uint16 and out16.bit_depth == 16 and out16.rgb.shape == (36, 40, 3)
    assert np.any(out16.rgb % 257 != 0)  # real 16-bit values, not 8-bit scaled up
    ref = restore.restore_array(lite, rgb16.astype(np.float32) / 65535, precision="fp32")
    assert np.abs(out16.rgb / 65535 - ref).max() < 1e-4

    grey = np.repeat(_photo(12, 14)[..., :1], 3, axis=2)
    g = restore.restore_image(lite, images.ImageData(rgb=grey, is_grey=True))
    assert g.is_grey and np.array_equal(g.rgb[..., 0], g.rgb[..., 1]) and np.array_equal(g.rgb[..., 1], g.rgb[..., 2])

    src = tmp_path / "in"
    src.mkdir()
    images.save_image(img16, src / "deep.png")
    restore.restore_folder(lite, src, tmp_path / "out")
    back = images.load_image(tmp_path / "out" / "deep.png")
    assert back.bit_depth == 16 and back.rgb.shape == (36, 40, 3)


# --------------------------------------------------------------------------- folders


def test_folder_tree_broken_file_and_sources_untouched(lite, tmp_path):
    src = _folder(tmp_path, n=3)
    (src / "sub" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (src / "notes.txt").write_text("not an image")
    before = _hashes(src)
    events = []
    summary = restore.restore_folder(lite, src, tmp_path / "out", on_event=events.append)
    assert summary.done == 3 and summary.skipped == 0
    assert [p.name for p, _ in summary.failed] == ["broken.jpg"]
    assert (tmp_path / "out" / "img0.png").is_file() and (tmp_path / "out" / "sub" / "img1.png").is_file()
    assert Image.open(tmp_path / "out" / "img0.png").size == (40, 48)
    assert _hashes(src) == before
    assert any(isinstance(e, ItemFailed) and e.path.name == "broken.jpg" for e in events)
    assert sum(isinstance(e, ItemDone) for e in events) == 3
    last = [e for e in events if isinstance(e, Progress)][-1]
    assert last.done == last.total == 4 and last.rate_unit == "MP/s"
    assert not list((tmp_path / "out").rglob("*.part"))


def test_output_format_and_flat_names(lite, tmp_path):
    src = _folder(tmp_path, n=3)
    Image.fromarray(_photo(10, 10)).save(src / "sub" / "img0.jpg")  # same stem as src/img0.png
    s = restore.restore_folder(lite, src, tmp_path / "out", out_format="jpg", keep_tree=False)
    assert s.done == 4
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["img0-2.jpg", "img0.jpg", "img1.jpg", "img2.jpg"]
    assert Image.open(tmp_path / "out" / "img1.jpg").format == "JPEG"
    with pytest.raises(Lesson7Error):
        restore.restore_folder(lite, src, tmp_path / "out2", out_format="gif2")


def test_refuses_to_write_into_source(lite, tmp_path):
    src = _folder(tmp_path, n=1)
    before = _hashes(src)
    with pytest.raises(Lesson7Error, match="source folder"):
        restore.restore_folder(lite, src, src)
    # a destination inside the source is fine, and its outputs are never taken as sources
    inner = src / "restored"
    restore.restore_folder(lite, src, inner)
    s = restore.restore_folder(lite, src, inner, skip_existing=True)
    assert s.total == 1 and s.skipped == 1
    assert {k: v for k, v in _hashes(src).items() if not k.startswith("restored")} == before


def test_cancel_leaves_no_partial_file_and_rerun_resumes(lite, tmp_path):
    src = _folder(tmp_path, n=4, size=(24, 24))
    dst = tmp_path / "out"
    tok = CancelToken()
    calls = {"n": 0}

    class Cancelling(nn.Module):
        def __init__(self, at):
            super().__init__()
            self.inner = lite
            self.info = lite.info
            self.at = at

        def forward(self, x):
            calls["n"] += 1
            if calls["n"] == self.at:
                tok.cancel()
            return self.inner(x)

    counter = Cancelling(at=-1)
    restore.restore_array(counter, np.zeros((24, 24, 3), np.uint8), tile=16, precision="fp32")
    per_image = calls["n"]
    assert per_image > 2
    calls["n"] = 0
    model = Cancelling(at=per_image + 2)  # in the middle of the second image's tiles
    with pytest.raises(Cancelled):
        restore.restore_folder(model, src, dst, tile=16, cancel=tok, precision="fp32")
    written = sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*") if p.is_file())
    assert written == ["img0.png"]  # the first one, complete; nothing of the second
    assert Image.open(dst / "img0.png").size == (48, 48)
    events = []
    s = restore.restore_folder(lite, src, dst, skip_existing=True, on_event=events.append)
    assert (s.done, s.skipped, s.failed) == (3, 1, [])
    assert [e.path.name for e in events if isinstance(e, ItemSkipped)] == ["img0.png"]
    assert len([p for p in dst.rglob("*") if p.is_file()]) == 4


def test_overlapped_io_of_gpu_restores_reports_cancels_and_resumes(lite, tmp_path, monkeypatch):
    """On a GPU the next file is decoded and the last ones encoded in a thread pool while the
    network runs, several encodes in flight; the same pool here, on the CPU: a broken file is
    reported, a cancel leaves only complete files (the writes in flight finish and are
    reported), and a rerun completes the folder."""
    from concurrent.futures import ThreadPoolExecutor

    pools = []

    def io_pool(_dev):
        pools.append(ThreadPoolExecutor(max_workers=4))
        return pools[-1], 3

    monkeypatch.setattr(folder, "io_pool", io_pool)
    src = _folder(tmp_path, n=8, size=(24, 24))
    (src / "broken.png").write_bytes(b"\x89PNG broken")
    tok = CancelToken()
    done = []

    def on_event(e):
        if isinstance(e, ItemDone):
            done.append(e.path.name)
            if len(done) == 2:
                tok.cancel()

    dst = tmp_path / "out"
    with pytest.raises(Cancelled):
        restore.restore_folder(lite, src, dst, precision="fp32", on_event=on_event, cancel=tok)
    assert pools, "the pool was not used"
    files = sorted(p for p in dst.rglob("*") if p.is_file())
    assert 2 <= len(files) < 8 and not [p for p in files if ".part" in p.name]
    assert len(done) == len(files)  # every write that finished was reported
    for p in files:
        assert Image.open(p).size == (48, 48)
    events = []
    s = restore.restore_folder(lite, src, dst, skip_existing=True, precision="fp32", on_event=events.append)
    assert (s.done, s.skipped, s.unreadable) == (8 - len(files), len(files), 1)
    assert [p.name for p, _ in s.failed] == ["broken.png"]
    got = sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*.png"))
    assert got == sorted(p.relative_to(src).as_posix() for p in src.rglob("img*.png"))
    # the same images as in line, one at a time
    monkeypatch.undo()
    ref = restore.restore_folder(lite, src, tmp_path / "ref", precision="fp32")
    assert ref.done == 8
    for rel in got:
        assert np.array_equal(np.asarray(Image.open(dst / rel)), np.asarray(Image.open(tmp_path / "ref" / rel)))


@pytest.mark.parametrize("cap,expect_overlap", [(1 << 30, True), (1, False)])
def test_writes_in_flight_are_bounded_by_the_bytes_they_hold(lite, tmp_path, monkeypatch, cap, expect_overlap):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(folder, "io_pool", lambda _dev: (ThreadPoolExecutor(max_workers=4), 3))
    monkeypatch.setattr(folder, "MAX_PENDING_BYTES", cap)
    real_save = images.save_image
    lock, state = threading.Lock(), {"now": 0, "max": 0, "calls": 0}
    second = threading.Event()

    def slow_save(*a, **kw):
        with lock:
            state["now"] += 1
            state["calls"] += 1
            state["max"] = max(state["max"], state["now"])
            first = state["calls"] == 1
        if first:  # the first write waits for a second one to start (never, under the 1-byte cap)
            second.wait(3.0)
        else:
            second.set()
        try:
            return real_save(*a, **kw)
        finally:
            with lock:
                state["now"] -= 1

    monkeypatch.setattr(images, "save_image", slow_save)
    src = _folder(tmp_path, n=6, size=(16, 16))
    s = restore.restore_folder(lite, src, tmp_path / "out", precision="fp32")
    assert s.done == 6
    assert (state["max"] > 1) == expect_overlap, state


def test_stale_part_of_a_dead_process_is_removed(lite, tmp_path):
    src = _folder(tmp_path, n=1)
    dst = tmp_path / "out"
    dst.mkdir()
    stale = dst / ".img0.png.999999999-abcd.part"
    stale.write_bytes(b"half")
    restore.restore_folder(lite, src, dst)
    assert not stale.exists() and (dst / "img0.png").is_file()


def test_torchrun_ranks_split_the_files(lite, tmp_path, monkeypatch):
    src = _folder(tmp_path, n=5)
    files = [p.relative_to(src).as_posix() for p in images.iter_images(src)]
    got = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        dst = tmp_path / f"out{rank}"
        s = restore.restore_folder(lite, src, dst)
        mine = sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*.png"))
        assert s.total == len(mine) and (s.rank, s.world_size) == (rank, 2)
        assert mine == sorted(files[rank::2])
        got += mine
    assert sorted(got) == sorted(files)


def test_single_file_source(lite, tmp_path):
    src = _folder(tmp_path, n=1)
    s = restore.restore_folder(lite, src / "img0.png", tmp_path / "out", out_format="webp")
    assert s.done == 1 and (tmp_path / "out" / "img0.webp").is_file()


# --------------------------------------------------------------------------- loading models


def test_load_our_checkpoint(lite, tmp_path):
    path = checkpoint.save_model(tmp_path / "m.safetensors", lite, "unet-lite", lite.info.options)
    model = restore.load_any_model(path, device="cpu")
    a = np.random.default_rng(7).random((24, 24, 3), dtype=np.float32)
    assert np.abs(restore.restore_array(model, a, precision="fp32") - restore.restore_array(lite, a, precision="fp32")).max() < 1e-5
    # a run folder holding model.safetensors loads too
    run = tmp_path / "run"
    checkpoint.save_model(run / "model.safetensors", lite, "unet-lite", lite.info.options)
    assert restore.load_any_model(run, device="cpu").info.name == "unet-lite"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="model.safetensors"):
        restore.load_any_model(empty)

def test_registry_name_and_missing_files_are_refused(tmp_path, monkeypatch):
    with pytest.raises(ModelError, match="architecture"):
        restore.load_any_model("unet-resnet34")
    with pytest.raises(CheckpointError, match="not found"):
        restore.load_any_model(tmp_path / "nope.safetensors")
    monkeypatch.setattr(loading, "starter_model_path", lambda: tmp_path / "starter.safetensors")
    with pytest.raises(CheckpointError, match="starter"):
        restore.load_any_model("starter")


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned.txt"
    evil = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(2), "payload": _Payload(str(marker))}, evil)
    assert not marker.exists()
    with pytest.raises(UnsafeFileError):
        restore.load_any_model(evil)
    assert not marker.exists()


def test_foreign_weights_without_spandrel_explain_the_extra(tmp_path, monkeypatch):
    path = tmp_path / "esrgan.pth"
    torch.save({"conv_first.weight": torch.zeros(4, 3, 3, 3)}, path)
    monkeypatch.setitem(sys.modules, "spandrel", None)  # import fails as if not installed
    with pytest.raises(ModelError, match=r"lesson7-studio\[spandrel\]"):
        restore.load_any_model(path)


def test_spandrel_model_restores(tmp_path):
    pytest.importorskip("spandrel")
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(0)
    net = ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=2)
    path = tmp_path / "tiny_esrgan_x2.pth"
    torch.save(net.state_dict(), path)
    model = restore.load_any_model(path, device="cpu")
    assert model.info.scale == 2
    out = restore.restore_image(model, images.ImageData(rgb=_photo(20, 26)), precision="fp32")
    assert out.rgb.shape == (40, 52, 3)


# --------------------------------------------------------------------------- evaluation


def test_evaluate_reports_model_and_bicubic(lite, tmp_path):
    gt = tmp_path / "gt"
    gt.mkdir()
    for i in range(2):
        Image.fromarray(_photo(33, 41, i)).save(gt / f"g{i}.png")
    (gt / "bad.png").write_bytes(b"nope")
    events = []
    res = restore.evaluate(lite, gt, "decrappify-x2", seed=0, on_event=events.append)
    assert res["count"] == 2 and [Path(s["path"]).name for s in res["skipped"]] == ["bad.png"]
    assert res["border"] == 2 and res["images"][0]["size"] == [40, 32]  # cropped to a multiple of 2
    for who in ("model", "bicubic"):
        m = res["mean"][who]
        assert set(m) == {"psnr_y", "psnr_rgb", "ssim_y"} and 5 < m["psnr_y"] < 60 and 0 < m["ssim_y"] <= 1
    assert res["gain_psnr_y"]["bicubic"] == pytest.approx(res["mean"]["model"]["psnr_y"] - res["mean"]["bicubic"]["psnr_y"])
    again = restore.evaluate(lite, gt, "decrappify-x2", seed=0)
    assert again["mean"] == res["mean"]  # deterministic


def test_evaluate_baselines_only(tmp_path):
    gt = tmp_path / "gt"
    gt.mkdir()
    Image.fromarray(_photo(32, 40)).save(gt / "g.png")
    res = restore.evaluate(None, gt, "decrappify-x2", baselines=("bicubic", "nearest"))
    assert res["model"] is None and set(res["mean"]) == {"bicubic", "nearest"}
    assert res["mean"]["bicubic"]["psnr_y"] > res["mean"]["nearest"]["psnr_y"]


@pytest.mark.parametrize("n,tile,margin,q", [(100, 32, 8, 8), (1000, 256, 24, 16), (257, 64, 16, 32), (33, 16, 4, 8)])
def test_tile_plan_covers_the_axis_with_context(n, tile, margin, q):
    ax = tiling.plan_axis(n, tile, margin, q, 1)
    full = -(-n // q) * q
    assert ax.bounds[0] == 0 and ax.bounds[-1] == n and ax.t % q == 0
    for i, s in enumerate(ax.starts):
        a, b = ax.bounds[i], ax.bounds[i + 1]
        assert 0 <= s and s + ax.t <= max(full, ax.t)  # windows never leave what a whole pass sees
        assert s <= max(a - margin, 0) or s == 0
        assert s + ax.t >= min(b + margin, full)


def test_devices_and_memory():
    assert restore.available_memory("cpu") > 0
    assert restore.resolve_device("cpu").type == "cpu"
    assert restore.resolve_device(None).type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(Lesson7Error, match="CUDA"):
            restore.resolve_device("cuda")
    with pytest.raises(Lesson7Error):
        restore.resolve_device("tpu9")


def test_tile_shape_uses_the_pixel_budget():
    f = restore.ModelFacts(scale=2, pre_scale=2, size_multiple=32, lr_multiple=16, min_size=1)
    assert tiling.tile_shape(256, 384, 120_000, 24, f) == (256, 384)  # whole image fits
    th, tw = tiling.tile_shape(3, 5000, 60_000, 24, f)  # a panorama strip: full height
    assert th == 16 and th * tw <= 60_000 and tw > 1000
    th, tw = tiling.tile_shape(4000, 6000, 100_000, 24, f)
    assert th == tw and th * tw <= 100_000 and th % 16 == 0


@pytest.mark.skipif(not devices.cpu_supports_bf16(), reason="this CPU has no bf16 support")
def test_bf16_runs_on_a_bf16_copy_that_follows_weight_changes():
    model = toy(2, 1, 8)
    a = np.random.default_rng(6).random((24, 24, 3), dtype=np.float32)
    out1 = restore.restore_array(model, a, precision="bf16")
    ref = restore.restore_array(model, a, precision="fp32")
    assert np.abs(out1 - ref).max() < 0.03
    (version, low) = facts.model_cache(model)[("low_copy", torch.bfloat16)]
    assert low is not model and next(low.parameters()).dtype == torch.bfloat16
    assert next(model.parameters()).dtype == torch.float32  # the model itself is untouched
    with torch.no_grad():  # as an optimizer step or load_state_dict would
        for p in model.parameters():
            p.mul_(0.5)
    out2 = restore.restore_array(model, a, precision="bf16")
    ref2 = restore.restore_array(model, a, precision="fp32")
    assert np.abs(out2 - ref2).max() < 0.03 and np.abs(out2 - out1).max() > 0.01
    assert facts.model_cache(model)[("low_copy", torch.bfloat16)][1] is not low  # rebuilt


@pytest.mark.skipif(not devices.cpu_supports_bf16(), reason="this CPU has no bf16 support")
def test_bf16_falls_back_to_autocast_when_the_copy_cannot_run():
    class NoBf16(nn.Module):
        """Runs under autocast (its conv gets bf16) but refuses a bf16 input outright."""

        def __init__(self):
            super().__init__()
            self.info = _info(1, 1, 1)
            self.conv = nn.Conv2d(3, 3, 1)

        def forward(self, x):
            if x.dtype != torch.float32:
                raise RuntimeError("no bf16 kernel for this op")
            return self.conv(x).float()

    model = NoBf16()
    a = np.random.default_rng(7).random((16, 16, 3), dtype=np.float32)
    out = restore.restore_array(model, a, precision="bf16")
    ref = restore.restore_array(model, a, precision="fp32")
    assert np.abs(out - ref).max() < 0.03
    assert facts.model_cache(model)[("low_copy", torch.bfloat16)] == (None, None)


def test_ensemble_averages_the_eight_flips_and_turns():
    model = toy(2, 1, 8)  # random 3x3 convs: not symmetric, so each of the eight passes differs
    a = np.random.default_rng(8).random((24, 32, 3), dtype=np.float32)  # multiples of 8: no padding
    outs = []
    for k in range(4):
        for flip in (False, True):
            t = np.rot90(a, k)
            t = t[:, ::-1] if flip else t
            y = restore.restore_array(model, np.ascontiguousarray(t), precision="fp32", tile=4096)
            y = y[:, ::-1] if flip else y
            outs.append(np.rot90(y, -k))
    expected = np.mean(outs, axis=0)
    got = restore.restore_array(model, a, precision="fp32", tile=4096, ensemble=True)
    assert got.shape == (48, 64, 3) and np.abs(got - expected).max() < 1e-5
    assert np.abs(got - outs[0]).max() > 1e-3
    tiled = restore.restore_array(model, a, precision="fp32", tile=16, overlap=8, ensemble=True)
    assert np.abs(tiled - got).max() < 1e-3  # tiles stay seamless


def test_bundled_starter_model_beats_bicubic_on_a_sample():
    """The shipped weights do what the model card says on the first bundled sample, a 768x512
    Kodak photo (the card measures +1.80 dB on the whole Kodak24 set), number included."""
    from lesson7_studio.core import crappify, metrics
    from lesson7_studio.core.project import resources_dir

    path = restore.starter_model_path()
    if not path.is_file():
        pytest.skip("no bundled starter model in this checkout")
    meta = checkpoint.read_metadata(path)
    assert meta["name"] == "unet-lite" and meta["info"]["task_recipe"] == "decrappify-x2"
    assert meta["info"]["model_card"] == "resources/models/starter.md" and meta["info"]["history"]
    samples = sorted((resources_dir() / "samples").glob("*.png"))
    hr = Image.open(samples[0]).convert("RGB")
    lr = crappify.apply_recipe(hr, crappify.get_recipe("decrappify-x2"), 0).image
    model = restore.load_any_model("starter", device="cpu")
    out = restore.restore_array(model, np.asarray(lr), precision="fp32")
    ref = np.asarray(hr, dtype=np.float32) / 255
    bicubic = np.asarray(lr.resize(hr.size, Image.Resampling.BICUBIC), dtype=np.float32) / 255
    gain = (metrics.psnr(out.astype(np.float32) / 255, ref, y_channel=True, crop=2)
            - metrics.psnr(bicubic, ref, y_channel=True, crop=2))
    assert gain > 1.0, gain  # 2.4 dB with the shipped weights; the stage-1 model, whose 27 px numbers stayed, 0.4


@pytest.mark.parametrize("how", ["meta", "fake"])
def test_memory_estimate_without_arithmetic_equals_a_real_pass(how):
    torch.manual_seed(0)
    a = models.restorer("unet-lite", nf=8, blocks=1, self_attention=True).train()
    b = models.restorer("unet-lite", nf=8, blocks=1, self_attention=True).eval()
    probe = torch.rand(1, 3, 32, 48)
    ra, rb = runner.Runner(a, "cpu", "fp32"), runner.Runner(b, "cpu", "fp32")
    assert (memory.measure_on_meta if how == "meta" else memory.measure_on_fake)(ra, probe)
    memory.forward_measured(rb, probe)
    ca, cb = facts.model_cache(a), facts.model_cache(b)
    assert ca["bytes_per_px"] == pytest.approx(cb["bytes_per_px"]) and ca["bytes_per_px"] > 64
    assert ca["attention_per_px"] == pytest.approx(cb["attention_per_px"]) and len(ca["attention_per_px"]) == 1
    assert a.training and all(p.device.type == "cpu" for p in a.parameters())  # the model itself untouched


def test_memory_estimate_falls_back_to_a_real_pass():
    class DataDependent(nn.Module):
        """Branches on a value: fake tensors have none."""

        def __init__(self):
            super().__init__()
            self.info = _info(1, 1, 1)
            self.conv = nn.Conv2d(3, 3, 1)

        def forward(self, x):
            y = self.conv(x)
            return y if float(y.mean()) > -1e9 else x

    model = DataDependent()
    run = runner.Runner(model, "cpu", "fp32")
    assert run.bytes_per_net_px(torch.rand(1, 3, 16, 16)) > 0
    assert not memory.measure_shapes_only(run, torch.rand(1, 3, 16, 16))
    assert not memory.measure_on_meta(run, torch.rand(1, 3, 16, 16))
    assert not memory.measure_on_fake(run, torch.rand(1, 3, 16, 16))
    out = restore.restore_array(model, np.random.default_rng(0).random((20, 20, 3), dtype=np.float32), precision="fp32")
    assert out.shape == (20, 20, 3)
