"""The jobs of a restore front end (the GUI's Restore panel runs them in its workers): list the
images of several inputs as they are found, keep the last model loaded, preview one image, and
restore several inputs (files and folders) into one destination with one progress."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Optional, Sequence

from ..events import CancelToken, Event, EventCallback, Finished, ItemDone, Progress, RateMeter, check, emit
from .folder import RestoreSummary, restore_folder
from .image import restore_image
from .loading import load_any_model

SCAN_BATCH = 500  # files a Found event carries (at most)


@dataclass
class Found(Event):
    """A batch of image files found while scanning the inputs."""

    paths: list[Path]


def scan_inputs(inputs: Sequence[Path], recursive: bool = True, *, on_event: Optional[EventCallback] = None,
                cancel: Optional[CancelToken] = None) -> int:
    """Report the image files of ``inputs`` (files as given, folders scanned) in :class:`Found`
    batches of up to ``SCAN_BATCH``; returns how many were found. Cancel stops between batches."""
    from .. import images

    batch: list[Path] = []
    n = 0
    for inp in inputs:
        inp = Path(inp)
        it = images.iter_images(inp, recursive=recursive) if inp.is_dir() else iter([inp])
        for p in it:
            batch.append(p)
            n += 1
            if len(batch) >= SCAN_BATCH:
                check(cancel)
                emit(on_event, Found(batch))
                batch = []
    if batch:
        emit(on_event, Found(batch))
    return n


def load_cached(model: Any, device: str | None = None, cache: dict | None = None) -> Any:
    """``model`` itself when it is loaded already; a path (or "starter") loaded with
    :func:`~.loading.load_any_model` on ``device``, through ``cache`` (which keeps the last model
    only) when one is given."""
    if not isinstance(model, (str, Path)):
        return model
    key = (str(model), device)
    if cache is not None and key in cache:
        return cache[key]
    loaded = load_any_model(model, device=device)
    if cache is not None:
        cache.clear()  # keep one model in memory
        cache[key] = loaded
    return loaded


class Preview(NamedTuple):
    """One image before and after, and the seconds the restore took (loading left out)."""

    image: Any  # ImageData
    restored: Any  # ImageData
    seconds: float


def preview_image(model: Any, image_path: Path, *, tile: int | None = None, device: str | None = None,
                  ensemble: bool = False, cache: dict | None = None, on_event: Optional[EventCallback] = None,
                  cancel: Optional[CancelToken] = None) -> Preview:
    """Restore one image (``model`` a loaded model or its path, see :func:`load_cached`)."""
    from .. import images

    net = load_cached(model, device, cache)
    img = images.load_image(image_path)
    check(cancel)
    t0 = time.perf_counter()
    out = restore_image(net, img, tile=tile, device=device, ensemble=ensemble, on_event=on_event, cancel=cancel)
    return Preview(img, out, time.perf_counter() - t0)


class _Relay:
    """Passes one input's events on as part of the whole batch: overall progress and speed, one
    Finished at the end (not one per input)."""

    def __init__(self, total: int, on_event: Optional[EventCallback], summary: RestoreSummary) -> None:
        self.on_event, self.summary = on_event, summary
        self.total = total
        self.meter = RateMeter(total)
        self.t0 = time.perf_counter()
        self.offset = 0  # files of the inputs done before this one
        self.mp_now = 0.0  # megapixels restored of the input being restored now

    def next_input(self, done_before: int) -> None:
        self.offset = done_before
        self.mp_now = 0.0

    def __call__(self, ev: Event) -> None:
        if isinstance(ev, Progress) and ev.stage != "tiles":  # tiles inside one image: passed on as they are
            done = self.offset + ev.done
            _r, eta = self.meter.update(done)
            el = time.perf_counter() - self.t0
            mp = self.summary.megapixels + self.mp_now
            ev = Progress(done, self.total, message=ev.message, stage=ev.stage,
                          rate=mp / el if el > 0 and mp else None, rate_unit="MP/s", eta_s=eta)
        elif isinstance(ev, ItemDone):
            self.mp_now += float(ev.info.get("megapixels", 0.0))
        elif isinstance(ev, Finished):  # one per input folder: the batch says its own
            return
        emit(self.on_event, ev)


def restore_inputs(
    model: Any,
    inputs: Sequence[Path],
    dst: Path,
    *,
    recursive: bool = True,
    keep_tree: bool = True,
    skip_existing: bool = False,
    out_format: str = "keep",
    tile: int | None = None,
    device: str | None = None,
    ensemble: bool = False,
    cache: dict | None = None,
    on_event: Optional[EventCallback] = None,
    cancel: Optional[CancelToken] = None,
) -> RestoreSummary:
    """Restore ``inputs`` (files and folders) into ``dst`` with :func:`~.folder.restore_folder`;
    ``model`` a loaded model or its path (see :func:`load_cached`).

    One input: its tree goes to ``dst``. Several: files go to ``dst``, each folder to
    ``dst/<folder name>``; progress and speed count over all of them, and one Finished ends it."""
    from .. import images

    net = load_cached(model, device, cache)
    opts = dict(recursive=recursive, keep_tree=keep_tree, skip_existing=skip_existing, out_format=out_format,
                tile=tile, device=device, ensemble=ensemble)
    inputs = [Path(p) for p in inputs]
    if len(inputs) == 1:
        return restore_folder(net, inputs[0], dst, on_event=on_event, cancel=cancel, **opts)
    counts = [sum(1 for _ in images.iter_images(p, recursive=recursive)) if p.is_dir() else 1 for p in inputs]
    summary = RestoreSummary(dst=Path(dst), total=sum(counts))
    relay = _Relay(summary.total, on_event, summary)
    done_before = 0
    for inp, n in zip(inputs, counts):
        check(cancel)
        relay.next_input(done_before)
        out = Path(dst) / inp.name if inp.is_dir() else Path(dst)
        summary.add(restore_folder(net, inp, out, on_event=relay, cancel=cancel, **opts))
        done_before += n
    summary.seconds = time.perf_counter() - relay.t0
    emit(on_event, Finished(summary=summary.to_dict()))
    return summary
