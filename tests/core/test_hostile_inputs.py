"""Hostile inputs (issue 14, section 2): each test uses exactly the input that used to crash."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from lesson7_studio.core import checkpoint, files, images, models
from lesson7_studio.core.datasets import build_pairs, item_seed
from lesson7_studio.core.errors import (CheckpointError, ImageReadError, ImageWriteError, Lesson7Error, ModelError,
                                        OutputFolderError, TrainingError, UnsafeFileError)
from lesson7_studio.core.events import Log, Progress
from lesson7_studio.core.models import registry
from lesson7_studio.core.train import TrainConfig, apply_overrides, get_recipe

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: threads only wait


# ----------------------------------------------------------------------------- 2.1 crafted checkpoints


def crafted(path: Path, name: str, options: dict, kind: str = "critic") -> Path:
    """A few hundred bytes: metadata naming ``name`` with ``options``, and one tiny tensor."""
    meta = {"format_version": 1, "name": name, "kind": kind, "options": options}
    save_file({"w": torch.zeros(2)}, str(path), metadata={"lesson7": json.dumps(meta), "format": "pt"})
    assert path.stat().st_size < 6000
    return path


CRAFTED = [
    ("gan-critic", {"nf": 600}, "critic"),
    ("gan-critic", {"nf": 10**9}, "critic"),
    ("unet-resnet34", {"n_out": 10**9}, "restorer"),
    ("wgan-generator", {"n_features": 10**9}, "generator"),
    ("wgan-critic", {"n_extra_layers": 10**6}, "critic"),
]


@pytest.fixture
def real_builds(monkeypatch):
    """Records every factory call made off the meta device (a real allocation)."""
    calls: list[str] = []
    for name in registry.names():
        e = registry.entry(name)

        def spy(*a, _f=e.factory, _n=name, **kw):
            if torch.empty(0).device.type != "meta":
                calls.append(_n)
            return _f(*a, **kw)

        monkeypatch.setattr(e, "factory", spy)
    return calls


@pytest.mark.parametrize("name,options,kind", CRAFTED, ids=[f"{n}-{list(o.items())[0]}" for n, o, _ in CRAFTED])
def test_crafted_checkpoint_is_refused_before_anything_is_built(tmp_path, real_builds, name, options, kind):
    path = crafted(tmp_path / "evil.safetensors", name, options, kind)
    with pytest.raises(CheckpointError) as ei:
        checkpoint.load_model(path)
    msg = str(ei.value)
    assert "\n" not in msg and len(msg) < 400, msg
    assert str(path) in msg and name in msg
    assert real_builds == []  # checked against a meta build: no real network was ever made


def test_crafted_checkpoint_through_load_any_model(tmp_path, real_builds):
    from lesson7_studio.core.restore import load_any_model

    path = crafted(tmp_path / "evil.safetensors", "unet-resnet34", {"n_out": 10**9}, "restorer")
    with pytest.raises(CheckpointError, match="n_out"):
        load_any_model(path, device="cpu")
    assert real_builds == []


def test_wrong_weights_are_summarised_in_one_line(tmp_path):
    lite = models.create("unet-lite", nf=8, blocks=1)
    sd = {k: v.contiguous().clone() for k, v in lite.state_dict().items()}
    meta = {"format_version": 1, "name": "unet-resnet18", "kind": "restorer", "options": {}}
    path = tmp_path / "wrong.safetensors"
    save_file(sd, str(path), metadata={"lesson7": json.dumps(meta), "format": "pt"})
    with pytest.raises(CheckpointError) as ei:
        checkpoint.load_model(path)
    msg = str(ei.value)
    assert "\n" not in msg and len(msg) < 600, msg
    assert "unexpected" in msg and "missing" in msg and f"{len(sd)} unexpected" in msg


def test_one_tensor_of_another_shape_is_named(tmp_path):
    net = models.create("unet-lite", nf=8, blocks=1)
    path = checkpoint.save_model(tmp_path / "m.safetensors", net, "unet-lite", {"nf": 8, "blocks": 1})
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), "pt") as f:
        header = f.metadata()
    sd = load_file(str(path))
    key = sorted(sd)[0]
    sd[key] = torch.zeros(sd[key].numel() + 1)
    save_file(sd, str(path), metadata=header)
    with pytest.raises(CheckpointError, match=f"1 of another shape \\({key.replace('.', '[.]')}"):
        checkpoint.load_model(path)


def test_every_option_is_bounded_and_registration_enforces_it():
    for name in registry.names():
        for o in registry.options_of(name):
            o.check_bounded(name)  # raises for an unbounded option
    with pytest.raises(RuntimeError, match="minimum and a maximum"):
        registry.register("x-unbounded", description="", kind="critic",
                          options=(registry.Option("n", int, 1, minimum=1),), facts=lambda o: {})(lambda n: None)
    assert "x-unbounded" not in registry.names()


@pytest.mark.parametrize("value", [10**9, -1, 2.5, "many", True, [3], float("nan"), float("inf"), None])
def test_bad_option_values_are_model_errors(value):
    with pytest.raises(ModelError, match="'n_out'"):
        registry.resolve_options("unet-resnet34", n_out=value)


def test_y_range_needs_two_finite_bounded_numbers():
    assert registry.resolve_options("unet-resnet34", y_range=[-1, 1])["y_range"] == (-1.0, 1.0)
    assert registry.resolve_options("unet-resnet34", y_range=None)["y_range"] is None
    for bad in ([1, 2, 3], [0, 1e9], "a,b", 5):
        with pytest.raises(ModelError, match="y_range"):
            registry.resolve_options("unet-resnet34", y_range=bad)


def test_every_model_builds_on_the_meta_device():
    for name in registry.names():
        net = registry.build_on_meta(name, registry.resolve_options(name))
        assert all(p.is_meta for p in net.parameters()), name


def test_bounded_options_whose_product_is_huge_are_refused(real_builds):
    with pytest.raises(ModelError, match="parameters"):
        models.create("gan-critic", nf=1024, n_blocks=6)
    assert real_builds == []


# ----------------------------------------------------------------------------- 2.2 non-UTF-8 file names


def _src_with_bad_name(folder: Path) -> bytes:
    folder.mkdir(parents=True)
    bad = os.fsencode(folder) + b"/bad\xff.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(bad)
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(folder / "good.png")
    return bad


def test_item_seed_of_a_non_utf8_name_is_that_of_its_bytes():
    rel = os.fsdecode(b"bad\xff.png")  # 'bad\udcff.png'
    import hashlib

    want = int.from_bytes(hashlib.sha256(b"crappify\x1f0\x1fbad\xff.png").digest()[:8], "big")
    assert item_seed(0, rel) == want
    assert item_seed(0, "good.png") == int.from_bytes(
        hashlib.sha256("crappify\x1f0\x1fgood.png".encode()).digest()[:8], "big")  # valid names unchanged


def test_crappify_builds_a_non_utf8_name(tmp_path):
    _src_with_bad_name(tmp_path / "src")
    summary = build_pairs(tmp_path / "src", tmp_path / "ds", "superres-x2", seed=0, valid_pct=0.5, workers=1)
    assert summary.built == 2 and summary.ok
    assert os.path.exists(os.fsencode(tmp_path / "ds" / "hr") + b"/bad\xff.png")
    again = build_pairs(tmp_path / "src", tmp_path / "ds", "superres-x2", seed=0, valid_pct=0.5, workers=1)
    assert again.skipped_existing == 2  # dataset.json round-trips the name


def test_eval_measures_a_non_utf8_name(tmp_path):
    from lesson7_studio.core.restore import evaluate

    _src_with_bad_name(tmp_path / "gt")
    r = models.restorer("unet-lite", nf=8, blocks=1, self_attention=False).eval()
    result = evaluate(r, tmp_path / "gt", "decrappify-x2", seed=0, tile=None, precision="fp32")
    assert result["count"] == 2
    assert sorted(i["file"] for i in result["images"]) == sorted([os.fsdecode(b"bad\xff.png"), "good.png"])


# ----------------------------------------------------------------------------- 2.3 output folders


def test_output_folder_under_a_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputFolderError, match="is a file, not a folder"):
        files.check_output_folder(tmp_path / "afile" / "out")
    with pytest.raises(OutputFolderError):
        files.check_output_folder(tmp_path / "afile" / "out", create=False)
    assert files.check_output_folder(tmp_path / "new" / "deep", create=False) and not (tmp_path / "new").exists()
    assert files.check_output_folder(tmp_path / "new" / "deep").is_dir()
    assert list((tmp_path / "new" / "deep").iterdir()) == []  # the probe file is gone


def test_read_only_output_folder(tmp_path, monkeypatch):
    def read_only(*a, **kw):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(files.tempfile, "mkstemp", read_only)
    with pytest.raises(OutputFolderError, match="read-only"):
        files.check_output_folder(tmp_path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_chmod_read_only_output_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(OutputFolderError, match="permission denied"):
            files.check_output_folder(ro / "out")
    finally:
        ro.chmod(0o755)


def test_restore_folder_checks_the_output_before_restoring_anything(tmp_path, monkeypatch):
    from lesson7_studio.core import restore

    src = tmp_path / "src"
    src.mkdir()
    Image.new("RGB", (16, 16), (9, 90, 200)).save(src / "a.png")
    (tmp_path / "afile").write_text("x")
    calls = []
    monkeypatch.setattr(restore.folder, "restore_image", lambda *a, **kw: calls.append(1))
    events = []
    with pytest.raises(OutputFolderError):
        restore.restore_folder(models.restorer("unet-lite", nf=8, blocks=1), src, tmp_path / "afile" / "out",
                               on_event=events.append)
    assert calls == [] and events == []


def test_crappify_into_a_path_under_a_file(tmp_path):
    _src_with_bad_name(tmp_path / "src")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputFolderError, match="dataset folder"):
        build_pairs(tmp_path / "src", tmp_path / "afile" / "ds", "superres-x2", workers=1)


# ----------------------------------------------------------------------------- 2.4 / 2.5 training configs


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile_train")
    rng = np.random.default_rng(0)
    (root / "src").mkdir()
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(root / "src" / f"{i}.png")
    build_pairs(root / "src", root / "ds", "superres-x2", seed=0, valid_pct=0.3, workers=1)
    return root / "ds"


def test_size_100000_is_refused_by_the_config(small_data, tmp_path):
    with pytest.raises(TrainingError, match="'size'.*100000"):
        apply_overrides(get_recipe("quick"), data=str(small_data), out=str(tmp_path / "r"), size=100000)


def test_size_larger_than_every_image_is_refused_before_building(small_data, tmp_path, monkeypatch):
    from lesson7_studio.core.train import run as run_mod
    from lesson7_studio.core.train import train

    built = []
    monkeypatch.setattr(run_mod._Run, "build_models", lambda self, *a, **kw: built.append(1))
    cfg = apply_overrides(get_recipe("quick"), data=str(small_data), out=str(tmp_path / "r"), size=4096)
    with pytest.raises(TrainingError, match="larger than every image") as ei:
        train(cfg)
    assert "--size 48" in str(ei.value) and built == []


def _write(path: Path, obj=None, raw: bytes | None = None) -> Path:
    path.write_bytes(raw if raw is not None else json.dumps(obj).encode())
    return path


def _quick_dict() -> dict:
    return json.loads(get_recipe("quick").to_json())


def _stage_set(key, value):
    d = _quick_dict()
    d["stages"][0][key] = value
    return d


GARBAGE = [
    ("list", [1, 2, 3], "JSON object"),
    ("string", "just a string", "JSON object"),
    ("batch_size", {**_quick_dict(), "batch_size": "four"}, "field 'batch_size'"),
    ("epochs", _stage_set("epochs", "many"), r"stages\[0\] \('train'\): field 'epochs'"),
    ("stages", {**_quick_dict(), "stages": None}, "field 'stages'"),
    ("div", _stage_set("div", 0), r"stages\[0\] \('train'\): field 'div' must be a number > 0"),
    ("data", {**_quick_dict(), "data": 12345}, "field 'data' must be text"),
]


@pytest.mark.parametrize("label,obj,match", GARBAGE, ids=[g[0] for g in GARBAGE])
def test_garbage_config_names_the_field(tmp_path, label, obj, match):
    path = _write(tmp_path / "config.json", obj)
    with pytest.raises(TrainingError, match=match) as ei:
        TrainConfig.load(path)
    assert str(path) in str(ei.value)
    if label == "string":
        assert "field(s)" not in str(ei.value)  # not the letters of the string as field names


def test_config_of_bytes_that_are_not_utf8(tmp_path):
    path = _write(tmp_path / "config.json", raw=b'{"recipe": "\xff\xfe garbage"}')
    with pytest.raises(TrainingError, match="not UTF-8"):
        TrainConfig.load(path)


def test_good_config_round_trips_and_more_checks(tmp_path):
    cfg = get_recipe("superres-gan")
    assert TrainConfig.from_json(cfg.to_json()).to_dict() == cfg.to_dict()
    for key, value, match in [("moms", [0.9, 0.8], "'moms'"), ("precision", "fp8", "'precision'"),
                              ("pretrained", "yes", "'pretrained'"), ("seed", -1, "'seed'"),
                              ("nonsense", 1, "unknown field"), ("max_minutes", 0, "'max_minutes'")]:
        with pytest.raises(TrainingError, match=match):
            TrainConfig.from_dict({**json.loads(cfg.to_json()), key: value})
    d = json.loads(cfg.to_json())
    d["stages"][1]["lr"] = "fast"
    with pytest.raises(TrainingError, match=r"stages\[1\].*'lr'"):
        TrainConfig.from_dict(d)
    d = json.loads(cfg.to_json())
    del d["recipe"]
    with pytest.raises(TrainingError, match="recipe missing"):
        TrainConfig.from_dict(d)


# ----------------------------------------------------------------------------- 2.6 messages


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` (its pixels never come: the header is enough)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_bombs_over_and_under_pillows_limit_say_the_same(tmp_path):
    reasons = []
    for w, h in [(20000, 20000), (30000, 30000)]:  # 400 MP (ours), 900 MP (Pillow's own limit)
        p = tmp_path / f"bomb{w}.png"
        p.write_bytes(_png_header(w, h))
        with pytest.raises(ImageReadError) as ei:
            images.load_image(p)
        reasons.append(ei.value.reason)
    assert all("is over the limit of 300 MP (decompression bomb protection)" in r for r in reasons), reasons
    assert "400.0 MP" in reasons[0] and "900.0 MP" in reasons[1]
    assert not any("DOS attack" in r for r in reasons)


def test_newer_checkpoint_says_so_not_spandrel(tmp_path):
    from lesson7_studio.core.restore import load_any_model

    net = models.create("unet-lite", nf=8, blocks=1)
    path = checkpoint.save_model(tmp_path / "m.safetensors", net, "unet-lite", {"nf": 8, "blocks": 1})
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), "pt") as f:
        header = f.metadata()
    meta = json.loads(header["lesson7"])
    meta["format_version"] = 99
    save_file(load_file(str(path)), str(path), metadata={**header, "lesson7": json.dumps(meta)})
    with pytest.raises(CheckpointError) as ei:
        load_any_model(path, device="cpu")
    assert "made by a newer Lesson7 Studio" in str(ei.value) and "spandrel" not in str(ei.value)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_evil_pickle_is_refused_in_one_line(tmp_path):
    path = tmp_path / "last.state.pt"
    with open(path, "wb") as f:
        pickle.dump({"format": 1, "x": _Evil()}, f)
    with pytest.raises(UnsafeFileError) as ei:
        checkpoint.safe_torch_load(path, "resume state")
    assert "\n" not in str(ei.value) and "Nothing was executed" in str(ei.value)


def test_tiff_on_a_full_disk_says_the_disk_is_full(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    img = images.ImageData(rgb=np.zeros((8, 8, 3), np.uint8))

    def encoder_error(self, *a, **kw):
        raise OSError("encoder error -2")

    monkeypatch.setattr(Image.Image, "save", encoder_error)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9, 0))
    with pytest.raises(ImageWriteError, match="the disk is full"):
        images.save_image(img, tmp_path / "out.tif")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**12, 0, 10**12))
    with pytest.raises(ImageWriteError, match="encoder error -2"):  # room left: the encoder's own words
        images.save_image(img, tmp_path / "out.tif")
    assert not list(tmp_path.iterdir())  # no temp file left


def test_quality_out_of_range_is_refused(tmp_path):
    from lesson7_studio.core.restore import restore_folder

    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    with pytest.raises(Lesson7Error, match="Quality must be between 1 and 100"):
        restore_folder(models.restorer("unet-lite", nf=8, blocks=1), tmp_path / "a.png", tmp_path / "o", quality=1000)


# ----------------------------------------------------------------------------- 2.7 leftovers


def test_stale_part_files_of_dead_writers_are_removed(tmp_path):
    dead = tmp_path / ".best.safetensors.999999999-abcd1234.part"
    mine = tmp_path / f".last.state.pt.{os.getpid()}-abcd1234.part"
    odd = tmp_path / ".x.part"
    keep = tmp_path / "best.safetensors"
    for p in (dead, mine, odd, keep):
        p.write_bytes(b"x")
    removed = files.remove_stale_parts(tmp_path)
    assert sorted(removed) == sorted([dead, odd])
    assert mine.exists() and keep.exists()


def test_multi_frame_gif_is_noted_and_tiles_are_reported(tmp_path):
    from lesson7_studio.core.restore import restore_folder

    frames = [Image.new("RGB", (40, 32), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    events = []
    net = models.restorer("unet-lite", nf=8, blocks=1, self_attention=False)
    summary = restore_folder(net, tmp_path / "anim.gif", tmp_path / "out", tile=16, precision="fp32",
                             on_event=events.append)
    assert summary.done == 1 and summary.first_frame_only == [(tmp_path / "anim.gif", 3)]
    assert summary.to_dict()["first_frame_only"] == [{"path": str(tmp_path / "anim.gif"), "frames": 3}]
    assert any(isinstance(e, Log) and "3 frames" in e.message for e in events)
    tiles = [e for e in events if isinstance(e, Progress) and e.stage == "tiles"]
    assert len(tiles) > 1 and tiles[-1].done == tiles[-1].total > 1
    assert all(e.message == "anim.gif" for e in tiles)


def test_config_field_types_resolve():
    from lesson7_studio.core.train import config_check
    from lesson7_studio.core.train.recipes import StageConfig

    for cls in (TrainConfig, StageConfig):
        assert set(config_check._hints(cls)) == {f.name for f in dataclasses.fields(cls)}
