"""precision="auto": the probe's verdict is kept per model file and device, and small images skip it."""

import json

import numpy as np
import pytest
import torch

from lesson7_studio.core import checkpoint, devices, models, precision_cache, restore
from lesson7_studio.core.restore import precision, runner, tiling


@pytest.fixture()
def lite_file(tmp_path):
    torch.manual_seed(0)
    lite = models.restorer("unet-lite", nf=8, blocks=1, self_attention=False).eval()
    return checkpoint.save_model(tmp_path / "lite.safetensors", lite, "unet-lite", lite.info.options)


@pytest.fixture()
def probes(monkeypatch, tmp_path):
    """A bf16-capable CPU (so "auto" has a candidate), a private cache folder, and a probe counter."""
    monkeypatch.setenv("LESSON7_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(devices, "cpu_supports_bf16", lambda: True)
    calls = []
    real = precision.probe_verdict

    def counted(run, probe, cand):
        calls.append(cand)
        return real(run, probe, cand)

    monkeypatch.setattr(precision, "probe_verdict", counted)
    return calls


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_probe_runs_once_per_model_file_and_device(lite_file, probes, tmp_path, monkeypatch):
    big = _image(512, 512)  # 4x the probe tile: the probe can pay
    first = restore.load_any_model(lite_file, device="cpu")
    restore.restore_array(first, big)
    restore.restore_array(first, big)
    second = restore.load_any_model(lite_file, device="cpu")  # a new session's model object
    restore.restore_array(second, big)
    copied = tmp_path / "renamed.safetensors"
    copied.write_bytes(lite_file.read_bytes())  # same bytes, same verdict
    restore.restore_array(restore.load_any_model(copied, device="cpu"), big)
    assert probes == [torch.bfloat16]
    stored = json.loads(precision_cache.cache_path().read_text())["verdicts"]
    assert len(stored) == 1
    key = next(iter(stored))
    assert key.startswith(precision_cache.file_hash(lite_file)) and "|cpu:" in key and key.endswith("|bfloat16")
    assert isinstance(stored[key]["ok"], bool)
    # another device is another verdict
    from lesson7_studio.core import devices

    monkeypatch.setattr(devices, "device_key", lambda d: "cpu:another model|torch 9.9")
    restore.restore_array(restore.load_any_model(lite_file, device="cpu"), big)
    assert len(probes) == 2
    assert len(json.loads(precision_cache.cache_path().read_text())["verdicts"]) == 2


def test_small_image_is_restored_in_fp32_without_the_probe(lite_file, probes):
    model = restore.load_any_model(lite_file, device="cpu")
    small = _image(64, 96)
    out = restore.restore_array(model, small)  # auto
    assert probes == []
    assert np.array_equal(out, restore.restore_array(model, small, precision="fp32"))
    assert not precision_cache.cache_path().exists()
    restore.restore_array(model, small, ensemble=True)  # 8 passes of 6k px: still too little
    assert probes == []


def test_a_stored_verdict_is_used_for_small_images_too(lite_file, probes):
    model = restore.load_any_model(lite_file, device="cpu")
    from lesson7_studio.core.devices import device_key

    key = precision_cache.verdict_key(precision_cache.file_hash(lite_file), device_key("cpu"), "bfloat16")
    assert precision_cache.store(key, True, 60.0)
    run = runner.Runner(model, None, "auto")
    run.choose_precision(tiling.probe_tile(_image(64, 96), run.facts), False, work_px=64 * 96)
    assert run.dtype is torch.bfloat16 and probes == []


def test_cache_file_damage_and_unwritable_folder_are_harmless(lite_file, probes, tmp_path, monkeypatch):
    path = precision_cache.cache_path()
    path.parent.mkdir(parents=True)
    path.write_text("{ not json")
    assert precision_cache.lookup("anything") is None
    model = restore.load_any_model(lite_file, device="cpu")
    restore.restore_array(model, _image(512, 512))
    assert len(probes) == 1 and len(json.loads(path.read_text())["verdicts"]) == 1
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    monkeypatch.setenv("LESSON7_CACHE_DIR", str(blocker / "sub"))
    assert precision_cache.store("k", False, float("nan")) is False
    out = restore.restore_array(restore.load_any_model(lite_file, device="cpu"), _image(512, 512))
    assert out.shape == (1024, 1024, 3) and len(probes) == 2
    assert not list(tmp_path.rglob(".*.part"))


def test_speed_text_never_reads_zero():
    from lesson7_studio.core.units import format_speed

    s = restore.RestoreSummary(done=1, megapixels=96 * 64 / 1e6, seconds=1.0)
    assert s.speed_text == "6.14 kpx/s, 1.0 s an image"
    assert restore.RestoreSummary(done=4, megapixels=24.0, seconds=2.0).speed_text == "12 MP/s"
    assert restore.RestoreSummary().speed_text == ""
    assert format_speed(0.42) == "0.42 MP/s" and format_speed(0.0) == "" and format_speed(None) == ""
    assert "0.00" not in format_speed(1e-7)
