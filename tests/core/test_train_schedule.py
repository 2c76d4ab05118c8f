"""One-cycle schedule (fastai fit_one_cycle), discriminative learning rates, lr JSON."""

import math

import pytest
import torch
from torch import nn

from lesson7_studio.core.train.learner import Learner
from lesson7_studio.core.train.callbacks import Recorder
from lesson7_studio.core.train.schedule import (
    OneCycle, combined_cos, even_mults, group_lrs, lr_from_json, lr_to_json, sched_cos,
)


def test_one_cycle_shape_matches_fastai_defaults():
    s = OneCycle(1e-3)  # div 25, div_final 1e5, pct_start 0.25, moms (0.95, 0.85, 0.95)
    assert s.lr(0.0) == pytest.approx(1e-3 / 25)
    assert s.lr(0.25) == pytest.approx(1e-3)
    assert s.lr(1.0) == pytest.approx(1e-3 / 1e5)
    assert s.mom(0.0) == pytest.approx(0.95)
    assert s.mom(0.25) == pytest.approx(0.85)
    assert s.mom(1.0) == pytest.approx(0.95)
    pcts = [i / 200 for i in range(201)]
    lrs = [s.lr(p) for p in pcts]
    moms = [s.mom(p) for p in pcts]
    peak = lrs.index(max(lrs))
    assert pcts[peak] == pytest.approx(0.25)
    assert all(a <= b for a, b in zip(lrs[:peak], lrs[1 : peak + 1]))  # warm-up rises
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1 :]))  # annealing falls
    assert moms.index(min(moms)) == peak  # momentum moves the other way
    # half-cosine: midway through the warm-up the lr is halfway between start and peak
    assert s.lr(0.125) == pytest.approx((1e-3 / 25 + 1e-3) / 2)


def test_combined_cos_formula():
    f = combined_cos(0.3, 1.0, 10.0, 0.0)
    for pos in (0.0, 0.1, 0.3, 0.65, 1.0):
        if pos < 0.3:
            want = 1 + (1 + math.cos(math.pi * (1 - pos / 0.3))) * 9 / 2
        else:
            p = (pos - 0.3) / 0.7
            want = 10 + (1 + math.cos(math.pi * (1 - p))) * -10 / 2
        assert f(pos) == pytest.approx(want)
    assert sched_cos(2.0, 4.0, 0.5) == pytest.approx(3.0)


def test_group_lrs_slice_semantics():
    assert group_lrs(slice(1e-5, 1e-3), 3) == pytest.approx([1e-5, 1e-4, 1e-3])
    assert group_lrs(slice(None, 1e-3), 3) == pytest.approx([1e-4, 1e-4, 1e-3])
    assert group_lrs(2e-3, 3) == [2e-3] * 3
    assert group_lrs([1e-4], 2) == [1e-4, 1e-4]
    assert even_mults(1.0, 100.0, 3) == pytest.approx([1.0, 10.0, 100.0])
    with pytest.raises(ValueError):
        group_lrs([1.0, 2.0], 3)


def test_lr_json_round_trip():
    for lr in (1e-3, slice(1e-5, 1e-3), slice(None, 3e-3), [1e-4, 1e-3]):
        back = lr_from_json(lr_to_json(lr))
        assert back == lr
    assert lr_from_json("slice(1e-6, 1e-3)") == slice(1e-6, 1e-3)


def test_learner_follows_one_cycle_per_batch():
    torch.manual_seed(0)
    x = torch.rand(8, 3, 8, 8)
    dl = torch.utils.data.DataLoader(list(zip(x, x)), batch_size=2)
    model = nn.Conv2d(3, 3, 3, padding=1)
    rec = Recorder(image_metrics=False)
    learn = Learner(model, dl, None, nn.MSELoss(), callbacks=[rec], device="cpu", precision="fp32")
    learn.fit(2, 1e-2, one_cycle=True, pct_start=0.25)
    s = OneCycle(1e-2, pct_start=0.25)
    want = [s.lr(i / 8) for i in range(8)]  # 2 epochs x 4 batches, set before each batch
    assert rec.lrs == pytest.approx(want)
    assert learn.opt.param_groups[0]["betas"][0] == pytest.approx(s.mom(7 / 8))
