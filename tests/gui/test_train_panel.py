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
    p.form.steps_spin.setValue(2)  # one pass over the 4 training pairs (recipes repeat small datasets)
    yield p
    p.shutdown()


def _wait_end(qtbot, panel, timeout=60000) -> list[str]:
    ends: list[str] = []
    panel.run_ended.connect(ends.append)
    qtbot.waitUntil(lambda: bool(ends) and not panel.is_busy(), timeout=timeout)
    return ends


def test_panel_builds_with_recipes_and_stages(qtbot, panel):
    names = [panel.form.recipe_combo.itemData(i) for i in range(panel.form.recipe_combo.count())]
    assert {"quick", "superres-gan", "wgan"} <= set(names)
    panel.form.recipe_combo.setCurrentIndex(names.index("superres-gan"))
    kinds = [r.kind for r in panel.form.stage_rows]
    assert kinds == ["restore", "restore", "save-preds", "critic", "gan"]
    assert "NoGAN" in panel.form.stages_box.title()
    # unticking stages removes them from the config
    panel.form.stage_rows[-1].check.setChecked(False)
    panel.form.stage_rows[1].epochs.setValue(7)
    cfg = panel.build_config(Path("/tmp/never-written"))
    assert [s.name for s in cfg.stages] == ["generator", "generator-unfrozen", "save-preds", "critic"]
    assert cfg.stages[1].epochs == 7
    panel.form.recipe_combo.setCurrentIndex(names.index("wgan"))
    assert not panel.form.model_combo.isEnabled() and not panel.form.loss_combo.isEnabled()


def test_config_reflects_widgets(panel):
    panel.form.lr_edit.setText("2e-3")
    panel.form.loss_combo.setCurrentIndex(panel.form.loss_combo.findData("mse"))
    cfg = panel.build_config(Path("/tmp/x"))
    assert cfg.arch == "unet-lite" and cfg.arch_options["nf"] == 8
    assert cfg.size == 32 and cfg.batch_size == 2 and cfg.loss == "mse"
    assert abs(cfg.stages[0].lr - 2e-3) < 1e-12
    assert Path(cfg.data).name == "tiny"
    panel.form.lr_edit.setText("fast")
    with pytest.raises(TrainingError):
        panel.build_config(Path("/tmp/x"))


def test_tiny_run_produces_curves_and_samples_and_finishes(qtbot, panel, ctx):
    panel.form.set_stage_epochs(2)
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
    assert panel.samples_tab.samples.row_count() > 0
    assert panel.last_result.model_path is not None and panel.last_result.model_path.is_file()
    assert runs_changed
    # the run is listed and reopens with its curves and samples
    assert panel.runs_tab.runs.topLevelItemCount() == 1
    panel.runs_tab.runs.setCurrentItem(panel.runs_tab.runs.topLevelItem(0))
    panel.curves.clear()
    panel.open_selected_run()
    assert len(panel.curves.series("valid_loss")[1]) == 2
    assert panel.samples_tab.sample_files.count() >= 2 and panel.samples_tab.samples.has_content()
    # the finished run's model is offered to the Compare and Restore panels
    assert any(m.source == "run" for m in ctx.available_models())


