import json

import numpy as np
import pytest
import torch

from lesson7_studio.core import checkpoint, models, restore
from lesson7_studio.core.errors import CheckpointError, Lesson7Error, ModelError

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from lesson7_studio.core import export  # noqa: E402


@pytest.fixture(scope="module")
def lite():
    torch.manual_seed(0)
    return models.restorer("unet-lite", nf=8, blocks=1).eval()  # self-attention on: exported too


def test_onnx_matches_pytorch_with_dynamic_size(lite, tmp_path):
    path = export.export_onnx(lite, tmp_path / "lite.onnx")
    assert path.is_file() and not list(tmp_path.glob("*.part"))
    onnx_model = export.OnnxRestorer(path)
    assert (onnx_model.info.scale, onnx_model.info.size_multiple) == (2, lite.info.size_multiple)
    for h, w in [(16, 16), (24, 40), (8, 56)]:
        x = torch.rand(1, 3, h, w)
        with torch.no_grad():
            ref = lite(x)
        got = onnx_model(x)
        assert got.shape == ref.shape == (1, 3, 2 * h, 2 * w)
        assert (got - ref).abs().max().item() < 1e-4


def test_metadata_props(lite, tmp_path):
    import onnx

    path = export.export_onnx(lite, tmp_path / "m.onnx")
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["lesson7.name"] == "unet-lite"
    assert meta["lesson7.scale"] == "2" and meta["lesson7.size_multiple"] == str(lite.info.size_multiple)
    assert json.loads(meta["lesson7.options"])["nf"] == 8


def test_restore_with_onnx_file_matches_pytorch(lite, tmp_path):
    ckpt = checkpoint.save_model(tmp_path / "m.safetensors", lite, "unet-lite", lite.info.options)
    path = export.export_onnx(ckpt, tmp_path / "m.onnx")  # from a checkpoint path
    model = restore.load_any_model(path)
    assert isinstance(model, export.OnnxRestorer)
    a = np.random.default_rng(0).random((37, 29, 3), dtype=np.float32)
    ours = restore.restore_array(lite, a, precision="fp32")
    theirs = restore.restore_array(model, a)
    assert np.abs(ours - theirs).max() < 1e-4


def test_export_refuses_bad_inputs(lite, tmp_path):
    with pytest.raises(Lesson7Error, match=".onnx"):
        export.export_onnx(lite, tmp_path / "m.txt")
    with pytest.raises(ModelError):
        export.export_onnx(torch.nn.Conv2d(3, 3, 1), tmp_path / "m.onnx")
    with pytest.raises(CheckpointError):
        export.OnnxRestorer(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(CheckpointError):
        export.OnnxRestorer(bad)


def test_failed_check_keeps_no_file(lite, tmp_path, monkeypatch):
    def broken(*a, **k):
        raise ModelError("ONNX output differs")

    monkeypatch.setattr(export, "_check_against_torch", broken)
    with pytest.raises(ModelError):
        export.export_onnx(lite, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def _psnr(a, b):
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def test_onnx_restore_tiles_like_pytorch_on_any_size(lite, tmp_path, monkeypatch):
    """The exported file carries the PyTorch model's memory estimate, so an ONNX restore is cut into
    the tiles a PyTorch restore would use (the whole image here, even where a fixed 256 px ONNX
    tile used to cut it in two) and the two agree above 50 dB on every size."""
    path = export.export_onnx(lite, tmp_path / "lite.onnx")
    onnx_model = export.OnnxRestorer(path)
    assert onnx_model.dynamic_size and onnx_model.memory_estimate is not None
    assert onnx_model.memory_estimate[0] > 0
    plans = []
    from lesson7_studio.core.restore import tiling

    real_plan = tiling.plan_axis

    def spy(n, tile, *a, **k):
        plans.append((n, tile))
        return real_plan(n, tile, *a, **k)

    monkeypatch.setattr(tiling, "plan_axis", spy)
    rng = np.random.default_rng(1)
    for h, w in [(13, 21), (256, 384), (200, 600)]:
        a = rng.random((h, w, 3), dtype=np.float32)
        plans.clear()
        ours = restore.restore_array(lite, a, precision="fp32")
        torch_plan = list(plans)
        plans.clear()
        theirs = restore.restore_array(onnx_model, a)
        assert plans == torch_plan  # the same tiles
        assert ours.shape == theirs.shape == (2 * h, 2 * w, 3)
        assert _psnr(ours, theirs) > 50
    # and with tiles forced, the same overlap and blending
    a = rng.random((100, 140, 3), dtype=np.float32)
    ours = restore.restore_array(lite, a, tile=48, precision="fp32")
    theirs = restore.restore_array(onnx_model, a, tile=48)
    assert _psnr(ours, theirs) > 50


def test_precision_that_does_not_apply_to_onnx_says_so(lite, tmp_path):
    from lesson7_studio.core.events import Log

    onnx_model = export.OnnxRestorer(export.export_onnx(lite, tmp_path / "lite.onnx"))
    a = np.random.default_rng(0).random((16, 16, 3), dtype=np.float32)
    events = []
    restore.restore_array(onnx_model, a, precision="bf16", on_event=events.append)
    notes = [e for e in events if isinstance(e, Log) and "does not apply" in e.message]
    assert len(notes) == 1 and "bf16" in notes[0].message and notes[0].level == "warning"
    events.clear()
    restore.restore_array(onnx_model, a, precision="auto", on_event=events.append)
    assert not [e for e in events if isinstance(e, Log)]


def test_onnx_file_without_estimate_keeps_fixed_tiles(lite, tmp_path):
    import onnx

    path = export.export_onnx(lite, tmp_path / "lite.onnx")
    proto = onnx.load(str(path))
    keep = [p for p in proto.metadata_props if "bytes_per_net_px" not in p.key]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    onnx.save(proto, str(tmp_path / "old.onnx"))
    old = export.OnnxRestorer(tmp_path / "old.onnx")
    assert old.memory_estimate is None
    a = np.random.default_rng(0).random((24, 40, 3), dtype=np.float32)
    assert restore.restore_array(old, a).shape == (48, 80, 3)
