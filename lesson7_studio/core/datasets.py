"""Paired HR/LR folders: the builder, the datasets and the loaders.

Builder (:func:`build_pairs`)
-----------------------------
``src`` is walked recursively (:func:`~.images.iter_images`) and never written to. For every
image ``src/<rel>`` it writes ``dst/hr/<rel stem>.png`` and ``dst/lr/<rel stem>.jpg|.png``
(``.jpg`` holds the exact bytes the recipe's final JPEG step encoded; otherwise a PNG). Two
sources that would map to the same name (``a.jpg`` and ``a.png``) keep their suffix in the
stem (``a_jpg.png``, ``a_png.png``). HR images are RGB 8-bit (alpha composited onto white,
16-bit reduced), capped to ``max_size`` on the longest side, then cropped from the top-left
to a multiple of ``recipe.scale`` so that LR x scale == HR exactly; an unchanged 8-bit RGB or
grey PNG source is copied byte for byte.

Each image's crappify seed and its train/valid side come from sha256 of (seed, relative
path), so results depend neither on the worker count nor on the order. With ``workers > 1``
this process and ``workers - 1`` spawn-context helper processes share the work
(:func:`~.crappify.run_pair_jobs`; safe next to GUI threads, same on every OS).

``dst/dataset.json`` records the recipe and its hash, the seed, ``max_size``, the scale, the
train/valid lists, every skipped file with its reason, counts, and each built pair. A rerun
with the same recipe hash, seed and ``max_size`` skips pairs whose two files exist (and whose
source did not change); a different recipe, seed or cap in an existing ``dst`` raises
DatasetError asking for a new folder, so pairs from two recipes never mix. Cancelling stops
submitting work, lets in-flight pairs finish, removes temp files, records what is done in
dataset.json and raises Cancelled; a rerun completes the build.

Datasets
--------
:class:`PairedDataset` yields aligned ``(lr, hr)`` float32 tensors in [0, 1] (normalisation
is the Restorer's job; pass ``mean``/``std`` to normalise here instead). Images smaller than
the crop are padded by mirror reflection (both images, aligned). For recipes without a fixed
scale (lesson7: shortest side 96) the LR image is resized (bicubic) to HR/scale, scale 1 by
default, as the lesson feeds its U-Net. :class:`ImageFolderDataset` serves the WGAN.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from PIL import Image, ImageOps, features
from torch.utils.data import DataLoader, Dataset

from .. import __version__
from .crappify import FONT_BACKEND, PairJob, Recipe, get_recipe, run_pair_jobs
from .errors import Cancelled, DatasetError, ImageReadError
from .events import CancelToken, Event, ItemDone, ItemFailed, Log, Progress, RateMeter, emit
from .files import check_output_folder
from .images import IMAGE_EXTENSIONS, atomic_write, iter_images

DATASET_FILE = "dataset.json"
FORMAT_VERSION = 1
_SAVE_EVERY_S = 5.0


@dataclass
class BuildSummary:
    """What :func:`build_pairs` did. ``failed`` lists every file not built, with its reason;
    ``errors`` is the part of it that was not a bad source image (e.g. a write error)."""

    dst: Path
    built: int
    skipped_existing: int
    failed: list[tuple[Path, str]]
    seconds: float
    total: int = 0
    train: int = 0
    valid: int = 0
    errors: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every readable image was processed."""
        return not self.errors


# ----------------------------------------------------------------------------- keys and names


def _name_bytes(text: str) -> bytes:
    """UTF-8 bytes of ``text``; a file name that is not UTF-8 (decoded by Python with lone
    surrogates, PEP 383) gives back its raw bytes, so every name has one stable seed."""
    return text.encode("utf-8", "surrogateescape")


def _unit_hash(*parts: Any) -> float:
    """Uniform float in [0, 1) from sha256 of the parts."""
    h = hashlib.sha256(_name_bytes("\x1f".join(str(p) for p in parts))).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64


