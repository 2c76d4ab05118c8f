"""Train panel: a tiny run from the panel, pause / cancel / resume, errors, LR finder, past runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from lesson7_studio.core.errors import TrainingError
from lesson7_studio.core.events import BatchEnd
from PySide6.QtCore import QPointF


@pytest.fixture
def panel(qtbot, ctx, tiny_dataset, configure_tiny_run):
    from lesson7_studio.gui.panels.train import TrainPanel

    p = TrainPanel(ctx)
    qtbot.addWidget(p)
    p.resize(1100, 700)
    p.show()
    configure_tiny_run(p)
    p.steps_spin.setValue(2)  # one pass over the 4 training pairs (recipes repeat small datasets)
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


# ---------------------------------------------------------------------------------------------
# progress a person can read, the start-from choice, the chart's readability


def _batch(step, total, lr=9.2e-4, eta=83.0):
    return BatchEnd(stage="train", epoch=1, step=step, iteration=0, n_iter=3, loss=0.05, smooth_loss=0.0412,
                    lr=lr, total_steps=total, eta_s=eta, elapsed_s=12.0)


def test_tiny_run_shows_overall_progress_with_an_eta(qtbot, panel):
    panel.set_stage_epochs(3)
    seen: list[tuple[int, int, int, str]] = []
    panel.start()
    # after the panel's own slot: what the bar shows for each batch
    panel.worker.event.connect(lambda ev: seen.append((ev.step, panel.progress.maximum(), panel.progress.value(),
                                                       panel.progress.format())) if isinstance(ev, BatchEnd) else None)
    assert _wait_end(qtbot, panel) == ["finished"]
    # 4 training pairs, batch 2: 2 steps an epoch, 3 epochs: the bar counts the run, not the epoch
    assert [s[0] for s in seen] == list(range(1, 7))
    assert {s[1] for s in seen} == {6}
    assert seen[-1][2] == 6
    assert "of 6" in seen[-1][3] and "ETA" in seen[-1][3]


def test_pause_is_visible(qtbot, panel):
    panel.set_stage_epochs(50)
    batches: list[BatchEnd] = []
    panel.start()
    panel.worker.event.connect(lambda ev: batches.append(ev) if isinstance(ev, BatchEnd) else None)
    qtbot.waitUntil(lambda: len(batches) >= 1, timeout=60000)
    panel.pause()
    assert panel.is_paused()
    assert panel.paused_badge.isVisibleTo(panel)
    assert panel.progress.format().startswith("Paused")
    assert panel.status_label.text().startswith("Paused")
    qtbot.wait(300)  # a batch still in flight must not overwrite the paused state
    assert panel.status_label.text().startswith("Paused") and panel.progress.format().startswith("Paused")
    panel.resume()
    assert not panel.paused_badge.isVisibleTo(panel) and not panel.progress.format().startswith("Paused")
    panel.cancel()
    assert _wait_end(qtbot, panel) == ["cancelled"]


def test_status_line_never_cuts_the_learning_rate(qtbot, panel):
    panel.resize(760, 600)
    panel._stage_text = "Stage 4/5 'generator-unfrozen-with-a-long-name'"
    panel._show_batch(_batch(12, 30))
    qtbot.wait(50)
    text = panel.status_label.text()
    assert "lr 9.2e-4" in text and "loss 0.0412" in text
    lab = panel.status_label
    assert lab.wordWrap() and lab.heightForWidth(lab.width()) <= lab.height()
    assert "step 12 of 30" in panel.progress.format() and "ETA 1:23" in panel.progress.format()


def test_start_from_choices_map_to_init_and_pretrained(qtbot, panel):
    keys = [panel.start_combo.itemData(i)[0] for i in range(panel.start_combo.count())]
    # the tiny model (unet-lite) has no ImageNet encoder to offer
    assert keys[:2] == ["scratch", "starter"] and "imagenet" not in keys
    panel.start_combo.setCurrentIndex(keys.index("starter"))
    cfg = panel.build_config(Path("/tmp/never-written"))
    assert cfg.init == "starter" and not panel.model_combo.isEnabled()
    panel.start_combo.setCurrentIndex(0)
    cfg = panel.build_config(Path("/tmp/never-written"))
    assert cfg.init is None and panel.model_combo.isEnabled()
    # a U-Net over a ResNet: ImageNet weights for its encoder, or a random one next to the VGG loss
    names = [panel.recipe_combo.itemData(i) for i in range(panel.recipe_combo.count())]
    panel.recipe_combo.setCurrentIndex(names.index("superres-feature"))
    panel.model_combo.setCurrentIndex(0)  # the recipe's own unet-resnet34
    keys = [panel.start_combo.itemData(i)[0] for i in range(panel.start_combo.count())]
    assert "imagenet" in keys and panel.start_key() == "imagenet"  # the recipe's default
    cfg = panel.build_config(Path("/tmp/never-written"))
    assert cfg.pretrained and cfg.init is None and "pretrained" not in cfg.arch_options
    panel.start_combo.setCurrentIndex(keys.index("scratch"))
    cfg = panel.build_config(Path("/tmp/never-written"))
    assert cfg.loss == "feature" and cfg.pretrained and cfg.arch_options["pretrained"] is False
    from lesson7_studio.core.train.run import _options_for

    assert _options_for(cfg.arch, cfg, 2, pretrained=True)["pretrained"] is False
    if "finetune" in names:  # the fine-tuning recipe starts from the starter model
        panel.recipe_combo.setCurrentIndex(names.index("finetune"))
        assert panel.start_key() == "starter"


def test_fine_tune_from_a_checkpoint_of_the_project(qtbot, panel, ctx):
    panel.start()
    assert _wait_end(qtbot, panel) == ["finished"]
    first = panel.last_result.model_path  # offered at once as a starting point (runs_changed)
    idx = next(i for i in range(panel.start_combo.count()) if panel.start_combo.itemData(i)[1] == str(first))
    panel.start_combo.setCurrentIndex(idx)
    assert panel.start_key() == str(first)
    logs: list[str] = []
    panel.start()
    panel.worker.event.connect(lambda ev: logs.append(ev.message) if hasattr(ev, "message") else None)
    assert _wait_end(qtbot, panel) == ["finished"]
    assert any("Fine-tuning from" in m and first.name in m for m in logs), logs
    assert panel.last_result.model_path != first


def test_dataset_combo_shows_the_whole_name_and_counts_below(qtbot, panel):
    qtbot.wait(50)
    combo = panel.dataset_combo
    assert combo.currentText() == "tiny"
    assert combo.width() >= combo.fontMetrics().horizontalAdvance("tiny") + 24
    assert "4 training / 2 validation pairs" in panel.dataset_info.text()


def test_lr_finder_plots_as_it_sweeps_and_blocks_resume(qtbot, panel, ctx, error_dialogs):
    ctx.settings.set_value("train/lr_find_iters", 12)
    panel.resumable_dir = panel.ctx.project.runs_dir  # as after a cancelled run
    snaps: list[tuple[int, bool, bool]] = []
    panel.find_lr()
    panel.lr_worker.event.connect(lambda ev: snaps.append(
        (len(panel.lr_plot.lrs), panel.is_busy(), panel.resume_button.isEnabled())))
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=60000)
    assert not error_dialogs, error_dialogs and error_dialogs[0].detailedText()
    assert any(n >= 2 and busy for n, busy, _ in snaps), "the curve was not drawn during the sweep"
    assert not any(resume for _, _, resume in snaps), "Resume was enabled during the sweep"
    assert panel.resume_button.isEnabled()  # and again afterwards
    plot = panel.lr_plot
    axis = plot.plot.getAxis("bottom")
    assert axis.labelText == "learning rate (log scale)" and not axis.autoSIPrefix
    assert axis.labelString().count("learning rate (log scale)") and "x1e" not in axis.labelString()
    assert "loss" in plot.plot.getAxis("left").labelText
    assert plot.plot.getAxis("bottom").logTickStrings([-4.0, -3.5], 1.0, 1.0) == ["1e-4", ""]
    lr, loss = plot.suggestion_point()
    assert lr == panel.last_lr_result.suggestion and min(plot.losses) <= loss <= max(plot.losses)
    assert plot.note.isVisible() and "valley" in plot.note.textItem.toPlainText()
    assert "Rule: valley" in panel.lr_result_label.text()


def test_empty_chart_placeholder_is_whole_and_centred(qtbot, panel):
    curves = panel.curves
    qtbot.wait(50)
    ph = curves._placeholder
    assert curves.placeholder_visible()
    assert curves.rect().contains(ph.geometry())
    assert ph.height() >= ph.sizeHint().height()
    assert abs(ph.geometry().center().y() - curves.rect().center().y()) <= 2
    curves.add_point("valid_loss", 1, 0.5)
    curves.flush()
    assert not curves.placeholder_visible()


def test_psnr_axis_keeps_a_sensible_span(qtbot, panel):
    curves = panel.curves
    for i, v in enumerate([25.00, 25.01, 25.005, 25.012]):
        curves.add_point("psnr", i + 1, v)
        curves.add_point("valid_loss", i + 1, 0.1)  # the loss plot leads the shared step axis
    curves.flush()
    assert curves.y_span("quality") >= 1.0  # a 0.01 dB wobble stays a wobble
    for i, v in enumerate([26.0, 28.0, 30.0]):
        curves.add_point("psnr", i + 5, v)
        curves.add_point("valid_loss", i + 5, 0.1)
    curves.flush()
    assert 5.0 <= curves.y_span("quality") < 8.0  # a real climb uses the automatic range


def test_legend_never_hides_the_newest_points(qtbot, panel):
    curves = panel.curves
    for i in range(12):  # rising PSNR: the newest points sit top right, where legends usually are
        curves.add_point("psnr", i + 1, 20 + i)
        curves.add_point("valid_loss", i + 1, 1.0 / (i + 1))
    curves.flush()
    qtbot.wait(50)
    curves.flush()
    q = curves.plots["quality"]
    item = curves._items["psnr"]
    xs, ys = item.getData()
    last = q.vb.mapViewToScene(QPointF(xs[-1], ys[-1]))
    assert not q.legend.sceneBoundingRect().contains(last), curves.legend_corner("quality")
    assert curves.legend_corner("quality") != "top-right"


def test_start_from_offers_only_this_projects_checkpoints(qtbot, panel, ctx):
    # models/ may hold community .pth and .onnx files for Compare/Restore; training cannot start from them
    models = ctx.project.models_dir
    models.mkdir(parents=True, exist_ok=True)
    for name in ("community.pth", "exported.onnx", "mine.safetensors"):
        (models / name).write_bytes(b"not read here")
    panel._fill_start()
    offered = [panel.start_combo.itemData(i)[1] for i in range(panel.start_combo.count())]
    names = {Path(p).name for p in offered if p}
    assert "mine.safetensors" in names
    assert not names & {"community.pth", "exported.onnx"}
