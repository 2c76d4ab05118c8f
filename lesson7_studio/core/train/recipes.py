"""Training recipes as data: the lesson's notebooks turned into editable configs.

A :class:`TrainConfig` holds everything needed to repeat a run (it is written to the run
folder as ``config.json``); its ``stages`` run in order as one resumable run. Stage kinds:

- ``restore``: train the generator (a Restorer) on (LR, HR) pairs with a pixel or feature loss,
  optionally with the pretrained encoder frozen, on a one-cycle or constant schedule;
- ``save-preds``: write the generator's predictions for the dataset into the run folder;
- ``critic``: pretrain the critic on real HR images vs those predictions (accuracy metric);
- ``gan``: the GAN phase (adaptive switcher, critic lr x ``critic_lr_mult``);
- ``wgan``: Wasserstein GAN from noise (weight clipping, ``n_critic`` critic steps per
  generator step).

Where a lesson relied on a fastai default, the value of fastai v1 (which the lesson ran on) is
written out: ``pct_start=0.3`` and ``lr=slice(3e-3)``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..errors import Lesson7Error, TrainingError
from .schedule import lr_from_json, lr_to_json

STAGE_KINDS = ("restore", "save-preds", "critic", "gan", "wgan")


@dataclass
class StageConfig:
    name: str
    kind: str = "restore"
    epochs: int = 1
    lr: Any = 1e-3  # float, slice(lo, hi) or slice(hi) (fastai semantics) or one per layer group
    one_cycle: bool = True
    pct_start: float = 0.25
    div: float = 25.0
    div_final: float = 1e5
    freeze: bool = False  # train only the decoder/head (and norm layers)
    loss: Optional[str] = None  # restore stages: overrides TrainConfig.loss
    loss_options: Optional[dict] = None
    size: Optional[int] = None  # HR crop size for this stage (progressive resizing)
    batch_size: Optional[int] = None
    checkpoint_every_steps: Optional[int] = None

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["lr"] = lr_to_json(self.lr)
        return d

    @classmethod
    def from_dict(cls, d: dict, index: int = 0, source: str = "Training config") -> "StageConfig":
        """A stage from JSON; every field's type and range checked (TrainingError naming it)."""
        from .config_check import check_stage

        d = check_stage(d, index, source)
        if "lr" in d and not isinstance(d["lr"], slice):
            d["lr"] = lr_from_json(d["lr"])
        return cls(**d)

    @property
    def trains(self) -> bool:
        return self.kind != "save-preds"


