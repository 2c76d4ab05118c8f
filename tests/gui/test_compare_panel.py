"""Compare panel: restore an image with a tiny model, metrics against the ground truth, the split
slider and the synced zoom of the views, saving the result."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PIL import Image  # noqa: E402
from PySide6.QtCore import QPoint, Qt  # noqa: E402


def _photo(size: int, seed: int = 0) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size]
    a = np.stack([(x * 7 + seed * 30) % 256, (y * 5) % 256, ((x + y) * 3) % 256], -1).astype(np.uint8)
    a[size // 4 : size // 2, size // 3 : size // 2] = 220
    return a


@pytest.fixture
def cmp_ctx(qapp, tmp_path):
    from lesson7_studio.core.project import Project
    from lesson7_studio.gui.context import AppContext, Settings

    c = AppContext(Project(tmp_path / "project").create(), Settings(tmp_path / "settings.ini"), device="cpu")
    yield c
    c.cancel_all(wait_ms=60000)


@pytest.fixture
def tiny_model(cmp_ctx) -> Path:
    import torch

    from lesson7_studio.core import checkpoint, models

    torch.manual_seed(0)
    opts = dict(nf=8, blocks=1, scale=2)
    net = models.create("unet-lite", **opts)
    return checkpoint.save_model(cmp_ctx.project.models_dir / "tiny.safetensors", net, "unet-lite", opts)


@pytest.fixture
def pair_dataset(cmp_ctx) -> Path:
    """A paired dataset (hr 64 px, lr 32 px) with one valid image."""
    root = cmp_ctx.project.datasets_dir / "pairs"
    (root / "hr").mkdir(parents=True)
    (root / "lr").mkdir()
    hr = _photo(64)
    Image.fromarray(hr).save(root / "hr" / "a.png")
    Image.fromarray(hr).resize((32, 32), Image.Resampling.BILINEAR).save(root / "lr" / "a.png")
    (root / "dataset.json").write_text(json.dumps({"scale": 2, "train": [], "valid": ["a.png"], "skipped": []}))
    return root


def _panel(qtbot, ctx, model: Path):
    from lesson7_studio.gui.panels.compare import ComparePanel

    p = ComparePanel(ctx)
    qtbot.addWidget(p)
    p.resize(1000, 640)
    p.show()
    qtbot.waitExposed(p)
    p.set_models([model])
    return p


def _wait(qtbot, panel, key: str) -> None:
    qtbot.waitUntil(lambda: not panel.is_busy() and key in panel.metrics(), timeout=60000)


def test_metrics_against_ground_truth(qtbot, cmp_ctx, tiny_model, pair_dataset, tmp_path):
    p = _panel(qtbot, cmp_ctx, tiny_model)
    assert p.model_list.count() >= 1
    # the panel lists the project's datasets and their valid images
    assert p.dataset_combo.currentData() == str(pair_dataset)
    assert p.valid_combo.count() == 1
    p.on_shown()  # nothing open yet: the first dataset's first valid image opens and is restored
    assert p._current == (pair_dataset / "lr" / "a.png", pair_dataset / "hr" / "a.png")
    key = str(tiny_model)
    _wait(qtbot, p, key)
    m = p.metrics()
    for k in ("psnr_y", "psnr", "ssim_y", "ssim"):
        assert np.isfinite(m[key][k]) and np.isfinite(m["bicubic"][k])
    assert 5 < m["bicubic"]["psnr"] < 60
    t = p.metrics_table
    headers = [t.horizontalHeaderItem(c).text() for c in range(t.columnCount())]
    assert "Y-PSNR" in headers and "SSIM" in headers
    assert t.rowCount() == 2
    assert t.item(1, headers.index("Y-PSNR")).text().endswith("dB")
    assert "dB" in t.item(1, headers.index("\u0394 Y-PSNR vs bicubic")).text()
    # before/after choices: the input (bicubic), the ground truth and the model
    befores = [p.before_combo.itemData(i) for i in range(p.before_combo.count())]
    assert {"bicubic", "gt", key} <= set(befores)
    assert p.after_combo.currentData() == key
    # the result is the model's output at twice the input size, saved with its metadata
    res = p.result(tiny_model)
    assert res.rgb.shape == (64, 64, 3)
    out = p.save_result(tmp_path / "saved.png")
    assert out is not None and Image.open(out).size == (64, 64)


def test_dataset_image_opened_as_file_gets_its_ground_truth(qtbot, cmp_ctx, tiny_model, pair_dataset):
    p = _panel(qtbot, cmp_ctx, tiny_model)
    p.open_images([pair_dataset / "lr" / "a.png"])
    _wait(qtbot, p, str(tiny_model))
    assert "psnr_y" in p.metrics()[str(tiny_model)]
    assert "gt" in p._sources


def test_split_slider_and_synced_zoom_move_both_images(qtbot, cmp_ctx, tiny_model, tmp_path):
    src = tmp_path / "photo.png"
    Image.fromarray(_photo(40)).save(src)
    p = _panel(qtbot, cmp_ctx, tiny_model)
    p.open_images([src])
    key = str(tiny_model)
    _wait(qtbot, p, key)
    # no ground truth: the model is measured against bicubic
    assert set(p.metrics()[key]) == {"psnr_bic"}
    assert p.before_combo.currentData() == "bicubic" and p.after_combo.currentData() == key

    # split view: both images are in it; dragging the divider moves the boundary between them
    p.set_view_mode("split")
    sv = p.split_view
    assert not sv._item.pixmap().isNull() and sv._after_item is not None
    assert sv._after_item.pixmap().width() == 80 and sv._item.pixmap().width() == 80
    x0 = sv._clip.rect().left()
    vp = sv.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=QPoint(sv.divider_x(), vp.height() // 2))
    qtbot.mouseMove(vp, QPoint(sv.divider_x() - 40, vp.height() // 2))
    qtbot.mouseMove(vp, QPoint(vp.width() // 4, vp.height() // 2))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=QPoint(vp.width() // 4, vp.height() // 2))
    assert sv.split() == pytest.approx(0.25, abs=0.02)
    assert sv._clip.rect().left() < x0 - 5  # more of "after" is shown

    # side by side: zooming and panning one view moves the other
    p.set_view_mode("side")
    left, right = p.left_view, p.right_view
    assert left.has_image() and right.has_image()
    left.set_zoom(6.0)
    assert right.zoom() == pytest.approx(6.0)
    assert sv.zoom() == pytest.approx(6.0)  # the split view follows too (mode switches keep the region)
    left.horizontalScrollBar().setValue(left.horizontalScrollBar().value() + 50)
    assert right.view_state().cx == pytest.approx(left.view_state().cx, abs=0.01)
    right.fit()
    assert left.is_fit()

    # the zoom buttons act on the shown view
    p.zoom_bar.one_button.click()
    assert right.zoom() == pytest.approx(1.0) and left.zoom() == pytest.approx(1.0)

    # difference heatmap and flicker have both images too
    p.set_view_mode("diff")
    assert p.diff_view.has_image()
    assert p.legend.isVisible()
    p.set_view_mode("flicker")
    assert p.flicker_view.count() == 2 and p.flicker_view.is_flickering()
    p.set_view_mode("split")
    assert not p.flicker_view.is_flickering()


def test_first_model_is_selected_by_default(qtbot, cmp_ctx, tiny_model):
    from lesson7_studio.gui.panels.compare import ComparePanel

    p = ComparePanel(cmp_ctx)
    qtbot.addWidget(p)
    choices = cmp_ctx.available_models()
    assert choices
    first = p.model_list.item(0)
    assert first.data(Qt.ItemDataRole.UserRole) == str(choices[0].path)
    assert first.checkState() == Qt.CheckState.Checked  # the starter model when it is bundled
    assert [str(path) for _l, path in p.selected_models()] == [str(choices[0].path)]


def test_opening_another_image_while_restoring_shows_only_the_new_one(qtbot, cmp_ctx, tiny_model, tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(_photo(48)).save(a)
    Image.fromarray(_photo(24, seed=3)).save(b)
    p = _panel(qtbot, cmp_ctx, tiny_model)
    p.open_images([a])
    assert p.is_busy() and p.cancel_button.isEnabled()
    p.open_images([b])  # cancels the first job; the second starts when it has stopped
    key = str(tiny_model)
    _wait(qtbot, p, key)
    assert p._current[0] == b
    assert p.result(tiny_model).rgb.shape == (48, 48, 3)
    assert p._sources["input"].display.shape == (24, 24, 3)
    assert p.image_combo.count() == 2 and p.image_combo.currentIndex() == 1
    # going back to the first image restores it again
    p.image_combo.setCurrentIndex(0)
    p._image_chosen(0)
    _wait(qtbot, p, key)
    assert p.result(tiny_model).rgb.shape == (96, 96, 3)


def test_run_checkpoints_are_listed(qtbot, cmp_ctx, tiny_model):
    import shutil

    from lesson7_studio.gui.panels.compare import ComparePanel

    run = cmp_ctx.project.runs_dir / "quick-1"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    for name in ("main-s0000010.safetensors", "main-s0000020.safetensors", "gan-s0000020.critic.safetensors"):
        shutil.copy(tiny_model, run / "checkpoints" / name)
    p = ComparePanel(cmp_ctx)
    qtbot.addWidget(p)
    paths = [p.model_list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(p.model_list.count())]
    assert str(run / "checkpoints" / "main-s0000020.safetensors") in paths
    assert not any(x.endswith(("s0000010.safetensors", ".critic.safetensors")) for x in paths)


def test_valid_combo_follows_the_image_shown(qtbot, cmp_ctx, tiny_model, pair_dataset, tmp_path):
    hr = _photo(64, seed=2)
    Image.fromarray(hr).save(pair_dataset / "hr" / "b.png")
    Image.fromarray(hr).resize((32, 32), Image.Resampling.BILINEAR).save(pair_dataset / "lr" / "b.png")
    meta = json.loads((pair_dataset / "dataset.json").read_text())
    meta["train"] = ["b.png"]
    (pair_dataset / "dataset.json").write_text(json.dumps(meta))
    src = tmp_path / "photo.png"
    Image.fromarray(_photo(40)).save(src)
    p = _panel(qtbot, cmp_ctx, tiny_model)
    p.auto_check.setChecked(False)  # no restoring needed here
    p.on_shown()
    assert p._current[0].name == "a.png" and p.valid_combo.currentData() == "a.png"
    # an image from elsewhere: no valid image is selected (not a stale one)
    p.open_images([src])
    assert p.valid_combo.currentIndex() == -1
    p.refresh_datasets()  # e.g. when the panel is shown again
    assert p.valid_combo.currentIndex() == -1
    # a train image of the dataset has a ground truth but is not a valid image either
    p.open_images([pair_dataset / "lr" / "b.png"])
    assert p._current[1] is not None and p.valid_combo.currentIndex() == -1
    # back to the valid image through the list of opened images
    p._image_chosen(0)
    assert p.valid_combo.currentData() == "a.png"
    p.refresh_datasets()
    assert p.valid_combo.currentData() == "a.png"


def test_side_controls_fit_a_small_window(qtbot, cmp_ctx, tiny_model, pair_dataset):
    p = _panel(qtbot, cmp_ctx, tiny_model)
    p.resize(920, 590)  # the panel's share of a 1024x640 window
    qtbot.wait(50)
    for w in (p.open_button, p.import_button, p.tile_combo, p.auto_check, p.restore_button, p.dataset_combo,
              p.valid_combo, p.before_combo, p.after_combo):
        assert w.width() >= w.minimumSizeHint().width(), w
    assert p.import_button.width() >= p.import_button.sizeHint().width()
    assert p.auto_check.width() >= p.auto_check.sizeHint().width()
    # long entries are elided in the middle; the whole text is the tooltip
    p.before_combo.addItem("Run: a-very-long-run-name-that-does-not-fit (step 123456)", "x")
    p.before_combo.setCurrentIndex(p.before_combo.count() - 1)
    p.before_combo.repaint()
    assert "a-very-long-run-name" in p.before_combo.toolTip()


def test_three_models_fit_the_table_and_the_models_list_stays_put(qtbot, cmp_ctx, tiny_model, pair_dataset):
    """Issue 14: the metrics table shows bicubic and three models without scrolling; choosing a
    validation image (two lines of info instead of one) does not move the Models list."""
    import shutil

    from PySide6.QtCore import QPoint

    copies = [tiny_model]
    for name in ("tiny-b", "tiny-c"):
        copies.append(shutil.copy(tiny_model, tiny_model.with_name(f"{name}.safetensors")))
    p = _panel(qtbot, cmp_ctx, tiny_model)
    p.resize(1184, 740)  # the panel's share of a 1280x800 window
    p.refresh_models()
    p.set_models(copies)
    assert len(p.selected_models()) == 3
    qtbot.wait(50)
    y_before = p.model_list.mapTo(p, QPoint(0, 0)).y()
    p.valid_combo.setCurrentIndex(0)
    p._valid_chosen(0)  # what picking the image in the Valid combo does
    qtbot.waitUntil(lambda: not p.is_busy() and all(str(m) in p.metrics() for m in copies), timeout=90000)
    qtbot.wait(50)
    assert "Ground truth" in p.image_info.full_text()
    assert p.model_list.mapTo(p, QPoint(0, 0)).y() == y_before
    t = p.metrics_table
    assert t.rowCount() == 4  # bicubic + three models
    rows_h = sum(t.rowHeight(r) for r in range(t.rowCount()))
    assert t.viewport().height() >= rows_h, (t.viewport().height(), rows_h)
    assert not t.verticalScrollBar().isVisible()
