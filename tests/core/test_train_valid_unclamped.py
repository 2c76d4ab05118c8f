"""superres-feature's "train_loss 76 while valid_loss 1.26": validation scored a clamped output.

The Restorer clamps its output to [0,1] in eval mode (what a restore returns), but training
scores the raw output. Where a network's raw output leaves [0,1] (superres-feature has no
y_range, and the feature loss's gram terms grow with the square of the overshoot), the training
loss soared while validation, scoring the clamped output, stayed put. Validation now scores the
output training optimizes; PSNR/SSIM still score the clamped image a user gets.
"""

import pytest
import torch
from torch import nn

from lesson7_studio.core import metrics
from lesson7_studio.core.models.registry import ModelInfo, Restorer
from lesson7_studio.core.train.callbacks import Recorder
from lesson7_studio.core.train.learner import Learner

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _overshooting_restorer() -> Restorer:
    net = nn.Conv2d(3, 3, 1)
    with torch.no_grad():
        net.weight.copy_(2 * torch.eye(3).view(3, 3, 1, 1))  # raw outputs up to 2
        net.bias.zero_()
    info = ModelInfo(name="toy", description="x2 brightness", kind="restorer", options={}, params=12, in_channels=3,
                     out_channels=3, scale=1, model_scale=1, size_multiple=1, mean=None, std=None)
    return Restorer(net, info)


def test_valid_loss_scores_the_same_output_as_the_training_loss():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 8, 8)
    y = x.clone()
    batch = [(x, y)]  # one batch, used for training and for validation
    model = _overshooting_restorer()
    rec = Recorder()
    learn = Learner(model, batch, batch, nn.MSELoss(), callbacks=[rec], device="cpu", precision="fp32", wd=0.0)
    learn.fit(1, 0.0)  # lr 0: the weights do not move between the training and the validation pass
    row = rec.history[-1]
    raw = float(nn.functional.mse_loss(2 * x, y))
    clamped = float(nn.functional.mse_loss((2 * x).clamp(0, 1), y))
    assert raw > 1.5 * clamped  # the case at hand: the clamp hides most of the error
    assert row["train_loss"] == pytest.approx(raw, rel=1e-5)
    assert row["valid_loss"] == pytest.approx(raw, rel=1e-5)  # not the clamped one
    # image metrics: what a user gets, scored as `eval` scores it (Y channel, a border of the scale)
    psnr_clamped = metrics.psnr((2 * x).clamp(0, 1), y, y_channel=True, crop=1)
    assert row["psnr"] == pytest.approx(psnr_clamped, rel=1e-4)
    model.eval()
    with torch.no_grad():
        assert model.clamp_eval and float(model(x).max()) <= 1.0  # restoring still clamps