@dataclass
class TrainConfig:
    recipe: str
    data: str = ""
    out: str = ""
    description: str = ""
    arch: str = "unet-resnet34"
    arch_options: dict = field(default_factory=dict)
    # fine-tuning: start the generator from this checkpoint ("starter" or a .safetensors file);
    # its architecture and options replace arch / arch_options
    init: Optional[str] = None
    pretrained: bool = True  # ImageNet weights for the encoder and the feature loss
    size: int = 128  # HR crop size in pixels
    batch_size: int = 32
    loss: str = "mse"  # mse | l1 | feature
    loss_options: dict = field(default_factory=dict)
    stages: list = field(default_factory=list)
    wd: float = 1e-3
    moms: tuple = (0.95, 0.85, 0.95)
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    channels_last: Optional[bool] = None  # None: on for CUDA, off for CPU
    workers: Optional[int] = 0
    grad_clip: Optional[float] = None
    max_minutes: Optional[float] = None
    max_steps: Optional[int] = None
    # training batches per epoch (None = one pass over the data): a larger dataset is cut there, a
    # smaller one repeats with new random crops, so a recipe's work does not shrink with the dataset
    steps_per_epoch: Optional[int] = None
    valid_batches: Optional[int] = None  # cap on validation batches per epoch
    checkpoint_every_steps: int = 0
    # full resumable states kept (generator, critic, optimizers: ~1 GB for the lesson's GAN): the newest
    keep_checkpoints: int = 1
    # weights-only half-precision generator snapshots kept besides (checkpoints/snapshots/), newest first
    snapshots: int = 0
    # exponential moving average of the generator's weights in restore stages (decay; 0 = off): the
    # validation figures, the samples, best.safetensors, the stage's result and model.safetensors are the
    # averaged weights; checkpoints keep the raw ones for resuming (and the average in their state)
    ema: float = 0.0
    # the final model is the best-validated weights (lowest valid loss) of the last stage, rather than the
    # last ones; a fresh run's starting weights are validated first and count (a fine-tune never hands back
    # a model worse on the validation photos than the one it started from)
    keep_best: bool = False
    early_stop_patience: Optional[int] = None
    preview_samples: int = 4
    augment: bool = True  # random crops and horizontal flips
    # the lesson's zoom augmentation (get_transforms(max_zoom=2.)): 3 in 4 training crops are a smaller
    # region of both images zoomed by 1..max_zoom (1: off)
    max_zoom: float = 1.0
    # GAN
    critic: str = "gan-critic"
    critic_options: dict = field(default_factory=dict)
    gan_weights: tuple = (1.0, 50.0)  # (adversarial, pixel)
    gan_pixel_loss: str = "mse"
    gan_betas: tuple = (0.0, 0.99)
    critic_lr_mult: float = 5.0
    critic_thresh: Optional[float] = 0.65
    gen_thresh: Optional[float] = None
    switch_eval: bool = True
    # WGAN
    noise_size: int = 100
    clip: float = 0.01
    n_critic: int = 5

    # -- JSON ---------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["stages"] = [s.to_dict() for s in self.stages]
        for k in ("moms", "gan_weights", "gan_betas"):
            d[k] = list(d[k])
        return d

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, d: dict, source: str = "Training config") -> "TrainConfig":
        """A config from JSON; every field's type and range checked (TrainingError naming the
        field, see config_check); ``source`` (the file) starts the messages."""
        from .config_check import check_config

        d = check_config(d, source)
        d["stages"] = [s if isinstance(s, StageConfig) else StageConfig.from_dict(s, i, source)
                       for i, s in enumerate(d.get("stages", []))]
        for k in ("moms", "gan_weights", "gan_betas"):
            if k in d and d[k] is not None:
                d[k] = tuple(d[k])
        return cls(**d)

    @classmethod
    def from_json(cls, text: str, source: str = "Training config") -> "TrainConfig":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as err:
            raise TrainingError(f"{source} is not valid JSON: {err}") from None
        except RecursionError:
            raise TrainingError(f"{source} is not valid JSON: nested too deeply.") from None
        return cls.from_dict(d, source)

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise TrainingError(f"Cannot read training config {path}: {err.strerror or err}") from None
        except UnicodeDecodeError as err:
            raise TrainingError(f"Training config {path} is not UTF-8 text (byte {err.start} is "
                                f"{err.object[err.start:err.start + 1]!r}): is it a JSON file?") from None
        return cls.from_json(text, f"Training config {path}")

    def copy(self) -> "TrainConfig":
        return copy.deepcopy(self)

    # -- checks -------------------------------------------------------------------------------
    def validate(self) -> None:
        from .config_check import check_config, check_stage

        # every field's type and range, however it was set (JSON, overrides, the GUI)
        source = f"Recipe '{self.recipe}'"
        check_config(self.to_dict(), source)
        for i, s in enumerate(self.stages):
            check_stage(s.to_dict(), i, source)
        if not self.stages:
            raise TrainingError(f"Recipe '{self.recipe}' has no stages.")
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise TrainingError(f"Stage names must be unique; got {names}.")
        for s in self.stages:
            if s.kind not in STAGE_KINDS:
                raise TrainingError(f"Stage '{s.name}': unknown kind '{s.kind}'. Kinds: {', '.join(STAGE_KINDS)}.")
            if s.trains and s.epochs < 0:
                raise TrainingError(f"Stage '{s.name}': epochs must be >= 0.")
        if self.batch_size < 1:
            raise TrainingError("Batch size must be at least 1.")
        if self.size < 8:
            raise TrainingError("Crop size must be at least 8 pixels.")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise TrainingError("--max-minutes must be positive.")


