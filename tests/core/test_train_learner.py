"""The Learner loop: overfitting, events, freeze/unfreeze with discriminative rates, AdamW,
cancellation, precision and device choice."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lesson7_studio.core import models
from lesson7_studio.core.errors import Cancelled, DeviceError, TrainingError
from lesson7_studio.core.events import CancelToken
from lesson7_studio.core.losses import PixelLoss
from lesson7_studio.core.train.learner import (
    Callback, CancelBatchException, CancelFitException, Learner, make_optimizer, norm_params, resolve_device,
    resolve_precision,
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: threads only wait


def _pairs(n=4, size=16):
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    hr = torch.stack([
        torch.stack([0.5 + 0.5 * torch.sin(6.28 * (f * xx + (c + 1) * yy) + f) for c in range(3)])
        for f in (1.0, 2.0, 3.0, 1.5, 2.5, 0.5)[:n]
    ])
    return F.avg_pool2d(hr, 2), hr


class Losses(Callback):
    def __init__(self):
        self.train = []

    def after_loss(self):
        if self.learn.training:
            self.train.append(float(self.learn.loss))


def test_tiny_unet_overfits_a_handful_of_images():
    torch.manual_seed(0)
    lr, hr = _pairs(4, 16)
    dl = torch.utils.data.DataLoader(list(zip(lr, 1 - hr)), batch_size=4)  # a colour-inverting restorer
    net = models.restorer("unet-lite", nf=8, scale=2, self_attention=False)
    rec = Losses()
    learn = Learner(net, dl, None, PixelLoss("mse"), callbacks=[rec], device="cpu", precision="fp32")
    learn.fit(150, 1e-2, one_cycle=True)  # 100 left the leaky tail at 8.8x (the ReLU one at 10.3x)
    assert rec.train[0] / rec.train[-1] > 10


class EventLog(Callback):
    def __init__(self):
        self.events = []

    def __getattribute__(self, name):
        if name.startswith(("before_", "after_")):
            return lambda: object.__getattribute__(self, "events").append(name)
        return object.__getattribute__(self, name)


def test_events_run_in_order():
    x = torch.rand(2, 3, 8, 8)
    dl = torch.utils.data.DataLoader(list(zip(x, x)), batch_size=2)
    log = EventLog()
    learn = Learner(nn.Conv2d(3, 3, 1), dl, dl, nn.MSELoss(), callbacks=[log], device="cpu", precision="fp32")
    learn.fit(1, 1e-3)
    train_batch = ["before_batch", "after_pred", "after_loss", "before_backward", "after_backward",
                   "before_step", "after_step", "after_batch"]
    assert log.events == (["before_fit", "before_epoch", "before_train"] + train_batch
                          + ["after_train", "before_validate", "before_batch", "after_pred", "after_loss",
                             "after_batch", "after_validate", "after_epoch", "after_fit"])


def test_callback_exceptions_skip_and_stop():
    x = torch.rand(6, 3, 8, 8)
    dl = torch.utils.data.DataLoader(list(zip(x, x)), batch_size=2)

    class SkipStep(Callback):
        def before_step(self):
            raise CancelBatchException()

    m = nn.Conv2d(3, 3, 1)
    w0 = m.weight.detach().clone()
    Learner(m, dl, None, nn.MSELoss(), callbacks=[SkipStep()], device="cpu", precision="fp32").fit(1, 1e-2)
    assert torch.equal(m.weight, w0)

    class StopAt2(Callback):
        def after_batch(self):
            if self.learn.training and self.learn.step == 2:
                raise CancelFitException("budget")

    learn = Learner(nn.Conv2d(3, 3, 1), dl, None, nn.MSELoss(), callbacks=[StopAt2()], device="cpu",
                    precision="fp32")
    learn.fit(3, 1e-2)
    assert learn.step == 2 and learn.fit_stop_reason == "budget"
    assert learn.position() == (0, 2)


def test_cancel_token_stops_at_a_batch_boundary():
    x = torch.rand(8, 3, 8, 8)
    dl = torch.utils.data.DataLoader(list(zip(x, x)), batch_size=2)
    tok = CancelToken()
    seen = []

    class CancelAt3(Callback):
        def after_batch(self):
            if self.learn.training and self.learn.step == 3:
                tok.cancel()

        def after_interrupt(self):
            seen.append(self.learn.position())

    learn = Learner(nn.Conv2d(3, 3, 1), dl, None, nn.MSELoss(), callbacks=[CancelAt3()], device="cpu",
                    precision="fp32", cancel=tok)
    with pytest.raises(Cancelled):
        learn.fit(2, 1e-3)
    assert learn.step == 3 and seen == [(0, 3)]


@pytest.fixture(scope="module")
def resnet_unet():
    torch.manual_seed(0)
    return models.restorer("unet-resnet18", pretrained=False, scale=2, self_attention=False)


def test_freeze_trains_only_the_decoder_and_norm_layers(resnet_unet):
    net = resnet_unet
    lr, hr = _pairs(2, 32)
    dl = torch.utils.data.DataLoader(list(zip(lr, hr)), batch_size=2)
    learn = Learner(net, dl, None, PixelLoss("l1"), device="cpu", precision="fp32")
    groups = learn.layer_groups
    assert len(groups) == 3
    enc_ids = {id(p) for p in net.net.encoder.parameters()}
    assert {id(p) for p in groups[0] + groups[1]} == enc_ids
    learn.freeze()
    norm_ids = {id(p) for p in norm_params(net)}
    for p in groups[0] + groups[1]:
        assert p.requires_grad == (id(p) in norm_ids)
    assert all(p.requires_grad for p in groups[2])
    enc_convs = [p.detach().clone() for p in groups[0] + groups[1] if id(p) not in norm_ids]
    head = [p.detach().clone() for p in groups[2]]
    learn.fit(1, 1e-3)
    assert all(torch.equal(a, b) for a, b in zip(enc_convs, [p for p in groups[0] + groups[1] if id(p) not in norm_ids]))
    assert any(not torch.equal(a, b) for a, b in zip(head, groups[2]))

    learn.unfreeze()
    assert all(p.requires_grad for g in groups for p in g)
    before = [p.detach().clone() for p in groups[0]]
    learn.fit(1, slice(1e-5, 1e-3), one_cycle=True, pct_start=0.5)
    by_group = {}
    for pg in learn.opt.param_groups:
        by_group[pg["layer_group"]] = pg["lr"]
    lo, mid, hi = by_group[0], by_group[1], by_group[2]
    assert mid / lo == pytest.approx(10, rel=1e-6) and hi / mid == pytest.approx(10, rel=1e-6)
    assert any(not torch.equal(a, b) for a, b in zip(before, groups[0]))


def test_adamw_matches_fastai_step_and_skips_decay_on_bn_and_bias():
    m = nn.Sequential(nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2))
    opt = make_optimizer([list(m.parameters())], m, lr=0.1, wd=0.5, betas=(0.9, 0.99), eps=1e-5)
    decays = {id(p): pg["weight_decay"] for pg in opt.param_groups for p in pg["params"]}
    assert decays[id(m[0].weight)] == 0.5
    assert decays[id(m[0].bias)] == 0.0 and decays[id(m[1].weight)] == 0.0
    w = m[0].weight
    w0 = w.detach().clone()
    g = torch.randn_like(w)
    w.grad = g.clone()
    opt.step()
    # fastai: p *= 1 - lr*wd; avg = (1-mom) g; sqr = (1-sqr_mom) g^2; p -= lr/debias1 * avg / (sqrt(sqr/debias2) + eps)
    p = w0 * (1 - 0.1 * 0.5)
    avg, sqr = 0.1 * g, 0.01 * g * g
    want = p - 0.1 / 0.1 * avg / ((sqr / 0.01).sqrt() + 1e-5)
    assert torch.allclose(w.detach(), want, atol=1e-6)


def test_grad_clip_and_bf16_autocast_step():
    x = torch.rand(4, 3, 8, 8)
    dl = torch.utils.data.DataLoader(list(zip(x, x)), batch_size=2)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))
    learn = Learner(m, dl, dl, nn.MSELoss(), device="cpu", precision="bf16", grad_clip=0.1)
    assert learn.precision.dtype == torch.bfloat16
    learn.fit(1, 1e-3)
    assert torch.isfinite(learn.loss) and all(p.dtype == torch.float32 for p in m.parameters())


def test_device_and_precision_choice():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError):
            resolve_device("cuda")
    with pytest.raises(DeviceError):
        resolve_device("tpu")
    cpu = torch.device("cpu")
    assert resolve_precision(cpu, "fp32") == "fp32"
    assert resolve_precision(cpu, "auto") in ("bf16", "fp32")
    with pytest.raises(TrainingError):
        resolve_precision(cpu, "fp16")
    with pytest.raises(TrainingError):
        resolve_precision(cpu, "int8")


def test_early_stopping_and_time_budget():
    from lesson7_studio.core.train.callbacks import BudgetCallback, EarlyStopping, Recorder

    x = torch.rand(4, 3, 8, 8)
    dl = torch.utils.data.DataLoader(list(zip(x, x)), batch_size=2)
    m = nn.Conv2d(3, 3, 1)
    learn = Learner(m, dl, dl, nn.MSELoss(), callbacks=[Recorder(image_metrics=False), EarlyStopping(patience=2)],
                    device="cpu", precision="fp32")
    learn.fit(10, 0.0)  # lr 0: the validation loss never improves
    assert learn.fit_stop_reason == "early-stop" and learn.epoch == 2  # best at 0, no gain at 1 and 2

    learn = Learner(nn.Conv2d(3, 3, 1), dl, None, nn.MSELoss(), callbacks=[BudgetCallback(max_seconds=0.0)],
                    device="cpu", precision="fp32")
    learn.fit(5, 1e-3)
    assert learn.fit_stop_reason == "budget" and learn.step == 1 and learn.position() == (0, 1)
