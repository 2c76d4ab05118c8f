"""Model panel: registry list, options as widgets, parameter count, memory, weights status."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QSpinBox

from lesson7_studio.core import models


@pytest.fixture
def panel(qtbot, ctx):
    from lesson7_studio.gui.panels.model import ModelPanel

    p = ModelPanel(ctx)
    qtbot.addWidget(p)
    p.resize(1000, 700)
    p.show()
    yield p
    p.shutdown()


def _names(panel) -> list[str]:
    out = []
    for i in range(panel.list.count()):
        n = panel.list.item(i).data(Qt.ItemDataRole.UserRole)
        if n:
            out.append(n)
    return out


def _wait_stats(qtbot, panel, name):
    qtbot.waitUntil(lambda: panel.last_stats is not None and panel.last_stats.name == name
                    and not panel._debounce.isActive() and not panel._stats_worker.is_running(), timeout=30000)


def test_restorers_come_first_and_every_model_is_listed(panel):
    names = _names(panel)
    restorers = models.names("restorer")
    assert names[: len(restorers)] == restorers
    assert set(names) == set(models.names())


def test_options_are_widgets_and_the_numbers_follow_them(qtbot, panel):
    panel.select_model("unet-lite")
    form = panel.form
    assert isinstance(form.field("nf").widget, QSpinBox)
    assert isinstance(form.field("self_attention").widget, QCheckBox)
    assert isinstance(form.field("norm_type").widget, QComboBox)
    assert form.field("nf").widget.minimum() == 8  # Option.minimum
    _wait_stats(qtbot, panel, "unet-lite")
    expected = models.describe("unet-lite").params
    assert panel.last_stats.params == expected
    assert f"{expected:,}" in panel.params_label.text()
    assert "MB" in panel.memory_label.text() and panel.last_stats.act_bytes > 0
    act_256 = panel.last_stats.act_bytes
    form.field("nf").widget.setValue(16)
    panel.size_spin.setValue(128)
    qtbot.waitUntil(lambda: panel.last_stats.params == models.describe("unet-lite", nf=16).params
                    and not panel._stats_worker.is_running(), timeout=30000)
    assert panel.last_stats.act_bytes < act_256
    panel.reset_options()
    assert form.values()["nf"] == 48


def test_weights_status_offline_and_found(qtbot, panel, tmp_path, monkeypatch):
    from lesson7_studio.core import weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    panel.select_model("unet-resnet18")
    panel.form.set_values({"pretrained": True})
    panel._options_changed()
    qtbot.waitUntil(lambda: panel.last_weights is not None and panel.last_weights["arch"] == "resnet18",
                    timeout=30000)
    assert panel.last_weights["status"] == "offline"
    text = panel.weights_label.text()
    assert "Not available offline" in text and weights.weights_filename("resnet18") in text
    assert str(tmp_path / "torch") in text
    f = weights.weights_path("resnet18")
    f.parent.mkdir(parents=True)
    f.write_bytes(b"placeholder")
    panel._options_changed()
    qtbot.waitUntil(lambda: panel.last_weights["status"] == "found", timeout=30000)
    assert "Found" in panel.weights_label.text()
    # a model without pretrained weights has no such box
    panel.select_model("unet-lite")
    qtbot.waitUntil(lambda: panel.weights_box.isHidden(), timeout=10000)


def test_use_for_training_tells_the_train_panel(qtbot, panel, ctx):
    got = []
    ctx.model_chosen.connect(lambda name, opts: got.append((name, opts)))
    panel.select_model("unet-lite")
    panel.form.set_values({"nf": 16})
    panel.use_for_training()
    assert got == [("unet-lite", panel.options())] and got[0][1]["nf"] == 16
    assert ctx.model_choice[0] == "unet-lite"
    assert ctx.settings.value("model/name", "") == "unet-lite"
    panel.select_model("gan-critic")
    assert not panel.use_button.isEnabled()