# ---------------------------------------------------------------------------------------------
# the recipes


def _superres_feature() -> TrainConfig:
    # lesson7-superres: do_fit('1a', slice(lr*10)); unfreeze; do_fit('1b', slice(1e-5, lr));
    # then bs 12 at size*2: freeze, do_fit('2a'); unfreeze, do_fit('2b', slice(1e-6, 1e-4), pct_start=0.3)
    lr = 1e-3
    return TrainConfig(
        recipe="superres-feature",
        description="Lesson 7 super-resolution: U-Net (ResNet-34) with the VGG16_bn feature loss; "
        "frozen then unfrozen, then again at twice the size.",
        arch="unet-resnet34",
        arch_options={"blur": True, "norm_type": "weight", "self_attention": False, "y_range": None},
        size=128, batch_size=32, loss="feature", wd=1e-3,
        stages=[
            StageConfig("1a-frozen", epochs=10, lr=slice(None, lr * 10), pct_start=0.9, freeze=True),
            StageConfig("1b-unfrozen", epochs=10, lr=slice(1e-5, lr), pct_start=0.9),
            StageConfig("2a-frozen", epochs=10, lr=slice(None, lr), pct_start=0.9, freeze=True, size=256, batch_size=12),
            StageConfig("2b-unfrozen", epochs=10, lr=slice(1e-6, 1e-4), pct_start=0.3, size=256, batch_size=12),
        ],
    )


def _superres_gan() -> TrainConfig:
    # lesson7-superres-gan (NoGAN): fit_one_cycle(2, pct_start=0.8); unfreeze;
    # fit_one_cycle(3, slice(1e-6, 1e-3)); save_preds; critic fit_one_cycle(6, 1e-3);
    # GANLearner.from_learners(weights_gen=(1., 50.), AdaptiveGANSwitcher(critic_thresh=0.65),
    # Adam betas (0., 0.99), wd 1e-3, GANDiscriminativeLR(mult_lr=5.)); fit(40, 1e-4)
    return TrainConfig(
        recipe="superres-gan",
        snapshots=3,  # weights-only generator snapshots of the GAN phase, to pick the best one
        description="Lesson 7 NoGAN: pretrain the U-Net generator (MSE), save its predictions, pretrain "
        "the critic, then a short GAN phase with frequent checkpoints.",
        arch="unet-resnet34",
        arch_options={"blur": True, "norm_type": "weight", "self_attention": True, "y_range": [-3.0, 3.0]},
        size=128, batch_size=32, loss="mse", wd=1e-3,
        critic="gan-critic", gan_weights=(1.0, 50.0), gan_pixel_loss="mse", gan_betas=(0.0, 0.99),
        critic_lr_mult=5.0, critic_thresh=0.65, switch_eval=True,
        stages=[
            StageConfig("generator", epochs=2, lr=slice(None, 3e-3), pct_start=0.8, freeze=True),
            StageConfig("generator-unfrozen", epochs=3, lr=slice(1e-6, 1e-3), pct_start=0.3),
            StageConfig("save-preds", kind="save-preds", epochs=0),
            StageConfig("critic", kind="critic", epochs=6, lr=1e-3, pct_start=0.3),
            StageConfig("gan", kind="gan", epochs=40, lr=1e-4, one_cycle=False, checkpoint_every_steps=100),
        ],
    )


