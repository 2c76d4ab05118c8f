"""Losses of lesson 7: pixel, feature (perceptual) with gram terms, GAN and Wasserstein.

(PSNR and SSIM are metrics, not losses: :mod:`.metrics` has the one implementation.)

Every restoration loss takes ``(pred, target)`` as [0,1] RGB batches (B,3,H,W) at HR size.
Composite losses keep their last terms in ``.components`` (name -> detached scalar tensor) so the
metrics recorder can log each part, like fastai's ``LossMetrics``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .errors import TrainingError, WeightsError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# lesson 7: VGG16_bn activations just before max-pools 3, 4 and 5
VGG_LAYER_IDS = (22, 32, 42)
VGG_LAYER_WEIGHTS = (5.0, 15.0, 2.0)
GRAM_WEIGHT = 5e3


# ---------------------------------------------------------------------------------------------
# pixel losses


class PixelLoss(nn.Module):
    """MSE or L1 on [0,1] images (fastai's MSELossFlat / L1LossFlat)."""

    def __init__(self, kind: str = "mse") -> None:
        super().__init__()
        if kind not in ("mse", "l1"):
            raise TrainingError(f"Unknown pixel loss '{kind}'. Use mse or l1.")
        self.kind = kind
        self.components: dict[str, torch.Tensor] = {}

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pred, target = pred.float(), target.float()
        if self.kind == "mse":
            return F.mse_loss(pred, target)
        return F.l1_loss(pred, target)


def gram_matrix(x: torch.Tensor) -> torch.Tensor:
    """(B,C,H,W) -> (B,C,C) gram matrix divided by C*H*W, as in the lesson."""
    n, c, h, w = x.shape
    x = x.reshape(n, c, -1)
    return (x @ x.transpose(1, 2)) / (c * h * w)


def vgg16_bn_features(pretrained: bool = True, upto: int = 43, on_event=None) -> nn.Sequential:
    """``torchvision.models.vgg16_bn().features[:upto]``; ImageNet weights when ``pretrained``.

    Weights come from :func:`lesson7_studio.core.weights.resolve_pretrained`, which raises
    :class:`WeightsError` when they cannot be had (offline, missing file).
    """
    from torchvision.models.vgg import cfgs, make_layers

    class _VGG(nn.Module):  # the feature stack only (no 100M-parameter classifier to initialise)
        def __init__(self) -> None:
            super().__init__()
            self.features = make_layers(cfgs["D"], batch_norm=True)

    feats = None
    if pretrained:  # first, so that missing weights fail fast
        from . import weights as _weights

        sd = _weights.resolve_pretrained("vgg16_bn", on_event=on_event)
        feats = {k[len("features."):]: v for k, v in sd.items() if k.startswith("features.")}
        if not feats:
            raise WeightsError("The vgg16_bn weights file holds no 'features.*' tensors; it is not VGG16_bn.")
    net = _VGG()
    if feats is not None:
        missing, unexpected = net.features.load_state_dict(feats, strict=False)
        if missing:
            raise WeightsError(f"The vgg16_bn weights file lacks {len(missing)} tensors (e.g. {missing[0]}).")
    feats = net.features[:upto]
    for m in feats.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    for p in feats.parameters():
        p.requires_grad_(False)
    return feats.eval()


class FeatureLoss(nn.Module):
    """The lesson's perceptual loss on VGG16_bn.

    loss = L1(pixels) + sum_i w_i * L1(feat_i) + sum_i w_i^2 * gram_weight * L1(gram(feat_i)).
    Images are normalised with ImageNet statistics first (the lesson's data was normalised, so
    the pixel term is measured in that space too). ``pretrained=False`` builds a random VGG
    (tests only); ``pretrained=True`` needs the ImageNet weights and raises WeightsError here,
    at construction, when they are missing, i.e. before any training starts.
    """

    def __init__(
        self,
        layer_ids: Sequence[int] = VGG_LAYER_IDS,
        layer_weights: Sequence[float] = VGG_LAYER_WEIGHTS,
        gram_weight: float = GRAM_WEIGHT,
        pixel_weight: float = 1.0,
        base: str = "l1",
        pretrained: bool = True,
        features: nn.Module | None = None,
        on_event=None,
    ) -> None:
        super().__init__()
        if len(layer_ids) != len(layer_weights):
            raise TrainingError(
                f"Feature loss: {len(layer_ids)} layers but {len(layer_weights)} weights; give one weight per layer."
            )
        if base not in ("l1", "mse"):
            raise TrainingError(f"Feature loss base must be l1 or mse, not '{base}'.")
        self.layer_ids = tuple(int(i) for i in layer_ids)
        self.layer_weights = tuple(float(w) for w in layer_weights)
        self.gram_weight = float(gram_weight)
        self.pixel_weight = float(pixel_weight)
        self.base = F.l1_loss if base == "l1" else F.mse_loss
        upto = max(self.layer_ids) + 1
        self.features = features if features is not None else vgg16_bn_features(pretrained, upto, on_event)
        n = len(self.features)
        bad = [i for i in self.layer_ids if i < 0 or i >= n]
        if bad:
            raise TrainingError(f"Feature loss layer ids {bad} are outside the VGG feature stack (0..{n - 1}).")
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.names = (
            ["pixel"] + [f"feat_{i}" for i in range(len(self.layer_ids))]
            + ([f"gram_{i}" for i in range(len(self.layer_ids))] if self.gram_weight else [])
        )
        self.components: dict[str, torch.Tensor] = {}

    def train(self, mode: bool = True) -> "FeatureLoss":
        super().train(mode)
        self.features.eval()  # the loss network never updates its BN statistics
        return self

    def _feats(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        last = max(self.layer_ids)
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.layer_ids:
                out.append(x)
            if i >= last:
                break
        return out

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p = (pred - self.mean.to(pred.dtype)) / self.std.to(pred.dtype)
        t = (target - self.mean.to(target.dtype)) / self.std.to(target.dtype)
        n = p.shape[0]
        if pred.requires_grad:
            feats = self._feats(torch.cat([p, t.to(p.dtype)], 0))
            f_in = [f[:n] for f in feats]
            f_out = [f[n:].detach() for f in feats]
        else:
            f_in = self._feats(p)
            with torch.no_grad():
                f_out = self._feats(t.to(p.dtype))
        terms = [self.base(p.float(), t.float()) * self.pixel_weight]
        terms += [self.base(a.float(), b.float()) * w for a, b, w in zip(f_in, f_out, self.layer_weights)]
        if self.gram_weight:
            terms += [
                self.base(gram_matrix(a.float()), gram_matrix(b.float())) * (w**2) * self.gram_weight
                for a, b, w in zip(f_in, f_out, self.layer_weights)
            ]
        self.components = {k: v.detach() for k, v in zip(self.names, terms)}
        return sum(terms)


# ---------------------------------------------------------------------------------------------
# GAN losses


class AdaptiveLoss(nn.Module):
    """Apply ``crit`` after expanding a per-image target (B,) to the critic's patch map."""

    def __init__(self, crit: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> None:
        super().__init__()
        self.crit = crit if crit is not None else nn.BCEWithLogitsLoss()

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        output = output.float()
        t = target.float().view(target.shape[0], *([1] * (output.ndim - 1))).expand_as(output)
        return self.crit(output, t)


def accuracy_thresh_expand(pred: torch.Tensor, target: torch.Tensor, thresh: float = 0.5,
                           sigmoid: bool = True) -> torch.Tensor:
    """Thresholded accuracy of a critic patch map against a per-image label (fastai's)."""
    if sigmoid:
        pred = pred.float().sigmoid()
    t = target.view(target.shape[0], *([1] * (pred.ndim - 1))).expand_as(pred)
    return ((pred > thresh).to(torch.uint8) == t.to(torch.uint8)).float().mean()


def wasserstein_gen_loss(fake_pred: torch.Tensor, output=None, target=None) -> torch.Tensor:
    """Generator side of WGAN (fastai's ``_tk_mean``): the critic's mean score on fakes."""
    return fake_pred.float().mean()


def wasserstein_critic_loss(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
    """Critic side of WGAN (fastai's ``_tk_diff``): mean(real) - mean(fake)."""
    return real_pred.float().mean() - fake_pred.float().mean()


# ---------------------------------------------------------------------------------------------
# by name


LOSS_NAMES = ("mse", "l1", "feature")


def build_loss(name: str, *, pretrained: bool = True, on_event=None, **opts) -> nn.Module:
    """``mse``, ``l1`` or ``feature`` (options: layer_ids, layer_weights, gram_weight, base)."""
    name = name.lower()
    if name in ("mse", "l1"):
        if opts:
            raise TrainingError(f"Loss '{name}' takes no options (got {', '.join(sorted(opts))}).")
        return PixelLoss(name)
    if name == "feature":
        allowed = {"layer_ids", "layer_weights", "gram_weight", "pixel_weight", "base"}
        bad = sorted(set(opts) - allowed)
        if bad:
            raise TrainingError(f"Unknown feature-loss option(s) {', '.join(bad)}; valid: {', '.join(sorted(allowed))}.")
        return FeatureLoss(pretrained=pretrained, on_event=on_event, **opts)
    raise TrainingError(f"Unknown loss '{name}'. Known losses: {', '.join(LOSS_NAMES)}.")
