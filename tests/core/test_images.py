"""Image I/O: orientation, modes, 16-bit, alpha, ICC/EXIF, bad files, atomic writes."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from lesson7_studio.core.errors import DatasetError, ImageReadError, ImageWriteError
from lesson7_studio.core.images import (
    IMAGE_EXTENSIONS,
    ImageData,
    atomic_write,
    from_float,
    from_pil,
    iter_images,
    load_image,
    save_image,
    to_float,
    to_pil,
)

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def pattern(w: int = 48, h: int = 40, seed: int = 0) -> np.ndarray:
    """Asymmetric colour image: blocks of random colour, so any flip/rotation is visible."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    return np.ascontiguousarray(blocks.repeat(8, 0).repeat(8, 1)[:h, :w])


def exif_bytes(orientation: int, make: str = "TestCam") -> bytes:
    ex = Image.Exif()
    ex[0x0112] = orientation
    ex[0x010F] = make
    return ex.tobytes()


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".part")]


# ----------------------------------------------------------------------------- orientation


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow_exif_transpose(tmp_path, orientation):
    p = tmp_path / f"o{orientation}.png"
    Image.fromarray(pattern()).save(p, exif=exif_bytes(orientation))
    img = load_image(p)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(p)).convert("RGB"))
    assert np.array_equal(img.rgb, expected)
    assert img.extra["orientation"] == orientation
    kept = Image.Exif()
    kept.load(img.exif)
    assert kept[0x0112] == 1 and kept[0x010F] == "TestCam"


def test_orientation_6_jpeg_comes_out_upright(tmp_path):
    upright = pattern(40, 48)  # portrait, 40 wide x 48 high
    # a camera held sideways stores the sensor image rotated 90 degrees anticlockwise
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)
    assert stored.size == (48, 40)
    p = tmp_path / "sideways.jpg"
    stored.save(p, quality=98, subsampling=0, exif=exif_bytes(6))
    img = load_image(p)
    assert img.size == (40, 48)
    assert np.abs(img.rgb.astype(int) - upright).mean() < 3
    # saved again: upright pixels, orientation 1, so no viewer rotates it twice
    out = save_image(img, tmp_path / "out.jpg")
    again = Image.open(out)
    assert again.size == (40, 48) and again.getexif()[0x0112] == 1


# ----------------------------------------------------------------------------- modes, alpha, depth


def test_modes_convert_to_rgb(tmp_path):
    rgb = pattern()
    Image.fromarray(rgb).convert("L").save(tmp_path / "grey.png")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "pal.png")
    Image.fromarray(rgb).save(tmp_path / "plain.bmp")
    Image.fromarray(rgb).convert("1").save(tmp_path / "bits.png")
    grey = load_image(tmp_path / "grey.png")
    assert grey.is_grey and grey.rgb.shape == (40, 48, 3) and grey.alpha is None
    assert np.array_equal(grey.rgb[..., 0], grey.rgb[..., 2])
    cmyk = load_image(tmp_path / "cmyk.jpg")
    assert cmyk.rgb.dtype == np.uint8 and not cmyk.is_grey and cmyk.extra["converted_from"] == "CMYK"
    assert np.abs(cmyk.rgb.astype(int) - rgb).mean() < 8
    pal = load_image(tmp_path / "pal.png")
    assert pal.rgb.shape == (40, 48, 3) and pal.alpha is None
    assert np.array_equal(load_image(tmp_path / "plain.bmp").rgb, rgb)
    assert load_image(tmp_path / "bits.png").is_grey


def test_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (20, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=100)
    img = load_image(p)
    assert img.extra["frames"] == 2
    assert tuple(img.rgb[5, 5]) == (255, 0, 0)


@pytest.mark.parametrize("ext", ["png", "tif", "webp"])
def test_alpha_round_trip(tmp_path, ext):
    rgb = pattern()
    alpha = np.tile(np.linspace(0, 255, 48).astype(np.uint8), (40, 1))
    Image.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "src.png")
    img = load_image(tmp_path / "src.png")
    assert img.alpha is not None and np.array_equal(img.alpha, alpha) and np.array_equal(img.rgb, rgb)
    back = load_image(save_image(img, tmp_path / f"out.{ext}", quality=100))
    assert np.array_equal(back.alpha, alpha)
    assert np.array_equal(back.rgb, rgb)