def test_pause_cancel_resume(qtbot, panel):
    panel.form.set_stage_epochs(3)
    batches: list[BatchEnd] = []
    panel.start()
    panel.control.worker.event.connect(lambda ev: batches.append(ev) if isinstance(ev, BatchEnd) else None)
    qtbot.waitUntil(lambda: len(batches) >= 1, timeout=60000)
    panel.pause()
    assert panel.control.worker.is_paused() and panel.control.resume_button.isEnabled() and not panel.control.pause_button.isEnabled()
    for _ in range(20):  # the batch in flight may still end (slowly on a loaded machine): wait until it settles
        n = len(batches)
        qtbot.wait(3000)
        if len(batches) == n:
            break
    qtbot.wait(2000)
    assert len(batches) == n, "training went on while paused"
    panel.resume()
    assert not panel.control.worker.is_paused()
    qtbot.waitUntil(lambda: len(batches) > n, timeout=60000)
    panel.cancel()
    assert _wait_end(qtbot, panel) == ["cancelled"]
    run_dir = panel.control.run_dir
    assert panel.control.resumable_dir == run_dir
    assert any((run_dir / "checkpoints").iterdir()), "no checkpoint left to resume from"
    assert not (run_dir / "model.safetensors").exists()
    assert panel.control.resume_button.isEnabled()
    # Resume continues the same run from its checkpoint and finishes it
    panel.resume()
    assert panel.is_busy() and panel.control.run_dir == run_dir
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
    assert panel.control.start_button.isEnabled()


def test_start_without_dataset_explains(qtbot, ctx, error_dialogs):
    from lesson7_studio.gui.panels.train import TrainPanel

    p = TrainPanel(ctx)
    qtbot.addWidget(p)
    assert not p.control.start_button.isEnabled()
    p.start()
    assert len(error_dialogs) == 1 and "Data panel" in error_dialogs[0].informativeText()


def test_lr_finder_suggests_and_applies(qtbot, panel, ctx, error_dialogs):
    ctx.settings.set_value("train/lr_find_iters", 8)
    panel.find_lr()
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=60000)
    assert not error_dialogs, error_dialogs and error_dialogs[0].detailedText()
    assert panel.lr_tab.lr_plot.lrs and panel.lr_tab.use_lr_button.isEnabled()
    panel.use_suggested_lr()
    assert float(panel.form.lr_edit.text()) == pytest.approx(panel.last_lr_result.suggestion, rel=1e-2)


# ---------------------------------------------------------------------------------------------
# progress a person can read, the start-from choice, the chart's readability


def _batch(step, total, lr=9.2e-4, eta=83.0):
    return BatchEnd(stage="train", epoch=1, step=step, iteration=0, n_iter=3, loss=0.05, smooth_loss=0.0412,
                    lr=lr, total_steps=total, eta_s=eta, elapsed_s=12.0)


def test_tiny_run_shows_overall_progress_with_an_eta(qtbot, panel):
    panel.form.set_stage_epochs(3)
    seen: list[tuple[int, int, int, str]] = []
    panel.start()
    # after the panel's own slot: what the bar shows for each batch
    panel.control.worker.event.connect(lambda ev: seen.append((ev.step, panel.monitor.progress.maximum(), panel.monitor.progress.value(),
                                                       panel.monitor.progress.format())) if isinstance(ev, BatchEnd) else None)
    assert _wait_end(qtbot, panel) == ["finished"]
    # 4 training pairs, batch 2: 2 steps an epoch, 3 epochs: the bar counts the run, not the epoch
    assert [s[0] for s in seen] == list(range(1, 7))
    assert {s[1] for s in seen} == {6}
    assert seen[-1][2] == 6
    assert "of 6" in seen[-1][3] and "ETA" in seen[-1][3]


def test_pause_is_visible(qtbot, panel):
    panel.form.set_stage_epochs(50)
    batches: list[BatchEnd] = []
    panel.start()
    panel.control.worker.event.connect(lambda ev: batches.append(ev) if isinstance(ev, BatchEnd) else None)
    qtbot.waitUntil(lambda: len(batches) >= 1, timeout=60000)
    panel.pause()
    assert panel.is_paused()
    assert panel.monitor.paused_badge.isVisibleTo(panel)
    assert panel.monitor.progress.format().startswith("Paused")
    assert panel.monitor.status_label.text().startswith("Paused")
    qtbot.wait(300)  # a batch still in flight must not overwrite the paused state
    assert panel.monitor.status_label.text().startswith("Paused") and panel.monitor.progress.format().startswith("Paused")
    panel.resume()
    assert not panel.monitor.paused_badge.isVisibleTo(panel) and not panel.monitor.progress.format().startswith("Paused")
    panel.cancel()
    assert _wait_end(qtbot, panel) == ["cancelled"]


