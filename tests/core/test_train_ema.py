"""The EMA of the weights: the update formula, the warm-up, inside a Learner's fit, resume state."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lesson7_studio.core import models
from lesson7_studio.core.errors import TrainingError
from lesson7_studio.core.losses import PixelLoss
from lesson7_studio.core.train.ema import (
    EMACallback,
    ema_weights_from_state,
    load_averaged,
)
from lesson7_studio.core.train.learner import Callback, Learner

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_update_follows_the_formula_without_warmup():
    lin = nn.Linear(2, 2)
    ema = EMACallback(0.5, warmup=False)
    ema.update(lin)  # first update: starts from the weights themselves
    w0 = lin.weight.detach().clone()
    assert torch.equal(ema.shadow["weight"], w0)
    with torch.no_grad():
        lin.weight.add_(2.0)
    ema.update(lin)
    assert torch.allclose(ema.shadow["weight"], 0.5 * w0 + 0.5 * (w0 + 2.0))
    assert ema.updates == 2


def test_warmup_decay_grows_to_the_set_value():
    ema = EMACallback(0.999)
    seen = []
    for _ in range(10000):  # (1 + n) / (10 + n) passes 0.999 at n = 8,991
        seen.append(ema.current_decay())
        ema.updates += 1
    assert seen[0] == pytest.approx(0.1)
    assert all(a <= b for a, b in itertools.pairwise(seen))
    assert seen[-1] == pytest.approx(0.999)


def test_bad_decay_is_a_typed_error():
    with pytest.raises(TrainingError, match="decay"):
        EMACallback(1.0)
    with pytest.raises(TrainingError, match="decay"):
        EMACallback("0.9")  # type: ignore[arg-type]


class _Track(Callback):
    """Records the weights after every optimizer step (runs after the EMA)."""

    order = 30

    def __init__(self):
        self.weights = []

    def after_step(self):
        net = self.learn.model.net
        self.weights.append({k: v.detach().clone() for k, v in net.state_dict().items()})


def _loader():
    torch.manual_seed(0)
    hr = torch.rand(4, 3, 16, 16)
    return torch.utils.data.DataLoader(list(zip(F.avg_pool2d(hr, 2), hr)), batch_size=2)


def test_fit_with_ema_averages_every_step_and_resumes(tmp_path):
    torch.manual_seed(0)
    net = models.restorer("unet-lite", nf=8, scale=2, self_attention=False)
    start = {k: v.detach().clone() for k, v in net.net.state_dict().items()}
    ema, track = EMACallback(0.9), _Track()
    learn = Learner(net, _loader(), None, PixelLoss("l1"), callbacks=[ema, track], device="cpu", precision="fp32")
    learn.fit(3, 1e-2, one_cycle=False)
    assert ema.updates == len(track.weights) == 6
    # the same average by hand, from the starting weights (before_fit) and each step's weights
    expect = {k: v.float().clone() for k, v in start.items()}
    for n, w in enumerate(track.weights):
        d = min(0.9, (1 + n) / (10 + n))
        expect = {k: d * v + (1 - d) * w[k].float() for k, v in expect.items()}
    key = "to_rgb.weight"
    assert torch.allclose(ema.shadow[key], expect[key], atol=1e-6)
    assert not torch.allclose(ema.shadow[key], track.weights[-1][key])

    # the resume state carries the average, and it loads back into a fresh model
    state = {"format": 1, "callbacks": {type(ema).__name__: ema.state_dict()}}
    torch.save(state, tmp_path / "x.state.pt")
    restored = ema_weights_from_state(tmp_path / "x.state.pt")
    assert restored is not None and torch.equal(restored[key], ema.shadow[key])
    again = EMACallback(0.9)
    again.load_state_dict(ema.state_dict())
    assert again.updates == 6 and torch.equal(again.shadow[key], ema.shadow[key])
    fresh = models.restorer("unet-lite", nf=8, scale=2, self_attention=False)
    load_averaged(fresh, restored)
    assert torch.equal(fresh.net.state_dict()[key], ema.shadow[key])


def test_state_without_ema_gives_none_and_mismatch_is_an_error(tmp_path):
    p = tmp_path / "s.state.pt"
    torch.save({"format": 1, "callbacks": {"Recorder": {}}}, p)
    assert ema_weights_from_state(p) is None
    with pytest.raises(TrainingError, match="do not fit"):
        load_averaged(nn.Linear(2, 2), {"weight": torch.zeros(2, 2)})
    with pytest.raises(TrainingError, match="no weights"):
        EMACallback().copy_to(nn.Linear(2, 2))
