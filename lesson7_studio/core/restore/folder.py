"""Restore a folder (or one file) into another: every image restored, written atomically in its
format (or the one asked), failures reported and the batch going on, resumable, split across
torchrun ranks; file decodes and encodes overlap the network on a GPU."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from ..devices import release_freed_memory
from ..errors import Cancelled, DeviceError, ImageReadError, ImageWriteError, Lesson7Error
from ..events import (
    CancelToken,
    EventCallback,
    Finished,
    ItemDone,
    ItemFailed,
    ItemSkipped,
    Log,
    Progress,
    RateMeter,
    check,
    emit,
)
from ..files import check_output_folder, os_error_reason
from .image import restore_image
from .outputs import clean_stale_parts, dist_share, plan_outputs
from .precision import precision_note
from .runner import model_device


@dataclass
class RestoreSummary:
    """What a folder restore did. ``failed``: (source path, reason) pairs."""

    done: int = 0
    skipped: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)
    megapixels: float = 0.0  # input megapixels restored
    seconds: float = 0.0
    dst: Path | None = None
    total: int = 0  # files this process was responsible for
    unreadable: int = 0  # how many of ``failed`` could not be read (not images, damaged)
    rank: int = 0
    world_size: int = 1
    # (source, frames) of animated / multi-frame files (GIF, TIFF, WebP ...): only the first frame is restored
    first_frame_only: list[tuple[Path, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every readable image was restored (or skipped as already done)."""
        return len(self.failed) == self.unreadable

    @property
    def megapixels_per_s(self) -> float:
        return self.megapixels / self.seconds if self.seconds > 0 else 0.0

    @property
    def speed_text(self) -> str:
        """The speed for people: "12.3 MP/s", "6.14 kpx/s, 1.0 s an image" ("" before any image)."""
        from ..units import format_speed

        text = format_speed(self.megapixels_per_s) if self.done else ""
        if text and self.megapixels_per_s < 0.1:  # small images: the time each one took says more
            each = self.seconds / self.done
            text += f", {each:.1f} s an image" if each >= 1 else f", {each:.2g} s an image"
        return text

    def add(self, other: RestoreSummary) -> None:
        """Count ``other`` (the restore of another input) in this one."""
        self.done += other.done
        self.skipped += other.skipped
        self.failed.extend(other.failed)
        self.unreadable += other.unreadable
        self.first_frame_only.extend(other.first_frame_only)
        self.megapixels += other.megapixels

    def to_dict(self) -> dict[str, Any]:
        return {
            "done": self.done,
            "skipped": self.skipped,
            "failed": [{"path": str(p), "reason": r} for p, r in self.failed],
            "megapixels": round(self.megapixels, 4),
            "seconds": round(self.seconds, 3),
            "dst": str(self.dst) if self.dst else None,
            "total": self.total,
            "unreadable": self.unreadable,
            "first_frame_only": [{"path": str(p), "frames": n} for p, n in self.first_frame_only],
            "rank": self.rank,
            "world_size": self.world_size,
        }


class InlineExecutor:
    """The ``submit``/``shutdown`` of a ThreadPoolExecutor, running each call at once."""

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as err:  # noqa: BLE001 - delivered through the future, as a pool would
            fut.set_exception(err)
        return fut

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


MAX_IO_THREADS = 6  # decode + up to 5 encodes in flight (each holds its restored image)
MAX_PENDING_BYTES = 1 << 30  # restored images held by the writes in flight (one is always allowed)


def io_pool(dev: torch.device) -> tuple[Any, int]:
    """(executor for file decodes and encodes, how many encodes may be in flight) on ``dev``.

    On a GPU, decoding the next file and encoding the last ones overlap the network, several
    encodes at a time (Pillow releases the GIL while it compresses; a PNG encode takes longer
    than the network's pass there). On the CPU the network's threads already use every core,
    and an encoder thread beside them only preempts one of them while the others wait for it
    (4 Kodak images with unet-resnet34 in bf16, 2 cores: 5.56 s overlapped, 5.33 s in line)."""
    if dev.type == "cpu":
        return InlineExecutor(), 1
    workers = max(2, min(MAX_IO_THREADS, os.cpu_count() or 2))
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="restore-io"), workers - 1  # one free to decode


Plan = list[tuple[Path, Path, "str | None"]]


def _sources(src: Path, dst: Path, recursive: bool, allow_in_place: bool, quality: int) -> list[Path]:
    """The image files to restore (checked: the source exists, the destination is a folder)."""
    from .. import images

    if not src.exists():
        raise Lesson7Error(f"Source {src} does not exist.")
    src_r, dst_r = src.resolve(), dst.resolve()
    if dst_r.exists() and not dst_r.is_dir():
        raise Lesson7Error(f"Destination {dst} is a file; give a folder.")
    if not 1 <= int(quality) <= 100:
        raise Lesson7Error(f"Quality must be between 1 and 100; got {quality}.")
    if not src_r.is_dir():
        return [src]
    if dst_r == src_r and not allow_in_place:
        raise Lesson7Error(
            f"Refusing to write into the source folder {src}: choose another destination "
            "(or allow in-place writes explicitly)."
        )
    return [p for p in images.iter_images(src, recursive=recursive) if not p.resolve().is_relative_to(dst_r) or dst_r == src_r]


