import math

import numpy as np
import pytest
import torch

from lesson7_studio.core import metrics


def _rand(shape, seed=0):
    return np.random.default_rng(seed).random(shape)


def test_psnr_identical_is_inf():
    a = _rand((16, 16, 3))
    assert metrics.psnr(a, a) == math.inf
    assert metrics.psnr(a, a, y_channel=True, crop=2) == math.inf


def test_psnr_constant_offset_is_analytic():
    a = _rand((20, 24, 3)) * 0.5
    for d in (0.01, 0.1):
        expect = 10 * math.log10(1.0 / d**2)
        assert metrics.psnr(a, a + d) == pytest.approx(expect, abs=1e-9)
    # data range 255: the same images scaled give the same PSNR
    assert metrics.psnr(a * 255, (a + 0.1) * 255, data_range=255) == pytest.approx(20.0, abs=1e-9)


def test_psnr_y_channel_offset():
    a = _rand((12, 12, 3)) * 0.5
    d = 0.1
    # Y changes by d * (65.481 + 128.553 + 24.966) / 255 for a grey offset d
    dy = d * (65.481 + 128.553 + 24.966) / 255
    assert metrics.psnr(a, a + d, y_channel=True) == pytest.approx(10 * math.log10(1 / dy**2), abs=1e-9)


def test_rgb_to_y_range():
    black = np.zeros((1, 1, 3))
    white = np.ones((1, 1, 3))
    assert metrics.rgb_to_y(black)[0, 0] == pytest.approx(16 / 255)
    assert metrics.rgb_to_y(white)[0, 0] == pytest.approx(235 / 255)


def test_psnr_border_crop_ignores_border():
    a = _rand((20, 20, 3))
    b = a.copy()
    b[:2] = 0
    b[:, -2:] = 1
    assert metrics.psnr(a, b, crop=2) == math.inf
    assert metrics.psnr(a, b) < 30
    with pytest.raises(ValueError):
        metrics.psnr(a[:4, :4], b[:4, :4], crop=2)


def _ssim_reference(x, y, data_range=1.0):
    """Direct loop over every 11x11 window with a 2-D Gaussian (the definition)."""
    t = np.arange(11) - 5
    g = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * 1.5**2))
    w = g / g.sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    vals = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            px, py = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
            mx, my = (w * px).sum(), (w * py).sum()
            vx = (w * (px - mx) ** 2).sum()
            vy = (w * (py - my) ** 2).sum()
            cxy = (w * (px - mx) * (py - my)).sum()
            vals.append(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(vals))


def test_ssim_matches_reference_definition():
    a = _rand((26, 23, 3), 1)
    b = np.clip(a + 0.15 * (_rand((26, 23, 3), 2) - 0.5), 0, 1)
    ref = np.mean([_ssim_reference(a[..., c], b[..., c]) for c in range(3)])
    assert metrics.ssim(a, b) == pytest.approx(ref, abs=1e-10)
    ya, yb = metrics.rgb_to_y(a), metrics.rgb_to_y(b)
    assert metrics.ssim(a, b, y_channel=True) == pytest.approx(_ssim_reference(ya, yb), abs=1e-10)
    assert metrics.ssim(a, b, y_channel=True, crop=2) == pytest.approx(
        _ssim_reference(ya[2:-2, 2:-2], yb[2:-2, 2:-2]), abs=1e-10
    )


def test_ssim_identical_and_bounds():
    a = _rand((32, 32, 3), 3)
    assert metrics.ssim(a, a) == pytest.approx(1.0)
    noisy = np.clip(a + 0.3 * (_rand((32, 32, 3), 4) - 0.5), 0, 1)
    s = metrics.ssim(a, noisy)
    assert 0.0 < s < 0.99
    # more noise -> lower SSIM
    noisier = np.clip(a + 0.8 * (_rand((32, 32, 3), 4) - 0.5), 0, 1)
    assert metrics.ssim(a, noisier) < s
    # tiny images use a smaller window instead of failing
    assert metrics.ssim(a[:5, :7], a[:5, :7]) == pytest.approx(1.0)


