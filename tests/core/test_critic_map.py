"""core.train.critic_map: the critic's patch map lies over the image the way the patches do."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lesson7_studio.core.train.critic_map import critic_fake_map, critic_job, critic_min_side


class _Mean(nn.Module):
    """A 'critic' whose patch logit is the mean brightness of its 16 px block (bright = real)."""

    def __init__(self, flat: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 16, stride=16, bias=False)
        nn.init.constant_(self.conv.weight, 8.0 / (3 * 256))
        self.flat = flat

    def forward(self, x):
        out = self.conv(x) - 4.0
        return out.flatten(1) if self.flat else out


@pytest.mark.parametrize("make", [lambda: _Mean(), lambda: _Mean(flat=True),
                                  lambda: nn.Sequential(_Mean(), nn.Flatten())])
def test_the_map_keeps_the_patch_layout(make):
    net = make().eval()
    img = np.zeros((32, 64, 3), np.uint8)
    img[:16, 48:] = 255  # the top-right block is bright: the one the critic finds real
    img[16:, :16] = 128  # bottom-left: half sure
    fake = critic_fake_map(net, img)
    assert fake.shape == (2, 4)
    assert np.unravel_index(np.argmin(fake), fake.shape) == (0, 3)
    assert fake[1, 0] < fake[1, 1] and np.isclose(fake[0, 0], 1 - torch.sigmoid(torch.tensor(-4.0)).item())


def test_gan_critic_map_is_its_patch_output_unsorted():
    from lesson7_studio.core import models

    torch.manual_seed(0)
    net = models.create("gan-critic", nf=8).eval()
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    m = critic_fake_map(net, img)
    x = torch.from_numpy(img).float().div(255).permute(2, 0, 1)[None]
    with torch.no_grad():
        patches = net[:-1](x)[0, 0]  # (h, w) before the Flatten
    assert m.shape == tuple(patches.shape) and m.shape[1] > m.shape[0]  # wider than tall, like the image
    assert np.allclose(m, 1 - torch.sigmoid(patches).numpy(), atol=1e-5)  # element by element


def test_images_smaller_than_the_critic_accepts():
    from lesson7_studio.core import models

    torch.manual_seed(0)
    net = models.create("gan-critic", nf=8).eval()
    assert critic_min_side(net) == 64  # 4 stride-2 convs then an unpadded 4x4 conv
    with pytest.raises(RuntimeError):
        with torch.no_grad():
            net(torch.zeros(1, 3, 24, 40))
    rng = np.random.default_rng(0)
    m = critic_fake_map(net, rng.integers(0, 256, (24, 40, 3), dtype=np.uint8))  # mirror-padded to 64 px
    assert m.ndim == 2 and m.size >= 1 and np.all(np.isfinite(m)) and np.all((m >= 0) & (m <= 1))
    wide = critic_fake_map(net, rng.integers(0, 256, (48, 128, 3), dtype=np.uint8))
    assert wide.shape[0] == 1 and wide.shape[1] >= 3  # a row of patches across it
    assert critic_fake_map(net, np.zeros((64, 96, 3), np.uint8)).shape == (1, 3)


def test_critic_job_loads_once_reports_and_cancels(tmp_path):
    from lesson7_studio.core import checkpoint, models
    from lesson7_studio.core.errors import Cancelled
    from lesson7_studio.core.events import CancelToken, Progress

    torch.manual_seed(0)
    path = tmp_path / "gan-s0000010.critic.safetensors"
    checkpoint.save_model(path, models.create("gan-critic", nf=8), "gan-critic", {"nf": 8})
    cache: dict = {}
    events: list = []
    img = np.zeros((64, 64, 3), np.uint8)
    first = critic_job(path, img, cache=cache, on_event=events.append)
    assert list(cache) == [str(path)] and [e.done for e in events if isinstance(e, Progress)] == [0, 1, 2]
    net = cache[str(path)]
    events.clear()
    assert np.array_equal(critic_job(path, img, cache=cache, on_event=events.append), first)
    assert cache[str(path)] is net and [e.done for e in events] == [1, 2]  # not loaded again
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        critic_job(path, img, cache=cache, cancel=token)