def _colorize() -> TrainConfig:
    # DeOldify-style NoGAN on greyscale inputs: feature loss without gram terms,
    # layer weights [20, 70, 10]; GAN weights (1.0, 1.5), Adam betas (0, 0.9).
    return TrainConfig(
        recipe="colorize",
        snapshots=3,  # weights-only generator snapshots of the GAN phase, to pick the best one
        description="DeOldify-style NoGAN colourisation: greyscale in, colour out (build the data with the "
        "colorize crappify preset).",
        arch="unet-resnet34",
        arch_options={"blur": True, "norm_type": "spectral", "self_attention": True, "y_range": [-3.0, 3.0]},
        size=128, batch_size=16, loss="feature",
        loss_options={"layer_weights": [20.0, 70.0, 10.0], "gram_weight": 0.0},
        wd=1e-3, critic="gan-critic", gan_weights=(1.0, 1.5), gan_pixel_loss="feature", gan_betas=(0.0, 0.9),
        critic_lr_mult=5.0, critic_thresh=0.65, switch_eval=True,
        stages=[
            StageConfig("generator", epochs=1, lr=slice(None, 1e-3), pct_start=0.8, freeze=True),
            StageConfig("generator-unfrozen", epochs=1, lr=slice(3e-7, 3e-4), pct_start=0.3),
            StageConfig("save-preds", kind="save-preds", epochs=0),
            StageConfig("critic", kind="critic", epochs=6, lr=1e-3, pct_start=0.3),
            StageConfig("gan", kind="gan", epochs=1, lr=2e-5, one_cycle=False, checkpoint_every_steps=100),
        ],
    )


def _wgan() -> TrainConfig:
    # lesson7-wgan: basic_generator/basic_critic(in_size=64, n_extra_layers=1), bs 128,
    # GANLearner.wgan(switch_eval=False, Adam betas (0., 0.99), wd=0.); fit(30, 2e-4)
    return TrainConfig(
        recipe="wgan",
        description="Lesson 7 WGAN: DCGAN generator and critic from noise to 64x64 images "
        "(weight clipping 0.01, 5 critic steps per generator step).",
        arch="wgan-generator", arch_options={"in_size": 64, "n_extra_layers": 1},
        critic="wgan-critic", critic_options={"in_size": 64, "n_extra_layers": 1},
        pretrained=False, size=64, batch_size=128, loss="wasserstein", wd=0.0,
        gan_betas=(0.0, 0.99), critic_lr_mult=1.0, clip=0.01, n_critic=5, switch_eval=False,
        preview_samples=16,
        stages=[StageConfig("wgan", kind="wgan", epochs=30, lr=2e-4, one_cycle=False)],
    )


# Work, not epochs: an epoch of these CPU recipes is a fixed number of batches (a small dataset
# repeats with new random crops, a large one is cut), so 30 photos get as much training as 3,000.
QUICK_STEPS = (8, 150)  # epochs x batches of 8 crops of 96 px: 1,200 steps, under 2 min on a quiet 2-core CPU
FINETUNE_STEPS = (4, 50)  # 200 steps of the starter model (nf 48, 128 px): ~40 s there


def _quick() -> TrainConfig:
    epochs, steps = QUICK_STEPS
    return TrainConfig(
        recipe="quick",
        description="A small U-Net (unet-lite, nf 32) from scratch with L1 loss on 96 px crops: 8 epochs of "
        "150 batches (1,200 steps, under 2 minutes on a 2-core CPU); the number and the JPEG blocks fade "
        "epoch by epoch in the sample grids.",
        arch="unet-lite", arch_options={"nf": 32, "tail_act": "leaky"},
        pretrained=False, size=96, batch_size=8, loss="l1", wd=1e-2, steps_per_epoch=steps, valid_batches=4,
        # peak lr 3e-3 (bench_quick: 2e-3 and 4e-3 did no better; MSE trailed L1). On one pair per photo the
        # gain on unseen photos was the seed's (+0.47/+0.27/+0.50) whatever the recipe (quick_trials.json);
        # the Data panel's 4 variants per photo of a 30-photo folder make it +0.63/+0.51/+0.67 (quick.json).
        stages=[StageConfig("train", epochs=epochs, lr=3e-3, pct_start=0.25)],
    )