def test_torch_inputs_channels_first_and_batches():
    a = _rand((2, 16, 18, 3), 5)
    b = np.clip(a + 0.05 * (_rand((2, 16, 18, 3), 6) - 0.5), 0, 1)
    ta = torch.from_numpy(a).permute(0, 3, 1, 2).float()
    tb = torch.from_numpy(b).permute(0, 3, 1, 2).float()
    per_image = [metrics.psnr(a[i], b[i], y_channel=True, crop=2) for i in range(2)]
    assert metrics.psnr(ta, tb, y_channel=True, crop=2) == pytest.approx(np.mean(per_image), abs=1e-4)
    assert metrics.psnr_batch(ta, tb, y_channel=True, crop=2) == pytest.approx(per_image, abs=1e-4)
    assert metrics.psnr(ta[0], tb[0]) == pytest.approx(metrics.psnr(a[0], b[0]), abs=1e-4)
    assert metrics.ssim(ta, tb) == pytest.approx(np.mean([metrics.ssim(a[i], b[i]) for i in range(2)]), abs=1e-5)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        metrics.psnr(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))


# ---------------------------------------------------------------------------------------------
# the evaluation convention shared by evaluate, Compare and training's columns


def test_border_is_the_scale_unless_the_image_is_tiny():
    assert metrics.border(64, 64, 2) == 2
    assert metrics.border(64, 64, 1) == 1
    assert metrics.border(64, 64, 0) == 1  # at least one pixel
    assert metrics.border(8, 64, 2) == 0  # 8 <= 4 * 2: nothing would be left to score well
    assert metrics.border(9, 64, 2) == 2


def test_scores_keys_and_values_follow_psnr_and_ssim():
    a = _rand((24, 20, 3), 7) * 0.8
    b = np.clip(a + 0.05 * (_rand((24, 20, 3), 8) - 0.5), 0, 1)
    s = metrics.scores(b, a, crop=2)
    assert set(s) == {"psnr", "ssim", "psnr_y", "ssim_y"}
    assert s["psnr_y"] == metrics.psnr(b, a, y_channel=True, crop=2)
    assert s["ssim"] == metrics.ssim(b, a, crop=2)
    assert set(metrics.scores(b, a, crop=2, y_channel=False)) == {"psnr", "ssim"}
    # a crop that would leave (almost) nothing is dropped, as for a thumbnail
    tiny = metrics.scores(b[:8, :8], a[:8, :8], crop=2)
    assert tiny["psnr"] == metrics.psnr(b[:8, :8], a[:8, :8])


def _chw(a):
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(a, -1, -3))).float()


def test_training_columns_use_the_evaluation_convention():
    """batch_sums: per-image Y-PSNR / Y-SSIM with the scale's border cropped, summed over the batch."""
    a = _rand((3, 20, 20, 3), 9) * 0.5
    d = np.array([0.02, 0.05, 0.1])[:, None, None, None]
    b = a + d  # a grey offset per image: an analytic Y-PSNR
    b[:, :2] = 1.0  # garbage in the border the scale (2) crops
    b[:, :, -2:] = 0.0
    dy = d.ravel() * (65.481 + 128.553 + 24.966) / 255
    want_psnr = sum(10 * math.log10(1 / v**2) for v in dy)
    want_ssim = sum(_ssim_reference(metrics.rgb_to_y(b[i])[2:-2, 2:-2], metrics.rgb_to_y(a[i])[2:-2, 2:-2])
                    for i in range(3))
    got = metrics.batch_sums(_chw(b), _chw(a), scale=2)
    assert set(got) == {"psnr", "ssim"}
    assert got["psnr"] == pytest.approx(want_psnr, rel=1e-5)
    assert got["ssim"] == pytest.approx(want_ssim, abs=1e-5)
    # without the crop the border garbage would count: the convention is not RGB-uncropped
    assert got["psnr"] > 3 * metrics.psnr(b, a) + 5


def test_training_columns_cap_an_exact_match():
    a = _chw(_rand((2, 16, 16, 3), 10))
    got = metrics.batch_sums(a, a.clone(), scale=1)
    assert got["psnr"] == 2 * metrics.MAX_PSNR_DB
    assert got["ssim"] == pytest.approx(2.0)
