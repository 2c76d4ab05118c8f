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
