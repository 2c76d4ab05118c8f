"""Train panel: a tiny run from the panel, pause / cancel / resume, errors, LR finder, past runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from lesson7_studio.core.errors import TrainingError
from lesson7_studio.core.events import BatchEnd


@pytest.fixture
def panel(qtbot, ctx, tiny_dataset, configure_tiny_run):
    from lesson7_studio.gui.panels.train import TrainPanel

    p = TrainPanel(ctx)
    qtbot.addWidget(p)
    p.resize(1100, 700)
    p.show()
    configure_tiny_run(p)
    yield p
    p.shutdown()


def _wait_end(qtbot, panel, timeout=60000) -> list[str]:
    ends: list[str] = []
    panel.run_ended.connect(ends.append)
    qtbot.waitUntil(lambda: bool(ends) and not panel.is_busy(), timeout=timeout)
    return ends


def test_panel_builds_with_recipes_and_stages(qtbot, panel):
    names = [panel.recipe_combo.itemData(i) for i in range(panel.recipe_combo.count())]
    assert {"quick", "superres-gan", "wgan"} <= set(names)
    panel.recipe_combo.setCurrentIndex(names.index("superres-gan"))
    kinds = [r.kind for r in panel.stage_rows]
    assert kinds == ["restore", "restore", "save-preds", "critic", "gan"]
    assert "NoGAN" in panel.stages_box.title()
    # unticking stages removes them from the config
    panel.stage_rows[-1].check.setChecked(False)
    panel.stage_rows[1].epochs.setValue(7)
    cfg = panel.build_config(Path("/tmp/never-written"))
    assert [s.name for s in cfg.stages] == ["generator", "generator-unfrozen", "save-preds", "critic"]
    assert cfg.stages[1].epochs == 7
    panel.recipe_combo.setCurrentIndex(names.index("wgan"))
    assert not panel.model_combo.isEnabled() and not panel.loss_combo.isEnabled()


def test_config_reflects_widgets(panel):
    panel.lr_edit.setText("2e-3")
    panel.loss_combo.setCurrentIndex(panel.loss_combo.findData("mse"))
    cfg = panel.build_config(Path("/tmp/x"))
    assert cfg.arch == "unet-lite" and cfg.arch_options["nf"] == 8
    assert cfg.size == 32 and cfg.batch_size == 2 and cfg.loss == "mse"
    assert abs(cfg.stages[0].lr - 2e-3) < 1e-12
    assert Path(cfg.data).name == "tiny"
    panel.lr_edit.setText("fast")
    with pytest.raises(TrainingError):
        panel.build_config(Path("/tmp/x"))


def test_tiny_run_produces_curves_and_samples_and_finishes(qtbot, panel, ctx):
    panel.set_stage_epochs(2)
    runs_changed = []
    ctx.runs_changed.connect(lambda: runs_changed.append(1))
    panel.start()
    assert panel.is_busy()
    assert _wait_end(qtbot, panel) == ["finished"]
    panel.curves.flush()
    steps, losses = panel.curves.series("train_loss")
    assert len(losses) == 2
    assert len(panel.curves.series("valid_loss")[1]) == 2
    assert panel.curves.series("psnr")[1], "no PSNR points"
    assert panel.curves.series("batch_loss")[1], "no per-batch points"
    assert panel.curves.stages() and panel.curves.stages()[0][1] == "train"
    assert panel.samples.row_count() > 0
    assert panel.last_result.model_path is not None and panel.last_result.model_path.is_file()
    assert runs_changed
    # the run is listed and reopens with its curves and samples
    assert panel.runs.topLevelItemCount() == 1
    panel.runs.setCurrentItem(panel.runs.topLevelItem(0))
    panel.curves.clear()
    panel.open_selected_run()
    assert len(panel.curves.series("valid_loss")[1]) == 2
    assert panel.sample_files.count() >= 2 and panel.samples.has_content()
    # the finished run's model is offered to the Compare and Restore panels
    assert any(m.source == "run" for m in ctx.available_models())


def test_pause_cancel_resume(qtbot, panel):
    panel.set_stage_epochs(3)
    batches: list[BatchEnd] = []
    panel.start()
    panel.worker.event.connect(lambda ev: batches.append(ev) if isinstance(ev, BatchEnd) else None)
    qtbot.waitUntil(lambda: len(batches) >= 1, timeout=60000)
    panel.pause()
    assert panel.worker.is_paused() and panel.resume_button.isEnabled() and not panel.pause_button.isEnabled()
    for _ in range(30):  # the batch in flight may still end: wait until the count settles
        n = len(batches)
        qtbot.wait(1000)
        if len(batches) == n:
            break
    qtbot.wait(1000)
    assert len(batches) == n, "training went on while paused"
    panel.resume()
    assert not panel.worker.is_paused()
    qtbot.waitUntil(lambda: len(batches) > n, timeout=60000)
    panel.cancel()
    assert _wait_end(qtbot, panel) == ["cancelled"]
    run_dir = panel.run_dir
    assert panel.resumable_dir == run_dir
    assert any((run_dir / "checkpoints").iterdir()), "no checkpoint left to resume from"
    assert not (run_dir / "model.safetensors").exists()
    assert panel.resume_button.isEnabled()
    # Resume continues the same run from its checkpoint and finishes it
    panel.resume()
    assert panel.is_busy() and panel.run_dir == run_dir
    assert _wait_end(qtbot, panel) == ["finished"]
    assert (run_dir / "model.safetensors").is_file()
    epochs = panel.curves.series("train_loss")[1]
    assert len(epochs) == 3, f"expected 3 epochs over the two sessions, got {len(epochs)}"


def test_failing_run_shows_the_error_dialog(qtbot, panel, monkeypatch, error_dialogs):
    from lesson7_studio.core.train import run as run_mod

    def boom(config, **kwargs):
        raise TrainingError("The loss diverged (nan).", hint="Lower the learning rate.")

    monkeypatch.setattr(run_mod, "train", boom)
    panel.start()
    assert _wait_end(qtbot, panel) == ["failed"]
    assert len(error_dialogs) == 1
    box = error_dialogs[0]
    assert "diverged" in box.informativeText() and "Lower the learning rate" in box.informativeText()
    assert "Traceback" in box.detailedText()
    assert panel.start_button.isEnabled()


def test_start_without_dataset_explains(qtbot, ctx, error_dialogs):
    from lesson7_studio.gui.panels.train import TrainPanel

    p = TrainPanel(ctx)
    qtbot.addWidget(p)
    assert not p.start_button.isEnabled()
    p.start()
    assert len(error_dialogs) == 1 and "Data panel" in error_dialogs[0].informativeText()


def test_lr_finder_suggests_and_applies(qtbot, panel, ctx, error_dialogs):
    ctx.settings.set_value("train/lr_find_iters", 8)
    panel.find_lr()
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=60000)
    assert not error_dialogs, error_dialogs and error_dialogs[0].detailedText()
    assert panel.lr_plot.lrs and panel.use_lr_button.isEnabled()
    panel.use_suggested_lr()
    assert float(panel.lr_edit.text()) == pytest.approx(panel.last_lr_result.suggestion, rel=1e-2)
