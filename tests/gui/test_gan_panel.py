"""Inspect panel: the timeline over a tiny recorded run's epochs and the critic's patch map."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")



@pytest.fixture
def gan_ctx(qapp, tmp_path):
    from lesson7_studio.core.project import Project
    from lesson7_studio.gui.context import AppContext, Settings

    c = AppContext(Project(tmp_path / "project").create(), Settings(tmp_path / "settings.ini"), device="cpu")
    yield c
    c.cancel_all(wait_ms=60000)


def _cell(size: int, value: int) -> np.ndarray:
    a = np.full((size, size, 3), value, np.uint8)
    a[: size // 2, : size // 2, 0] = 255 - value
    return a


def make_run(root: Path, *, wgan: bool = False, critic: bool = True) -> Path:
    """A run folder laid out as core.train.run writes it: config.json, metrics.csv, samples/ PNG
    grids (rows of input | prediction | target, or the WGAN noise grid), critic checkpoint."""
    import torch

    from lesson7_studio.core import checkpoint, models
    from lesson7_studio.core.train.callbacks import grid_image, save_png

    root.mkdir(parents=True)
    (root / "samples").mkdir()
    stages = ([{"name": "wgan", "kind": "wgan", "epochs": 2}] if wgan else
              [{"name": "pretrain", "kind": "restore", "epochs": 2}, {"name": "gan", "kind": "gan", "epochs": 3}])
    (root / "config.json").write_text(json.dumps({"recipe": "wgan" if wgan else "nogan", "arch": "unet-lite",
                                                  "preview_samples": 2, "stages": stages}))
    lines = ["stage,epoch,step,train_loss,valid_loss,gen_loss,critic_loss,lr,seconds"]
    step = 0
    for st in stages:
        for e in range(st["epochs"]):
            step += 5
            v = 40 * (e + 1)
            if wgan:
                grid = grid_image([[_cell(16, v + i) for i in range(8)] for _ in range(2)], pad=2)
            else:
                grid = grid_image([(_cell(64, 10), _cell(64, v), _cell(64, 200)) for _ in range(2)])
            save_png(grid, root / "samples" / f"{st['name']}_epoch{e:03d}.png")
            lines.append(f"{st['name']},{e},{step},{1 / step:.4f},{2 / step:.4f},0.7,0.6,0.001,1.0")
    (root / "metrics.csv").write_text("\n".join(lines) + "\n")
    if critic and not wgan:
        (root / "checkpoints").mkdir()
        torch.manual_seed(0)
        net = models.create("gan-critic", nf=8)
        checkpoint.save_model(root / "checkpoints" / "gan-s0000025.critic.safetensors", net, "gan-critic", {"nf": 8})
    return root


def _panel(qtbot, ctx):
    from lesson7_studio.gui.panels.gan import GanPanel

    p = GanPanel(ctx)
    qtbot.addWidget(p)
    p.resize(1000, 640)
    p.show()
    return p


def test_timeline_loads_the_epochs_of_a_recorded_run(qtbot, gan_ctx):
    run = make_run(gan_ctx.project.runs_dir / "nogan-1")
    gan_ctx.runs_changed.emit()
    p = _panel(qtbot, gan_ctx)
    assert p.run_combo.currentData() == str(run)
    samples = p.samples()
    assert [(s.stage, s.epoch) for s in samples] == [("pretrain", 0), ("pretrain", 1), ("gan", 0), ("gan", 1),
                                                    ("gan", 2)]
    assert [s.kind for s in samples] == ["restore", "restore", "gan", "gan", "gan"]
    # opens on the newest epoch
    assert p.slider.maximum() == 4 and p.slider.value() == 4
    assert "gan" in p.epoch_label.text() and "epoch 3 of 3" in p.epoch_label.text()
    assert "gen_loss" in p.metrics_label.text()
    # scrubbing the slider shows that epoch's grid and its prediction
    p.slider.setValue(0)
    assert p.current_sample().stage == "pretrain" and p.current_sample().epoch == 0
    img = p.critic.image_view.pixmap().toImage()
    assert (img.width(), img.height()) == (64, 64)
    assert img.pixelColor(63, 63).red() == 40  # epoch 0's prediction cell value
    p.slider.setValue(3)
    assert p.critic.image_view.pixmap().toImage().pixelColor(63, 63).red() == 80
    # stage filter
    p.stage_combo.setCurrentIndex(p.stage_combo.findData("gan"))
    assert len(p.samples()) == 3 and all(s.stage == "gan" for s in p.samples())
    # play walks to the end and stops
    p.slider.setValue(0)
    p._play.setInterval(20)
    p.play_button.setChecked(True)
    assert p.is_playing()
    qtbot.waitUntil(lambda: not p.is_playing(), timeout=5000)
    assert p.slider.value() == p.slider.maximum()


def test_critic_patch_map_over_the_generated_image(qtbot, gan_ctx):
    make_run(gan_ctx.project.runs_dir / "nogan-1")
    p = _panel(qtbot, gan_ctx)
    qtbot.waitUntil(lambda: p.fake_map() is not None, timeout=30000)
    fake = p.fake_map()
    # gan_critic on 64 px cells: a small 2-D map of patch beliefs in [0, 1]
    assert fake.ndim == 2 and fake.size >= 1
    assert np.all((fake >= 0) & (fake <= 1))
    assert p.critic.heat_view.has_image() and "fake" in p.critic.heat_view.label()
    assert p.critic.legend.isVisibleTo(p)
    assert "gan-s0000025" in p.critic.critic_label.text()
    # judging the real target instead gives a map of the same shape
    p.critic.judge_combo.setCurrentIndex(1)
    qtbot.waitUntil(lambda: not p.critic.is_busy(), timeout=30000)
    assert p.fake_map().shape == fake.shape


def test_small_samples_get_a_critic_map_in_the_panel(qtbot, gan_ctx):
    from lesson7_studio.core.train.callbacks import grid_image, save_png

    run = make_run(gan_ctx.project.runs_dir / "nogan-small")
    grid = grid_image([tuple(np.full((24, 40, 3), v, np.uint8) for v in (10, 90, 200)) for _ in range(2)])
    for f in (run / "samples").glob("*.png"):
        save_png(grid, f)
    p = _panel(qtbot, gan_ctx)
    p.open_run(run)
    qtbot.waitUntil(lambda: p.fake_map() is not None and not p.critic.is_busy(), timeout=30000)
    assert "failed" not in p.critic.critic_label.text()
    assert p.critic.heat_view.has_image() and np.all((p.fake_map() >= 0) & (p.fake_map() <= 1))


def test_missing_metrics_show_a_dash_not_nan(qtbot, gan_ctx):
    from lesson7_studio.gui.panels.gan import format_metric

    assert format_metric("nan") == "\u2014" and format_metric("") == "\u2014"
    assert format_metric(float("nan")) == "\u2014" and format_metric("0.68581") == "0.6858"
    run = make_run(gan_ctx.project.runs_dir / "nogan-nan")
    csv = run / "metrics.csv"
    csv.write_text(csv.read_text().replace(",0.7,0.6,", ",nan,0.6,"))
    p = _panel(qtbot, gan_ctx)
    p.open_run(run)
    text = p.metrics_label.text()
    assert "gen_loss \u2014" in text and "nan" not in text.lower()
    assert "critic_loss 0.6" in text


def test_wgan_run_shows_the_noise_grid_per_epoch(qtbot, gan_ctx, tmp_path):
    run = make_run(tmp_path / "wgan-run", wgan=True)
    p = _panel(qtbot, gan_ctx)
    assert "No runs" in p.run_combo.currentText()
    p.open_run(run)
    assert len(p.samples()) == 2 and all(s.kind == "wgan" for s in p.samples())
    assert "noise" in p.grid_caption.text()
    assert not p.critic.isVisibleTo(p)
    g = p.grid_view.pixmap()
    assert g.width() == 2 + 8 * (16 + 2)
    p.slider.setValue(0)
    assert p.grid_view.pixmap().toImage().pixelColor(2 + 15, 2 + 15).red() == 40


def test_new_epochs_appear_while_a_run_is_going_on(qtbot, gan_ctx):
    from lesson7_studio.core.train.callbacks import grid_image, save_png

    run = make_run(gan_ctx.project.runs_dir / "nogan-1", critic=False)
    p = _panel(qtbot, gan_ctx)
    assert len(p.samples()) == 5
    assert "no critic" in p.critic.heat_view._placeholder.lower()
    save_png(grid_image([(_cell(64, 10), _cell(64, 250), _cell(64, 200))] * 2), run / "samples" / "gan_epoch003.png")
    p.reload()
    assert len(p.samples()) == 6 and p.slider.value() == 5  # followed the newest


def test_reload_lists_a_run_made_outside_the_app(qtbot, gan_ctx, tmp_path):
    """Issue 14: Reload refreshes the run list (a run the CLI made appears without switching
    panels) and keeps a run opened from outside the project."""
    from PySide6.QtCore import Qt

    outside = make_run(tmp_path / "elsewhere" / "wgan-outside", wgan=True)
    p = _panel(qtbot, gan_ctx)
    assert "No runs" in p.run_combo.currentText()
    p.open_run(outside)
    make_run(gan_ctx.project.runs_dir / "nogan-from-cli")  # as `lesson7-studio train` would
    assert p.run_combo.findData(str(gan_ctx.project.runs_dir / "nogan-from-cli")) < 0
    qtbot.mouseClick(p.reload_button, Qt.MouseButton.LeftButton)
    assert p.run_combo.findData(str(gan_ctx.project.runs_dir / "nogan-from-cli")) >= 0
    assert p.run_combo.currentData() == str(outside)  # the shown run stays
    assert all("No runs" not in p.run_combo.itemText(i) for i in range(p.run_combo.count()))
    assert len(p.samples()) == 2


def test_grids_are_cut_by_their_layout_file(qtbot, gan_ctx):
    """Tall cells in a run without preview_samples: guessing square cells would cut 3 rows of
    the wrong size; the layout written beside the PNG gives the 2 rows of 32 x 64 px."""
    from lesson7_studio.core.train.callbacks import save_grid

    run = make_run(gan_ctx.project.runs_dir / "nogan-tall", critic=False)
    cfg = json.loads((run / "config.json").read_text())
    del cfg["preview_samples"]
    (run / "config.json").write_text(json.dumps(cfg))
    tall = [np.full((64, 32, 3), v, np.uint8) for v in (10, 90, 200)]
    for f in (run / "samples").glob("*.png"):
        save_grid([tall, tall], f)
    p = _panel(qtbot, gan_ctx)
    p.open_run(run)
    assert p.critic.row_spin.maximum() == 2
    img = p.critic.image_view.pixmap().toImage()
    assert (img.width(), img.height()) == (32, 64) and img.pixelColor(31, 63).red() == 90
    p.critic.judge_combo.setCurrentIndex(1)
    assert p.critic.image_view.pixmap().toImage().pixelColor(0, 0).red() == 200
