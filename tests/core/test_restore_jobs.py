"""core.restore.jobs: the Restore panel's jobs (scan the inputs, keep the last model, preview one
image, restore several inputs into one destination) with the event / cancel protocol."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lesson7_studio.core import checkpoint, models, restore
from lesson7_studio.core.errors import Cancelled
from lesson7_studio.core.events import CancelToken, Finished, ItemDone, ItemFailed, Progress
from lesson7_studio.core.restore import jobs


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    opts = dict(nf=8, blocks=1, scale=2, self_attention=False)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    return checkpoint.save_model(path, models.create("unet-lite", **opts), "unet-lite", opts)


def _images(folder: Path, n: int, size=(20, 24)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(folder)))
    out = []
    for i in range(n):
        p = folder / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (size[0], size[1], 3), dtype=np.uint8)).save(p)
        out.append(p)
    return out


def test_scan_reports_every_image_in_batches_and_stops_on_cancel(tmp_path, monkeypatch):
    a = _images(tmp_path / "a", 3)
    b = _images(tmp_path / "a" / "sub", 2)
    single = _images(tmp_path / "one", 1)[0]
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    monkeypatch.setattr(jobs, "SCAN_BATCH", 2)
    events = []
    n = jobs.scan_inputs([tmp_path / "a", single], True, on_event=events.append)
    found = [p for e in events for p in e.paths]
    assert all(isinstance(e, jobs.Found) for e in events) and [len(e.paths) for e in events] == [2, 2, 2]
    assert n == 6 and sorted(found) == sorted(a + b + [single])
    events.clear()
    assert jobs.scan_inputs([tmp_path / "a"], False, on_event=events.append) == 3  # no subfolders
    tok = CancelToken()
    tok.cancel()
    with pytest.raises(Cancelled):
        jobs.scan_inputs([tmp_path / "a"], True, cancel=tok)


def test_the_cache_keeps_the_last_model_only(tiny_file, tmp_path):
    cache: dict = {}
    m1 = jobs.load_cached(tiny_file, "cpu", cache)
    assert jobs.load_cached(tiny_file, "cpu", cache) is m1 and len(cache) == 1
    other = tmp_path / "other.safetensors"
    other.write_bytes(tiny_file.read_bytes())
    m2 = jobs.load_cached(other, "cpu", cache)
    assert m2 is not m1 and list(cache) == [(str(other), "cpu")]
    assert jobs.load_cached(m1) is m1  # a loaded model is used as it is
    assert jobs.load_cached(tiny_file, "cpu", None) is not m1  # no cache: loaded afresh


def test_preview_restores_one_image(tiny_file, tmp_path):
    path = _images(tmp_path / "p", 1)[0]
    res = jobs.preview_image(tiny_file, path, device="cpu", cache={})
    img, out, seconds = res
    assert img.rgb.shape == (20, 24, 3) and out.rgb.shape == (40, 48, 3) and seconds >= 0
    ref = restore.restore_image(restore.load_any_model(tiny_file, device="cpu"), img, device="cpu")
    assert np.array_equal(out.rgb, ref.rgb)


def test_several_inputs_go_to_one_destination_with_one_progress(tiny_file, tmp_path):
    a = _images(tmp_path / "a", 2)
    b = _images(tmp_path / "b", 1)
    (tmp_path / "b" / "broken.png").write_bytes(b"\x89PNG broken")
    single = _images(tmp_path / "one", 1)[0]
    dst = tmp_path / "out"
    events = []
    s = jobs.restore_inputs(tiny_file, [tmp_path / "a", tmp_path / "b", single], dst, device="cpu",
                            out_format="png", on_event=events.append)
    assert (s.done, len(s.failed), s.unreadable, s.total) == (4, 1, 1, 5) and s.ok
    assert s.dst == dst and s.megapixels == pytest.approx(4 * 20 * 24 / 1e6) and s.seconds > 0
    for p in a:
        assert Image.open(dst / "a" / p.name).size == (48, 40)
    assert (dst / "b" / b[0].name).is_file() and (dst / single.name).is_file()
    overall = [e for e in events if isinstance(e, Progress) and e.stage != "tiles"]
    assert overall and all(e.total == 5 for e in overall)
    assert [e.done for e in overall] == sorted(e.done for e in overall) and overall[-1].done == 5
    assert sum(isinstance(e, ItemDone) for e in events) == 4 and sum(isinstance(e, ItemFailed) for e in events) == 1
    finished = [e for e in events if isinstance(e, Finished)]
    assert len(finished) == 1 and events[-1] is finished[0] and finished[0].summary["done"] == 4


def test_one_input_keeps_its_tree_and_a_cancel_stops_the_batch(tiny_file, tmp_path):
    _images(tmp_path / "src", 2)
    _images(tmp_path / "src" / "sub", 1)
    s = jobs.restore_inputs(tiny_file, [tmp_path / "src"], tmp_path / "out", device="cpu")
    assert s.done == 3 and (tmp_path / "out" / "sub" / "img0.png").is_file()
    tok = CancelToken()

    def stop_after_first(ev):
        if isinstance(ev, ItemDone):
            tok.cancel()

    _images(tmp_path / "more", 3)
    with pytest.raises(Cancelled):
        jobs.restore_inputs(tiny_file, [tmp_path / "src", tmp_path / "more"], tmp_path / "out2", device="cpu",
                            on_event=stop_after_first, cancel=tok)
    written = list((tmp_path / "out2").rglob("*.png"))
    assert 1 <= len(written) < 6 and not list((tmp_path / "out2").rglob("*.part"))
