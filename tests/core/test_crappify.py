"""Crappifier: determinism, the lesson's recipe, presets, JSON/hash, validation, the preview
(which is the pair the builder writes)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from lesson7_studio.core.crappify import (
    PRESETS,
    Blur,
    Greyscale,
    Jpeg,
    Noise,
    OldPhoto,
    Recipe,
    Resize,
    PreviewSource,
    Text,
    apply_recipe,
    build_pairs,
    crappify,
    get_recipe,
    item_seed,
    preview,
    read_dataset_json,
)
from lesson7_studio.core.errors import DatasetError, RecipeError
from lesson7_studio.core.images import ImageData

RANDOM_PRESETS = ["lesson7", "decrappify-x2", "jpeg", "old-photo"]


def photo(w: int = 48, h: int = 40, seed: int = 0) -> Image.Image:
    """Smooth random colours plus some edges: something JPEG and resizing visibly change."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 4 + 1, w // 4 + 1, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC)


def encoded(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("name", list(PRESETS))
def test_same_seed_same_bytes(name):
    img = photo()
    a = apply_recipe(img, PRESETS[name], 7)
    b = apply_recipe(img.copy(), get_recipe(name), 7)
    assert a.image.tobytes() == b.image.tobytes()
    assert a.jpeg_bytes == b.jpeg_bytes
    assert encoded(a.image) == encoded(b.image)


@pytest.mark.parametrize("name", RANDOM_PRESETS)
def test_different_seed_different_output(name):
    img = photo(64, 64)
    outs = {apply_recipe(img, PRESETS[name], s).image.tobytes() for s in range(4)}
    assert len(outs) > 1


def test_seeding_is_platform_stable():
    """What is drawn depends only on numpy's SeedSequence/PCG64, whose streams numpy keeps
    stable across versions and machines: pin it."""
    img = Image.new("RGB", (150, 100))
    got = [apply_recipe(img, PRESETS["lesson7"], s).params for s in (0, 1, 2)]
    assert got == [
        {"text": "50", "text_xy": [48, 33], "quality": 50},
        {"text": "36", "text_xy": [68, 23], "quality": 36},
        {"text": "28", "text_xy": [65, 45], "quality": 28},
    ]


def test_step_randomness_depends_only_on_seed_and_position():
    img = photo(64, 64)
    # adding a step after the JPEG step does not change what the JPEG step drew
    base = Recipe("a", [Resize(factor=2), Jpeg()])
    longer = Recipe("b", [Resize(factor=2), Jpeg(), Greyscale()])
    assert apply_recipe(img, base, 3).params["quality"] == apply_recipe(img, longer, 3).params["quality"]


def test_lesson7_is_the_course_crappifier():
    img = Image.new("RGB", (150, 100), (0, 0, 0))  # black, so the white number stands out
    res = apply_recipe(img, PRESETS["lesson7"], 0)
    out = res.image
    assert out.size == (144, 96)  # resize_to(img, 96, use_min=True): int(150 * 96/100) = 144
    q = res.params["quality"]
    assert 10 <= q <= 70 and res.params["text"] == str(q)
    x, y = res.params["text_xy"]
    assert 0 <= x <= 144 // 2 and 0 <= y <= 96 // 2
    # the saved JPEG is the returned image, at quality q, with the text drawn before encoding
    assert res.jpeg_bytes is not None
    jpg = Image.open(io.BytesIO(res.jpeg_bytes))
    assert jpg.format == "JPEG" and np.array_equal(np.asarray(jpg.convert("RGB")), np.asarray(out))
    a = np.asarray(out).astype(int)
    text_area = a[y : y + 12, x : x + 16]
    assert text_area.max() > 200  # white digits
    mask = np.ones(a.shape[:2], bool)
    mask[max(0, y - 8) : y + 20, max(0, x - 8) : x + 24] = False
    assert a[mask].max() < 40  # nothing bright elsewhere
    qs = {apply_recipe(img, PRESETS["lesson7"], s).params["quality"] for s in range(300)}
    assert min(qs) == 10 and max(qs) == 70  # inclusive range


def test_lesson7_quality_matches_jpeg_quantisation():
    img = photo(150, 100)
    lo = apply_recipe(img, Recipe("q", [Jpeg(quality=(10, 10))]), 0)
    hi = apply_recipe(img, Recipe("q", [Jpeg(quality=(90, 90))]), 0)
    assert len(lo.jpeg_bytes) < len(hi.jpeg_bytes)
    q_tables = Image.open(io.BytesIO(lo.jpeg_bytes)).quantization
    assert q_tables[0][0] > Image.open(io.BytesIO(hi.jpeg_bytes)).quantization[0][0]


def test_presets_shapes_and_scale():
    img = photo(48, 40)
    sizes = {name: crappify(img, r, 1).size for name, r in PRESETS.items()}
    assert sizes["decrappify-x2"] == (24, 20)
    assert sizes["superres-x2"] == (24, 20)
    assert sizes["superres-x4"] == (12, 10)
    assert sizes["jpeg"] == sizes["colorize"] == sizes["old-photo"] == (48, 40)
    assert sizes["lesson7"] == (115, 96)
    scales = {name: r.scale for name, r in PRESETS.items()}
    assert scales == {
        "lesson7": None,
        "decrappify-x2": 2,
        "superres-x2": 2,
        "superres-x4": 4,
        "jpeg": 1,
        "colorize": 1,
        "old-photo": 1,
    }
    assert [r.lr_suffix for r in PRESETS.values()] == [".jpg", ".jpg", ".png", ".png", ".jpg", ".png", ".png"]


def test_superres_is_plain_bicubic():
    img = photo(48, 40)
    expected = img.resize((24, 20), Image.Resampling.BICUBIC)
    assert crappify(img, "superres-x2", 0).tobytes() == expected.tobytes()


def test_decrappify_text_scales_with_image():
    t = PRESETS["decrappify-x2"].steps[1]
    assert isinstance(t, Text)
    assert t.font_size(48, 96) == 5 and t.font_size(480, 960) == 50


def test_colorize_and_old_photo():
    img = photo(64, 48)
    g = np.asarray(crappify(img, "colorize", 0))
    assert np.array_equal(g[..., 0], g[..., 1]) and np.array_equal(g[..., 1], g[..., 2])
    old = np.asarray(crappify(img, "old-photo", 0)).astype(int)
    assert old.shape == (48, 64, 3)
    assert old[..., 0].mean() > old[..., 2].mean() + 10  # sepia: warm
    assert old.std() < np.asarray(img).astype(int).std()  # faded


def test_noise_and_blur_steps():
    img = Image.new("RGB", (64, 64), (128, 128, 128))
    n = np.asarray(crappify(img, Recipe("n", [Noise(sigma=(10, 10))]), 0)).astype(float)
    assert 8 < n.std() < 12 and abs(n.mean() - 128) < 1
    mono = np.asarray(crappify(img, Recipe("m", [Noise(sigma=(10, 10), mono=True)]), 0))
    assert np.array_equal(mono[..., 0], mono[..., 1])
    edge = Image.new("RGB", (32, 32))
    edge.paste((255, 255, 255), (16, 0, 32, 32))
    b = np.asarray(crappify(edge, Recipe("b", [Blur(radius=(2, 2))]), 0))
    assert 0 < b[5, 15, 0] < 255


def test_rgba_and_imagedata_inputs():
    rgba = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    assert crappify(rgba, "colorize", 0).getpixel((3, 3)) == (255, 255, 255)
    data = ImageData(rgb=np.zeros((20, 24, 3), np.uint8))
    assert crappify(data, "superres-x2", 0).size == (12, 10)


# ----------------------------------------------------------------------------- recipes


def test_json_round_trip_and_stable_hash(tmp_path):
    for r in PRESETS.values():
        again = Recipe.from_json(r.to_json())
        assert again.hash() == r.hash() and again.to_dict() == r.to_dict()
    r = Recipe("mine", [Resize(factor=3, resample="area"), Blur(), Noise(mono=True), Jpeg(quality=(20, 40))])
    p = tmp_path / "mine.json"
    p.write_text(r.to_json())
    loaded = get_recipe(p)
    assert loaded.scale == 3 and loaded.hash() == r.hash()
    renamed = Recipe("other name", r.steps, "other description")
    assert renamed.hash() == r.hash()  # only what changes pixels counts
    changed = Recipe("mine", [Resize(factor=3, resample="area"), Blur(), Noise(mono=True), Jpeg(quality=(20, 41))])
    assert changed.hash() != r.hash()
    assert Recipe("i", [Noise(sigma=(5, 25))]).hash() == Recipe("f", [Noise(sigma=(5.0, 25.0))]).hash()
    assert len(set(r.hash() for r in PRESETS.values())) == len(PRESETS)
    assert len(r.hash()) == 64 and json.loads(r.to_json())["steps"][0] == {
        "kind": "resize",
        "factor": 3,
        "shortest_side": None,
        "resample": "area",
    }


@pytest.mark.parametrize(
    "doc, words",
    [
        ({"steps": [{"kind": "sparkle"}]}, "Unknown crappify step 'sparkle'"),
        ({"steps": [{"kind": "jpeg", "qualty": [1, 2]}]}, "no parameter qualty"),
        ({"steps": [{"kind": "jpeg", "quality": [80, 20]}]}, "low <= high"),
        ({"steps": [{"kind": "jpeg", "quality": [0, 20]}]}, "between 1 and 100"),
        ({"steps": [{"kind": "resize", "factor": 2, "shortest_side": 9}]}, "exactly one"),
        ({"steps": [{"kind": "resize", "factor": 1.5}]}, "integer"),
        ({"steps": [{"kind": "resize", "factor": 2, "resample": "fancy"}]}, "resample"),
        ({"steps": [{"kind": "text"}]}, "JPEG step must follow"),
        ({"steps": []}, "no steps"),
        ({"name": "x"}, "'steps' list"),
    ],
)
def test_bad_recipes_raise_recipe_error(doc, words):
    with pytest.raises(RecipeError, match=words):
        Recipe.from_dict(doc)


def test_get_recipe_errors(tmp_path):
    with pytest.raises(RecipeError, match="lesson7"):  # lists the presets
        get_recipe("lesson8")
    with pytest.raises(RecipeError, match="not found"):
        get_recipe(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(RecipeError, match="bad.json"):
        get_recipe(bad)
    with pytest.raises(RecipeError, match="seed"):
        crappify(photo(), "jpeg", -1)
    assert get_recipe("lesson7") is not PRESETS["lesson7"]  # a copy: presets stay pristine


def test_text_with_fixed_string_and_old_photo_params():
    r = Recipe("t", [Text(text="SAMPLE", size=8, region=(0.1, 0.1, 0.2, 0.2), color=(255, 0, 0))])
    res = apply_recipe(Image.new("RGB", (100, 100)), r, 0)
    assert res.params["text"] == "SAMPLE" and res.jpeg_bytes is None
    x, y = res.params["text_xy"]
    assert 10 <= x <= 20 and 10 <= y <= 20
    assert np.asarray(res.image)[..., 0].max() > 200 and np.asarray(res.image)[..., 1].max() < 50
    plain = OldPhoto(sepia=0, fade=0, vignette=0, grain=0, blur=0, scratches=(0, 0), dust=(0, 0))
    img = photo(32, 32)
    assert crappify(img, Recipe("o", [plain]), 0).tobytes() == img.tobytes()


# ----------------------------------------------------------------------------- preview


def _photo_folder(root):
    """Photos as the builder meets them: a PNG, a JPEG in a subfolder, an odd-sized WebP."""
    (root / "sub").mkdir(parents=True)
    photo(64, 52, seed=1).save(root / "a.png")
    photo(72, 60, seed=2).save(root / "sub" / "b.jpg", quality=95)
    photo(49, 41, seed=3).save(root / "c.webp", quality=95)
    return ["a.png", "sub/b.jpg", "c.webp"]


@pytest.mark.parametrize(
    "name, seed, max_size",
    [("decrappify-x2", 0, None), ("decrappify-x2", 12345, 48), ("lesson7", 3, None), ("superres-x2", 7, 50)],
)
def test_preview_is_the_pair_the_builder_writes(tmp_path, name, seed, max_size):
    """preview(photo, recipe, seed) == the pair build_pairs(seed=seed) writes for that photo:
    the HR and LR pixels as decoded from the written files (after saving), the LR file's very
    bytes for a recipe ending with JPEG, the photo's own seed and what was drawn."""
    src, dst = tmp_path / "photos", tmp_path / "ds"
    rels = _photo_folder(src)
    build_pairs(src, dst, name, seed=seed, max_size=max_size, valid_pct=0, workers=1)
    items = read_dataset_json(dst)["items"]
    source = PreviewSource(src / "sub" / "b.jpg", root=src)
    for rel in rels:
        pv = preview(src / rel, name, seed, root=src, max_size=max_size)
        item = items[rel]
        assert pv.rel == rel and pv.seed == item["seed"] == item_seed(seed, rel)
        assert json.loads(json.dumps(pv.params)) == item["params"]
        with Image.open(dst / item["hr"]) as hr:
            assert np.array_equal(np.asarray(pv.hr), np.asarray(hr.convert("RGB")))
        with Image.open(dst / item["lr"]) as lr:
            assert np.array_equal(np.asarray(pv.lr), np.asarray(lr.convert("RGB")))
        if get_recipe(name).ends_with_jpeg:
            assert pv.jpeg_bytes == (dst / item["lr"]).read_bytes()
        else:
            assert pv.jpeg_bytes is None
        assert pv.shown().size == pv.hr.size and list(pv.lr.size) == item["lr_size"]
    # a loaded photo previewed again and again gives the same pair as preview() of its file
    again = source.render(name, seed, max_size=max_size)
    assert again.lr.tobytes() == preview(src / "sub" / "b.jpg", name, seed, root=src, max_size=max_size).lr.tobytes()
    assert source.hr(get_recipe(name).scale, max_size) is again.hr  # decoded and fitted once


def test_preview_seed_and_name_decide_the_draws(tmp_path):
    src = tmp_path / "photos"
    _photo_folder(src)
    qualities = {preview(src / "a.png", "jpeg", s, root=src).params["quality"] for s in range(8)}
    assert len(qualities) > 1  # the dataset seed the user sees changes the draws
    # the same pixels under another name are another photo of the dataset: another seed
    assert preview(src / "a.png", "jpeg", 0, root=src).seed != preview(src / "a.png", "jpeg", 0, rel="z.png").seed
    # an image with no file previews as the relative path "" (its size is the builder's too)
    mem = preview(photo(64, 52, seed=1), "decrappify-x2", 0)
    assert mem.rel == "" and mem.seed == item_seed(0, "") and mem.lr.size == (32, 26)
    with pytest.raises(DatasetError, match="not inside the photo folder"):
        preview(src / "a.png", "jpeg", 0, root=tmp_path / "elsewhere")
    with pytest.raises(RecipeError, match="seed"):
        preview(src / "a.png", "jpeg", -1, root=src)


def test_text_size_spread_draws_sizes_and_leaves_old_recipes_alone(tmp_path):
    base = PRESETS["decrappify-x2"]
    assert "size_spread" not in base.steps[1].to_dict()  # default left out: same hash as before
    spread = Recipe("spread", [base.steps[0], Text(relative_size=10 / 96, size_spread=1.8), base.steps[2]])
    img = Image.new("RGB", (960, 640), (40, 80, 120))
    sizes = {apply_recipe(img, spread, s).params["text_size"] for s in range(40)}
    lo = Text(relative_size=10 / 96).font_size(480, 320)  # 33 px at half size
    assert min(sizes) >= lo and max(sizes) <= round(lo * 1.8) and len(sizes) > 5
    # the spread is drawn after the position: positions and qualities are those of the plain recipe
    for s in range(5):
        a, b = apply_recipe(img, base, s).params, apply_recipe(img, spread, s).params
        assert (a["text_xy"], a["quality"]) == (b["text_xy"], b["quality"]) and "text_size" not in a
    p = tmp_path / "r.json"
    p.write_text(spread.to_json())
    again = get_recipe(p)
    assert again.steps[1].size_spread == 1.8 and again.hash() == spread.hash() != base.hash()
    with pytest.raises(RecipeError, match="size_spread"):
        Text(size_spread=0.5)


def test_text_size_range_draws_log_uniform_sizes_whatever_the_image_size(tmp_path):
    base = PRESETS["decrappify-x2"]
    assert "size_range" not in base.steps[1].to_dict()  # default left out: same hash as before
    ranged = Recipe("ranged", [base.steps[0], Text(size_range=(7, 64)), Jpeg(quality=(10, 90))])
    for w, h in ((480, 320), (1600, 1200)):  # the same sizes on small and large photos
        img = Image.new("RGB", (w, h), (40, 80, 120))
        sizes = [apply_recipe(img, ranged, s).params["text_size"] for s in range(200)]
        assert min(sizes) >= 7 and max(sizes) <= 64
        # log-uniform: about as many sizes below the geometric middle (~21 px) as above it
        below = sum(v < 21 for v in sizes)
        assert 60 < below < 140, below
    # the size is drawn after the position: positions are those of the plain recipe
    for s in range(5):
        a, b = apply_recipe(img, base, s).params, apply_recipe(img, ranged, s).params
        assert a["text_xy"] == b["text_xy"]
    one = Recipe("one", [base.steps[0], Text(size_range=[12, 12]), base.steps[2]])
    assert apply_recipe(img, one, 3).params["text_size"] == 12
    p = tmp_path / "r.json"
    p.write_text(ranged.to_json())
    again = get_recipe(p)
    assert again.steps[1].size_range == (7, 64) and again.hash() == ranged.hash() != base.hash()
    with pytest.raises(RecipeError, match="size_range"):
        Text(size_range=(20, 10))
    with pytest.raises(RecipeError, match="size_range"):
        Text(size_range=(0, 10))


def test_the_crappify_package_does_not_import_torch():
    """Builder worker processes import it (they must start fast) and the GUI calls it (no torch there)."""
    import subprocess
    import sys

    code = "import sys, lesson7_studio.core.crappify; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