def test_palette_transparency_and_la(tmp_path):
    im = Image.new("P", (16, 16), 1)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    im.putpixel((0, 0), 0)
    im.save(tmp_path / "t.png", transparency=0)
    img = load_image(tmp_path / "t.png")
    assert img.alpha is not None and img.alpha[0, 0] == 0 and img.alpha[5, 5] == 255
    assert tuple(img.rgb[5, 5]) == (255, 0, 0)
    la = Image.merge("LA", [Image.new("L", (8, 8), 100), Image.new("L", (8, 8), 30)])
    la.save(tmp_path / "la.png")
    img = load_image(tmp_path / "la.png")
    assert img.is_grey and img.alpha[0, 0] == 30
    back = load_image(save_image(img, tmp_path / "la_out.png"))
    assert back.is_grey and back.alpha[0, 0] == 30 and back.rgb[0, 0, 0] == 100


def test_jpeg_has_no_alpha_so_it_is_flattened_onto_white(tmp_path):
    rgb = np.zeros((16, 16, 3), np.uint8)
    alpha = np.zeros((16, 16), np.uint8)
    alpha[:, 8:] = 255
    img = ImageData(rgb=rgb, alpha=alpha)
    out = np.asarray(Image.open(save_image(img, tmp_path / "flat.jpg")))
    assert out[:, :6].min() > 240  # transparent -> white
    assert out[:, 10:].max() < 15  # opaque black stays black


def test_grey_16_bit_round_trip(tmp_path):
    a = (np.arange(40 * 48).reshape(40, 48) * 33).astype(np.uint16)
    Image.fromarray(a).save(tmp_path / "g16.png")
    Image.fromarray(a).save(tmp_path / "g16.tif")
    for name in ("g16.png", "g16.tif"):
        img = load_image(tmp_path / name)
        assert img.bit_depth == 16 and img.rgb.dtype == np.uint16 and img.is_grey
        assert np.array_equal(img.rgb[..., 0], a)
        for ext in ("png", "tif"):
            back = load_image(save_image(img, tmp_path / f"out_{name}.{ext}"))
            assert back.bit_depth == 16 and back.is_grey and np.array_equal(back.rgb, img.rgb)


@pytest.mark.parametrize("ext", ["png", "tif"])
@pytest.mark.parametrize("with_alpha", [False, True])
def test_colour_16_bit_round_trip(tmp_path, ext, with_alpha):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 65536, (40, 48, 3)).astype(np.uint16)
    alpha = rng.integers(0, 65536, (40, 48)).astype(np.uint16) if with_alpha else None
    img = ImageData(rgb=rgb, alpha=alpha, icc=SRGB)
    back = load_image(save_image(img, tmp_path / f"c16.{ext}"))
    assert back.bit_depth == 16 and np.array_equal(back.rgb, rgb)
    assert (back.alpha is None) if alpha is None else np.array_equal(back.alpha, alpha)
    assert back.icc == SRGB


def test_16_bit_to_8_bit_format_rounds(tmp_path):
    rgb = np.full((4, 4, 3), 65535, np.uint16)
    rgb[0, 0] = (257 * 100, 0, 128)
    back = load_image(save_image(ImageData(rgb=rgb), tmp_path / "x.bmp"))
    assert back.bit_depth == 8 and tuple(back.rgb[0, 0]) == (100, 0, 0) and back.rgb[1, 1, 0] == 255


# ----------------------------------------------------------------------------- metadata


@pytest.mark.parametrize("ext", ["jpg", "png", "tif", "webp"])
def test_icc_survives(tmp_path, ext):
    Image.fromarray(pattern()).save(tmp_path / "src.jpg", icc_profile=SRGB, exif=exif_bytes(1))
    img = load_image(tmp_path / "src.jpg")
    assert img.icc == SRGB
    back = load_image(save_image(img, tmp_path / f"out.{ext}"))
    assert back.icc == SRGB


