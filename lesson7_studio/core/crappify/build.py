"""The paired-dataset builder: :func:`build_pairs`.

``src`` is walked recursively (:func:`~..images.iter_images`) and never written to. For every
image ``src/<rel>`` it writes ``dst/hr/<rel stem>.png`` and ``dst/lr/<rel stem>.jpg|.png``
(``.jpg`` holds the exact bytes the recipe's final JPEG step encoded; otherwise a PNG). Two
sources that would map to the same name (``a.jpg`` and ``a.png``) keep their suffix in the
stem (``a_jpg.png``, ``a_png.png``). HR images are RGB 8-bit (alpha composited onto white,
16-bit reduced), capped to ``max_size`` on the longest side, then cropped from the top-left
to a multiple of ``recipe.scale`` so that LR x scale == HR exactly; an unchanged 8-bit RGB or
grey PNG source is copied byte for byte.

Each image's crappify seed and its train/valid side come from sha256 of (seed, relative
path), so results depend neither on the worker count nor on the order. ``variants`` > 1 degrades
every image that many times (its own seed each: another JPEG quality, number position ...):
``<stem>_v2.png`` ... beside ``<stem>.png``, recorded as ``<rel>#v2`` ...; all the variants of a
photo fall on the same side of the train/valid split, so validation never sees a training photo. With ``workers > 1``
this process and ``workers - 1`` spawn-context helper processes share the work
(:func:`~.jobs.run_pair_jobs`; safe next to GUI threads, same on every OS).

``dst/dataset.json`` records the recipe and its hash, the seed, ``max_size``, the scale, the
train/valid lists, every skipped file with its reason, counts, and each built pair. A rerun
with the same recipe hash, seed and ``max_size`` skips pairs whose two files exist (and whose
source did not change); a different recipe, seed or cap in an existing ``dst`` raises
DatasetError asking for a new folder, so pairs from two recipes never mix. Cancelling stops
submitting work, lets in-flight pairs finish, removes temp files, records what is done in
dataset.json and raises Cancelled; a rerun completes the build.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import Cancelled, DatasetError
from ..events import CancelToken, Event, ItemDone, ItemFailed, Log, Progress, RateMeter, emit
from ..files import check_output_folder
from ..images import IMAGE_EXTENSIONS, iter_images
from .jobs import run_pair_jobs
from .manifest import DATASET_FILE, _State, read_dataset_json, source_of, variant_key
from .pairs import PairJob, item_seed
from .recipes import Recipe, get_recipe

_SAVE_EVERY_S = 5.0
MAX_VARIANTS = 64
AUTO_PAIRS = 120  # auto_variants: pairs a small folder is brought up to (bench_quick: 30 photos x 4)


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


def _check_args(src: str | Path, dst: str | Path, recipe: Recipe, seed: Any, valid_pct: float,
                max_size: int | None) -> tuple[Path, Path]:
    """(src, dst) resolved; DatasetError for folders that overlap and out-of-range values."""
    src, dst = Path(src).expanduser().resolve(), Path(dst).expanduser().resolve()
    if not src.is_dir():
        raise DatasetError(f"Source folder not found: {src}")
    if src == dst or dst.is_relative_to(src) or src.is_relative_to(dst):
        raise DatasetError(
            f"The output folder {dst} must be outside the source folder {src} (and not contain it)."
        )
    if not (0.0 <= float(valid_pct) < 1.0):
        raise DatasetError(f"valid_pct must be in [0, 1), got {valid_pct}")
    if max_size is not None and (int(max_size) < 1 or int(max_size) < (recipe.scale or 1)):
        raise DatasetError(f"max_size must be at least the recipe's scale, got {max_size}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DatasetError(f"seed must be a non-negative integer, got {seed!r}")
    return src, dst


def _open_state(dst: Path, src: Path, recipe: Recipe, seed: int, valid_pct: float, max_size: int | None) -> _State:
    """The dataset.json being built: the one in ``dst`` when it was made with the same recipe,
    seed and cap (a resumed build); DatasetError when ``dst`` holds something else."""
    state = _State(dst, src, recipe, seed, float(valid_pct), max_size)
    if (dst / DATASET_FILE).exists():
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
    return state


def _is_built(state: _State, rel: str, path: Path, hr_rel: str, lr_rel: str) -> bool:
    """True when the pair of ``rel`` is recorded, both files exist and the source is unchanged."""
    done = state.items.get(rel)
    if done is None:
        return False
    try:
        stamp = list(_src_stamp(path))
    except OSError:
        stamp = None
    return (
        done.get("hr") == hr_rel
        and done.get("lr") == lr_rel
        and done.get("src_stamp") == stamp
        and (state.dst / hr_rel).is_file()
        and (state.dst / lr_rel).is_file()
    )


def auto_variants(n_images: int) -> int:
    """The variants the Data panel builds by default for a folder of ``n_images``: enough that a
    small folder gives ~120 pairs (4 for 30 photos), 1 from 120 photos on, at most 8."""
    return max(1, min(8, math.ceil(AUTO_PAIRS / max(1, int(n_images)))))


def _variants(rels: Sequence[str], files: Sequence[Path], variants: int) -> list[tuple[str, str, Path]]:
    """(key, output stem, source) of every pair: ``variants`` of each image (see the module doc)."""
    stems = _output_stems(rels)
    return [(variant_key(rel, k), stems[rel] if k == 1 else f"{stems[rel]}_v{k}", path)
            for rel, path in zip(rels, files) for k in range(1, variants + 1)]


def _plan(state: _State, pairs: Sequence[tuple[str, str, Path]], max_size: int | None) -> tuple[list, int]:
    """(the ``(key, path, PairJob)`` still to build, how many pairs are already built). Records
    of pairs to rebuild, and of sources gone together with their files, are dropped."""
    recipe, dst = state.recipe, state.dst
    jobs: list[tuple[str, Path, PairJob]] = []
    skipped_existing = 0
    for key, stem, path in pairs:
        hr_rel, lr_rel = f"hr/{stem}.png", f"lr/{stem}{recipe.lr_suffix}"
        if _is_built(state, key, path, hr_rel, lr_rel):
            skipped_existing += 1
            continue
        state.items.pop(key, None)
        state.skipped.pop(key, None)
        job = PairJob(src=str(path), hr=str(dst / hr_rel), lr=str(dst / lr_rel), recipe=recipe,
                      seed=item_seed(state.seed, key), max_size=max_size)
        jobs.append((key, path, job))
    keys = {key for key, _, _ in pairs}
    for key in [k for k in state.items if k not in keys]:
        it = state.items[key]
        if not ((dst / it.get("hr", "")).is_file() and (dst / it.get("lr", "")).is_file()):
            del state.items[key]
    state.skipped = {k: v for k, v in state.skipped.items() if k in keys}
    return jobs, skipped_existing


class _Recorder:
    """Takes each pair's result: records it in the state, emits events, saves now and then."""

    def __init__(self, state: _State, total: int, skipped_existing: int, n_jobs: int,
                 on_event: Callable[[Event], None] | None) -> None:
        self.state, self.total, self.skipped_existing = state, total, skipped_existing
        self.on_event = on_event
        self.done = skipped_existing
        self.built = 0
        self.failed: list[tuple[Path, str]] = []
        self.errors: list[tuple[Path, str]] = []
        self.meter = RateMeter(max(1, n_jobs))
        self.last_save = time.perf_counter()

    def __call__(self, rel: str, path: Path, job: PairJob, res: dict[str, Any]) -> None:
        self.done += 1
        if res.get("ok"):
            self._built(rel, path, job, res)
        else:
            reason = str(res.get("reason", "unknown error"))
            if (path, reason) not in self.failed:  # a bad photo fails once for all its variants
                self.failed.append((path, reason))
            if not res.get("bad_source"):
                self.errors.append((path, reason))
            self.state.skipped[rel] = reason
            emit(self.on_event, ItemFailed(path=path, reason=reason))
        rate, eta = self.meter.update(self.done - self.skipped_existing)
        emit(self.on_event, Progress(self.done, self.total, rel, stage="crappify", rate=rate,
                                     rate_unit="img/s", eta_s=eta))
        if time.perf_counter() - self.last_save > _SAVE_EVERY_S:
            self.state.save()
            self.last_save = time.perf_counter()

    def _built(self, rel: str, path: Path, job: PairJob, res: dict[str, Any]) -> None:
        self.built += 1
        dst = self.state.dst
        self.state.items[rel] = {
            "hr": Path(job.hr).relative_to(dst).as_posix(),
            "lr": Path(job.lr).relative_to(dst).as_posix(),
            "hr_size": res["hr_size"],
            "lr_size": res["lr_size"],
            "seed": job.seed,
            "params": res.get("params", {}),
            "src_stamp": list(_src_stamp(path)) if path.exists() else None,
            "source": source_of(rel),
        }
        emit(self.on_event, ItemDone(path=path, output=Path(job.lr), info={"hr": job.hr, **res.get("params", {})}))


