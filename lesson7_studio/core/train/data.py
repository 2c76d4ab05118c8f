"""Data for training: the checks a dataset must pass before a run starts, crop sizes that fit
a model, the paired and critic datasets of each stage, and the resumable, sharded loaders.

The dataset metadata is read by :func:`..datasets.read_dataset_json` and loaders are made by
:func:`..datasets.make_loader`; this module adds only what training needs on top (a sampler
that resumes mid-epoch and shards under DDP, an epoch of a fixed number of batches).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from .. import datasets
from ..errors import DatasetError, TrainingError
from . import distributed as dist_
from .recipes import TrainConfig

_PAIRED_KINDS = frozenset({"restore", "save-preds", "critic", "gan"})


def scale_of(meta: dict) -> int:
    """The dataset's LR -> HR scale from its metadata (1 when absent or unreadable)."""
    s = meta.get("scale")
    try:
        s = int(s) if s else 1
    except (TypeError, ValueError):
        s = 1
    return max(1, s)


def dataset_scale(root: Path) -> int:
    """The scale of the paired dataset at ``root`` (DatasetError when it is not one)."""
    return scale_of(datasets.read_dataset_json(root))


def crop_multiple(scale: int, model_scale: int, size_multiple: int) -> int:
    """HR crop sizes must be multiples of this so that the network input fits the model."""
    pre = max(1, scale // max(1, model_scale))
    return scale * size_multiple // math.gcd(size_multiple, pre)


def check_crop_size(size: int, scale: int, info: Any, stage: str = "") -> None:
    """TrainingError unless ``size`` (HR px) gives the model a valid input size."""
    m = crop_multiple(scale, info.model_scale, info.size_multiple)
    if size % m:
        lo = max(m, size // m * m)
        hi = lo + m if lo >= size else lo
        where = f" (stage '{stage}')" if stage else ""
        raise TrainingError(
            f"Crop size {size} px{where} does not fit {info.name} at scale {scale}: the HR crop must be a "
            f"multiple of {m} px (the network input must be a multiple of {info.size_multiple}).",
            hint=f"Use --size {lo}" + (f" or --size {hi}." if hi != lo else "."),
        )


def _fewer_than_a_batch(stage: str, n: int, bs: int, dinfo: dist_.DistInfo) -> TrainingError:
    return TrainingError(
        f"Stage '{stage}': {n} training items is fewer than one batch of {bs}"
        + (f" per process ({dinfo.world_size} processes)" if dinfo.enabled else "") + ".",
        hint="Lower --batch-size, add images to the dataset, or count epochs in steps (--steps-per-epoch).")


def _least_items(bs: int, steps_per_epoch: Optional[int]) -> int:
    """Training items a process needs: one batch, or one item when epochs are counted in steps
    (the sampler then repeats a small set, new random crops and flips each pass)."""
    return 1 if steps_per_epoch else bs


def check_dataset(cfg: TrainConfig, data: Optional[Path], dinfo: dist_.DistInfo) -> dict:
    """The dataset's metadata ({} for a WGAN-only run on an image folder), after checking that
    every stage of ``cfg`` can train on it: a paired dataset where stages need one, at least
    one batch per process, crops no larger than its images."""
    if data is None:
        raise TrainingError("No dataset given: pass --data DATASET (a folder made by `lesson7-studio crappify`).")
    if not data.is_dir():
        raise DatasetError(f"Dataset folder {data} does not exist.")
    if not {s.kind for s in cfg.stages} & _PAIRED_KINDS:
        return {}
    if not (data / datasets.DATASET_FILE).exists():  # the hint names the CLI's own words (DATASET)
        raise DatasetError(f"{data} is not a paired dataset (no {datasets.DATASET_FILE}).",
                           hint="Build one with `lesson7-studio crappify SRC DATASET`.")
    meta = datasets.read_dataset_json(data)
    _check_sizes_fit_images(cfg, data, meta)
    n_train = len(meta.get("train", []))
    for s in cfg.stages:
        bs = s.batch_size or cfg.batch_size
        n = 2 * n_train if s.kind == "critic" else n_train
        if s.trains and n // dinfo.world_size < _least_items(bs, cfg.steps_per_epoch):
            raise _fewer_than_a_batch(s.name, n, bs, dinfo)
    return meta


def _check_sizes_fit_images(cfg: TrainConfig, data: Path, meta: dict) -> None:
    """TrainingError, before anything is allocated, when a stage's HR crop is larger than
    every image of the dataset (the crops would be mirror padding, and take its memory)."""
    items = meta.get("items") or {}
    sides = [max(int(v) for v in it["hr_size"]) for it in items.values()
             if isinstance(it, dict) and isinstance(it.get("hr_size"), list) and it["hr_size"]]
    if not sides:
        return
    largest = max(sides)
    for s in cfg.stages:
        size = s.size or cfg.size
        if s.kind in ("restore", "critic", "gan") and size > largest:
            where = f" (stage '{s.name}')" if s.size else ""
            raise TrainingError(
                f"Crop size {size} px{where} is larger than every image of {data}: its largest HR "
                f"image is {largest} px on its longest side.",
                hint=f"Use --size {largest} or less.")


# ---------------------------------------------------------------------------------------------
# datasets of the stages


def paired(root: Path, split: str, size: int, augment: bool, seed: int, max_zoom: float = 1.0) -> datasets.PairedDataset:
    """A split of a paired dataset; ``max_zoom`` > 1 zooms augmented crops (the lesson's ``max_zoom``)."""
    return datasets.PairedDataset(root, split=split, crop_size=size, augment=augment, seed=seed,
                                  max_zoom=max_zoom if augment else 1.0)


def paired_valid(root: Path, size: int, seed: int, meta: Optional[dict] = None) -> Optional[datasets.PairedDataset]:
    """The validation split, or None when the dataset has none."""
    meta = datasets.read_dataset_json(root) if meta is None else meta
    if not meta.get("valid"):
        return None
    return paired(root, "valid", size, False, seed)


def hr_root(data: Path) -> Path:
    """The folder of a WGAN stage's images: ``data/hr`` when the dataset has one, else ``data``."""
    return data / "hr" if (data / "hr").is_dir() else data


def image_folder(data: Path, size: int) -> datasets.ImageFolderDataset:
    """The HR images of a WGAN stage (see :func:`hr_root`)."""
    return datasets.ImageFolderDataset(hr_root(data), size=size)


class CriticDataset(torch.utils.data.Dataset):
    """Real HR crops (label 1) and saved generator predictions (label 0) for critic pretraining."""

    def __init__(self, paired, fake_dir: Path, *, flip: bool = True, seed: int = 0) -> None:
        self.paired = paired
        self.fakes = sorted(Path(fake_dir).glob("*.png"))
        if len(self.fakes) != len(paired):
            raise TrainingError(
                f"{fake_dir} holds {len(self.fakes)} predictions for {len(paired)} images; rerun the save-preds stage.")
        self.flip = flip
        self.seed = seed

    def __len__(self) -> int:
        return 2 * len(self.fakes)

    def __getitem__(self, i: int):
        from PIL import Image

        n = len(self.fakes)
        if i < n:
            with Image.open(self.fakes[i]) as im:
                x = torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)
            y = torch.tensor(0.0)
        else:
            x = self.paired[i - n][1]
            y = torch.tensor(1.0)
        if self.flip:
            g = torch.Generator().manual_seed(self.seed * 7919 + i)
            if torch.rand((), generator=g) < 0.5:
                x = x.flip(-1)
        return x.contiguous(), y


# ---------------------------------------------------------------------------------------------
# loaders


class LimitSampler(torch.utils.data.Sampler):
    """``n`` indices per epoch from ``base`` (its set_epoch / skip pass through): its first ``n``
    when it holds more; with ``repeat`` and fewer, its orders for successive passes laid end to
    end, so an epoch of a small dataset is still ``n`` items (new random crops and flips each pass)."""

    _PASS = 100_003  # pass r of epoch e uses the base's order of epoch e + r * _PASS

    def __init__(self, base, n: int, repeat: bool = False) -> None:
        self.base, self.n, self.repeat = base, n, repeat
        self.epoch = 0
        self._skip = 0

    def set_epoch(self, e: int) -> None:
        self.epoch = int(e)
        self.base.set_epoch(e)

    def skip(self, k: int) -> None:
        self._skip = k
        self.base.skip(0)

    def __iter__(self):
        k, self._skip = self._skip, 0
        idx = list(iter(self.base))
        if self.repeat and 0 < len(idx) < self.n:
            r = 1
            while len(idx) < self.n:
                self.base.set_epoch(self.epoch + r * self._PASS)
                idx += list(iter(self.base))
                r += 1
            self.base.set_epoch(self.epoch)
        idx = idx[: self.n]
        return iter(idx[k:])

    def __len__(self) -> int:
        return self.n if self.repeat and len(self.base) > 0 else min(self.n, len(self.base))


def stage_loader(ds, batch_size: int, *, train: bool, seed: int, workers: Optional[int],
                 limit_batches: Optional[int], dinfo: dist_.DistInfo, device: torch.device):
    """:func:`..datasets.make_loader` over ``ds`` with a ResumableSampler (sharded under DDP;
    ``limit_batches``: exactly that many batches an epoch, a small training set repeating)."""
    sampler: Any = dist_.ResumableSampler(len(ds), shuffle=train, seed=seed, rank=dinfo.rank,
                                          world_size=dinfo.world_size, drop_last=False)
    if limit_batches:
        sampler = LimitSampler(sampler, limit_batches * batch_size, repeat=train)
    return datasets.make_loader(
        ds, batch_size, shuffle=False, workers=int(workers or 0), sampler=sampler, drop_last=train,
        pin_memory=device.type == "cuda",
        # workers must see datasets changed between epochs (NoiseDataset.set_epoch), so none persist
        persistent_workers=False,
        # a private generator: making an iterator must not draw from the global RNG
        generator=torch.Generator().manual_seed(seed),
    )


def stage_loaders(stage, cfg: TrainConfig, train_ds, valid_ds, dinfo: dist_.DistInfo, device: torch.device):
    """(train loader, valid loader or None) of ``stage``; TrainingError when ``train_ds`` holds
    fewer items than one batch per process."""
    bs = stage.batch_size or cfg.batch_size
    if len(train_ds) // dinfo.world_size < _least_items(bs, cfg.steps_per_epoch):
        raise _fewer_than_a_batch(stage.name, len(train_ds), bs, dinfo)
    tdl = stage_loader(train_ds, bs, train=True, seed=cfg.seed, workers=cfg.workers,
                       limit_batches=cfg.steps_per_epoch, dinfo=dinfo, device=device)
    vdl = None
    if valid_ds is not None and len(valid_ds) > 0:
        vdl = stage_loader(valid_ds, bs, train=False, seed=cfg.seed, workers=cfg.workers,
                           limit_batches=cfg.valid_batches, dinfo=dinfo, device=device)
    return tdl, vdl
