"""``lesson7-studio restore / eval / export`` on tiny images with a tiny checkpoint."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lesson7_studio.cli import restore_cmd
from lesson7_studio.core import checkpoint, models
from lesson7_studio.core.errors import CheckpointError, ModelError


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lesson7-studio")
    restore_cmd.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    r = models.restorer("unet-lite", nf=8, blocks=1, self_attention=False)
    return checkpoint.save_model(tmp_path_factory.mktemp("m") / "lite.safetensors", r, "unet-lite", r.info.options)


def make_src(root: Path) -> Path:
    rng = np.random.default_rng(0)
    (root / "sub").mkdir(parents=True)
    for rel in ["a.jpg", "sub/b.png"]:
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(root / rel)
    return root


def test_restore_folder_with_a_broken_file(ckpt, tmp_path, capsys):
    src = make_src(tmp_path / "src")
    (src / "broken.png").write_bytes(b"garbage")
    assert run(["restore", str(src), str(tmp_path / "out"), "--model", str(ckpt), "--device", "cpu"]) == 0
    out = capsys.readouterr()
    assert "2 restored" in out.out and "broken.png" in out.out
    assert Image.open(tmp_path / "out" / "a.jpg").size == (48, 40)
    assert (tmp_path / "out" / "sub" / "b.png").is_file()
    # resume: nothing left to do
    assert run(["restore", str(src), str(tmp_path / "out"), "--model", str(ckpt), "--skip-existing"]) == 0
    assert "0 restored, 2 skipped" in capsys.readouterr().out


def test_restore_one_file_flat_png(ckpt, tmp_path, capsys):
    src = make_src(tmp_path / "src")
    assert run(["restore", str(src / "a.jpg"), str(tmp_path / "out"), "--model", str(ckpt), "--format", "png", "--tile", "16"]) == 0
    assert run(["restore", str(src / "a.jpg"), str(tmp_path / "whole"), "--model", str(ckpt), "--format", "png"]) == 0
    tiled = np.asarray(Image.open(tmp_path / "out" / "a.png"), np.int16)
    whole = np.asarray(Image.open(tmp_path / "whole" / "a.png"), np.int16)
    assert tiled.shape == whole.shape == (40, 48, 3)  # 2x the 24x20 input, as PNG
    assert np.abs(tiled - whole).max() <= 1, "16 px tiles leave seams"  # measured: identical


def test_restore_unrestorable_image_exits_1(ckpt, tmp_path, monkeypatch, capsys):
    from lesson7_studio.core import restore

    src = make_src(tmp_path / "src")

    def boom(*a, **k):
        raise RuntimeError("the model broke")

    monkeypatch.setattr(restore.folder, "restore_image", boom)
    assert run(["restore", str(src), str(tmp_path / "out"), "--model", str(ckpt)]) == 1
    assert "could not be restored" in capsys.readouterr().err


def test_restore_model_errors(tmp_path):
    src = make_src(tmp_path / "src")
    with pytest.raises(ModelError):
        run(["restore", str(src), str(tmp_path / "out"), "--model", "unet-resnet34"])
    with pytest.raises(CheckpointError):
        run(["restore", str(src), str(tmp_path / "out"), "--model", str(tmp_path / "none.safetensors")])


def test_eval_json_and_table(ckpt, tmp_path, capsys):
    src = make_src(tmp_path / "gt")
    assert run(["eval", str(ckpt), str(src), "--recipe", "decrappify-x2", "--seed", "3", "--json", "--out", str(tmp_path / "r.json")]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["count"] == 2 and res["seed"] == 3 and set(res["mean"]) == {"model", "bicubic"}
    assert json.loads((tmp_path / "r.json").read_text())["mean"] == res["mean"]
    assert run(["eval", str(ckpt), str(src), "--baseline", "bicubic", "--baseline", "lanczos"]) == 0
    table = capsys.readouterr().out
    assert "Y-PSNR" in table and "lanczos" in table and "mean" in table
    assert run(["eval", str(ckpt), str(src), "--seed", "3", "--ensemble", "--json"]) == 0
    ens = json.loads(capsys.readouterr().out)
    assert ens["ensemble"] is True and res["ensemble"] is False
    assert ens["mean"]["bicubic"] == res["mean"]["bicubic"]  # (an untrained unet-lite is bicubic: same model scores)


def test_export(ckpt, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    assert run(["export", str(ckpt), str(tmp_path / "m.onnx")]) == 0
    assert (tmp_path / "m.onnx").is_file() and "checked" in capsys.readouterr().out