def item_seed(seed: int, rel: str) -> int:
    """The crappify seed of the image at relative path ``rel``."""
    h = hashlib.sha256(_name_bytes(f"crappify\x1f{seed}\x1f{rel}")).digest()
    return int.from_bytes(h[:8], "big")


def _split_u(seed: int, rel: str) -> float:
    return _unit_hash("split", seed, rel)


def valid_count(n: int, valid_pct: float) -> int:
    """How many of ``n`` pairs validate: ``valid_pct * n`` rounded half up, at least one when
    ``valid_pct > 0`` and there are two pairs or more, and always leaving one to train on
    (16 photos at 0.1 -> 2; 5 at 0.1 -> 1; 1 photo -> 0)."""
    if valid_pct <= 0 or n < 2:
        return 0
    return min(n - 1, max(1, math.floor(n * valid_pct + 0.5)))


def _output_stems(rels: Sequence[str]) -> dict[str, str]:
    """rel source path -> output path without suffix. Stems that collide (``a.jpg``/``a.png``,
    or names differing only in case) keep their suffix (``a_jpg``), then get a number."""
    def stem_of(r: str) -> str:
        return r.rsplit(".", 1)[0] if "." in r.rsplit("/", 1)[-1] else r

    count: dict[str, int] = {}
    for r in rels:
        count[stem_of(r).lower()] = count.get(stem_of(r).lower(), 0) + 1
    out: dict[str, str] = {}
    used: set[str] = set()
    for r in sorted(rels):
        base = stem_of(r)
        if count[base.lower()] > 1:
            base = f"{base}_{r.rsplit('.', 1)[-1]}"
        cand, i = base, 2
        while cand.lower() in used:
            cand, i = f"{base}_{i}", i + 1
        used.add(cand.lower())
        out[r] = cand
    return out


def _is_within(a: Path, b: Path) -> bool:
    try:
        a.relative_to(b)
        return True
    except ValueError:
        return False


def read_dataset_json(root: str | Path) -> dict[str, Any]:
    """The parsed ``root/dataset.json``; DatasetError if missing or malformed."""
    p = Path(root) / DATASET_FILE
    if not p.is_file():
        raise DatasetError(
            f"{Path(root)} is not a paired dataset (no {DATASET_FILE}).",
            hint="Build one with `lesson7-studio crappify SRC DST` or core.datasets.build_pairs.",
        )
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DatasetError(f"Cannot read {p}: {err}") from None
    if not isinstance(meta, dict) or "items" not in meta or "recipe_hash" not in meta:
        raise DatasetError(f"{p} is not a Lesson7 Studio dataset file (keys missing).")
    return meta


# ----------------------------------------------------------------------------- builder