def test_status_line_never_cuts_the_learning_rate(qtbot, panel):
    panel.resize(760, 600)
    panel.monitor.stage_text = "Stage 4/5 'generator-unfrozen-with-a-long-name'"
    panel.monitor.show_batch(_batch(12, 30))
    qtbot.wait(50)
    text = panel.monitor.status_label.text()
    assert "lr 9.2e-4" in text and "loss 0.0412" in text
    lab = panel.monitor.status_label
    assert lab.wordWrap() and lab.heightForWidth(lab.width()) <= lab.height()
    assert "step 12 of 30" in panel.monitor.progress.format() and "ETA 1:23" in panel.monitor.progress.format()


def test_start_from_choices_map_to_init_and_pretrained(qtbot, panel):
    keys = [panel.form.start_from.combo.itemData(i)[0] for i in range(panel.form.start_from.combo.count())]
    # the tiny model (unet-lite) has no ImageNet encoder to offer
    assert keys[:2] == ["scratch", "starter"] and "imagenet" not in keys
    panel.form.start_from.combo.setCurrentIndex(keys.index("starter"))
    cfg = panel.build_config(Path("/tmp/never-written"))
    assert cfg.init == "starter" and not panel.form.model_combo.isEnabled()
    panel.form.start_from.combo.setCurrentIndex(0)
    cfg = panel.build_config(Path("/tmp/never-written"))
    assert cfg.init is None and panel.form.model_combo.isEnabled()
    # a U-Net over a ResNet: ImageNet weights for its encoder, or a random one next to the VGG loss
    names = [panel.form.recipe_combo.itemData(i) for i in range(panel.form.recipe_combo.count())]
    panel.form.recipe_combo.setCurrentIndex(names.index("superres-feature"))
    panel.form.model_combo.setCurrentIndex(0)  # the recipe's own unet-resnet34
    keys = [panel.form.start_from.combo.itemData(i)[0] for i in range(panel.form.start_from.combo.count())]
    assert "imagenet" in keys and panel.form.start_key() == "imagenet"  # the recipe's default
    cfg = panel.build_config(Path("/tmp/never-written"))
    assert cfg.pretrained and cfg.init is None and "pretrained" not in cfg.arch_options
    panel.form.start_from.combo.setCurrentIndex(keys.index("scratch"))
    cfg = panel.build_config(Path("/tmp/never-written"))
    assert cfg.loss == "feature" and cfg.pretrained and cfg.arch_options["pretrained"] is False
    from lesson7_studio.core.train.run import _options_for

    assert _options_for(cfg.arch, cfg, 2, pretrained=True)["pretrained"] is False
    if "finetune" in names:  # the fine-tuning recipe starts from the starter model
        panel.form.recipe_combo.setCurrentIndex(names.index("finetune"))
        assert panel.form.start_key() == "starter"


def test_fine_tune_from_a_checkpoint_of_the_project(qtbot, panel, ctx):
    panel.start()
    assert _wait_end(qtbot, panel) == ["finished"]
    first = panel.last_result.model_path  # offered at once as a starting point (runs_changed)
    idx = next(i for i in range(panel.form.start_from.combo.count()) if panel.form.start_from.combo.itemData(i)[1] == str(first))
    panel.form.start_from.combo.setCurrentIndex(idx)
    assert panel.form.start_key() == str(first)
    logs: list[str] = []
    panel.start()
    panel.control.worker.event.connect(lambda ev: logs.append(ev.message) if hasattr(ev, "message") else None)
    assert _wait_end(qtbot, panel) == ["finished"]
    assert any("Fine-tuning from" in m and first.name in m for m in logs), logs
    assert panel.last_result.model_path != first


