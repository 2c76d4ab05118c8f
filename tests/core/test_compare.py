"""core.compare: the Compare job (events, metrics, cancel, model cache) and its dataset helpers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lesson7_studio.core import compare, metrics
from lesson7_studio.core.errors import Cancelled
from lesson7_studio.core.events import CancelToken, Progress


def _photo(size: int, seed: int = 0) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size]
    a = np.stack([(x * 7 + seed * 30) % 256, (y * 5) % 256, ((x + y) * 3) % 256], -1).astype(np.uint8)
    a[size // 4: size // 2, size // 3: size // 2] = 220
    return a


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    import torch

    from lesson7_studio.core import checkpoint, models

    torch.manual_seed(0)
    opts = dict(nf=8, blocks=1, scale=2)
    net = models.create("unet-lite", **opts)
    return checkpoint.save_model(tmp_path_factory.mktemp("m") / "tiny.safetensors", net, "unet-lite", opts)


@pytest.fixture
def pair(tmp_path) -> tuple[Path, Path, Path]:
    """A paired dataset (hr 48 px, lr 24 px) with one valid image a and one train image b."""
    root = tmp_path / "ds"
    (root / "hr").mkdir(parents=True)
    (root / "lr").mkdir()
    for name, seed in (("a", 0), ("b", 1)):
        hr = Image.fromarray(_photo(48, seed))
        hr.save(root / "hr" / f"{name}.jpg", quality=95)
        hr.resize((24, 24), Image.Resampling.BILINEAR).save(root / "lr" / f"{name}.png")
    (root / "dataset.json").write_text(json.dumps({"scale": 2, "train": ["b.jpg"], "valid": ["a.jpg"]}))
    return root, root / "lr" / "a.png", root / "hr" / "a.jpg"


def _run(*args, **kwargs):
    events = []
    n = compare.compare_job(*args, on_event=events.append, **kwargs)
    return n, events


def test_with_ground_truth_bicubic_comes_first_and_every_result_is_scored(tiny_model, pair):
    from lesson7_studio.core import images

    _root, lr, hr = pair
    n, events = _run(lr, hr, [("tiny", tiny_model)], device="cpu")
    assert n == 1
    loaded = [e for e in events if isinstance(e, compare.Loaded)]
    restored = [e for e in events if isinstance(e, compare.Restored)]
    assert len(loaded) == 1 and loaded[0].gt is not None
    assert events.index(loaded[0]) < events.index(restored[0])
    assert [r.key for r in restored] == [compare.BICUBIC, str(tiny_model)]
    bic, model = restored
    assert bic.label == "Bicubic \u00d72"
    gt = images.to_float(images.load_image(hr))
    # the evaluation convention: Y and RGB, the scale (2) cropped from the border
    assert bic.metrics == metrics.scores(compare.bicubic_upscale(loaded[0].input.rgb, 48, 48), gt, crop=2)
    assert model.metrics == metrics.scores(images.to_float(model.image), gt, crop=2)
    assert model.display.shape == (48, 48, 3) and model.display.dtype == np.uint8
    assert model.image.rgb.shape == (48, 48, 3) and model.seconds > 0 and model.note == ""
    assert any(isinstance(e, Progress) and e.message == "Restoring with tiny" for e in events)


def test_without_ground_truth_models_are_measured_against_bicubic(tiny_model, tmp_path):
    src = tmp_path / "photo.png"
    Image.fromarray(_photo(20)).save(src)
    _n, events = _run(src, None, [("tiny", tiny_model)], device="cpu")
    bic, model = [e for e in events if isinstance(e, compare.Restored)]
    assert bic.key == compare.BICUBIC and bic.metrics == {}
    assert bic.display.shape == (40, 40, 3)  # at the size of the model's result
    want = metrics.psnr(compare.to_float01(model.display), bic.image, crop=2)
    assert set(model.metrics) == {"psnr_bic"}
    assert model.metrics["psnr_bic"] == pytest.approx(want, abs=0.05)  # display is rounded to 8 bits


def test_a_loaded_input_is_not_read_again_and_models_are_cached(tiny_model, pair):
    from lesson7_studio.core import images

    _root, lr, hr = pair
    loaded = (images.load_image(lr), images.load_image(hr))
    cache: dict = {}
    _n, events = _run(None, None, [("a", tiny_model)], loaded=loaded, cache=cache, device="cpu")
    assert not any(isinstance(e, compare.Loaded) for e in events)
    assert list(cache) == [(str(tiny_model), "cpu")]
    model = cache[(str(tiny_model), "cpu")]
    _run(None, None, [("a", tiny_model)], loaded=loaded, cache=cache, device="cpu")
    assert cache[(str(tiny_model), "cpu")] is model  # not loaded a second time


def test_cancel_stops_before_the_next_model(tiny_model, pair):
    _root, lr, hr = pair
    token = CancelToken()
    seen = []

    def on_event(ev):
        seen.append(ev)
        if isinstance(ev, compare.Restored) and ev.key != compare.BICUBIC:
            token.cancel()

    with pytest.raises(Cancelled):
        compare.compare_job(lr, hr, [("one", tiny_model), ("two", tiny_model)], device="cpu",
                            on_event=on_event, cancel=token)
    assert [e.label for e in seen if isinstance(e, compare.Restored)] == ["Bicubic \u00d72", "one"]


def test_fit_to_crops_pads_or_resizes():
    a = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)
    same, note = compare.fit_to(a, 10, 12)
    assert same is a and note == ""
    cropped, note = compare.fit_to(a, 9, 11)
    assert cropped.shape == (9, 11, 3) and note == "" and (cropped == a[:9, :11]).all()
    padded, _ = compare.fit_to(a, 12, 12)
    assert padded.shape == (12, 12, 3) and (padded[11] == a[9]).all()  # edge pixels repeated
    resized, note = compare.fit_to(a, 40, 48)
    assert resized.shape == (40, 48, 3) and resized.dtype == np.uint8
    assert note == "resized from 12x10 to 48x40 to compare"


def test_bicubic_upscale_of_8_and_16_bit_images_agree():
    a8 = _photo(16)
    a16 = a8.astype(np.uint16) * 257
    b8 = compare.bicubic_upscale(a8, 32, 32)
    b16 = compare.bicubic_upscale(a16, 32, 32)
    assert b8.dtype == np.float32 and b8.shape == (32, 32, 3) and 0 <= b8.min() and b8.max() <= 1
    assert np.abs(b8 - b16).mean() < 0.01
    assert compare.to_float01(a16).max() == pytest.approx(a8.max() / 255)


def test_dataset_helpers(pair, tmp_path):
    root, lr, hr = pair
    # an lr or hr image of a paired dataset opens with its partner (same stem, other extension)
    assert compare.dataset_pair(lr) == (lr.resolve(), hr.resolve())
    assert compare.dataset_pair(hr) == (lr.resolve(), hr.resolve())
    (root / "lr" / "c.png").write_bytes(lr.read_bytes())  # no hr partner
    assert compare.dataset_pair(root / "lr" / "c.png") is None
    other = tmp_path / "elsewhere.png"
    other.write_bytes(lr.read_bytes())
    assert compare.dataset_pair(other) is None
    assert compare.dataset_valid_images(root) == ["a.jpg"]
    assert compare.valid_entry(lr) == (root.resolve(), "a.jpg")
    assert compare.valid_entry(root / "lr" / "b.png") is None  # a train image
    assert compare.find_same_stem(root / "hr", Path("a.png")) == root / "hr" / "a.jpg"
    (root / "dataset.json").write_text("{not json")
    assert compare.dataset_valid_images(root) == []
    assert compare.valid_entry(lr) is None