class _State:
    """dataset.json contents being built."""

    def __init__(self, dst: Path, src: Path, recipe: Recipe, seed: int, valid_pct: float, max_size: int | None):
        self.dst, self.src, self.recipe = dst, src, recipe
        self.seed, self.valid_pct, self.max_size = seed, valid_pct, max_size
        self.items: dict[str, dict[str, Any]] = {}
        self.skipped: dict[str, str] = {}
        self.total = 0
        self.complete = False

    def load(self, meta: dict[str, Any]) -> None:
        self.items = {k: v for k, v in meta.get("items", {}).items() if isinstance(v, dict)}
        self.skipped = {s["path"]: s["reason"] for s in meta.get("skipped", []) if isinstance(s, dict)}

    def split(self) -> tuple[list[str], list[str]]:
        """(train, valid): ``valid_count`` pairs validate, those with the smallest seeded hash."""
        keys = sorted(self.items)
        u = {k: _split_u(self.seed, k) for k in keys}
        n_valid = valid_count(len(keys), self.valid_pct)
        vs = set(sorted(keys, key=lambda k: (u[k], k))[:n_valid])
        return [k for k in keys if k not in vs], [k for k in keys if k in vs]

    def to_dict(self) -> dict[str, Any]:
        train, valid = self.split()
        for k in train:
            self.items[k]["split"] = "train"
        for k in valid:
            self.items[k]["split"] = "valid"
        return {
            "format_version": FORMAT_VERSION,
            "app_version": __version__,
            "recipe": self.recipe.to_dict(),
            "recipe_hash": self.recipe.hash(),
            "seed": self.seed,
            "max_size": self.max_size,
            "valid_pct": self.valid_pct,
            "scale": self.recipe.scale,
            "lr_format": "JPEG" if self.recipe.ends_with_jpeg else "PNG",
            "src": str(self.src),
            "complete": self.complete,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "software": {
                "pillow": Image.__version__,
                "libjpeg": features.version("jpg"),
                "freetype": features.version("freetype2"),
                "font": FONT_BACKEND,
                "numpy": np.__version__,
            },
            "counts": {
                "sources": self.total,
                "pairs": len(self.items),
                "train": len(train),
                "valid": len(valid),
                "skipped": len(self.skipped),
            },
            "train": train,
            "valid": valid,
            "skipped": [{"path": k, "reason": v} for k, v in sorted(self.skipped.items())],
            "items": {k: self.items[k] for k in sorted(self.items)},
        }

    def save(self) -> None:
        with atomic_write(self.dst / DATASET_FILE) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")


def _remove_temp_files(dst: Path) -> None:
    """Delete our '.*.part' temp files in dst (top level) and under dst/hr, dst/lr."""
    candidates = [p for p in dst.glob(".*.part")]
    for sub in (dst / "hr", dst / "lr"):
        if sub.is_dir():
            for dirpath, _dirs, files in os.walk(sub):
                candidates += [Path(dirpath) / n for n in files if n.startswith(".") and n.endswith(".part")]
    for p in candidates:
        try:
            p.unlink()
        except OSError:
            pass


def _src_stamp(p: Path) -> tuple[int, int]:
    st = p.stat()
    return st.st_size, st.st_mtime_ns


