"""Lessons panel: train a tiny RNN and classifier from the panel, pause / cancel / resume, explore."""

from __future__ import annotations

from pathlib import Path

import pytest

from lesson7_studio.core.events import BatchEnd

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def panel(qtbot, ctx):
    from lesson7_studio.gui.panels.lessons import LessonsPanel

    p = LessonsPanel(ctx)
    qtbot.addWidget(p)
    p.resize(1200, 760)
    p.show()
    yield p
    p.shutdown()


def _wait_end(qtbot, panel, timeout=120000) -> list[str]:
    ends: list[str] = []
    panel.run_ended.connect(ends.append)
    qtbot.waitUntil(lambda: bool(ends) and not panel.is_busy(), timeout=timeout)
    return ends


def _tiny_rnn(panel, arch="rnn-model5", epochs=1, steps=4):
    panel.form.choose_model(arch)
    panel.form.epochs_spin.setValue(epochs)
    panel.form.steps_spin.setValue(steps)
    panel.form.bs_spin.setValue(16)


def test_form_follows_the_lesson(panel):
    panel.form.choose_model("rnn-model2")
    assert panel.form.lesson_name() == "human-numbers" and panel.form.arch() == "rnn-model2"
    assert panel.form.epochs_spin.value() == 10 and float(panel.form.lr_edit.text()) == pytest.approx(1e-4)
    assert "pct_start=0.1" in panel.form.notebook_label.text() and "bptt 20" in panel.form.notebook_label.text()
    archs = [panel.form.model_combo.itemData(i) for i in range(panel.form.model_combo.count())]
    assert archs == [f"rnn-model{i}" for i in range(6)]
    assert "(55.0 k)" in panel.form.model_combo.itemText(5)  # the 2-layer GRU
    panel.form.choose_model("densenet-classifier")
    assert panel.form.lesson_name() == "resnet-mnist" and panel.form.bs_spin.value() == 128
    assert panel.explore.currentWidget() is panel.classifier_view
    data = [panel.form.data_combo.itemData(i) for i in range(panel.form.data_combo.count())]
    assert data[0] == "mnist" and Path(data[2]).name == "shapes"
    panel.form.lr_edit.setText("fast")
    with pytest.raises(Exception, match="not a number"):
        panel.form.build_config(Path("/tmp/never"))


def test_train_rnn_then_explore_predictions(qtbot, panel, ctx):
    _tiny_rnn(panel)
    panel.start()
    assert panel.is_busy() and not panel.control.start_button.isEnabled() and panel.control.cancel_button.isEnabled()
    assert _wait_end(qtbot, panel) == ["finished"]
    run = panel.control.run_dir
    assert run.parent == ctx.project.root / "lessons" and (run / "model.safetensors").is_file()
    assert panel.curves.series("accuracy")[1] and panel.curves.series("valid_loss")[1]
    assert "accuracy" in panel.status_label.text()
    view = panel.numbers_view
    assert view.model is not None and view.prompt.isEnabled()
    view.prompt.setText("eight thousand one , eight thousand")
    view.update_predictions()
    assert len(view.words.rows) == 6
    probs = [p for _, p in view.words.rows]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
    assert "Continues as" in view.continued.text()
    view.prompt.setText("eight thousand and one")
    view.update_predictions()
    assert "and" in view.message.text() and view.words.rows == []
    rows = {r[0]: r for r in view.table_rows()}
    assert set(rows) == {f"rnn-model{i}" for i in range(6)}
    assert rows["rnn-model5"][3] != "—" and rows["rnn-model0"][3] == "—"
    assert rows["rnn-model5"][2] == "0.8071"
    # the Runs tab lists it; Explore opens it again
    assert panel.runs.topLevelItemCount() == 1
    panel.runs.topLevelItem(0).setSelected(True)
    panel.explore_selected()
    assert panel.tabs.currentWidget() is panel.explore


def test_pause_cancel_and_resume(qtbot, panel):
    _tiny_rnn(panel, "rnn-model4", epochs=2, steps=6)
    seen: list[int] = []
    panel.start()
    w = panel.control.worker
    w.event.connect(lambda ev: seen.append(ev.step) if isinstance(ev, BatchEnd) else None)
    qtbot.waitUntil(lambda: len(seen) >= 1, timeout=60000)
    panel.pause()
    assert w.is_paused() and panel.control.resume_button.isEnabled() and not panel.control.pause_button.isEnabled()
    panel.resume()
    assert not w.is_paused()
    panel.cancel()
    assert _wait_end(qtbot, panel) == ["cancelled"]
    run = panel.control.run_dir
    assert (run / "checkpoints" / "last.json").is_file() and not (run / "model.safetensors").exists()
    assert panel.control.resume_button.isEnabled()
    panel.resume()
    assert _wait_end(qtbot, panel) == ["finished"]
    assert panel.control.run_dir == run and (run / "model.safetensors").is_file()
    assert panel.last_result.epochs_done == 2


def test_train_classifier_and_confusion_matrix(qtbot, panel, tmp_path, error_dialogs):
    from lesson7_studio.core.lessons.images import write_shapes_folder

    data = write_shapes_folder(tmp_path / "shapes", n_train=24, n_valid=8)
    panel.form.choose_model("cnn-classifier")
    panel.form.set_data_folder(data)
    panel.form.epochs_spin.setValue(2)
    panel.form.bs_spin.setValue(16)
    panel.start()
    assert _wait_end(qtbot, panel) == ["finished"], [b.text() for b in error_dialogs]
    view = panel.classifier_view
    assert view.interp is not None and view.confusion.rowCount() == 4
    total = sum(int(view.confusion.item(i, j).text() or 0) for i in range(4) for j in range(4))
    assert total == 32
    assert "Accuracy" in view.accuracy_label.text()
    assert len(view.loss_buttons) == 16
    view.loss_buttons[0].click()
    assert len(view.probs.rows) == 4 and "top loss 1" in view.probe_caption.text()
    img = next((data / "valid" / "ring").iterdir())
    view.probe_image(str(img))
    assert abs(sum(p for _, p in view.probs.rows) - 1) < 1e-4
    assert not view.probe.pixmap().isNull()
    view.probe_image(str(tmp_path / "missing.png"))
    assert error_dialogs and "missing.png" in error_dialogs[-1].text() + error_dialogs[-1].informativeText()


def test_offline_mnist_says_where_to_put_the_files(qtbot, panel, error_dialogs):
    panel.form.choose_model("resnet-classifier")
    panel.form.data_combo.setCurrentIndex(panel.form.data_combo.findData("mnist"))
    panel.form.epochs_spin.setValue(1)
    panel.start()
    assert _wait_end(qtbot, panel) == ["failed"]
    text = error_dialogs[-1].text() + error_dialogs[-1].informativeText() + (error_dialogs[-1].detailedText() or "")
    assert "train-images-idx3-ubyte.gz" in text and "MNIST" in text and "raw" in text
