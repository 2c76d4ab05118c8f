"""The one model picker (Compare: ticked list, Restore: combo): what it lists, and imports kept
once in the app context (shared by every picker, kept after a restart)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402


@pytest.fixture
def model_file(ctx, tmp_path) -> Path:
    """A model file outside the project (a copy of the bundled starter: any loadable file would do)."""
    from lesson7_studio.gui.context import starter_models

    starters = starter_models()
    if not starters:
        pytest.skip("no bundled starter model")
    out = tmp_path / "elsewhere" / "outside.safetensors"
    out.parent.mkdir()
    shutil.copy(starters[0], out)
    return out


def _pickers(qtbot, ctx):
    from lesson7_studio.gui.widgets.model_picker import ModelPicker

    many = ModelPicker(ctx, multiple=True)
    one = ModelPicker(ctx, multiple=False, dir_key="restore/model_dir", import_text="Import\u2026")
    qtbot.addWidget(many)
    qtbot.addWidget(one)
    return many, one


def test_lists_starter_first_then_run_checkpoints_and_ticks_the_starter(qtbot, ctx, model_file):
    run = ctx.project.runs_dir / "quick-1"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    for name in ("main-s0000010.safetensors", "main-s0000020.safetensors"):
        shutil.copy(model_file, run / "checkpoints" / name)
    many, one = _pickers(qtbot, ctx)
    starter = ctx.available_models()[0]
    labels = [many.model_list.item(i).text() for i in range(many.model_list.count())]
    assert labels[0] == starter.label and "Run: quick-1 (step 20)" in labels
    assert [one.model_combo.itemText(i) for i in range(one.model_combo.count())] == labels
    assert many.paths() == one.paths()
    assert many.selected() == [(starter.label, Path(starter.path))]
    assert one.path() == Path(starter.path) and one.selected() == [(starter.label, Path(starter.path))]


def test_an_import_shows_in_every_picker_and_survives_a_restart(qtbot, ctx, gui_settings, model_file):
    from lesson7_studio.gui.context import AppContext

    many, one = _pickers(qtbot, ctx)
    one.set_model(model_file)  # e.g. the Restore panel's Import
    assert one.path() == model_file
    assert ctx.imported_models == [model_file]
    assert model_file in many.paths()  # the Compare panel's list follows at once
    item = next(many.model_list.item(i) for i in range(many.model_list.count())
                if many.model_list.item(i).data(Qt.ItemDataRole.UserRole) == str(model_file))
    assert item.text() == "File: outside.safetensors" and item.checkState() == Qt.CheckState.Unchecked
    # ticking it in the list imports nothing twice
    many.set_models([model_file])
    assert [p for _l, p in many.selected()] == [model_file]
    assert ctx.imported_models == [model_file]
    # a new session (same settings file) lists it again
    gui_settings.sync()
    ctx2 = AppContext(ctx.project, type(gui_settings)(gui_settings.path), device="cpu")
    again, _one = _pickers(qtbot, ctx2)
    assert model_file in again.paths()


def test_changed_is_emitted_for_the_user_not_for_refreshes(qtbot, ctx, model_file):
    many, one = _pickers(qtbot, ctx)
    seen = []
    many.changed.connect(lambda: seen.append("many"))
    one.changed.connect(lambda: seen.append("one"))
    refreshed = []
    many.refreshed.connect(lambda: refreshed.append(1))
    ctx.models_changed.emit()
    assert seen == [] and refreshed == [1]
    many.model_list.item(0).setCheckState(Qt.CheckState.Unchecked)
    assert seen == ["many"]
    ctx.add_imported_model(model_file)
    one.model_combo.setCurrentIndex(one.model_combo.findData(str(model_file)))
    assert seen == ["many", "one"]
    many.set_models([model_file])
    seen.clear()
    ctx.models_changed.emit()  # a refresh keeps the current model and the ticks, silently
    assert one.path() == model_file and [p for _l, p in many.selected()] == [model_file]
    assert seen == []
    many.set_models([])
    ctx.models_changed.emit()  # with nothing ticked, the starter (the default) is ticked again
    assert [p for _l, p in many.selected()] == [Path(ctx.available_models()[0].path)]


def test_a_model_imported_in_compare_is_offered_by_restore_and_after_a_restart(qtbot, ctx, gui_settings, model_file):
    """Issue 16: both panels kept a private copy of the list under one key, so an import in one
    panel was lost from the other (and after a restart)."""
    from lesson7_studio.gui.context import AppContext
    from lesson7_studio.gui.panels.compare import ComparePanel
    from lesson7_studio.gui.panels.restore import RestorePanel

    compare, restore = ComparePanel(ctx), RestorePanel(ctx)
    qtbot.addWidget(compare)
    qtbot.addWidget(restore)
    compare.set_models([model_file])  # what Import model... in Compare does (ticked)
    assert [p for _l, p in compare.selected_models()] == [model_file]
    assert restore.model_combo.findData(str(model_file)) >= 0
    restore.set_model(model_file)
    assert restore.model_path() == model_file and ctx.imported_models == [model_file]
    gui_settings.sync()
    ctx2 = AppContext(ctx.project, type(gui_settings)(gui_settings.path), device="cpu")
    restore2 = RestorePanel(ctx2)
    qtbot.addWidget(restore2)
    assert restore2.model_combo.findData(str(model_file)) >= 0
