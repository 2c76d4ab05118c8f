"""Dataset builder and datasets: bad files, determinism, resume, cancel, alignment."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lesson7_studio.core.crappify import PRESETS, Recipe, Resize, apply_recipe, prepare_hr
from lesson7_studio.core.datasets import (
    BuildSummary,
    ImageFolderDataset,
    PairedDataset,
    build_pairs,
    item_seed,
    make_loader,
    read_dataset_json,
)
from lesson7_studio.core.errors import Cancelled, DatasetError
from lesson7_studio.core.events import CancelToken, ItemDone, ItemFailed, Progress
from lesson7_studio.core.images import load_image

from test_images import _bad_files, crafted_png_header  # tests/core is on sys.path (rootdir mode)

GOOD = {  # relative path -> size; odd sizes on purpose (not multiples of 2 or 4)
    "a.jpg": (48, 40),
    "b.png": (49, 41),
    "sub/c.png": (64, 52),
    "sub/deep/d.jpg": (40, 48),
    "e.webp": (50, 46),
    "f.tif": (45, 60),
}
AREA_X2 = Recipe("area-x2", [Resize(factor=2, resample="area")])


def smooth(w: int, h: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 6 + 2, w // 6 + 2, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC)


def make_src(root: Path, bad: bool = True) -> dict[str, str]:
    """Good images (and bad ones when asked) under root; returns {bad rel: expected words}."""
    for i, (rel, size) in enumerate(GOOD.items()):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        img = smooth(*size, seed=i)
        if p.suffix == ".png":
            img.save(p)
        else:
            img.save(p, quality=95) if p.suffix in (".jpg", ".webp") else img.save(p)
    expected: dict[str, str] = {}
    if bad:
        (root / "bad").mkdir()
        for key, (path, words) in _bad_files(root / "bad").items():
            expected[path.relative_to(root).as_posix()] = words
        (root / "bad" / "good.jpg").unlink()  # helper's source image: not a bad file
        crafted_png_header(root / "bad" / "bomb.png", 20000, 20000)
        expected["bad/bomb.png"] = "decompression bomb"
    return expected


def tree_hash(root: Path) -> dict[str, tuple[str, int]]:
    return {
        p.relative_to(root).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.name != "dataset.json"}


def temp_leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".part")]


@pytest.fixture
def src(tmp_path) -> Path:
    root = tmp_path / "src"
    make_src(root)
    return root


# ----------------------------------------------------------------------------- builder


def test_build_skips_bad_files_and_builds_the_rest(tmp_path, src):
    before = tree_hash(src)
    events: list = []
    s = build_pairs(src, tmp_path / "ds", "decrappify-x2", seed=3, valid_pct=0.3, on_event=events.append)
    assert isinstance(s, BuildSummary) and s.ok
    assert s.built == len(GOOD) and s.skipped_existing == 0 and s.total == len(GOOD) + 5
    failed = {p.relative_to(src).as_posix(): reason for p, reason in s.failed}
    bad_expected = {"bad/empty.jpg": "empty", "bad/notes.jpg": "not an image", "bad/truncated.jpg": "truncated",
                    "bad/corrupt.png": "damaged", "bad/bomb.png": "decompression bomb"}
    assert set(failed) == set(bad_expected)
    for rel, words in bad_expected.items():
        assert words in failed[rel].lower()
    assert {e.path.relative_to(src).as_posix() for e in events if isinstance(e, ItemFailed)} == set(bad_expected)
    assert len([e for e in events if isinstance(e, ItemDone)]) == len(GOOD)
    prog = [e for e in events if isinstance(e, Progress)]
    assert prog[-1].done == prog[-1].total == s.total

    meta = read_dataset_json(tmp_path / "ds")
    assert {d["path"] for d in meta["skipped"]} == set(bad_expected)
    assert all(d["reason"] for d in meta["skipped"])
    assert meta["recipe_hash"] == PRESETS["decrappify-x2"].hash() and meta["scale"] == 2 and meta["seed"] == 3
    assert Recipe.from_dict(meta["recipe"]).hash() == meta["recipe_hash"]
    assert sorted(meta["train"] + meta["valid"]) == sorted(GOOD) and not set(meta["train"]) & set(meta["valid"])
    assert meta["valid"] and meta["counts"]["pairs"] == len(GOOD) and meta["complete"]
    for rel, (w, h) in GOOD.items():
        item = meta["items"][rel]
        stem = rel.rsplit(".", 1)[0]
        assert item["hr"] == f"hr/{stem}.png" and item["lr"] == f"lr/{stem}.jpg"
        hr = Image.open(tmp_path / "ds" / item["hr"])
        lr = Image.open(tmp_path / "ds" / item["lr"])
        assert hr.format == "PNG" and lr.format == "JPEG"
        assert hr.size == (w - w % 2, h - h % 2)  # cropped top-left to a multiple of the scale
        assert (lr.width * 2, lr.height * 2) == hr.size
    assert tree_hash(src) == before  # sources untouched
    assert not temp_leftovers(tmp_path / "ds")


def test_variants_degrade_each_photo_several_times_and_keep_it_on_one_side(tmp_path, src):
    from lesson7_studio.core.crappify import auto_variants
    from lesson7_studio.core.crappify.manifest import source_of

    s = build_pairs(src, tmp_path / "ds", "decrappify-x2", seed=3, valid_pct=0.3, variants=3)
    assert s.built == 3 * len(GOOD) and s.total == 3 * (len(GOOD) + 5)
    assert len(s.failed) == 5  # each bad file reported once, not once per variant
    meta = read_dataset_json(tmp_path / "ds")
    items = meta["items"]
    for rel in GOOD:
        keys = [rel, f"{rel}#v2", f"{rel}#v3"]
        assert all(k in items and items[k]["source"] == rel for k in keys)
        stem = rel.rsplit(".", 1)[0]
        assert [items[k]["lr"] for k in keys] == [f"lr/{stem}.jpg", f"lr/{stem}_v2.jpg", f"lr/{stem}_v3.jpg"]
        assert len({items[k]["seed"] for k in keys}) == 3  # three different degradations
        lrs = [(tmp_path / "ds" / items[k]["lr"]).read_bytes() for k in keys]
        assert len(set(lrs)) == 3
    valid = {source_of(k) for k in meta["valid"]}
    assert valid and valid.isdisjoint(source_of(k) for k in meta["train"])
    assert len(meta["valid"]) == 3 * len(valid)
    # a rerun skips all of them; the first variant is the pair a plain build writes
    again = build_pairs(src, tmp_path / "ds", "decrappify-x2", seed=3, valid_pct=0.3, variants=3)
    assert again.built == 0 and again.skipped_existing == 3 * len(GOOD)
    plain = build_pairs(src, tmp_path / "plain", "decrappify-x2", seed=3, valid_pct=0.3)
    rel = next(iter(GOOD))
    assert (tmp_path / "plain" / read_dataset_json(tmp_path / "plain")["items"][rel]["lr"]).read_bytes() == \
        (tmp_path / "ds" / items[rel]["lr"]).read_bytes()
    assert plain.built == len(GOOD)
    with pytest.raises(DatasetError, match="variants"):
        build_pairs(src, tmp_path / "x", "decrappify-x2", variants=0)
    assert [auto_variants(n) for n in (1, 3, 30, 60, 119, 120, 5000)] == [8, 8, 4, 2, 2, 1, 1]


def test_lr_jpeg_bytes_are_exactly_what_the_crappifier_encoded(tmp_path, src):
    build_pairs(src, tmp_path / "ds", "lesson7", seed=5)
    meta = read_dataset_json(tmp_path / "ds")
    for rel in ("a.jpg", "sub/c.png"):
        hr, _ = prepare_hr(load_image(src / rel), None, None)
        res = apply_recipe(hr, PRESETS["lesson7"], item_seed(5, rel))
        assert (tmp_path / "ds" / meta["items"][rel]["lr"]).read_bytes() == res.jpeg_bytes
        assert meta["items"][rel]["params"]["quality"] == res.params["quality"]
    # an unchanged 8-bit RGB PNG source is copied byte for byte as HR
    assert (tmp_path / "ds/hr/sub/c.png").read_bytes() == (src / "sub/c.png").read_bytes()


def test_same_seed_same_bytes_for_any_worker_count(tmp_path, src):
    a = build_pairs(src, tmp_path / "w1", "decrappify-x2", seed=11, workers=1)
    b = build_pairs(src, tmp_path / "w2", "decrappify-x2", seed=11, workers=2)
    assert a.built == b.built == len(GOOD) and len(b.failed) == 5
    assert files_under(tmp_path / "w1") == files_under(tmp_path / "w2")
    ma, mb = read_dataset_json(tmp_path / "w1"), read_dataset_json(tmp_path / "w2")
    assert (ma["train"], ma["valid"], ma["skipped"]) == (mb["train"], mb["valid"], mb["skipped"])
    c = build_pairs(src, tmp_path / "s2", "decrappify-x2", seed=12)
    assert c.built == len(GOOD)
    assert files_under(tmp_path / "s2") != files_under(tmp_path / "w1")


def test_rerun_skips_existing_and_rebuilds_missing(tmp_path, src):
    dst = tmp_path / "ds"
    build_pairs(src, dst, "superres-x2")
    first = files_under(dst)
    again = build_pairs(src, dst, "superres-x2")
    assert again.built == 0 and again.skipped_existing == len(GOOD) and len(again.failed) == 5
    (dst / "lr/sub/c.png").unlink()
    third = build_pairs(src, dst, "superres-x2")
    assert third.built == 1 and third.skipped_existing == len(GOOD) - 1
    assert files_under(dst) == first
    with pytest.raises(DatasetError, match="another recipe"):
        build_pairs(src, dst, "superres-x4")
    with pytest.raises(DatasetError, match="another recipe"):
        build_pairs(src, dst, "superres-x2", seed=1)


@pytest.mark.parametrize("workers", [1, 2])
def test_cancel_leaves_no_partial_files_and_rerun_completes(tmp_path, workers):
    src = tmp_path / "src"
    make_src(src, bad=False)
    dst = tmp_path / "ds"
    token = CancelToken()

    def on_event(ev):
        if isinstance(ev, ItemDone):
            token.cancel()

    with pytest.raises(Cancelled):
        build_pairs(src, dst, "decrappify-x2", workers=workers, on_event=on_event, cancel=token)
    assert not temp_leftovers(dst)
    meta = read_dataset_json(dst)
    done = set(meta["items"])
    assert 1 <= len(done) < len(GOOD) and not meta["complete"]
    if workers == 1:
        assert len(done) == 1
    # every recorded pair is whole, and nothing unrecorded is lying around
    hr_files = {p.relative_to(dst).as_posix() for p in (dst / "hr").rglob("*") if p.is_file()}
    lr_files = {p.relative_to(dst).as_posix() for p in (dst / "lr").rglob("*") if p.is_file()}
    assert hr_files == {meta["items"][k]["hr"] for k in done}
    assert lr_files == {meta["items"][k]["lr"] for k in done}
    s = build_pairs(src, dst, "decrappify-x2", workers=workers)
    assert s.skipped_existing == len(done) and s.built == len(GOOD) - len(done)
    assert read_dataset_json(dst)["complete"]
    reference = tmp_path / "ref"
    build_pairs(src, reference, "decrappify-x2")
    assert files_under(dst) == files_under(reference)


def test_folder_rules(tmp_path, src):
    with pytest.raises(DatasetError, match="outside"):
        build_pairs(src, src / "out", "jpeg")
    with pytest.raises(DatasetError, match="outside"):
        build_pairs(src, src, "jpeg")
    with pytest.raises(DatasetError, match="not found"):
        build_pairs(tmp_path / "nope", tmp_path / "ds", "jpeg")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="No images"):
        build_pairs(tmp_path / "empty", tmp_path / "ds", "jpeg")
    (tmp_path / "foreign" / "hr").mkdir(parents=True)
    with pytest.raises(DatasetError, match="dataset.json"):
        build_pairs(src, tmp_path / "foreign", "jpeg")
    with pytest.raises(DatasetError, match="valid_pct"):
        build_pairs(src, tmp_path / "ds", "jpeg", valid_pct=1.0)


def test_read_dataset_json_strict_and_lenient(tmp_path):
    root = tmp_path / "hand-made"
    root.mkdir()
    with pytest.raises(DatasetError, match="no dataset.json"):
        read_dataset_json(root, strict=False)
    (root / "dataset.json").write_text(json.dumps({"scale": 2, "valid": ["a.png"]}))
    with pytest.raises(DatasetError, match="keys missing"):
        read_dataset_json(root)  # the builder's keys are needed to train on it
    assert read_dataset_json(root, strict=False)["valid"] == ["a.png"]
    for broken, words in (("{oops", "Cannot read"), ("[1, 2]", "not a JSON object")):
        (root / "dataset.json").write_text(broken)
        with pytest.raises(DatasetError, match=words):
            read_dataset_json(root, strict=False)


def test_name_collisions_max_size_and_alpha(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    smooth(40, 40, 1).save(src / "x.jpg")
    smooth(40, 40, 2).save(src / "x.png")
    big = smooth(120, 90, 3).convert("RGBA")
    big.putalpha(0)  # fully transparent: HR is composited onto white
    big.save(src / "big.png")
    s = build_pairs(src, tmp_path / "ds", "superres-x2", max_size=64)
    assert s.built == 3
    meta = read_dataset_json(tmp_path / "ds")
    assert meta["items"]["x.jpg"]["hr"] == "hr/x_jpg.png" and meta["items"]["x.png"]["hr"] == "hr/x_png.png"
    assert meta["items"]["big.png"]["hr_size"] == [64, 48] and meta["items"]["big.png"]["lr_size"] == [32, 24]
    hr = np.asarray(Image.open(tmp_path / "ds/hr/big.png"))
    assert hr.shape == (48, 64, 3) and hr.min() == 255


def test_tiny_image_smaller_than_scale_is_skipped(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    smooth(48, 40, 0).save(src / "ok.png")
    Image.new("RGB", (3, 2)).save(src / "speck.png")
    s = build_pairs(src, tmp_path / "ds", "superres-x4")
    assert s.built == 1 and s.ok
    assert "smaller than the recipe's scale" in s.failed[0][1]


# ----------------------------------------------------------------------------- datasets


@pytest.fixture
def area_ds(tmp_path) -> Path:
    src = tmp_path / "src"
    make_src(src, bad=False)
    build_pairs(src, tmp_path / "ds", AREA_X2, valid_pct=0.3)
    return tmp_path / "ds"


def block_mean(hr: torch.Tensor, s: int) -> torch.Tensor:
    c, h, w = hr.shape
    return hr.view(c, h // s, s, w // s, s).mean(dim=(2, 4))


def test_paired_crops_are_aligned_with_flips(area_ds):
    torch.manual_seed(0)
    ds = PairedDataset(area_ds, "all", crop_size=32, augment=True, vflip=True)
    assert ds.scale == 2 and len(ds) == len(GOOD)
    for _ in range(3):
        for i in range(len(ds)):
            lr, hr = ds[i]
            assert lr.shape == (3, 16, 16) and hr.shape == (3, 32, 32)
            assert lr.dtype == torch.float32 and 0 <= lr.min() and hr.max() <= 1
            # area downscale by 2 = the mean of each 2x2 block: true for every aligned crop/flip
            assert (lr - block_mean(hr, 2)).abs().max() <= 1.01 / 255


def test_zoomed_crops_stay_aligned_and_enlarge(area_ds):
    """max_zoom (the lesson's zoom augmentation): the same region of both images, zoomed."""
    torch.manual_seed(0)
    ds = PairedDataset(area_ds, "all", crop_size=32, augment=True, max_zoom=2.0, p_zoom=1.0)
    plain = PairedDataset(area_ds, "all", crop_size=32, augment=True)
    zoomed_err, shifted_err = [], []
    for _ in range(4):
        for i in range(len(ds)):
            lr, hr = ds[i]
            assert lr.shape == (3, 16, 16) and hr.shape == (3, 32, 32)
            zoomed_err.append((lr - block_mean(hr, 2)).abs().mean().item())
            shifted_err.append((lr - torch.roll(block_mean(hr, 2), 3, dims=2)).abs().mean().item())
    # bilinear zooms of an aligned pair agree closely; a 3 px misalignment does not
    assert max(zoomed_err) < 0.02 and sum(shifted_err) > 3 * sum(zoomed_err)
    # a zoom enlarges: neighbouring pixels of a zoomed crop differ less than those of a plain one
    def roughness(d):
        return sum((d[i][1][:, :, 1:] - d[i][1][:, :, :-1]).abs().mean().item() for i in range(len(d)))
    torch.manual_seed(1)
    assert roughness(ds) < roughness(plain)
    with pytest.raises(DatasetError, match="max_zoom"):
        PairedDataset(area_ds, "all", crop_size=32, max_zoom=0.5)
    # validation (no augment) never zooms
    fixed = PairedDataset(area_ds, "all", crop_size=32, augment=False, max_zoom=2.0, p_zoom=1.0)
    assert torch.equal(fixed[0][1], PairedDataset(area_ds, "all", crop_size=32, augment=False)[0][1])


def test_superres_lr_is_bicubic_downscale_of_hr(tmp_path):
    src = tmp_path / "src"
    make_src(src, bad=False)
    build_pairs(src, tmp_path / "ds", "superres-x2")
    ds = PairedDataset(tmp_path / "ds", "all", crop_size=None, augment=False)
    for i in range(len(ds)):
        lr, hr = ds[i]
        assert lr.shape[1] * 2 == hr.shape[1] and lr.shape[2] * 2 == hr.shape[2]
        img = Image.fromarray((hr.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
        down = torch.from_numpy(np.array(img.resize((lr.shape[2], lr.shape[1]), Image.Resampling.BICUBIC)))
        assert (lr - down.permute(2, 0, 1) / 255).abs().max() <= 1.01 / 255
    # random crops: same relation away from the crop border (bicubic reaches 2 LR px outside)
    torch.manual_seed(1)
    crops = PairedDataset(tmp_path / "ds", "all", crop_size=32, augment=True)
    for i in range(len(crops)):
        lr, hr = crops[i]
        img = Image.fromarray((hr.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
        down = torch.from_numpy(np.array(img.resize((16, 16), Image.Resampling.BICUBIC))).permute(2, 0, 1) / 255
        assert (lr[:, 2:-2, 2:-2] - down[:, 2:-2, 2:-2]).abs().max() <= 2.01 / 255


def test_small_images_are_padded_and_valid_crops_are_fixed(area_ds):
    ds = PairedDataset(area_ds, "valid", crop_size=128, augment=False)  # images are ~48 px
    lr, hr = ds[0]
    assert lr.shape == (3, 64, 64) and hr.shape == (3, 128, 128)
    assert (lr - block_mean(hr, 2)).abs().max() <= 1.01 / 255  # mirror padding stays aligned
    lr2, hr2 = ds[0]
    assert torch.equal(lr, lr2) and torch.equal(hr, hr2)
    x4 = PairedDataset(area_ds, "train", crop_size=32, scale=4, augment=False)
    lr, hr = x4[0]
    assert lr.shape == (3, 8, 8) and hr.shape == (3, 32, 32)
    with pytest.raises(DatasetError, match="multiple"):
        PairedDataset(area_ds, "train", crop_size=33)
    with pytest.raises(DatasetError, match="split"):
        PairedDataset(area_ds, "test")
    with pytest.raises(DatasetError, match="dataset.json"):
        PairedDataset(area_ds / "hr")


def test_fixed_size_recipe_pairs_at_scale_1(tmp_path):
    src = tmp_path / "src"
    make_src(src, bad=False)
    build_pairs(src, tmp_path / "ds", "lesson7")
    ds = PairedDataset(tmp_path / "ds", "all", crop_size=32)
    assert ds.scale == 1
    lr, hr = ds[0]
    assert lr.shape == hr.shape == (3, 32, 32)
    norm = PairedDataset(tmp_path / "ds", "all", crop_size=None, mean=[0.5] * 3, std=[0.25] * 3)
    lr, hr = norm[0]
    assert lr.shape == hr.shape and hr.min() < 0


def test_image_folder_dataset_and_loader(area_ds, tmp_path):
    src = tmp_path / "src"
    ds = ImageFolderDataset(src, size=32)
    assert len(ds) == len(GOOD)
    x = ds[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    aug = ImageFolderDataset(src, size=24, augment=True)
    assert aug[3].shape == (3, 24, 24)
    loader = make_loader(ds, batch_size=4, shuffle=True, workers=0)
    batches = list(loader)
    assert len(batches) == 1 and batches[0].shape == (4, 3, 32, 32)  # drop_last when shuffling
    pairs = make_loader(PairedDataset(area_ds, "all", crop_size=16), batch_size=4, shuffle=False, workers=0)
    assert [b[0].shape[0] for b in pairs] == [4, 2]
    small = make_loader(ds, batch_size=64, shuffle=True, workers=0)
    assert len(list(small)) == 1  # fewer images than a batch: keep the partial batch
    assert make_loader(ds, 2, True).num_workers == min(2, os.cpu_count() or 1)
    (tmp_path / "none").mkdir()
    with pytest.raises(DatasetError):
        ImageFolderDataset(tmp_path / "none")


def test_decoded_pairs_are_cached_within_the_bound(area_ds, monkeypatch):
    from lesson7_studio.core import datasets

    opened = []
    real = datasets._open_rgb
    monkeypatch.setattr(datasets, "_open_rgb", lambda p: (opened.append(p), real(p))[1])
    ds = PairedDataset(area_ds, "all", crop_size=16, augment=False)
    first = ds[0]
    assert len(opened) == 2  # hr + lr
    again = ds[0]
    assert len(opened) == 2, "the second read decoded the files again"
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    lr, hr = ds.load_pair(0)
    assert not lr.flags.writeable and not hr.flags.writeable  # crops and flips cannot spoil the cache
    # the bound: only what fits is kept, the rest is decoded each time (same pixels)
    one = sum(a.nbytes for a in ds.load_pair(0))
    tight = PairedDataset(area_ds, "all", crop_size=16, augment=False, cache_mb=one / 2**20)
    opened.clear()
    for _ in range(2):
        for i in range(len(tight)):
            tight.load_pair(i)
    assert len(tight._cache) == 1 and tight._cached_bytes <= tight.cache_bytes
    assert len(opened) == 2 * (2 * len(tight) - 1)
    off = PairedDataset(area_ds, "all", crop_size=16, augment=False, cache_mb=0)
    assert torch.equal(off[0][1], first[1]) and not off._cache


def test_dataset_json_is_plain_json(area_ds):
    meta = json.loads((area_ds / "dataset.json").read_text())
    for key in ("recipe", "recipe_hash", "seed", "scale", "train", "valid", "skipped", "counts"):
        assert key in meta
