"""Restore panel: a batch restore of a small folder with a broken file, cancel, preview, the lazy
file list."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PIL import Image  # noqa: E402


@pytest.fixture
def rst_ctx(qapp, tmp_path):
    from lesson7_studio.core.project import Project
    from lesson7_studio.gui.context import AppContext, Settings

    c = AppContext(Project(tmp_path / "project").create(), Settings(tmp_path / "settings.ini"), device="cpu")
    yield c
    c.cancel_all(wait_ms=60000)


@pytest.fixture
def tiny_model(rst_ctx) -> Path:
    import torch

    from lesson7_studio.core import checkpoint, models

    torch.manual_seed(0)
    opts = dict(nf=8, blocks=1, scale=2)
    return checkpoint.save_model(rst_ctx.project.models_dir / "tiny.safetensors",
                                 models.create("unet-lite", **opts), "unet-lite", opts)


def _images(folder: Path, n: int, size: int = 24) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        p = folder / f"img{i:03d}.png"
        Image.fromarray(rng.integers(0, 256, (size, size + 8, 3), dtype=np.uint8)).save(p)
        out.append(p)
    return out


def _panel(qtbot, ctx, model: Path):
    from lesson7_studio.gui.panels.restore import RestorePanel

    p = RestorePanel(ctx)
    qtbot.addWidget(p)
    p.resize(1000, 640)
    p.show()
    p.set_model(model)
    return p


def _add(qtbot, p, paths):
    p.add_inputs(paths)
    qtbot.waitUntil(lambda: not p.is_scanning(), timeout=20000)


def test_batch_with_a_broken_file_finishes_and_lists_it(qtbot, rst_ctx, tiny_model, tmp_path):
    src = tmp_path / "photos"
    good = _images(src, 3)
    _images(src / "sub", 1)
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    dst = tmp_path / "out"
    p = _panel(qtbot, rst_ctx, tiny_model)
    assert p.model_path() == tiny_model
    _add(qtbot, p, [src])
    assert p.file_model.total() == 5
    assert p.count_label.text().startswith("5 images")
    p.set_output(dst)
    p.format_combo.setCurrentIndex(p.format_combo.findData("png"))
    assert p.start_button.isEnabled()
    p.start_button.click()
    assert p.is_busy() and p.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not p.is_busy(), timeout=60000)
    s = p.summary()
    assert s is not None and s.done == 4 and len(s.failed) == 1
    rows = p.failure_rows()
    assert len(rows) == 1 and rows[0][0].endswith("broken.png") and rows[0][1]
    assert p.failures.isVisibleTo(p)
    for g in good:
        out = dst / g.name
        assert out.is_file() and Image.open(out).size == (2 * 32, 2 * 24)
    assert (dst / "sub" / "img000.png").is_file()  # the folder tree is kept
    assert not list(dst.rglob("*.part"))
    assert p.file_model.state(src / "broken.png") == "failed"
    assert p.file_model.state(good[0]) == "done"
    assert p.progress.value() == p.progress.maximum() == 5
    assert "4 restored" in p.status_label.text() and "1 failed" in p.status_label.text()
    assert p.open_button.isEnabled()


def test_cancel_stops_and_leaves_no_partial_file(qtbot, rst_ctx, tiny_model, tmp_path, monkeypatch):
    from lesson7_studio.core import restore
    from lesson7_studio.core.events import ItemDone

    real = restore.restore_image

    def slow(*a, **k):  # make the batch long enough to cancel in the middle
        time.sleep(0.15)
        return real(*a, **k)

    monkeypatch.setattr(restore.folder, "restore_image", slow)
    src = tmp_path / "many"
    files = _images(src, 20)
    dst = tmp_path / "out"
    p = _panel(qtbot, rst_ctx, tiny_model)
    _add(qtbot, p, [src])
    p.set_output(dst)
    p.start()
    first = []
    p._worker.event.connect(lambda ev: first.append(ev) if isinstance(ev, ItemDone) else None)
    qtbot.waitUntil(lambda: bool(first), timeout=30000)
    p.cancel_button.click()
    qtbot.waitUntil(lambda: not p.is_busy(), timeout=30000)
    assert p._worker.outcome == "cancelled"
    assert "Cancelled" in p.status_label.text()
    written = sorted(dst.rglob("*.png"))
    assert 1 <= len(written) < len(files)
    for w in written:  # every file there is whole
        Image.open(w).load()
    assert not [q for q in dst.rglob("*") if q.name.startswith(".") or q.suffix == ".part"]
    assert p.summary() is None
    assert p.start_button.isEnabled()

    # resume: skip existing restores the rest
    monkeypatch.setattr(restore.folder, "restore_image", real)
    p.skip_check.setChecked(True)
    p.start()
    qtbot.waitUntil(lambda: not p.is_busy(), timeout=60000)
    s = p.summary()
    assert s.skipped == len(written) and s.done == len(files) - len(written)
    assert len(list(dst.rglob("*.png"))) == len(files)


def test_preview_first_image_and_several_inputs(qtbot, rst_ctx, tiny_model, tmp_path):
    a = _images(tmp_path / "a", 2)
    b = _images(tmp_path / "b", 1)
    single = tmp_path / "single.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(single)
    p = _panel(qtbot, rst_ctx, tiny_model)
    _add(qtbot, p, [tmp_path / "a", tmp_path / "b", single])
    assert p.file_model.total() == 4
    assert p.dst_edit.text()  # an output folder is suggested
    p.preview_first()
    qtbot.waitUntil(lambda: p.preview.has_image() and not p.is_busy(), timeout=30000)
    assert p.preview._after_item.pixmap().width() == 2 * 32
    assert p.preview._item.pixmap().width() == 32  # the input, stretched under the result
    dst = tmp_path / "out"
    p.set_output(dst)
    p.start()
    qtbot.waitUntil(lambda: not p.is_busy(), timeout=60000)
    assert p.summary().done == 4 and p.progress.value() == 4
    assert (dst / "a" / a[1].name).is_file() and (dst / "b" / b[0].name).is_file() and (dst / "single.png").is_file()


def test_file_list_is_lazy_for_thousands_of_files(qtbot):
    from lesson7_studio.gui.panels.restore import FETCH_CHUNK, FileListModel

    m = FileListModel()
    paths = [Path(f"/x/{i:05d}.png") for i in range(5 * FETCH_CHUNK + 7)]
    inserted = []
    m.rowsInserted.connect(lambda _parent, first, last: inserted.append((first, last)))
    m.add(paths)  # its speed is measured by benchmarks/bench_gui_lists.py
    assert inserted == [(0, FETCH_CHUNK - 1)]  # one batch of shown rows, not a signal per file
    assert m.total() == len(paths) and m.rowCount() == FETCH_CHUNK
    m.add(paths[:10])  # already listed: no duplicates, nothing inserted
    assert m.total() == len(paths) and len(inserted) == 1
    assert m.canFetchMore()
    while m.canFetchMore():
        m.fetchMore()
    assert m.rowCount() == len(paths)
    m.set_state(paths[-1], "failed", "bad")
    assert m.state(paths[-1]) == "failed"
    assert m.data(m.index(len(paths) - 1)).startswith("\u2717")


def test_dropping_a_folder_adds_it(qtbot, rst_ctx, tiny_model, tmp_path):
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    _images(tmp_path / "dropped", 3)
    p = _panel(qtbot, rst_ctx, tiny_model)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "dropped"))])
    ev = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                    Qt.KeyboardModifier.NoModifier)
    p.dropEvent(ev)
    qtbot.waitUntil(lambda: not p.is_scanning(), timeout=20000)
    assert p.inputs() == [tmp_path / "dropped"] and p.file_model.total() == 3
    p.clear_inputs()
    assert p.file_model.total() == 0 and not p.start_button.isEnabled()


def test_best_quality_runs_the_ensemble_and_is_remembered(qtbot, rst_ctx, tiny_model, tmp_path, monkeypatch):
    from lesson7_studio.core import restore

    seen = []
    real = restore.restore_image
    monkeypatch.setattr(restore.folder, "restore_image", lambda *a, **k: seen.append(k.get("ensemble")) or real(*a, **k))
    src = tmp_path / "photos"
    _images(src, 2)
    p = _panel(qtbot, rst_ctx, tiny_model)
    assert not p.ensemble_check.isChecked() and "8" in p.ensemble_check.text()
    _add(qtbot, p, [src])
    p.set_output(tmp_path / "out")
    p.ensemble_check.setChecked(True)
    p.start_button.click()
    qtbot.waitUntil(lambda: not p.is_busy(), timeout=60000)
    assert p.summary().done == 2 and seen == [True, True]
    assert _panel(qtbot, rst_ctx, tiny_model).ensemble_check.isChecked()  # the choice is kept
