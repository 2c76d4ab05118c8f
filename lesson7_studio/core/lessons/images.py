"""Image classification data for the resnet-mnist lesson: folders, MNIST, scikit-learn's digits.

Everything is held in memory as uint8 tensors (MNIST's 70,000 28x28 digits are 55 MB), so an
epoch is a permutation and a few tensor ops, the same on every front end:

* :func:`load_folder` reads ``DIR/train/<class>/*`` + ``DIR/valid/<class>/*``, MNIST-png's
  ``DIR/training`` + ``DIR/testing``, or one folder of class folders split at random
  (``valid_pct``, ``seed``). Images are turned grey (or RGB for ``channels=3``) and resized to
  ``size`` (28: the lesson's nets end at 1x1 there).
* :func:`load_mnist` downloads MNIST once (through torchvision's mirrors and file checks, with
  Progress events) into a cache folder; offline it raises a DatasetError naming the files and
  the folder to put them in.
* :func:`write_digits_folder` writes scikit-learn's 1,797 8x8 handwritten digits, upsampled to
  28 px, as a train/valid PNG folder (the benchmark's real handwritten set).

:class:`ImageBatches` serves ``(x, y)`` batches: each epoch's order is a function of
(seed, epoch), the lesson's ``rand_pad(3, 28)`` augmentation (zero padding, random crop) is
drawn per batch from (seed, epoch, batch), so a run resumed mid-epoch sees the same batches.
"""

from __future__ import annotations

import gzip
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import Cancelled, DatasetError, ImageReadError
from ..events import CancelToken, EventCallback, Log, Progress, check, emit
from ..images import IMAGE_EXTENSIONS, atomic_write

SPLIT_NAMES = (("train", "valid"), ("training", "testing"))


@dataclass
class ImageSet:
    """Images (N, C, H, W) uint8, labels (N,) int64, and the class names the labels index."""

    x: torch.Tensor
    y: torch.Tensor
    classes: list[str]
    paths: list[str] | None = None  # source files, when read from a folder

    def __len__(self) -> int:
        return int(self.x.shape[0])


def _class_folders(root: Path) -> list[Path]:
    return sorted((d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")),
                  key=lambda d: (not d.name.isdigit(), int(d.name) if d.name.isdigit() else 0, d.name))


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def read_image(path: str | Path, size: int, channels: int = 1) -> np.ndarray:
    """One image as (channels, size, size) uint8 (grey or RGB, resized with bilinear filtering)."""
    from PIL import Image

    from ..images import load_image, to_pil

    pil = to_pil(load_image(path), alpha=False)
    pil = pil.convert("L" if channels == 1 else "RGB")
    if pil.size != (size, size):
        pil = pil.resize((size, size), Image.Resampling.BILINEAR)
    arr = np.asarray(pil, dtype=np.uint8)
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)