def _finetune() -> TrainConfig:
    # the lesson's transfer learning: start from a trained model, discriminative learning rates
    # (lower for the early layers, slice(lo, hi) over the layer groups) well below the from-scratch ones
    epochs, steps = FINETUNE_STEPS
    return TrainConfig(
        recipe="finetune",
        description="Fine-tune the starter model on your photos: discriminative learning rates "
        "(2e-6 for the encoder up to 2e-5 for the output tail, 1/25 of its own fine-tuning's), L1 loss, "
        "4 epochs of 50 batches (under a minute on a 2-core CPU); the model it hands back is the best "
        "validated one, the starter included.",
        arch="unet-lite", init="starter", pretrained=False, size=128, batch_size=8, loss="l1", wd=1e-4,
        steps_per_epoch=steps, valid_batches=4, keep_best=True,
        # bench_quick (v3 starter): on the dataset's validation photos degraded afresh slice(1e-5, 1e-4) -0.067
        # dB, this slice(2e-6, 2e-5) -0.053; on its own validation pairs (what Compare shows) each +0.00; fp32,
        # an EMA, a frozen stage, the tail alone did no better. Its BSDS photos are in the starter's training
        # set; keep_best hands the starter back when the fine-tune validates worse.
        stages=[StageConfig("finetune", epochs=epochs, lr=slice(2e-6, 2e-5), pct_start=0.3)],
    )


_BUILDERS = {
    "superres-feature": _superres_feature,
    "superres-gan": _superres_gan,
    "wgan": _wgan,
    "colorize": _colorize,
    "quick": _quick,
    "finetune": _finetune,
}

RECIPES: dict[str, TrainConfig] = {name: b() for name, b in _BUILDERS.items()}


def recipe_names() -> list[str]:
    return list(_BUILDERS)


def get_recipe(name: str) -> TrainConfig:
    """A fresh copy of recipe ``name`` (TrainingError listing the known ones otherwise)."""
    if name not in _BUILDERS:
        raise TrainingError(f"Unknown training recipe '{name}'. Known recipes: {', '.join(_BUILDERS)}.")
    return _BUILDERS[name]()


OVERRIDABLE = ("data", "out", "epochs", "size", "batch_size", "lr", "arch", "device", "max_minutes", "workers",
               "precision", "pretrained", "max_steps", "steps_per_epoch", "valid_batches", "seed",
               "checkpoint_every_steps", "preview_samples", "arch_options", "critic_options", "init",
               "snapshots", "keep_checkpoints", "ema", "keep_best", "max_zoom")


def _head_lr(lr: Any) -> float:
    if isinstance(lr, slice):
        return float(lr.stop)
    if isinstance(lr, (list, tuple)):
        return float(lr[-1])
    return float(lr)


def _scale_lr(lr: Any, f: float) -> Any:
    if isinstance(lr, slice):
        return slice(None if lr.start is None else lr.start * f, lr.stop * f)
    if isinstance(lr, (list, tuple)):
        return [v * f for v in lr]
    return float(lr) * f


START_KINDS = ("scratch", "imagenet", "starter")  # or the path of a checkpoint


def apply_start(cfg: TrainConfig, start: str) -> None:
    """Where the generator's weights start, in place: ``"scratch"`` (random), ``"imagenet"`` (the
    encoder's ImageNet weights, where the architecture has them), ``"starter"`` (the bundled model)
    or a checkpoint path (its architecture replaces the recipe's). The feature loss keeps its
    ImageNet VGG whatever the start (a random VGG measures nothing)."""
    from .. import models

    has_encoder = any(o.name == "pretrained" for o in models.options_of(cfg.arch))
    if start == "imagenet":
        if not has_encoder:
            raise TrainingError(f"'{cfg.arch}' has no ImageNet encoder to start from.",
                                hint="Choose a U-Net over a ResNet (e.g. --arch unet-resnet34), or start "
                                     "from scratch or from the starter model.")
        cfg.init, cfg.pretrained = None, True
        cfg.arch_options.pop("pretrained", None)
        return
    cfg.pretrained = cfg.loss == "feature" or cfg.gan_pixel_loss == "feature"
    if start == "scratch":
        cfg.init = None
        if has_encoder:
            cfg.arch_options["pretrained"] = False
    else:
        cfg.init = str(start)