class _FolderBatch:
    """One folder restore under way: its summary, its events, the writes in flight."""

    def __init__(self, model: Any, summary: RestoreSummary, total: int, restore_kw: dict[str, Any],
                 load_kw: dict[str, Any], quality: int, on_event: Optional[EventCallback],
                 cancel: Optional[CancelToken]) -> None:
        self.model, self.summary, self.total = model, summary, total
        self.restore_kw, self.load_kw, self.quality = restore_kw, load_kw, quality
        self.on_event, self.cancel = on_event, cancel
        self.meter = RateMeter(total)
        self.t0 = time.perf_counter()
        self.handled = 0  # files decided before the restore (skipped, refused)
        self.said: set[str] = set()  # notes said once for the whole batch
        self.pool, self.max_pending = io_pool(model_device(model, restore_kw.get("device")))
        self.pending: deque[tuple[Path, Path, float, int, Future]] = deque()  # (src, out, MP, bytes held, write)

    # -- events
    def progress(self, done: int, name: str) -> None:
        _rate, eta = self.meter.update(done)
        elapsed = time.perf_counter() - self.t0
        mp = self.summary.megapixels
        mps = mp / elapsed if elapsed > 0 and mp else None
        emit(self.on_event, Progress(done=done, total=self.total, message=name, stage="restore", rate=mps,
                                     rate_unit="MP/s", eta_s=eta))

    def failed(self, path: Path, reason: str) -> None:
        self.summary.failed.append((path, reason))
        emit(self.on_event, ItemFailed(path=path, reason=reason))

    def triage(self, plan: Plan, sources: set[Path], allow_in_place: bool, skip_existing: bool) -> Plan:
        """The entries to restore; the others are reported (refused or skipped) now."""
        todo: Plan = []
        for path, out, pil in plan:
            if not allow_in_place and out.resolve() in sources:
                self.failed(path, f"output {out} would overwrite a source file")
            elif skip_existing and out.exists():
                self.summary.skipped += 1
                emit(self.on_event, ItemSkipped(path=path, reason=f"{out} exists"))
            else:
                todo.append((path, out, pil))
        self.handled = len(plan) - len(todo)
        return todo

    # -- writes in flight
    def finish_save(self) -> None:
        """Wait for the oldest write in flight and report it."""
        path, out, mp, _nbytes, fut = self.pending.popleft()
        try:
            fut.result()
        except Exception as err:  # reported, never fatal to the batch
            self.failed(path, err.reason if isinstance(err, ImageWriteError)
                        else f"cannot write {out}: {type(err).__name__}: {err}")
            return
        self.summary.done += 1
        self.summary.megapixels += mp
        emit(self.on_event, ItemDone(path=path, output=out, info={"megapixels": mp}))

    def finish_saves(self, keep: int = 0, room_for: int = 0) -> None:
        """Finish the oldest writes until at most ``keep`` are in flight and the images they hold
        leave ``room_for`` more bytes within MAX_PENDING_BYTES."""
        while len(self.pending) > keep or (
                self.pending and sum(e[3] for e in self.pending) + room_for > MAX_PENDING_BYTES):
            self.finish_save()

    def close(self) -> None:
        for *_rest, fut in self.pending:
            with contextlib.suppress(Exception):
                fut.result()
        self.pool.shutdown(wait=True, cancel_futures=True)

    # -- the loop
    def load(self, path: Path):
        from .. import images

        return images.load_image(path, **self.load_kw)

    def run(self, todo: Plan) -> None:
        """Restore ``todo`` in order, decoding the next file while one is restored."""
        try:
            next_load: Future | None = self.pool.submit(self.load, todo[0][0]) if todo else None
            for idx, (path, out, pil) in enumerate(todo):
                check(self.cancel)
                fut, next_load = next_load, None
                if idx + 1 < len(todo):  # decode the next file while this one is restored
                    next_load = self.pool.submit(self.load, todo[idx + 1][0])
                self._one(path, out, pil, fut)
                self.progress(self.handled + idx + 1, path.name)
            self.finish_saves()
        except Cancelled:
            self.finish_saves()  # writes in flight complete (atomic either way) and are reported
            raise

    def _read(self, path: Path, fut: Future) -> Any:
        """The decoded image, or None (reported) when it cannot be read."""
        try:
            img = fut.result()
        except ImageReadError as err:
            reason = err.reason
        except (OSError, ValueError) as err:
            reason = f"cannot read: {err}"
        else:
            frames = int(img.extra.get("frames", 1) or 1)
            if frames > 1:
                self.summary.first_frame_only.append((path, frames))
                emit(self.on_event, Log(f"{path.name} has {frames} frames; only the first one is restored.",
                                        level="warning"))
            return img
        self.summary.unreadable += 1
        self.failed(path, reason)
        return None

    def _relay(self, name: str) -> EventCallback:
        def tile_progress(ev: Any) -> None:  # tiles done inside this image
            if isinstance(ev, Progress) and ev.stage == "tiles":
                ev = dataclasses.replace(ev, message=name)
            elif isinstance(ev, Log):  # the same note for every image is said once
                if ev.message in self.said:
                    return
                self.said.add(ev.message)
            emit(self.on_event, ev)

        return tile_progress

    def _one(self, path: Path, out: Path, pil: str | None, fut: Future) -> None:
        """Read, restore and start writing one file (failures reported)."""
        from .. import images

        img = self._read(path, fut)
        if img is None:
            return
        mp = img.rgb.shape[0] * img.rgb.shape[1] / 1e6
        try:
            restored = restore_image(self.model, img, on_event=self._relay(path.name), cancel=self.cancel,
                                     **self.restore_kw)
        except (Cancelled, DeviceError):
            raise
        except (Lesson7Error, RuntimeError, ValueError) as err:
            self.failed(path, f"cannot restore: {err}")
            return
        del img
        nbytes = restored.rgb.nbytes + (0 if restored.alpha is None else restored.alpha.nbytes)
        self.finish_saves(keep=self.max_pending - 1, room_for=nbytes)  # earlier writes, which ran meanwhile
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            self.failed(path, f"cannot create the folder {out.parent}: {os_error_reason(err, out.parent)}")
            return
        clean_stale_parts(out.parent, out.name)
        write = self.pool.submit(images.save_image, restored, out, format=pil, quality=self.quality)
        self.pending.append((path, out, mp, nbytes, write))
        del restored
        while self.pending and self.pending[0][4].done():  # report finished writes now (in line: this one)
            self.finish_save()