def test_dataset_combo_shows_the_whole_name_and_counts_below(qtbot, panel):
    qtbot.wait(50)
    combo = panel.form.dataset_combo
    assert combo.currentText() == "tiny"
    assert combo.width() >= combo.fontMetrics().horizontalAdvance("tiny") + 24
    assert "4 training / 2 validation pairs" in panel.form.dataset_info.text()
    # 4 photos are learnt by heart: the line says so and what to do
    assert "few photos" in panel.form.dataset_info.text() and "Data panel" in panel.form.dataset_info.text()


def test_lr_finder_plots_as_it_sweeps_and_blocks_resume(qtbot, panel, ctx, error_dialogs):
    ctx.settings.set_value("train/lr_find_iters", 12)
    panel.control.resumable_dir = panel.ctx.project.runs_dir  # as after a cancelled run
    snaps: list[tuple[int, bool, bool]] = []
    panel.find_lr()
    panel.lr_worker.event.connect(lambda ev: snaps.append(
        (len(panel.lr_tab.lr_plot.lrs), panel.is_busy(), panel.control.resume_button.isEnabled())))
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=60000)
    assert not error_dialogs, error_dialogs and error_dialogs[0].detailedText()
    assert any(n >= 2 and busy for n, busy, _ in snaps), "the curve was not drawn during the sweep"
    assert not any(resume for _, _, resume in snaps), "Resume was enabled during the sweep"
    assert panel.control.resume_button.isEnabled()  # and again afterwards
    plot = panel.lr_tab.lr_plot
    axis = plot.plot.getAxis("bottom")
    assert axis.labelText == "learning rate (log scale)" and not axis.autoSIPrefix
    assert axis.labelString().count("learning rate (log scale)") and "x1e" not in axis.labelString()
    assert "loss" in plot.plot.getAxis("left").labelText
    assert plot.plot.getAxis("bottom").logTickStrings([-4.0, -3.5], 1.0, 1.0) == ["1e-4", ""]
    lr, loss = plot.suggestion_point()
    assert lr == panel.last_lr_result.suggestion and min(plot.losses) <= loss <= max(plot.losses)
    assert plot.note.isVisible() and "valley" in plot.note.textItem.toPlainText()
    assert "Rule: valley" in panel.lr_tab.lr_result_label.text()


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


def test_a_run_that_keeps_its_starting_weights_says_so(qtbot, panel):
    """keep_best with an absurd learning rate: the model handed back is the start, and the status says it."""
    panel.form.keep_best_check.setChecked(True)
    panel.form.lr_edit.setText("3")
    panel.start()
    assert _wait_end(qtbot, panel) == ["finished"]
    assert panel.last_result.kept and panel.last_result.kept["step"] == 0
    text = panel.monitor.status_label.text()
    assert "kept the starting weights" in text and "PSNR" not in text, text


def test_loss_legend_keeps_off_the_stage_names(qtbot, panel):
    """Bug: the legend took the emptiest corner, bottom left, right over the first stage's name."""
    curves = panel.curves
    curves.add_stage("train", 0)
    for i in range(40):  # one loss along the top, the other along the bottom of the right half only:
        curves.add_point("valid_loss", i + 1, 1.0)  # bottom left is the emptiest corner
        if i >= 20:
            curves.add_point("train_loss", i + 1, 0.0)
    curves.flush()
    qtbot.wait(50)
    curves.flush()
    assert curves.legend_corner("loss") != "bottom-left"