def apply_overrides(config: TrainConfig, **overrides: Any) -> TrainConfig:
    """A copy of ``config`` with the given overrides (None values are ignored).

    ``epochs`` sets every training stage's epochs; ``lr`` sets the first training stage's head
    learning rate and scales every stage's rates by the same factor (the recipe's ratios stay);
    ``size``/``batch_size`` set the base values and drop per-stage sizes; ``arch`` replaces the
    generator (its recipe options are dropped unless ``arch_options`` is given).
    """
    bad = sorted(set(overrides) - set(OVERRIDABLE))
    if bad:
        raise TrainingError(f"Cannot override {', '.join(bad)}; overridable: {', '.join(OVERRIDABLE)}.")
    cfg = config.copy()
    ov = {k: v for k, v in overrides.items() if v is not None}
    if "epochs" in ov:
        n = int(ov.pop("epochs"))
        if n < 1:
            raise TrainingError("--epochs must be at least 1.")
        for s in cfg.stages:
            if s.trains:
                s.epochs = n
    if "lr" in ov:
        lr = float(ov.pop("lr"))
        if not lr > 0:
            raise TrainingError("--lr must be positive.")
        first = next((s for s in cfg.stages if s.trains), None)
        if first is not None:
            f = lr / _head_lr(first.lr)
            for s in cfg.stages:
                if s.trains:
                    s.lr = _scale_lr(s.lr, f)
    if "size" in ov:
        cfg.size = int(ov.pop("size"))
        for s in cfg.stages:
            s.size = None
    if "batch_size" in ov:
        cfg.batch_size = int(ov.pop("batch_size"))
        for s in cfg.stages:
            s.batch_size = None
    if "arch" in ov:
        new = ov.pop("arch")
        if new != cfg.arch:
            cfg.arch = new
            cfg.arch_options = {}
    if "init" in ov:  # after "arch": whether "imagenet" is possible depends on it
        apply_start(cfg, str(ov.pop("init")))
    for k, v in ov.items():
        if k in ("arch_options", "critic_options"):
            getattr(cfg, k).update(v)
        else:
            setattr(cfg, k, v)
    cfg.validate()
    return cfg


# ---------------------------------------------------------------------------------- for forms
def head_lr(cfg: TrainConfig) -> float:
    """The head learning rate of the first training stage (what the ``lr`` override sets);
    1e-3 for a recipe with no training stage."""
    return _head_lr(next((st.lr for st in cfg.stages if st.trains), 1e-3))


def is_wgan(cfg: TrainConfig) -> bool:
    """Whether the recipe trains a WGAN (noise in, images out: no restorer, no start-from)."""
    return any(st.kind == "wgan" for st in cfg.stages)


def has_imagenet_encoder(arch: str) -> bool:
    """Whether registry model ``arch`` can start its encoder from ImageNet weights."""
    from .. import models

    try:
        return any(o.name == "pretrained" for o in models.options_of(arch))
    except Lesson7Error:  # an unknown name simply has no such option
        return False


def default_start(cfg: TrainConfig) -> str:
    """The recipe's own starting point, as an :func:`apply_start` key."""
    if is_wgan(cfg):
        return "scratch"
    if cfg.init:
        return str(cfg.init)
    return "imagenet" if cfg.pretrained and has_imagenet_encoder(cfg.arch) else "scratch"
