"""LR finder: exponential sweep, divergence stop, suggestions, plot, state restored."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from lesson7_studio.core.train.learner import Learner
from lesson7_studio.core.train.lr_finder import LRFindResult, find_lr, plot_curve, steep, valley


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: threads only wait


def test_sweep_suggests_a_rate_restores_the_model_and_plots(tmp_path):
    torch.manual_seed(0)
    x = torch.rand(64, 3, 8, 8)
    y = x * 0.5 + 0.25
    dl = torch.utils.data.DataLoader(list(zip(x, y)), batch_size=4, shuffle=True)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 3, 3, padding=1))
    before = [p.detach().clone() for p in model.parameters()]
    learn = Learner(model, dl, None, nn.MSELoss(), device="cpu", precision="fp32")
    res = find_lr(learn, start_lr=1e-6, end_lr=100.0, num_it=60)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    lrs = np.asarray(res.lrs)
    assert np.all(np.diff(lrs) > 0) and lrs[0] == pytest.approx(1e-6)
    assert np.allclose(np.diff(np.log(lrs)), np.log(1e8) / 60)  # exponential steps
    assert len(res.lrs) < 60  # stopped when the loss blew up (lr up to 100)
    assert 1e-6 < res.suggestion < 10 and 1e-6 <= res.steep < 10
    path = plot_curve(res, tmp_path / "lr.png")
    im = Image.open(path)
    assert im.size == (640, 420) and len(np.unique(np.asarray(im).reshape(-1, 3), axis=0)) > 3


def test_valley_and_steep_on_a_known_curve():
    lrs = list(np.logspace(-6, 0, 61))
    losses = [2.0] * 20 + list(np.linspace(2.0, 0.5, 30)) + list(np.linspace(0.5, 5.0, 11))
    v = valley(lrs, losses)
    s = steep(lrs, losses)
    assert lrs[20] < v < lrs[49]
    assert lrs[19] <= s < lrs[50]
    r = LRFindResult(lrs=lrs, losses=losses, suggestion=v, valley=v, steep=s)
    assert r.suggestion == v