def test_form_rows_never_overlap_after_a_recipe_switch(qtbot, panel):
    """Bug: after choosing another recipe the wrapped hints kept their old heights: the finetune
    description ran under the Dataset row and the Setup box had a blank strip at the bottom."""
    form = panel.form
    names = [form.recipe_combo.itemData(i) for i in range(form.recipe_combo.count())]
    rows = [form.recipe_combo, form.recipe_desc, form.dataset_combo, form.dataset_info,
            form.start_from.combo, form.start_from.hint, form.model_combo, form.device_combo]

    def laid_out() -> None:
        shown = [w for w in rows if w.isVisible()]
        for a, b in zip(shown, shown[1:]):
            assert a.geometry().bottom() < b.geometry().top(), (name, a.objectName() or type(a).__name__)
        for w in (form.recipe_desc, form.start_from.hint):
            assert w.height() >= w.heightForWidth(w.width()), name  # the whole text has room

    for name in ("quick", "finetune", "superres-gan", "finetune"):
        form.recipe_combo.setCurrentIndex(names.index(name))
        qtbot.waitUntil(laid_out, timeout=3000)  # however busy the machine (the layout runs from the event loop)


def test_start_from_offers_only_this_projects_checkpoints(qtbot, panel, ctx):
    # models/ may hold community .pth and .onnx files for Compare/Restore; training cannot start from them
    models = ctx.project.models_dir
    models.mkdir(parents=True, exist_ok=True)
    for name in ("community.pth", "exported.onnx", "mine.safetensors"):
        (models / name).write_bytes(b"not read here")
    panel.form.start_from.fill(panel.form.recipe())
    offered = [panel.form.start_from.combo.itemData(i)[1] for i in range(panel.form.start_from.combo.count())]
    names = {Path(p).name for p in offered if p}
    assert "mine.safetensors" in names
    assert not names & {"community.pth", "exported.onnx"}


def test_all_batches_and_no_time_limit_replace_the_recipes_values(qtbot, panel):
    """Bug: "Batches/epoch = all" sent nothing, so the recipe's own count (quick: 150) stayed."""
    from lesson7_studio.core.train import recipes

    assert recipes.get_recipe("quick").steps_per_epoch  # the recipe cuts its epochs
    panel.form.steps_spin.setValue(0)
    assert panel.form.steps_spin.text() == "all"
    cfg = panel.build_config(Path("/tmp/never-written"))
    assert cfg.steps_per_epoch is None and cfg.max_minutes is None
    panel.form.steps_spin.setValue(3)
    panel.form.max_minutes.setValue(5)
    cfg = panel.build_config(Path("/tmp/never-written"))
    assert cfg.steps_per_epoch == 3 and cfg.max_minutes == 5.0


def test_weight_average_and_keep_best_follow_the_recipe_and_reach_the_config(qtbot, panel):
    from lesson7_studio.core.train import recipes

    names = [panel.form.recipe_combo.itemData(i) for i in range(panel.form.recipe_combo.count())]
    for name in ("quick", "finetune"):
        panel.form.recipe_combo.setCurrentIndex(names.index(name))
        assert panel.form.ema_spin.value() == pytest.approx(recipes.get_recipe(name).ema)
        assert panel.form.keep_best_check.isChecked() == recipes.get_recipe(name).keep_best
    panel.form.ema_spin.setValue(0)
    assert panel.form.ema_spin.text() == "off"
    assert panel.build_config(Path("/tmp/never-written")).ema == 0.0
    panel.form.ema_spin.setValue(0.995)
    assert panel.build_config(Path("/tmp/never-written")).ema == pytest.approx(0.995)
    panel.form.keep_best_check.setChecked(True)
    assert panel.build_config(Path("/tmp/never-written")).keep_best is True
    panel.form.keep_best_check.setChecked(False)
    assert panel.build_config(Path("/tmp/never-written")).keep_best is False
    panel.form.recipe_combo.setCurrentIndex(names.index("wgan"))  # no restore stage: nothing to average
    assert not panel.form.ema_spin.isEnabled() and not panel.form.keep_best_check.isEnabled()


def test_the_panel_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys; import lesson7_studio.gui.panels.train, lesson7_studio.gui.panels.gan, "
            "lesson7_studio.gui.panels.model; print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')[:3])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
