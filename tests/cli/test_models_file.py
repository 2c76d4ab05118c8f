"""Model files in a project and ``lesson7-studio models FILE``: every file restore can load."""

import json

import pytest
import torch

import lesson7_studio.cli as cli
from lesson7_studio.core import checkpoint, models
from lesson7_studio.core.project import MODEL_SUFFIXES, Project


@pytest.fixture()
def lite_file(tmp_path):
    torch.manual_seed(0)
    lite = models.restorer("unet-lite", nf=8, blocks=1).eval()
    return checkpoint.save_model(tmp_path / "lite.safetensors", lite, "unet-lite", lite.info.options)


def test_project_lists_every_loadable_model_file(tmp_path):
    p = Project(tmp_path / "proj").create()
    for name in ("b.safetensors", "community.pth", "c.PT", "export.onnx", "old.ckpt"):
        (p.models_dir / name).write_bytes(b"x")
    (p.models_dir / ".a.safetensors.part").write_bytes(b"x")
    (p.models_dir / "notes.txt").write_text("x")
    (p.models_dir / "folder.pth").mkdir()
    assert [m.name for m in p.list_models()] == ["b.safetensors", "c.PT", "community.pth", "export.onnx", "old.ckpt"]


def test_every_listed_suffix_is_one_restore_loads(tmp_path):
    from lesson7_studio.core import restore
    from lesson7_studio.core.errors import CheckpointError

    for suffix in MODEL_SUFFIXES:
        f = tmp_path / f"m{suffix}"
        f.write_bytes(b"not a model")
        with pytest.raises(Exception) as info:
            restore.load_any_model(f)
        assert "Cannot load" not in str(info.value) or not isinstance(info.value, CheckpointError), suffix


def test_models_file_describes_a_checkpoint(lite_file, capsys):
    assert cli.main(["models", str(lite_file)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{lite_file}: unet-lite (lesson7 checkpoint)")
    assert "scale         x2 (network upsamples x2)" in out
    assert "sides a multiple of 8 px" in out and "precisions    fp32, bf16, fp16" in out
    assert cli.main(["models", str(lite_file), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    params = sum(p.numel() for p in models.restorer("unet-lite", nf=8, blocks=1).parameters())
    assert d["parameters"] == params and d["scale"] == 2 and d["tiling"]["size_multiple"] == 8


def test_models_file_describes_an_onnx_export(lite_file, tmp_path, capsys):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from lesson7_studio.core.export import export_onnx

    path = export_onnx(lite_file, tmp_path / "lite.onnx")
    assert cli.main(["models", str(path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["format"] == "onnx" and d["precisions"] == ["fp32"] and d["scale"] == 2
    assert d["tiling"]["any_size"] is True and d["tiling"]["memory_estimate"] is True
    params = sum(p.numel() for p in models.restorer("unet-lite", nf=8, blocks=1).parameters())
    assert abs(d["parameters"] - params) <= params // 20  # the baked graph's weights
    assert cli.main(["models", str(path)]) == 0
    assert "--precision does not apply" in capsys.readouterr().out


def test_models_community_pth_is_not_an_unknown_model(tmp_path, capsys, monkeypatch):
    path = tmp_path / "community.pth"
    torch.save({"conv_first.weight": torch.zeros(4, 3, 3, 3)}, path)
    try:
        import spandrel  # noqa: F401
    except ImportError:
        assert cli.main(["models", str(path)]) == 1
        err = capsys.readouterr().err
        assert "Unknown model" not in err and "spandrel" in err  # what restore would say
        return
    pytest.skip("spandrel installed: covered by the ESRGAN test below")


def test_models_community_esrgan_with_spandrel(tmp_path, capsys):
    pytest.importorskip("spandrel")
    from spandrel.architectures.ESRGAN import ESRGAN

    net = ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=2)
    path = tmp_path / "tiny_esrgan_x2.pth"
    torch.save(net.state_dict(), path)
    assert cli.main(["models", str(path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["format"] == "community (spandrel)" and d["scale"] == 2
    assert d["parameters"] == sum(p.numel() for p in net.parameters())


def test_missing_model_file_says_not_found(tmp_path, capsys):
    assert cli.main(["models", str(tmp_path / "gone.pth")]) == 1
    assert "not found" in capsys.readouterr().err