def _read_many(items: list[tuple[Path, int]], classes: list[str], size: int, channels: int, label: str,
               on_event: Optional[EventCallback], cancel: Optional[CancelToken]) -> ImageSet:
    x = np.zeros((len(items), channels, size, size), np.uint8)
    y = np.zeros(len(items), np.int64)
    bad: list[str] = []
    keep = np.ones(len(items), bool)
    every = max(1, len(items) // 100)
    for i, (p, c) in enumerate(items):
        if i % every == 0:
            check(cancel)
            emit(on_event, Progress(i, len(items), f"reading {label} images", stage="data"))
        try:
            x[i] = read_image(p, size, channels)
        except ImageReadError as err:
            keep[i] = False
            bad.append(str(err))
        y[i] = c
    emit(on_event, Progress(len(items), len(items), f"reading {label} images", stage="data"))
    if bad:
        emit(on_event, Log(f"Skipped {len(bad)} unreadable {label} image(s), e.g. {bad[0]}", level="warning"))
    paths = [str(p) for (p, _), k in zip(items, keep) if k]
    return ImageSet(torch.from_numpy(x[keep]), torch.from_numpy(y[keep]), classes, paths)


def load_folder(root: str | os.PathLike, *, size: int = 28, channels: int = 1, valid_pct: float = 0.2,
                seed: int = 0, on_event: Optional[EventCallback] = None,
                cancel: Optional[CancelToken] = None) -> tuple[ImageSet, ImageSet]:
    """(train, valid) from an image-class folder (see the module doc for the layouts)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"Image folder {root} does not exist.")
    for tr, va in SPLIT_NAMES:
        if (root / tr).is_dir() and (root / va).is_dir():
            classes = [d.name for d in _class_folders(root / tr)]
            if len(classes) < 2:
                raise DatasetError(f"{root / tr} needs at least two class folders (e.g. {tr}/0, {tr}/1); "
                                   f"found {len(classes)}.")
            splits = []
            for split in (tr, va):
                items = []
                for ci, c in enumerate(classes):
                    items += [(p, ci) for p in _files(root / split / c)] if (root / split / c).is_dir() else []
                extra = sorted({d.name for d in _class_folders(root / split)} - set(classes))
                if extra:
                    raise DatasetError(f"{root / split} has class folders that {root / tr} lacks: {', '.join(extra)}.")
                if not items:
                    raise DatasetError(f"{root / split} holds no images in its class folders.")
                splits.append(_read_many(items, classes, size, channels, split, on_event, cancel))
            return splits[0], splits[1]
    folders = _class_folders(root)
    if len(folders) < 2:
        raise DatasetError(f"{root} is not an image-class folder.",
                           hint="Use DIR/train/<class>/* and DIR/valid/<class>/*, MNIST-png's DIR/training and "
                           "DIR/testing, or DIR/<class>/* (split at random with --valid-pct).")
    if not 0 < valid_pct < 1:
        raise DatasetError(f"valid_pct must be between 0 and 1, got {valid_pct}.")
    classes = [d.name for d in folders]
    items = [(p, ci) for ci, d in enumerate(folders) for p in _files(d)]
    random.Random(seed).shuffle(items)
    n_valid = max(1, int(round(len(items) * valid_pct)))
    if len(items) - n_valid < 1:
        raise DatasetError(f"{root} has too few images ({len(items)}) to split into train and valid.")
    valid = sorted(items[:n_valid], key=lambda t: (t[1], str(t[0])))
    train = sorted(items[n_valid:], key=lambda t: (t[1], str(t[0])))
    return (_read_many(train, classes, size, channels, "train", on_event, cancel),
            _read_many(valid, classes, size, channels, "valid", on_event, cancel))


# ---------------------------------------------------------------------------------------------
# MNIST


def lessons_data_dir() -> Path:
    """Where downloaded lesson datasets are cached: ``<data dir>/lessons``."""
    from ..project import data_dir

    return data_dir() / "lessons"


def _mnist_resources():
    from torchvision.datasets import MNIST

    return MNIST, list(MNIST.mirrors), list(MNIST.resources)


def mnist_files_present(root: str | os.PathLike | None = None) -> bool:
    MNIST, _, resources = _mnist_resources()
    raw = Path(root or lessons_data_dir()) / "MNIST" / "raw"
    return all((raw / os.path.splitext(f)[0]).is_file() for f, _ in resources)


def load_mnist(root: str | os.PathLike | None = None, *, download: bool = True,
               on_event: Optional[EventCallback] = None,
               cancel: Optional[CancelToken] = None) -> tuple[ImageSet, ImageSet]:
    """MNIST's 60,000 training and 10,000 test digits (the lesson's train / valid), cached in ``root``."""
    from torchvision.datasets.utils import check_integrity

    from ..weights import _env_offline, download_url

    MNIST, mirrors, resources = _mnist_resources()
    root = Path(root or lessons_data_dir())
    raw = root / "MNIST" / "raw"
    missing = [f for f, _ in resources if not (raw / os.path.splitext(f)[0]).is_file()]
    if missing:
        names = ", ".join(missing)
        hint = (f"Put {names} (from {mirrors[0]}) into {raw} and try again, or use --data with an image folder "
                "(e.g. mnist_png's training/ and testing/).")
        if not download or _env_offline():
            raise DatasetError(f"MNIST is not in {raw} and downloading is off (offline).", hint=hint)
        raw.mkdir(parents=True, exist_ok=True)
        for fname, md5 in resources:
            if fname not in missing:
                continue
            gz = raw / fname
            errors = []
            for mirror in mirrors:
                check(cancel)
                try:
                    download_url(mirror + fname, gz, on_event=on_event, cancel=cancel, label=f"MNIST {fname}")
                except Cancelled:
                    raise
                except Exception as err:  # noqa: BLE001 - next mirror; all failing is reported below
                    errors.append(f"{mirror}: {err}")
                    continue
                if check_integrity(str(gz), md5):
                    break
                errors.append(f"{mirror}: {fname} failed its MD5 check")
                gz.unlink(missing_ok=True)
            else:
                raise DatasetError(f"Cannot download MNIST's {fname}: {'; '.join(errors)}.", hint=hint)
            with gzip.open(gz, "rb") as src, atomic_write(raw / os.path.splitext(fname)[0]) as tmp:
                with open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            gz.unlink(missing_ok=True)
    emit(on_event, Log(f"MNIST from {raw}"))
    classes = [str(i) for i in range(10)]
    out = []
    for train in (True, False):
        ds = MNIST(str(root), train=train, download=False)
        out.append(ImageSet(ds.data[:, None].contiguous(), ds.targets.long(), classes))
    return out[0], out[1]


# ---------------------------------------------------------------------------------------------
# scikit-learn's digits


def write_digits_folder(out: str | os.PathLike, *, size: int = 28, valid_pct: float = 0.2, seed: int = 0) -> Path:
    """scikit-learn's ``load_digits`` (1,797 8x8 images, 0..16) upsampled to ``size`` px, as
    ``out/train/<digit>/NNNN.png`` and ``out/valid/<digit>/NNNN.png`` (split per class, seeded)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DatasetError("scikit-learn is needed for the digits data set.",
                           hint='Install it with: pip install "lesson7-studio[bench]" (or pip install scikit-learn).') from None
    from PIL import Image

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise DatasetError(f"{out} already exists and is not empty.", hint="Choose a new folder for the digits.")
    d = load_digits()
    rng = np.random.default_rng(seed)
    tmp_root = out.with_name(f".{out.name}.{os.getpid()}.part")  # renamed into place when complete
    shutil.rmtree(tmp_root, ignore_errors=True)
    try:
        for c in range(10):
            idx = np.flatnonzero(d.target == c)
            rng.shuffle(idx)
            n_valid = int(round(len(idx) * valid_pct))
            for split, part in (("valid", idx[:n_valid]), ("train", idx[n_valid:])):
                folder = tmp_root / split / str(c)
                folder.mkdir(parents=True, exist_ok=True)
                for i in part:
                    img = Image.fromarray(np.clip(d.images[i] * (255.0 / 16.0), 0, 255).astype(np.uint8), "L")
                    img.resize((size, size), Image.Resampling.BILINEAR).save(folder / f"{int(i):04d}.png", format="PNG")
        if out.exists():
            out.rmdir()
        os.replace(tmp_root, out)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    return out