def build_pairs(
    src: str | Path,
    dst: str | Path,
    recipe: Recipe | str,
    *,
    seed: int = 0,
    valid_pct: float = 0.1,
    max_size: int | None = None,
    workers: int | None = 1,
    on_event: Callable[[Event], None] | None = None,
    cancel: CancelToken | None = None,
) -> BuildSummary:
    """Build ``dst/hr``, ``dst/lr`` and ``dst/dataset.json`` from the images under ``src``.

    ``workers`` > 1 uses that many processes in all (this one included); None or 0 picks one
    per CPU (at most 8) for 16 images or more. Emits Progress, ItemDone and ItemFailed; bad images are skipped and
    listed. See the module docstring for naming, resuming and cancelling.
    """
    t0 = time.perf_counter()
    recipe = get_recipe(recipe)
    src, dst = Path(src).expanduser().resolve(), Path(dst).expanduser().resolve()
    if not src.is_dir():
        raise DatasetError(f"Source folder not found: {src}")
    if src == dst or _is_within(dst, src) or _is_within(src, dst):
        raise DatasetError(
            f"The output folder {dst} must be outside the source folder {src} (and not contain it)."
        )
    if not (0.0 <= float(valid_pct) < 1.0):
        raise DatasetError(f"valid_pct must be in [0, 1), got {valid_pct}")
    if max_size is not None and (int(max_size) < 1 or int(max_size) < (recipe.scale or 1)):
        raise DatasetError(f"max_size must be at least the recipe's scale, got {max_size}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DatasetError(f"seed must be a non-negative integer, got {seed!r}")

    files = list(iter_images(src))
    if not files:
        raise DatasetError(f"No images found in {src}.", hint="Looked for: " + " ".join(sorted(IMAGE_EXTENSIONS)))
    rels = [p.relative_to(src).as_posix() for p in files]
    stems = _output_stems(rels)

    state = _State(dst, src, recipe, seed, float(valid_pct), max_size)
    state.total = len(files)
    meta_path = dst / DATASET_FILE
    if meta_path.exists():
        meta = read_dataset_json(dst)
        same = (
            meta.get("recipe_hash") == recipe.hash()
            and meta.get("seed") == seed
            and meta.get("max_size") == max_size
        )
        if not same:
            raise DatasetError(
                f"{dst} already holds a dataset built with another recipe, seed or size cap "
                f"(recipe '{meta.get('recipe', {}).get('name', '?')}', seed {meta.get('seed')}, "
                f"max_size {meta.get('max_size')}).",
                hint="Choose a new output folder, or delete this one to rebuild it.",
            )
        state.load(meta)
    elif (dst / "hr").exists() or (dst / "lr").exists():
        raise DatasetError(
            f"{dst} has hr/ or lr/ folders but no {DATASET_FILE}: it was not made by this builder.",
            hint="Choose a new, empty output folder.",
        )
    check_output_folder(dst, what="dataset folder")  # OutputFolderError before any work
    _remove_temp_files(dst)

    # what is already there
    jobs: list[tuple[str, Path, PairJob]] = []
    skipped_existing = 0
    lr_suffix = recipe.lr_suffix
    for rel, path in zip(rels, files):
        stem = stems[rel]
        hr_rel, lr_rel = f"hr/{stem}.png", f"lr/{stem}{lr_suffix}"
        done = state.items.get(rel)
        if done is not None:
            try:
                stamp = list(_src_stamp(path))
            except OSError:
                stamp = None
            if (
                done.get("hr") == hr_rel
                and done.get("lr") == lr_rel
                and done.get("src_stamp") == stamp
                and (dst / hr_rel).is_file()
                and (dst / lr_rel).is_file()
            ):
                skipped_existing += 1
                continue
            del state.items[rel]
        state.skipped.pop(rel, None)
        job = PairJob(
            src=str(path),
            hr=str(dst / hr_rel),
            lr=str(dst / lr_rel),
            recipe=recipe,
            seed=item_seed(seed, rel),
            max_size=max_size,
        )
        jobs.append((rel, path, job))
    # forget records of sources that are gone and whose files are gone too
    for rel in [r for r in state.items if r not in stems]:
        it = state.items[rel]
        if not ((dst / it.get("hr", "")).is_file() and (dst / it.get("lr", "")).is_file()):
            del state.items[rel]
    state.skipped = {k: v for k, v in state.skipped.items() if k in stems}
    state.save()

    total = len(files)
    done_count = skipped_existing
    failed: list[tuple[Path, str]] = []
    errors: list[tuple[Path, str]] = []
    built = 0
    meter = RateMeter(max(1, len(jobs)))
    if skipped_existing:
        emit(on_event, Log(f"{skipped_existing} of {total} pairs already built; skipping them."))
    emit(on_event, Progress(done_count, total, "crappify", stage="crappify", rate_unit="img/s"))
    last_save = time.perf_counter()

    def handle(rel: str, path: Path, job: PairJob, res: dict[str, Any]) -> None:
        nonlocal done_count, built, last_save
        done_count += 1
        if res.get("ok"):
            built += 1
            state.items[rel] = {
                "hr": Path(job.hr).relative_to(dst).as_posix(),
                "lr": Path(job.lr).relative_to(dst).as_posix(),
                "hr_size": res["hr_size"],
                "lr_size": res["lr_size"],
                "seed": job.seed,
                "params": res.get("params", {}),
                "src_stamp": list(_src_stamp(path)) if path.exists() else None,
            }
            emit(on_event, ItemDone(path=path, output=Path(job.lr), info={"hr": job.hr, **res.get("params", {})}))
        else:
            reason = str(res.get("reason", "unknown error"))
            failed.append((path, reason))
            if not res.get("bad_source"):
                errors.append((path, reason))
            state.skipped[rel] = reason
            emit(on_event, ItemFailed(path=path, reason=reason))
        rate, eta = meter.update(done_count - skipped_existing)
        emit(on_event, Progress(done_count, total, rel, stage="crappify", rate=rate, rate_unit="img/s", eta_s=eta))
        if time.perf_counter() - last_save > _SAVE_EVERY_S:
            state.save()
            last_save = time.perf_counter()

    n_workers = workers
    if not n_workers:  # None or 0: automatic
        n_workers = min(os.cpu_count() or 1, 8) if len(jobs) >= 16 else 1
    n_workers = max(1, min(int(n_workers), len(jobs) or 1))

    cancelled = False

    def should_stop() -> bool:
        nonlocal cancelled
        if cancel is None or cancelled:
            return cancelled
        try:
            cancel.check()  # blocks while paused
        except Cancelled:
            cancelled = True
        return cancelled

    try:
        run_pair_jobs(jobs, n_workers, handle, should_stop)  # this process + n_workers - 1 spawned
    finally:
        _remove_temp_files(dst)
        state.complete = not cancelled and done_count == total and not errors
        state.save()
    if cancelled:
        raise Cancelled(f"Crappify cancelled: {built} new pairs written to {dst}; rerun to finish.")
    train, valid = state.split()
    return BuildSummary(
        dst=dst,
        built=built,
        skipped_existing=skipped_existing,
        failed=failed,
        seconds=time.perf_counter() - t0,
        total=total,
        train=len(train),
        valid=len(valid),
        errors=errors,
    )


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


def _to_tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.transpose(2, 0, 1).copy()).float().div_(255.0)


