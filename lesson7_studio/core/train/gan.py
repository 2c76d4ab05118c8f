"""GAN training the fastai way: GANModule, GANLoss, GANTrainer, switchers.

The split follows fastai v2's vision/gan.py. Unlike fastai, the generator and the critic have
their own optimizers (the critic's learning rate is the generator's times ``mult_lr``, which is
what fastai's GANDiscriminativeLR does); a switcher decides after every training batch which of
the two trains next. Two losses come with it: the lesson's (generator =
``w_adv * BCE(critic(fake), real) + w_pix * pixel(fake, target)``, critic = mean of the BCE on
real and fake patch maps) and Wasserstein (generator = mean critic score on fakes, critic =
mean(real) - mean(fake), with weight clipping).

Units of the pixel term. The lesson's generator saw ImageNet-normalised tensors, so its
``MSELossFlat`` was on ``(x - mean) / std``: about 1/std^2 = 19.6 times the MSE of the same
images in [0, 1], which is what our Restorers output. ``GANLoss(pixel_std=IMAGENET_STD)``
computes a pixel-wise term (MSE, L1) on ``x / std`` per channel (the mean cancels in a
difference), so ``weights=(1, 50)`` strike the lesson's balance between the adversarial and
the pixel term. A feature loss normalises its input itself and is used as is.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import torch
from torch import nn

from ..events import SampleImages
from ..losses import AdaptiveLoss, wasserstein_critic_loss, wasserstein_gen_loss
from .callbacks import SmoothLoss, grid_image, save_grid, to_uint8
from .learner import Callback, Learner, make_optimizer


class GANModule(nn.Module):
    """A generator and a critic; ``forward`` runs the one selected by ``gen_mode``."""

    def __init__(self, generator: nn.Module, critic: nn.Module, gen_mode: bool = False) -> None:
        super().__init__()
        self.generator = generator
        self.critic = critic
        self.gen_mode = gen_mode

    def forward(self, *args: Any) -> torch.Tensor:
        return self.generator(*args) if self.gen_mode else self.critic(*args)

    def switch(self, gen_mode: Optional[bool] = None) -> None:
        self.gen_mode = (not self.gen_mode) if gen_mode is None else bool(gen_mode)


class GANLoss(nn.Module):
    """Generator and critic losses of a GAN.

    ``kind="bce"``: the lesson's ``AdaptiveLoss(BCEWithLogitsLoss())`` on the critic's patch map;
    generator loss = ``weights[0] * adversarial + weights[1] * pixel_loss(output, target)``
    (components ``adv`` and ``content``).
    ``kind="wasserstein"``: WGAN's losses (no pixel term).
    """

    def __init__(self, pixel_loss: Optional[Callable] = None, *, kind: str = "bce",
                 weights: Sequence[float] = (1.0, 50.0), pixel_std: Optional[Sequence[float]] = None) -> None:
        super().__init__()
        if kind not in ("bce", "wasserstein"):
            raise ValueError(f"GAN loss kind must be bce or wasserstein, not {kind!r}")
        self.kind = kind
        self.pixel_loss = pixel_loss
        self.weights = (float(weights[0]), float(weights[1]))
        # per-channel 1/std: the pixel term on (x / std), the lesson's normalised units (see above)
        inv = None if pixel_std is None else 1.0 / torch.tensor([float(v) for v in pixel_std]).view(1, -1, 1, 1)
        self.register_buffer("pixel_inv_std", inv, persistent=False)
        self.adaptive = AdaptiveLoss(nn.BCEWithLogitsLoss())
        self.components: dict[str, torch.Tensor] = {}

    def generator(self, fake_pred: torch.Tensor, output: torch.Tensor, target: Optional[torch.Tensor]) -> torch.Tensor:
        if self.kind == "wasserstein":
            loss = wasserstein_gen_loss(fake_pred)
            self.components = {"adv": loss.detach()}
            return loss
        ones = fake_pred.new_ones(fake_pred.shape[0])
        adv = self.adaptive(fake_pred, ones)
        loss = self.weights[0] * adv
        comps = {"adv": adv.detach()}
        if self.pixel_loss is not None and target is not None and self.weights[1]:
            out, tgt = output.float(), target.float()
            if self.pixel_inv_std is not None:
                inv = self.pixel_inv_std.to(out.device)
                out, tgt = out * inv, tgt * inv
            pix = self.pixel_loss(out, tgt)
            loss = loss + self.weights[1] * pix
            comps["content"] = pix.detach()
        self.components = comps
        return loss

    def critic(self, real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
        if self.kind == "wasserstein":
            return wasserstein_critic_loss(real_pred, fake_pred)
        ones = real_pred.new_ones(real_pred.shape[0])
        zeros = fake_pred.new_zeros(fake_pred.shape[0])
        return (self.adaptive(real_pred, ones) + self.adaptive(fake_pred, zeros)) / 2


def set_trainable(m: nn.Module, flag: bool) -> None:
    for p in m.parameters():
        p.requires_grad_(flag)


class GANLearner(Learner):
    """A Learner whose training batch is either a generator step or a critic step.

    Batches are ``(x, y)``: for image restoration ``x`` is the degraded input and ``y`` the
    real HR image; for WGAN ``x`` is noise and ``y`` a real image. ``real_transform`` maps a
    real image into the generator's output space before the critic sees it (WGAN: [0,1] ->
    [-1,1]). Validation runs in generator mode and scores the generator's output.
    """

    def __init__(self, gan: GANModule, train_dl, valid_dl, loss: GANLoss, *, critic_lr_mult: float = 5.0,
                 betas: tuple[float, float] = (0.0, 0.99), clip: float | None = None, switch_eval: bool = True,
                 real_transform: Callable[[torch.Tensor], torch.Tensor] | None = None, **kw: Any) -> None:
        kw.setdefault("moms", (betas[0],) * 3)
        kw.setdefault("sqr_mom", betas[1])
        super().__init__(gan, train_dl, valid_dl, loss, layer_groups=[list(gan.generator.parameters())], **kw)
        self.gan = gan
        self.critic_lr_mult = float(critic_lr_mult)
        self.clip = clip
        self.switch_eval = switch_eval
        self.real_transform = real_transform
        self.crit_opt: torch.optim.Optimizer | None = None

    # optimizers: one per network
    def create_opt(self) -> torch.optim.Optimizer:
        betas = (self.moms[0], self.sqr_mom)
        self.opt = make_optimizer([list(self.gan.generator.parameters())], self.gan.generator, wd=self.wd,
                                  wd_bn_bias=self.wd_bn_bias, betas=betas, eps=self.eps, device=self.device)
        self.crit_opt = make_optimizer([list(self.gan.critic.parameters())], self.gan.critic, wd=self.wd,
                                       wd_bn_bias=self.wd_bn_bias, betas=betas, eps=self.eps, device=self.device)
        return self.opt

    def apply_hypers(self, pct: float) -> None:
        if self.opt is None or not self.schedules:
            return
        s = self.schedules[0]
        lr, mom = s.lr(pct), s.mom(pct)
        for pg in self.opt.param_groups:
            pg["lr"], pg["betas"] = lr, (mom, pg["betas"][1])
        for pg in self.crit_opt.param_groups:  # GANDiscriminativeLR
            pg["lr"], pg["betas"] = lr * self.critic_lr_mult, (mom, pg["betas"][1])

    @property
    def gen_mode(self) -> bool:
        return self.gan.gen_mode

    def switch(self, gen_mode: Optional[bool] = None) -> None:
        """Switch between generator and critic training (fastai GANTrainer.switch)."""
        self.gan.switch(gen_mode)
        g, c = self.gan.generator, self.gan.critic
        train_m, loss_m = (g, c) if self.gan.gen_mode else (c, g)
        set_trainable(train_m, True)
        set_trainable(loss_m, False)
        if self.switch_eval and self.training:
            train_m.train()
            loss_m.eval()

    def clip_critic(self) -> None:
        if self.clip is not None:
            with torch.no_grad():
                for p in self.gan.critic.parameters():
                    p.clamp_(-self.clip, self.clip)

    def _real(self, y: torch.Tensor) -> torch.Tensor:
        return self.real_transform(y) if self.real_transform is not None else y

    def compute_loss(self) -> torch.Tensor:  # generator loss for validation
        fake_pred = self.gan.critic(self.pred)
        return self.loss_func.generator(fake_pred, self.pred.float(), self._real(self.yb))

    def _do_one_batch(self) -> None:
        g, c = self.gan.generator, self.gan.critic
        if not self.training:
            with self.precision.autocast():
                self.pred = g(self.xb)
                self("after_pred")
                self.loss_grad = self.compute_loss()
            self.loss = self.loss_grad.detach()
            self("after_loss")
            return
        opt = self.opt if self.gen_mode else self.crit_opt
        with self.precision.autocast():
            if self.gen_mode:
                self.pred = g(self.xb)
                self("after_pred")
                fake_pred = c(self.pred)
                self.loss_grad = self.loss_func.generator(fake_pred, self.pred.float(), self._real(self.yb))
            else:
                real_pred = c(self._real(self.yb))
                with torch.no_grad():
                    fake = g(self.xb)
                self.pred = real_pred
                self("after_pred")
                self.loss_grad = self.loss_func.critic(real_pred, c(fake.detach()))
        self.loss = self.loss_grad.detach()
        self("after_loss")
        self("before_backward")
        self._backward()
        self("after_backward")
        self._step_opt(opt)
        opt.zero_grad(set_to_none=True)
        if not self.gen_mode:
            self.clip_critic()
        self.step += 1
        self.batches_done = self.iter + 1

    def _step_opt(self, opt: torch.optim.Optimizer) -> None:
        self("before_step")
        scaler = self.precision.scaler
        if self.grad_clip:
            if scaler is not None:
                scaler.unscale_(opt)
            params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        self("after_step")

    @torch.no_grad()
    def predict(self, xb: torch.Tensor) -> torch.Tensor:
        g = self.gan.generator
        was = g.training
        g.eval()
        try:
            with self.precision.autocast():
                return g(self.to_device(xb)).float()
        finally:
            g.train(was)


class GANTrainer(Callback):
    """Sets generator/critic trainability, keeps smoothed gen/critic losses (fastai's GANTrainer)."""

    order = 40

    def __init__(self, gen_first: bool = False, beta: float = 0.98) -> None:
        self.gen_first = gen_first
        self.gen_loss = SmoothLoss(beta)
        self.crit_loss = SmoothLoss(beta)
        self._mode: bool | None = None  # mode restored from a checkpoint

    def state_dict(self) -> dict:
        return {"gen_mode": bool(self.learn.gen_mode), "gen_loss": self.gen_loss.state_dict(),
                "crit_loss": self.crit_loss.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self._mode = bool(state.get("gen_mode", self.gen_first))
        self.gen_loss.load_state_dict(state["gen_loss"])
        self.crit_loss.load_state_dict(state["crit_loss"])

    def before_fit(self) -> None:
        learn: GANLearner = self.learn  # type: ignore[assignment]
        mode = self._mode if self._mode is not None else self.gen_first
        self._mode = None
        learn.switch(mode)
        learn.clip_critic()

    def before_train(self) -> None:
        self.learn.switch(self.learn.gen_mode)

    def before_validate(self) -> None:
        self._train_mode = self.learn.gen_mode

    def after_validate(self) -> None:
        self.learn.switch(getattr(self, "_train_mode", self.learn.gen_mode))

    def after_batch(self) -> None:
        if not self.learn.training:
            return
        (self.gen_loss if self.learn.gen_mode else self.crit_loss).add(float(self.learn.loss))

    def epoch_metrics(self) -> dict[str, float]:
        """The smoothed losses of the networks that have trained (one that has not is left out)."""
        out = {}
        if self.gen_loss.count:
            out["gen_loss"] = self.gen_loss.value
        if self.crit_loss.count:
            out["crit_loss"] = self.crit_loss.value
        return out


class FixedGANSwitcher(Callback):
    """``n_crit`` critic steps, then ``n_gen`` generator steps, and again."""

    order = 45

    def __init__(self, n_crit: int = 1, n_gen: int = 1) -> None:
        self.n_crit, self.n_gen = int(n_crit), int(n_gen)
        self.n_c = self.n_g = 0

    def state_dict(self) -> dict:
        return {"n_c": self.n_c, "n_g": self.n_g}

    def load_state_dict(self, state: dict) -> None:
        self.n_c, self.n_g = int(state["n_c"]), int(state["n_g"])
        self._restored = True

    def before_train(self) -> None:
        if getattr(self, "_restored", False):  # resumed mid-epoch: keep the counters
            self._restored = False
            return
        self.n_c = self.n_g = 0

    def after_batch(self) -> None:
        learn: GANLearner = self.learn  # type: ignore[assignment]
        if not learn.training:
            return
        if learn.gen_mode:
            self.n_g += 1
            target, done = self.n_gen, self.n_g
        else:
            self.n_c += 1
            target, done = self.n_crit, self.n_c
        if done == target:
            learn.switch()
            self.n_c = self.n_g = 0


class AdaptiveGANSwitcher(Callback):
    """fastai's rule: after a generator batch, switch to the critic when ``gen_thresh`` is None or
    the batch loss is below it; after a critic batch, switch to the generator when
    ``critic_thresh`` is None or the critic's batch loss is below it."""

    order = 45

    def __init__(self, gen_thresh: float | None = None, critic_thresh: float | None = None) -> None:
        self.gen_thresh, self.critic_thresh = gen_thresh, critic_thresh

    def after_batch(self) -> None:
        learn: GANLearner = self.learn  # type: ignore[assignment]
        if not learn.training:
            return
        loss = float(learn.loss)
        if learn.gen_mode:
            if self.gen_thresh is None or loss < self.gen_thresh:
                learn.switch()
        else:
            if self.critic_thresh is None or loss < self.critic_thresh:
                learn.switch()


class NoiseGrid(Callback):
    """WGAN: after each epoch, the generator on fixed noise -> SampleImages and a PNG grid."""

    order = 60

    def __init__(self, noise: torch.Tensor, folder=None, ncol: int = 8,
                 to_image: Callable[[torch.Tensor], torch.Tensor] = lambda t: (t + 1) / 2) -> None:
        self.noise = noise
        self.folder = folder
        self.ncol = ncol
        self.to_image = to_image

    @torch.no_grad()
    def after_epoch(self) -> None:
        from pathlib import Path

        learn = self.learn
        imgs = self.to_image(learn.predict(self.noise)).clamp(0, 1).cpu()
        tiles = [to_uint8(t) for t in imgs]
        rows_img = [tiles[i : i + self.ncol] for i in range(0, len(tiles), self.ncol)]
        grid = grid_image(rows_img, pad=2)
        path = None
        if self.folder is not None:
            path = save_grid(rows_img, Path(self.folder) / f"{learn.stage}_epoch{learn.epoch:03d}.png", pad=2,
                             columns=(), kind="noise", caption="generator on fixed noise")
        learn.emit(SampleImages(stage=learn.stage, epoch=learn.epoch, rows=[(None, grid, None)], path=path))


class NoiseDataset(torch.utils.data.Dataset):
    """Pairs each real image with a noise vector that depends only on (seed, index, epoch)."""

    def __init__(self, images: torch.utils.data.Dataset, noise_size: int = 100, seed: int = 0) -> None:
        self.images = images
        self.noise_size = noise_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.images)  # type: ignore[arg-type]

    def __getitem__(self, i: int):
        g = torch.Generator()
        g.manual_seed((self.seed * 1_000_003 + self.epoch) * 10_000_019 + i)
        z = torch.randn(self.noise_size, generator=g)
        img = self.images[i]
        if isinstance(img, (tuple, list)):
            img = img[-1]
        return z, img
