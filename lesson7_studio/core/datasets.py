"""Paired HR/LR folders as datasets, crops and augmentations, and the loaders.

The builder that makes those folders (:func:`build_pairs`) and their ``dataset.json``
(:func:`read_dataset_json`) live in the torch-free :mod:`.crappify` package (:mod:`.crappify.build`,
:mod:`.crappify.manifest`); they are importable from here too.

:class:`PairedDataset` yields aligned ``(lr, hr)`` float32 tensors in [0, 1] (normalisation
is the Restorer's job; pass ``mean``/``std`` to normalise here instead). Images smaller than
the crop are padded by mirror reflection (both images, aligned). For recipes without a fixed
scale (lesson7: shortest side 96) the LR image is resized (bicubic) to HR/scale, scale 1 by
default, as the lesson feeds its U-Net. :class:`ImageFolderDataset` serves the WGAN.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, Dataset

from .crappify import (
    DATASET_FILE,
    FORMAT_VERSION,
    BuildSummary,
    build_pairs,
    item_seed,
    read_dataset_json,
    valid_count,
)
from .errors import DatasetError, ImageReadError
from .images import iter_images


# ----------------------------------------------------------------------------- datasets


def _open_rgb(path: Path) -> Image.Image:
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert("RGB")
    except FileNotFoundError:
        raise ImageReadError(path, "file not found (was the dataset folder changed?)") from None
    except Exception as err:
        raise ImageReadError(path, f"{type(err).__name__}: {err}") from err


def _pad_to(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """Mirror-pad (edge included) an HxWxC array at the bottom/right up to at least h x w."""
    ph, pw = max(0, h - a.shape[0]), max(0, w - a.shape[1])
    if ph == 0 and pw == 0:
        return a
    return np.pad(a, ((0, ph), (0, pw), (0, 0)), mode="symmetric")


def _zoomed(a: np.ndarray, n: int) -> np.ndarray:
    """An HxWx3 uint8 region resized to n x n (bilinear, as fastai's zoom transform)."""
    return np.asarray(Image.fromarray(np.ascontiguousarray(a)).resize((n, n), Image.Resampling.BILINEAR))


def _to_tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.transpose(2, 0, 1).copy()).float().div_(255.0)