@pytest.mark.parametrize("ext", ["jpg", "png", "webp"])
def test_exif_survives(tmp_path, ext):
    Image.fromarray(pattern()).save(tmp_path / "src.jpg", exif=exif_bytes(3, make="Lesson7Cam"))
    img = load_image(tmp_path / "src.jpg")
    back = load_image(save_image(img, tmp_path / f"out.{ext}"))
    ex = Image.Exif()
    ex.load(back.exif)
    assert ex[0x010F] == "Lesson7Cam" and ex[0x0112] == 1
    assert np.array_equal(back.rgb.shape, img.rgb.shape)


def test_format_from_suffix_and_explicit(tmp_path):
    img = ImageData(rgb=pattern())
    assert Image.open(save_image(img, tmp_path / "a.jpeg")).format == "JPEG"
    assert Image.open(save_image(img, tmp_path / "b.bin", format="png")).format == "PNG"
    assert Image.open(save_image(img, tmp_path / "c.tiff")).format == "TIFF"
    with pytest.raises(ImageWriteError):
        save_image(img, tmp_path / "d.png", format="NOPE")


# ----------------------------------------------------------------------------- bad files


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = tmp_path / "good.jpg"
    Image.fromarray(pattern(64, 64)).save(good, quality=90)
    data = good.read_bytes()
    files = {}
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    files["empty"] = (p, "empty")
    p = tmp_path / "notes.jpg"
    p.write_text("these are my holiday notes, not a photo\n")
    files["text"] = (p, "not an image")
    p = tmp_path / "truncated.jpg"
    p.write_bytes(data[: len(data) // 2])
    files["truncated"] = (p, "truncated")
    png = io.BytesIO()
    Image.fromarray(pattern(64, 64)).save(png, format="PNG")
    raw = bytearray(png.getvalue())
    i = raw.index(b"IDAT") + 20
    raw[i : i + 40] = bytes(40)  # wreck the compressed pixel data
    p = tmp_path / "corrupt.png"
    p.write_bytes(bytes(raw))
    files["corrupt"] = (p, "damaged")
    return files


def test_bad_inputs_raise_clear_errors(tmp_path):
    for key, (path, words) in _bad_files(tmp_path).items():
        with pytest.raises(ImageReadError) as info:
            load_image(path)
        err = info.value
        assert err.path == path, key
        assert path.name in str(err) and err.reason, key
        assert words in err.reason.lower(), (key, err.reason)
    with pytest.raises(ImageReadError, match="not found"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageReadError, match="folder"):
        load_image(tmp_path)


def crafted_png_header(path: Path, w: int, h: int) -> None:
    """A tiny PNG file whose header claims w x h pixels (a decompression bomb's calling card)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def test_decompression_bomb(tmp_path):
    p = tmp_path / "small.png"
    Image.fromarray(pattern()).save(p)
    with pytest.raises(ImageReadError, match="decompression bomb"):
        load_image(p, max_pixels=1000)
    assert load_image(p, max_pixels=48 * 40).size == (48, 40)
    bomb = tmp_path / "bomb.png"
    crafted_png_header(bomb, 20000, 20000)  # 400 MP, 100 bytes on disk
    with pytest.raises(ImageReadError, match="decompression bomb") as info:
        load_image(bomb)
    assert "400.0 MP" in info.value.reason
    huge = tmp_path / "huge.png"
    crafted_png_header(huge, 40000, 40000)  # over Pillow's own hard limit too
    with pytest.raises(ImageReadError, match="decompression bomb"):
        load_image(huge, max_pixels=None)


def test_heic_without_pillow_heif_says_what_to_install(tmp_path):
    from lesson7_studio.core import images

    if images.HEIF_AVAILABLE:
        pytest.skip("pillow-heif is installed")
    p = tmp_path / "phone.heic"
    p.write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(40))
    with pytest.raises(ImageReadError, match="pillow-heif"):
        load_image(p)
    assert ".heic" in IMAGE_EXTENSIONS


# ----------------------------------------------------------------------------- atomic writes


def test_atomic_write_success_and_failure(tmp_path):
    target = tmp_path / "sub" / "file.txt"
    with atomic_write(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".") and tmp.name.endswith(".part")
        tmp.write_text("new")
    assert target.read_text() == "new"
    with pytest.raises(RuntimeError):
        with atomic_write(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "new"
    assert no_temp_files(tmp_path)


def test_atomic_open_and_bytes_fsync_and_rename(tmp_path, monkeypatch):
    import os

    from lesson7_studio.core.images import atomic_bytes, atomic_open

    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    target = tmp_path / "deep" / "state.bin"
    atomic_bytes(target, b"one")
    assert target.read_bytes() == b"one" and len(synced) == 1
    with pytest.raises(RuntimeError):
        with atomic_open(target) as f:
            f.write(b"two, half written")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"one" and no_temp_files(tmp_path) and len(synced) == 1
    with atomic_open(target) as f:
        f.write(b"three")
        assert target.read_bytes() == b"one"  # nothing lands before the block ends
    assert target.read_bytes() == b"three" and len(synced) == 2


def test_list_images_stops_when_cancelled(tmp_path):
    from lesson7_studio.core.errors import Cancelled
    from lesson7_studio.core.events import CancelToken
    from lesson7_studio.core.images import list_images

    for i in range(3):
        Image.fromarray(pattern(8, 8, i)).save(tmp_path / f"{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    assert [p.name for p in list_images(tmp_path)] == ["0.png", "1.png", "2.png"]
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        list_images(tmp_path, cancel=token)


def test_save_failure_leaves_nothing(tmp_path):
    img = ImageData(rgb=pattern())
    with pytest.raises(ImageWriteError):  # Pillow cannot encode a zero-height image
        save_image(ImageData(rgb=np.zeros((0, 5, 3), np.uint8)), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists() and no_temp_files(tmp_path)
    save_image(img, tmp_path / "y.png")
    assert list(p.name for p in tmp_path.iterdir()) == ["y.png"]


# ----------------------------------------------------------------------------- conversions, walking


def test_float_round_trip_and_alpha_resize():
    rgb = pattern()
    alpha = np.full((40, 48), 200, np.uint8)
    img = ImageData(rgb=rgb, alpha=alpha, icc=SRGB, format="JPEG")
    f = to_float(img)
    assert f.dtype == np.float32 and f.shape == (40, 48, 3) and 0 <= f.min() and f.max() <= 1
    back = from_float(f, img)
    assert np.array_equal(back.rgb, rgb) and back.icc == SRGB and back.format == "JPEG"
    big = from_float(np.repeat(np.repeat(f, 2, 0), 2, 1), img)
    assert big.rgb.shape == (80, 96, 3) and big.alpha.shape == (80, 96) and abs(int(big.alpha[40, 40]) - 200) <= 1
    img16 = ImageData(rgb=(rgb.astype(np.uint16) * 257))
    assert np.array_equal(from_float(to_float(img16), img16).rgb, img16.rgb)
    grey = ImageData(rgb=np.repeat(rgb[..., :1], 3, 2), is_grey=True)
    coloured = from_float(f, grey)  # e.g. a colorize model's output
    assert not coloured.is_grey


def test_pil_helpers():
    img = ImageData(rgb=pattern(), alpha=np.full((40, 48), 0, np.uint8))
    assert to_pil(img).mode == "RGBA"
    assert np.asarray(to_pil(img, alpha=False)).min() == 255  # fully transparent -> white
    back = from_pil(Image.fromarray(pattern()).convert("LA"))
    assert back.is_grey and back.alpha is not None


def test_iter_images_sorted_and_filtered(tmp_path):
    for rel in ["b.png", "a.JPG", "sub/c.webp", "sub/deeper/d.tif", ".hidden.png", ".x.png.123.part",
                ".cache/e.png", "notes.txt", "sub/f.png.part"]:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    rels = [p.relative_to(tmp_path).as_posix() for p in iter_images(tmp_path)]
    assert rels == ["a.JPG", "b.png", "sub/c.webp", "sub/deeper/d.tif"]
    assert [p.name for p in iter_images(tmp_path, recursive=False)] == ["a.JPG", "b.png"]
    with pytest.raises(DatasetError):
        list(iter_images(tmp_path / "nope"))
