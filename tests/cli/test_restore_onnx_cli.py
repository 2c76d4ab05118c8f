"""``restore --model X.onnx --precision bf16`` says that the precision does not apply."""

import re

import numpy as np
import pytest
import torch
from PIL import Image

import lesson7_studio.cli as cli
from lesson7_studio.core import models

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def test_onnx_restore_notes_the_unused_precision(tmp_path, capsys):
    from lesson7_studio.core.export import export_onnx

    torch.manual_seed(0)
    onnx_path = export_onnx(models.restorer("unet-lite", nf=8, blocks=1).eval(), tmp_path / "m.onnx")
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 28, 3), dtype=np.uint8)).save(src / "a.png")
    assert cli.main(["restore", str(src), str(tmp_path / "out"), "--model", str(onnx_path), "--precision", "bf16"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("Precision bf16 does not apply to OnnxRestorer models") == 1
    assert Image.open(tmp_path / "out" / "a.png").size == (56, 40)
    assert "1 restored" in captured.out and "0.00 MP/s" not in captured.out
    # a tiny image's rate is shown with digits that mean something, in MP/s or (below 0.1 MP/s) px/s
    rate = re.search(r"([\d.]+) (MP|kpx|px)/s", captured.out)
    assert rate and float(rate.group(1)) > 0 and (rate.group(2) != "MP" or float(rate.group(1)) >= 0.1), captured.out
