"""Losses: pixel, the lesson's feature loss, GAN / Wasserstein (PSNR/SSIM: test_metrics.py)."""

import math

import pytest
import torch
import torch.nn.functional as F

from lesson7_studio.core import metrics
from lesson7_studio.core.errors import TrainingError, WeightsError
from lesson7_studio.core.losses import (
    AdaptiveLoss, FeatureLoss, PixelLoss, accuracy_thresh_expand, build_loss, gram_matrix,
    wasserstein_critic_loss, wasserstein_gen_loss,
)


@pytest.fixture(scope="module")
def feat_loss():
    torch.manual_seed(0)
    return FeatureLoss(pretrained=False)


def test_losses_keep_no_metric_of_their_own():
    """PSNR / SSIM live once, in core.metrics (issue 16): training's columns are scored by it."""
    from lesson7_studio.core import losses
    from lesson7_studio.core.train import callbacks

    assert not hasattr(losses, "psnr") and not hasattr(losses, "ssim")
    assert callbacks._metrics is metrics


def test_pixel_losses():
    a, b = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    assert PixelLoss("mse")(a, b) == pytest.approx(F.mse_loss(a, b).item())
    assert build_loss("l1")(a, b) == pytest.approx(F.l1_loss(a, b).item())
    with pytest.raises(TrainingError):
        build_loss("hinge")


def test_gram_matrix():
    x = torch.rand(2, 4, 5, 6)
    g = gram_matrix(x)
    flat = x.reshape(2, 4, 30)
    assert g.shape == (2, 4, 4)
    assert torch.allclose(g[0], flat[0] @ flat[0].T / (4 * 5 * 6))


def test_feature_loss_is_the_lessons(feat_loss):
    assert feat_loss.layer_ids == (22, 32, 42)
    assert feat_loss.layer_weights == (5.0, 15.0, 2.0)
    # the hooked layers are the activations just before max-pools 3, 4 and 5
    from torchvision.models.vgg import cfgs, make_layers

    full = make_layers(cfgs["D"], batch_norm=True)
    pools = [i for i, m in enumerate(full) if isinstance(m, torch.nn.MaxPool2d)]
    assert [p - 1 for p in pools[2:5]] == [22, 32, 42]
    for i in feat_loss.layer_ids:
        assert isinstance(feat_loss.features[i], torch.nn.ReLU)
    assert len(feat_loss.features) == 43  # truncated after the last layer used
    pred = torch.rand(2, 3, 32, 32, requires_grad=True)
    target = torch.rand(2, 3, 32, 32)
    loss = feat_loss(pred, target)
    comps = feat_loss.components
    assert list(comps) == ["pixel", "feat_0", "feat_1", "feat_2", "gram_0", "gram_1", "gram_2"]
    assert loss.item() == pytest.approx(sum(v.item() for v in comps.values()), rel=1e-5)
    # pixel term: L1 in ImageNet-normalised space
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    want = F.l1_loss((pred - mean) / std, (target - mean) / std)
    assert comps["pixel"].item() == pytest.approx(want.item(), rel=1e-5)
    # gram terms weighted w^2 * 5e3
    f = feat_loss._feats((target - mean) / std)
    g = feat_loss._feats((pred.detach() - mean) / std)
    want_gram0 = F.l1_loss(gram_matrix(g[0]), gram_matrix(f[0])) * 25 * 5e3
    assert comps["gram_0"].item() == pytest.approx(want_gram0.item(), rel=1e-4)
    loss.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert all(p.grad is None for p in feat_loss.features.parameters())
    assert feat_loss(target, target).item() == pytest.approx(0.0, abs=1e-6)


def test_feature_loss_options(feat_loss):
    f = FeatureLoss(layer_ids=(5, 12), layer_weights=(1.0, 2.0), gram_weight=0, pretrained=False,
                    features=feat_loss.features)
    f(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16))
    assert list(f.components) == ["pixel", "feat_0", "feat_1"]
    with pytest.raises(TrainingError):
        FeatureLoss(layer_ids=(22, 32), layer_weights=(1.0,), pretrained=False, features=feat_loss.features)
    with pytest.raises(TrainingError):
        FeatureLoss(layer_ids=(99,), layer_weights=(1.0,), pretrained=False, features=feat_loss.features)


def test_feature_loss_pretrained_missing_weights_raises(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # empty hub cache
    monkeypatch.setenv("LESSON7_OFFLINE", "1")
    with pytest.raises(WeightsError) as err:
        build_loss("feature", pretrained=True)
    assert "vgg16_bn" in str(err.value)


def test_adaptive_loss_and_accuracy():
    out = torch.tensor([[3.0, -3.0, 3.0], [-3.0, -3.0, -3.0]])
    target = torch.tensor([1.0, 0.0])
    want = F.binary_cross_entropy_with_logits(out, torch.tensor([[1.0] * 3, [0.0] * 3]))
    assert AdaptiveLoss()(out, target).item() == pytest.approx(want.item())
    assert accuracy_thresh_expand(out, target).item() == pytest.approx(5 / 6)
    out4 = torch.randn(2, 1, 3, 3)
    assert AdaptiveLoss()(out4, target).shape == ()


def test_wasserstein_losses():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.5, 0.5])
    assert wasserstein_critic_loss(real, fake).item() == pytest.approx(1.5)
    assert wasserstein_gen_loss(fake).item() == pytest.approx(0.5)
    assert not math.isnan(wasserstein_gen_loss(torch.randn(4, 1)).item())