SHAPES = ("horizontal", "vertical", "diagonal", "ring")


def shape_image(kind: str, rng: np.random.Generator, size: int = 28) -> np.ndarray:
    """One size x size uint8 drawing of ``kind`` (one of SHAPES) at a random place, with noise."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cy, cx = rng.uniform(size * 0.3, size * 0.7, 2)
    width = rng.uniform(1.2, 2.5)
    length = rng.uniform(size * 0.25, size * 0.4)
    if kind == "horizontal":
        d, along = np.abs(yy - cy), np.abs(xx - cx)
    elif kind == "vertical":
        d, along = np.abs(xx - cx), np.abs(yy - cy)
    elif kind == "diagonal":
        d, along = np.abs((yy - cy) - (xx - cx)) / np.sqrt(2), np.abs((yy - cy) + (xx - cx)) / np.sqrt(2)
    elif kind == "ring":
        d, along = np.abs(np.hypot(yy - cy, xx - cx) - length * 0.6), np.zeros_like(yy)
    else:
        raise DatasetError(f"Unknown shape '{kind}'; shapes: {', '.join(SHAPES)}.")
    ink = np.clip(1.5 - d / width, 0, 1) * (along <= length)
    img = ink * 230 + rng.normal(0, 12, ink.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_shapes_folder(out: str | os.PathLike, *, n_train: int = 60, n_valid: int = 20, size: int = 28,
                        seed: int = 0) -> Path:
    """A small generated image-class set (lines in three directions and rings), no download:
    ``out/train/<shape>/NNNN.png`` and ``out/valid/<shape>/NNNN.png``, ``n_train`` / ``n_valid`` per class."""
    from PIL import Image

    out = Path(out)
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("valid", n_valid)):
        for kind in SHAPES:
            folder = out / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                path = folder / f"{i:04d}.png"
                with atomic_write(path) as tmp:
                    Image.fromarray(shape_image(kind, rng, size), "L").save(tmp, format="PNG")
    return out


BUILTIN_FOLDERS = {"digits": write_digits_folder, "shapes": write_shapes_folder}


def ensure_builtin_folder(path: str | os.PathLike) -> Path:
    """A folder named ``digits`` or ``shapes`` that does not exist yet is written first."""
    path = Path(path)
    writer = BUILTIN_FOLDERS.get(path.name)
    if writer is not None and not path.is_dir():
        writer(path)
    return path


# ---------------------------------------------------------------------------------------------
# batches


def image_stats(x: torch.Tensor, max_items: int = 10000) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images in [0, 1] units (from at most ``max_items``)."""
    sample = x[:max_items].float() / 255.0
    mean = sample.mean(dim=(0, 2, 3))
    std = sample.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return [float(v) for v in mean], [float(v) for v in std]


