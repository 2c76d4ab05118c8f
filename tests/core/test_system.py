"""core/system.py: what the status bar and About dialog show about the machine."""

from __future__ import annotations

import torch

from lesson7_studio.core import system


def test_device_name_only_for_cuda(monkeypatch):
    asked = []
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: asked.append(i) or f"GPU {i}")
    assert system.device_name("cpu") == "" and system.device_name("mps") == ""
    assert system.device_name("cuda") == "GPU 0" and system.device_name("cuda:1") == "GPU 1"
    assert asked == [0, 1]

    def broken(i):
        raise RuntimeError("no driver")

    monkeypatch.setattr(torch.cuda, "get_device_name", broken)
    assert system.device_name("cuda") == ""  # informative only: never an error


def test_system_info(monkeypatch, tmp_path):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    info = system.system_info()
    assert info.torch == torch.__version__ and info.torchvision == torchvision.__version__
    assert info.cpu_threads == torch.get_num_threads() >= 1
    assert info.weights_cache == tmp_path / "hub" / "hub" / "checkpoints"