class PairedDataset(Dataset):
    """Aligned ``(lr, hr)`` pairs from a folder made by :func:`build_pairs`.

    ``crop_size`` is in HR pixels (a multiple of the scale; None = whole image, HR cropped to
    a multiple of the scale); lr is (3, crop/scale, crop/scale). ``scale`` defaults to the
    dataset's (1 for fixed-size recipes such as lesson7); a different scale resizes the LR
    image (bicubic) to HR/scale. ``augment`` = random crop position and flips; otherwise the
    crop position is fixed per item (from ``seed``). ``split`` is "train", "valid" or "all".
    ``cache_mb`` bounds the decoded pairs kept in memory (0: decode every time).

    ``max_zoom`` > 1 (with ``augment``) is the lesson's ``get_transforms(max_zoom=2.)`` with
    ``tfm_y=True``: with probability ``p_zoom`` a crop is a smaller region of both images, chosen
    at random and zoomed by a factor drawn uniformly in [1, max_zoom] (bilinear, the same region
    of each), so the model also sees the number and the JPEG blocks larger than the dataset
    shows them.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        crop_size: int | None = 128,
        scale: int | None = None,
        augment: bool = True,
        seed: int = 0,
        *,
        hflip: bool = True,
        vflip: bool = False,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        cache_mb: float = 256,
        max_zoom: float = 1.0,
        p_zoom: float = 0.75,
    ) -> None:
        self.root = Path(root)
        meta = read_dataset_json(self.root)
        if split not in ("train", "valid", "all"):
            raise DatasetError(f"split must be 'train', 'valid' or 'all', got {split!r}")
        keys = list(meta.get("train", [])) + list(meta.get("valid", [])) if split == "all" else list(meta.get(split, []))
        items = meta["items"]
        self.pairs = [(self.root / items[k]["hr"], self.root / items[k]["lr"]) for k in keys if k in items]
        if not self.pairs:
            raise DatasetError(
                f"The {split} split of {self.root} has no images.",
                hint="Add images, or rebuild with a larger valid_pct for a validation split.",
            )
        self.keys = keys
        self.data_scale = meta.get("scale")
        self.scale = int(scale or self.data_scale or 1)
        if self.scale < 1:
            raise DatasetError(f"scale must be >= 1, got {scale}")
        if crop_size is not None and (crop_size < self.scale or crop_size % self.scale):
            raise DatasetError(f"crop_size {crop_size} must be a positive multiple of the scale {self.scale}")
        self.crop_size = crop_size
        self.augment = augment
        self.seed = int(seed)
        self.hflip, self.vflip = hflip, vflip
        if not 1.0 <= float(max_zoom) <= 8.0 or not 0.0 <= float(p_zoom) <= 1.0:
            raise DatasetError(f"max_zoom must be in 1..8 and p_zoom in 0..1, got {max_zoom!r} and {p_zoom!r}")
        self.max_zoom, self.p_zoom = float(max_zoom), float(p_zoom)
        self.mean = None if mean is None else torch.tensor(list(mean), dtype=torch.float32).view(3, 1, 1)
        self.std = None if std is None else torch.tensor(list(std), dtype=torch.float32).view(3, 1, 1)
        self.recipe = meta.get("recipe")
        self.cache_bytes = max(0, int(cache_mb * 2**20))
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._cached_bytes = 0

    def __len__(self) -> int:
        return len(self.pairs)

    def _rng(self, index: int) -> np.random.Generator:
        if self.augment:  # varies per epoch and per worker; reproducible under torch.manual_seed
            draw = int(torch.randint(0, 2**62, (1,)).item())
            return np.random.default_rng([self.seed, index, draw])
        return np.random.default_rng([self.seed, index])

    def load_pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Whole aligned images (lr, hr) as HxWx3 uint8 (read-only), HR a multiple of the scale.
        Decoded pairs are kept while they fit in ``cache_mb`` (in each loader process); later
        ones are decoded each time."""
        hit = self._cache.get(index)
        if hit is not None:
            return hit
        lr, hr = self._decode_pair(index)
        lr.flags.writeable = hr.flags.writeable = False
        if self._cached_bytes + lr.nbytes + hr.nbytes <= self.cache_bytes:
            self._cache[index] = (lr, hr)
            self._cached_bytes += lr.nbytes + hr.nbytes
        return lr, hr

    def _decode_pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        hr_path, lr_path = self.pairs[index]
        hr, lr = _open_rgb(hr_path), _open_rgb(lr_path)
        s = self.scale
        w, h = hr.size
        W, H = max(s, w - w % s), max(s, h - h % s)
        if (W, H) != (w, h):
            hr = hr.crop((0, 0, W, H))  # pads with black if the image is smaller than s
        if lr.size != (W // s, H // s):
            lr = lr.resize((W // s, H // s), Image.Resampling.BICUBIC)
        return np.asarray(lr), np.asarray(hr)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        lr, hr = self.load_pair(index)
        s = self.scale
        rng = self._rng(index)
        if self.crop_size is not None:
            c = self.crop_size // s
            lr = _pad_to(lr, c, c)
            hr = _pad_to(hr, c * s, c * s)
            zoom = self.augment and self.max_zoom > 1.0 and rng.random() < self.p_zoom
            cz = max(1, round(c / rng.uniform(1.0, self.max_zoom))) if zoom else c
            y = int(rng.integers(0, lr.shape[0] - cz, endpoint=True))
            x = int(rng.integers(0, lr.shape[1] - cz, endpoint=True))
            lr = lr[y : y + cz, x : x + cz]
            hr = hr[y * s : (y + cz) * s, x * s : (x + cz) * s]
            if cz != c:
                lr = _zoomed(lr, c)
                hr = _zoomed(hr, c * s)
        if self.augment:
            if self.hflip and rng.random() < 0.5:
                lr, hr = lr[:, ::-1], hr[:, ::-1]
            if self.vflip and rng.random() < 0.5:
                lr, hr = lr[::-1], hr[::-1]
        lr_t, hr_t = _to_tensor(lr), _to_tensor(hr)
        if self.mean is not None and self.std is not None:
            lr_t = (lr_t - self.mean) / self.std
            hr_t = (hr_t - self.mean) / self.std
        return lr_t, hr_t


class ImageFolderDataset(Dataset):
    """Every image under ``root`` as a (3, size, size) float tensor in [0, 1]: shortest side
    resized to ``size``, centre crop (random crop and horizontal flip when ``augment``)."""

    def __init__(self, root: str | Path, size: int = 64, *, augment: bool = False) -> None:
        self.root = Path(root)
        self.files = list(iter_images(self.root))
        if not self.files:
            raise DatasetError(f"No images found in {self.root}.")
        self.size = int(size)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        path = self.files[index]
        n = self.size
        try:
            with Image.open(path) as im:
                im.draft("RGB", (n, n))  # JPEG: decode at a reduced scale, still >= n
                im = ImageOps.exif_transpose(im).convert("RGB")
        except Exception as err:
            raise ImageReadError(path, f"{type(err).__name__}: {err}") from err
        w, h = im.size
        r = n / min(w, h)
        im = im.resize((max(n, round(w * r)), max(n, round(h * r))), Image.Resampling.BICUBIC, reducing_gap=3.0)
        w, h = im.size
        if self.augment:
            x, y = int(torch.randint(0, w - n + 1, (1,))), int(torch.randint(0, h - n + 1, (1,)))
        else:
            x, y = (w - n) // 2, (h - n) // 2
        a = np.asarray(im)[y : y + n, x : x + n]
        if self.augment and bool(torch.rand(()) < 0.5):
            a = a[:, ::-1]
        return _to_tensor(a)


def default_workers() -> int:
    """Loader worker processes: min(2, CPUs) — enough on small machines, and cheap to start."""
    return min(2, os.cpu_count() or 1)


def make_loader(
    ds: Dataset,
    batch_size: int,
    shuffle: bool,
    workers: int | None = None,
    sampler: Any = None,
    drop_last: bool | None = None,
    *,
    pin_memory: bool | None = None,
    persistent_workers: bool | None = None,
    generator: torch.Generator | None = None,
) -> DataLoader:
    """A DataLoader with sensible defaults: ``workers`` = :func:`default_workers`, persistent
    workers when > 0 (``persistent_workers=False`` turns them off: a dataset changed between
    epochs in this process), pinned memory with CUDA, ``drop_last`` = shuffle (only when the
    dataset holds at least one full batch). ``generator`` (a seeded ``torch.Generator``) keeps
    making an iterator from drawing on the global RNG."""
    workers = default_workers() if workers is None else max(0, int(workers))
    if drop_last is None:
        drop_last = bool(shuffle)
    try:
        n = len(ds)  # type: ignore[arg-type]
    except TypeError:
        n = None
    if drop_last and n is not None and n < batch_size:
        drop_last = False
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    return DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=bool(shuffle) if sampler is None else False,
        sampler=sampler,
        num_workers=workers,
        persistent_workers=workers > 0 and (persistent_workers is None or bool(persistent_workers)),
        pin_memory=pin_memory,
        drop_last=drop_last,
        generator=generator,
    )


__all__ = [
    "DATASET_FILE",
    "FORMAT_VERSION",
    "BuildSummary",
    "ImageFolderDataset",
    "PairedDataset",
    "build_pairs",
    "default_workers",
    "item_seed",
    "make_loader",
    "read_dataset_json",
    "valid_count",
]