class PairedDataset(Dataset):
    """Aligned ``(lr, hr)`` pairs from a folder made by :func:`build_pairs`.

    ``crop_size`` is in HR pixels (a multiple of the scale; None = whole image, HR cropped to
    a multiple of the scale); lr is (3, crop/scale, crop/scale). ``scale`` defaults to the
    dataset's (1 for fixed-size recipes such as lesson7); a different scale resizes the LR
    image (bicubic) to HR/scale. ``augment`` = random crop position and flips; otherwise the
    crop position is fixed per item (from ``seed``). ``split`` is "train", "valid" or "all".
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
        self.mean = None if mean is None else torch.tensor(list(mean), dtype=torch.float32).view(3, 1, 1)
        self.std = None if std is None else torch.tensor(list(std), dtype=torch.float32).view(3, 1, 1)
        self.recipe = meta.get("recipe")

    def __len__(self) -> int:
        return len(self.pairs)

    def _rng(self, index: int) -> np.random.Generator:
        if self.augment:  # varies per epoch and per worker; reproducible under torch.manual_seed
            draw = int(torch.randint(0, 2**62, (1,)).item())
            return np.random.default_rng([self.seed, index, draw])
        return np.random.default_rng([self.seed, index])

    def load_pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Whole aligned images (lr, hr) as HxWx3 uint8, HR a multiple of the scale."""
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
            y = int(rng.integers(0, lr.shape[0] - c, endpoint=True))
            x = int(rng.integers(0, lr.shape[1] - c, endpoint=True))
            lr = lr[y : y + c, x : x + c]
            hr = hr[y * s : (y + c) * s, x * s : (x + c) * s]
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
) -> DataLoader:
    """A DataLoader with sensible defaults: ``workers`` = :func:`default_workers`, persistent
    workers when > 0, pinned memory with CUDA, ``drop_last`` = shuffle (only when the dataset
    holds at least one full batch)."""
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
        persistent_workers=workers > 0,
        pin_memory=pin_memory,
        drop_last=drop_last,
    )


__all__ = [
    "DATASET_FILE",
    "BuildSummary",
    "ImageFolderDataset",
    "PairedDataset",
    "build_pairs",
    "default_workers",
    "item_seed",
    "make_loader",
    "read_dataset_json",
]