def _worker_count(workers: int | None, n_jobs: int) -> int:
    """None or 0: one per CPU (at most 8) for 16 jobs or more, else 1; never more than the jobs."""
    n = workers
    if not n:
        n = min(os.cpu_count() or 1, 8) if n_jobs >= 16 else 1
    return max(1, min(int(n), n_jobs or 1))


class _Stopper:
    """``should_stop`` for :func:`run_pair_jobs`: true once ``cancel`` is set (blocks while paused)."""

    def __init__(self, cancel: CancelToken | None) -> None:
        self.cancel, self.cancelled = cancel, False

    def __call__(self) -> bool:
        if self.cancel is None or self.cancelled:
            return self.cancelled
        try:
            self.cancel.check()  # blocks while paused
        except Cancelled:
            self.cancelled = True
        return self.cancelled


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
    variants: int | None = 1,
) -> BuildSummary:
    """Build ``dst/hr``, ``dst/lr`` and ``dst/dataset.json`` from the images under ``src``
    (``variants`` degraded pairs of each; None: :func:`auto_variants` of the images found).

    ``workers`` > 1 uses that many processes in all (this one included); None or 0 picks one
    per CPU (at most 8) for 16 images or more. Emits Progress, ItemDone and ItemFailed; bad images are skipped and
    listed. See the module docstring for naming, resuming and cancelling.
    """
    t0 = time.perf_counter()
    recipe = get_recipe(recipe)
    src, dst = _check_args(src, dst, recipe, seed, valid_pct, max_size)
    files = list(iter_images(src))
    if not files:
        raise DatasetError(f"No images found in {src}.", hint="Looked for: " + " ".join(sorted(IMAGE_EXTENSIONS)))
    if variants is None:
        variants = auto_variants(len(files))
    if isinstance(variants, bool) or not isinstance(variants, int) or not 1 <= variants <= MAX_VARIANTS:
        raise DatasetError(f"variants must be a whole number from 1 to {MAX_VARIANTS}, got {variants!r}")
    rels = [p.relative_to(src).as_posix() for p in files]
    state = _open_state(dst, src, recipe, seed, valid_pct, max_size)
    pairs = _variants(rels, files, variants)
    state.total = total = len(pairs)
    check_output_folder(dst, what="dataset folder")  # OutputFolderError before any work
    _remove_temp_files(dst)
    jobs, skipped_existing = _plan(state, pairs, max_size)
    state.save()

    record = _Recorder(state, total, skipped_existing, len(jobs), on_event)
    if skipped_existing:
        emit(on_event, Log(f"{skipped_existing} of {total} pairs already built; skipping them."))
    emit(on_event, Progress(skipped_existing, total, "crappify", stage="crappify", rate_unit="img/s"))
    stop = _Stopper(cancel)
    try:  # this process + n_workers - 1 spawned
        run_pair_jobs(jobs, _worker_count(workers, len(jobs)), record, stop)
    finally:
        _remove_temp_files(dst)
        state.complete = not stop.cancelled and record.done == total and not record.errors
        state.save()
    if stop.cancelled:
        raise Cancelled(f"Crappify cancelled: {record.built} new pairs written to {dst}; rerun to finish.")
    train, valid = state.split()
    return BuildSummary(dst=dst, built=record.built, skipped_existing=skipped_existing, failed=record.failed,
                        seconds=time.perf_counter() - t0, total=total, train=len(train), valid=len(valid),
                        errors=record.errors)