def restore_folder(
    model: Any,
    src: str | Path,
    dst: str | Path,
    *,
    recursive: bool = True,
    keep_tree: bool = True,
    skip_existing: bool = False,
    out_format: str = "keep",
    tile: int | None = None,
    device: str | torch.device | None = None,
    precision: str = "auto",
    ensemble: bool = False,
    allow_in_place: bool = False,
    max_pixels: int | None = None,
    quality: int = 95,
    on_event: Optional[EventCallback] = None,
    cancel: Optional[CancelToken] = None,
) -> RestoreSummary:
    """Restore every image of ``src`` (a folder, or one file) into the folder ``dst``.

    Keeps the folder tree (``keep_tree``) and each file's format (``out_format="keep"``, else
    png/jpg/webp/tiff with the extension changed). Writes are atomic, so an output that exists is
    complete: ``skip_existing`` makes a rerun resume where a cancelled or killed run stopped.
    A file that cannot be read, restored or written is reported (ItemFailed, ``summary.failed``)
    and the batch goes on. Files inside ``dst`` are never taken as sources. No source file is
    overwritten unless ``allow_in_place``. Under torchrun (RANK / WORLD_SIZE set) each rank
    restores its share ``files[rank::world]`` of the sorted list. Cancel stops between tiles and
    leaves no partial file.
    """
    src = Path(src).expanduser()
    dst = Path(dst).expanduser()
    files = _sources(src, dst, recursive, allow_in_place, quality)
    plan = plan_outputs(files, src, dst, keep_tree, out_format)
    sources = {f.resolve() for f in files}
    rank, world = dist_share()
    plan = plan[rank::world]
    summary = RestoreSummary(dst=dst, total=len(plan), rank=rank, world_size=world)
    note = precision_note(model, precision)
    if note:  # said once for the folder, not again for each image
        emit(on_event, Log(note, level="warning"))
        precision = "auto"
    restore_kw = dict(tile=tile, device=device, precision=precision, ensemble=ensemble)
    load_kw = {} if max_pixels is None else {"max_pixels": max_pixels}
    batch = _FolderBatch(model, summary, len(plan), restore_kw, load_kw, quality, on_event, cancel)
    try:
        todo = batch.triage(plan, sources, allow_in_place, skip_existing)
        if todo:
            check_output_folder(dst)  # before restoring anything (OutputFolderError)
        batch.progress(batch.handled, "")
        batch.run(todo)
    finally:
        batch.close()
        release_freed_memory()
    summary.seconds = time.perf_counter() - batch.t0
    emit(on_event, Finished(summary=summary.to_dict()))
    return summary
