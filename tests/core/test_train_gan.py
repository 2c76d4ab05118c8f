"""GAN pieces: switchers (fastai semantics), GANLoss, critic lr multiplier, WGAN clipping."""

import pytest
import torch
from torch import nn

from lesson7_studio.core import models
from lesson7_studio.core.losses import AdaptiveLoss, PixelLoss
from lesson7_studio.core.train.gan import (
    AdaptiveGANSwitcher, FixedGANSwitcher, GANLearner, GANLoss, GANModule, GANTrainer, NoiseDataset,
)
from lesson7_studio.core.train.learner import Callback


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: threads only wait


class FakeLearn:
    def __init__(self, gen_mode):
        self.training = True
        self.gen_mode = gen_mode
        self.loss = torch.tensor(0.0)
        self.switches = 0

    def switch(self):
        self.gen_mode = not self.gen_mode
        self.switches += 1


def _feed(sw, learn, loss):
    learn.loss = torch.tensor(loss)
    sw.learn = learn
    sw.after_batch()


def test_adaptive_switcher_switches_on_threshold():
    sw = AdaptiveGANSwitcher(critic_thresh=0.65)
    learn = FakeLearn(gen_mode=False)
    _feed(sw, learn, 0.70)  # critic loss above threshold: keep training the critic
    assert learn.gen_mode is False
    _feed(sw, learn, 0.66)
    assert learn.gen_mode is False
    _feed(sw, learn, 0.60)  # below: back to the generator
    assert learn.gen_mode is True
    _feed(sw, learn, 5.0)  # gen_thresh None: one generator batch, then the critic again
    assert learn.gen_mode is False

    sw = AdaptiveGANSwitcher(gen_thresh=1.0, critic_thresh=0.65)
    learn = FakeLearn(gen_mode=True)
    _feed(sw, learn, 2.0)  # generator loss above gen_thresh: keep training the generator
    assert learn.gen_mode is True
    _feed(sw, learn, 0.5)
    assert learn.gen_mode is False
    learn.training = False
    _feed(sw, learn, 0.0)  # no switching during validation
    assert learn.gen_mode is False


def test_fixed_switcher_counts():
    sw = FixedGANSwitcher(n_crit=5, n_gen=1)
    learn = FakeLearn(gen_mode=False)
    modes = []
    for _ in range(12):
        modes.append(learn.gen_mode)
        _feed(sw, learn, 0.0)
    assert modes == [False] * 5 + [True] + [False] * 5 + [True]


def test_gan_loss_weights_and_critic_mean():
    loss = GANLoss(PixelLoss("mse"), weights=(1.0, 50.0))
    fake_pred = torch.tensor([[2.0, -1.0], [0.5, 0.5]])
    out, target = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    g = loss.generator(fake_pred, out, target)
    adv = AdaptiveLoss()(fake_pred, torch.ones(2))
    pix = nn.functional.mse_loss(out, target)
    assert g.item() == pytest.approx((adv + 50 * pix).item(), rel=1e-6)
    assert set(loss.components) == {"adv", "content"}
    real_pred = torch.tensor([[1.0], [3.0]])
    c = loss.critic(real_pred, fake_pred)
    want = (AdaptiveLoss()(real_pred, torch.ones(2)) + AdaptiveLoss()(fake_pred, torch.zeros(2))) / 2
    assert c.item() == pytest.approx(want.item())
    w = GANLoss(kind="wasserstein")
    assert w.critic(real_pred, fake_pred).item() == pytest.approx(2.0 - 0.5)


class ModeLog(Callback):
    order = 50

    def __init__(self):
        self.modes, self.crit_lrs, self.gen_lrs = [], [], []

    def before_batch(self):
        if self.learn.training:
            self.modes.append(self.learn.gen_mode)
            self.gen_lrs.append(self.learn.opt.param_groups[0]["lr"])
            self.crit_lrs.append(self.learn.crit_opt.param_groups[0]["lr"])


def test_restoration_gan_alternates_and_multiplies_critic_lr():
    torch.manual_seed(0)
    x, y = torch.rand(8, 3, 8, 8), torch.rand(8, 3, 16, 16)
    dl = torch.utils.data.DataLoader(list(zip(x, y)), batch_size=2)
    gen = models.restorer("unet-lite", nf=8, scale=2, self_attention=False)
    critic = nn.Sequential(nn.Conv2d(3, 4, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 3), nn.Flatten())
    learn = GANLearner(GANModule(gen, critic), dl, dl, GANLoss(PixelLoss("mse")), critic_lr_mult=5.0,
                       device="cpu", precision="fp32")
    log = ModeLog()
    for cb in (GANTrainer(), AdaptiveGANSwitcher(critic_thresh=100.0), log):  # critic always "good enough"
        learn.add_cb(cb)
    g0 = [p.detach().clone() for p in gen.parameters()]
    learn.fit(1, 1e-4)
    assert log.modes == [False, True, False, True]
    assert all(c == pytest.approx(5 * g) for c, g in zip(log.crit_lrs, log.gen_lrs))
    assert any(not torch.equal(a, b) for a, b in zip(g0, gen.parameters()))
    assert learn.gen_mode is False  # validation ran in generator mode and switched back
    assert "gen_loss" in learn.get_cb(GANTrainer).epoch_metrics()


def test_wgan_weights_stay_clipped():
    torch.manual_seed(0)
    g = models.create("wgan-generator", in_size=16, n_features=8, noise_sz=8, n_extra_layers=1)
    c = models.create("wgan-critic", in_size=16, n_features=8, n_extra_layers=1)
    imgs = torch.rand(12, 3, 16, 16)
    ds = NoiseDataset(imgs, noise_size=8, seed=0)
    z0, _ = ds[3]
    assert torch.equal(z0, ds[3][0])  # noise is a function of (seed, epoch, index)
    dl = torch.utils.data.DataLoader(ds, batch_size=2)
    learn = GANLearner(GANModule(g, c), dl, None, GANLoss(kind="wasserstein"), critic_lr_mult=1.0, clip=0.01,
                       switch_eval=False, real_transform=lambda t: t * 2 - 1, device="cpu", precision="fp32",
                       wd=0.0)
    log = ModeLog()
    for cb in (GANTrainer(), FixedGANSwitcher(n_crit=5, n_gen=1), log):
        learn.add_cb(cb)
    g0 = [p.detach().clone() for p in g.parameters()]
    learn.fit(2, 1e-2)
    assert log.modes == ([False] * 5 + [True]) * 2
    assert max(p.abs().max().item() for p in c.parameters()) <= 0.01 + 1e-9
    assert any(not torch.equal(a, b) for a, b in zip(g0, g.parameters()))