def normalize(x: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """uint8 (or [0, 1] float) images -> normalised float."""
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    m = torch.tensor(mean, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - m) / s


def rand_pad(x: torch.Tensor, pad: int, g: torch.Generator) -> torch.Tensor:
    """Zero-pad every image by ``pad`` and crop it back to its size at a random offset."""
    if pad <= 0:
        return x
    b, _, h, w = x.shape
    big = F.pad(x, (pad, pad, pad, pad))
    off = torch.randint(0, 2 * pad + 1, (b, 2), generator=g)
    out = torch.empty_like(x)
    for i in range(b):
        oy, ox = int(off[i, 0]), int(off[i, 1])
        out[i] = big[i, :, oy:oy + h, ox:ox + w]
    return out


class _Sampler:
    def __init__(self, loader: "ImageBatches") -> None:
        self.loader = loader

    def set_epoch(self, epoch: int) -> None:
        self.loader.epoch = int(epoch)

    def skip(self, k: int) -> None:
        self.loader._skip = k // self.loader.batch_size


class ImageBatches:
    """Normalised ``(x, y)`` batches of an :class:`ImageSet` (see the module doc)."""

    def __init__(self, data: ImageSet, bs: int, *, mean: list[float], std: list[float], shuffle: bool,
                 seed: int = 0, pad: int = 0, drop_last: bool = False, limit: int | None = None) -> None:
        self.data, self.batch_size = data, bs
        self.mean, self.std = mean, std
        self.shuffle, self.seed, self.pad, self.drop_last = shuffle, seed, pad, drop_last
        n = len(data)
        self.n_batches = n // bs if drop_last else -(-n // bs)
        if limit:
            self.n_batches = min(self.n_batches, int(limit))
        self.epoch = 0
        self._skip = 0
        self.sampler = _Sampler(self)

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self):
        n = len(self.data)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
        first, self._skip = self._skip, 0
        for b in range(first, self.n_batches):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            x = self.data.x[idx].float() / 255.0
            if self.pad:
                gb = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * 100_003 + b)
                x = rand_pad(x, self.pad, gb)
            yield normalize(x, self.mean, self.std), self.data.y[idx]
