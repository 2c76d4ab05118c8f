"""Data panel: folder and thumbnails, recipe editor, live preview, dataset builder."""

from __future__ import annotations

import json
import time

import pytest

from lesson7_studio.core import crappify
from lesson7_studio.core.events import Progress


@pytest.fixture
def panel(qtbot, ctx):
    from lesson7_studio.gui.panels.data import DataPanel

    p = DataPanel(ctx)
    qtbot.addWidget(p)
    p.resize(1100, 700)
    p.show()
    yield p
    p.shutdown()


def _image_bytes(view) -> bytes:
    img = view.pixmap().toImage()
    return bytes(img.constBits())


def test_folder_lists_photos_and_loads_thumbnails_lazily(qtbot, panel, photo_folder, ctx):
    panel.set_folder(photo_folder)
    qtbot.waitUntil(lambda: len(panel.photo_paths()) == 6, timeout=20000)
    assert "6 photos" in panel.count_label.text()
    qtbot.waitUntil(lambda: panel.grid.thumb_model.loaded_count() >= 1, timeout=20000)
    assert ctx.settings.value("data/folder", "") == str(photo_folder)
    assert str(photo_folder) in ctx.settings.recent("recent/folders")
    # the first photo is selected and previewed, original and crappified
    qtbot.waitUntil(lambda: panel.preview_count >= 1, timeout=20000)
    assert panel.original_view.has_image() and panel.crappy_view.has_image()
    assert panel.name_edit.text().startswith("photos-")


def test_thumbnails_load_only_what_is_shown(qtbot, tmp_path, photo_folder):
    from lesson7_studio.gui.widgets.thumbs import ThumbnailGrid

    data = (photo_folder / "photo0.png").read_bytes()
    many = tmp_path / "many"
    many.mkdir()
    paths = []
    for i in range(1500):
        p = many / f"img{i:04d}.png"
        p.write_bytes(data)
        paths.append(p)
    grid = ThumbnailGrid(64)
    qtbot.addWidget(grid)
    grid.resize(320, 220)
    grid.show()
    grid.set_paths(paths)
    # set_paths decodes nothing itself: thumbnails come back from the pool through queued signals
    # (its speed is measured by benchmarks/bench_gui_lists.py)
    assert grid.thumb_model.loaded_count() == 0
    assert grid.thumb_model.rowCount() == 1500
    qtbot.waitUntil(lambda: grid.thumb_model.loaded_count() >= 4, timeout=20000)
    qtbot.wait(300)
    assert grid.thumb_model.loaded_count() < 200, "thumbnails of hidden rows were loaded"
    assert grid.current_path() == paths[0]
    grid.thumb_model.shutdown()


def test_changing_a_parameter_updates_the_preview(qtbot, panel, photo_folder):
    panel.set_folder(photo_folder)
    qtbot.waitUntil(lambda: panel.preview_count >= 1, timeout=20000)
    panel.recipe_editor.set_preset("jpeg")
    qtbot.waitUntil(lambda: panel.preview_count >= 2, timeout=20000)
    before_count, before = panel.preview_count, _image_bytes(panel.crappy_view)
    jpeg = [e.kind for e in panel.recipe_editor.step_editors()].index("jpeg")
    panel.recipe_editor.set_param(jpeg, "quality", (1, 1))
    qtbot.waitUntil(lambda: panel.preview_count > before_count, timeout=20000)
    assert panel.preview_params["quality"] == 1
    assert _image_bytes(panel.crappy_view) != before
    assert panel.recipe_editor.preset.currentData() is None  # now a custom recipe
    # a new seed draws new values
    panel.recipe_editor.set_param(jpeg, "quality", (10, 90))
    qtbot.waitUntil(lambda: panel.preview_count > before_count + 1, timeout=20000)
    seed, count = panel.seed_spin.value(), panel.preview_count
    panel.new_seed_button.click()
    assert panel.seed_spin.value() != seed
    qtbot.waitUntil(lambda: panel.preview_count > count, timeout=20000)
    # original and crappified views zoom together
    panel.original_view.set_zoom(2.0)
    assert panel.crappy_view.zoom() == pytest.approx(2.0)


def test_recipe_editor_presets_steps_and_errors(qtbot):
    from lesson7_studio.gui.widgets.recipe_editor import RecipeEditor

    ed = RecipeEditor()
    qtbot.addWidget(ed)
    presets = [ed.preset.itemData(i) for i in range(ed.preset.count()) if ed.preset.itemData(i)]
    assert presets == list(crappify.PRESETS)
    seen = []
    ed.recipe_changed.connect(seen.append)
    ed.set_preset("lesson7")
    r = ed.recipe()
    assert r.hash() == crappify.PRESETS["lesson7"].hash() and seen
    assert [e.kind for e in ed.step_editors()] == ["resize", "text", "jpeg"]
    # each parameter is a proper widget: the JPEG quality range is two spin boxes
    q = ed.step_editors()[2].form.field("quality")
    assert q.value() == (10, 70) and q.widget.low.maximum() == 100
    assert ed.step_editors()[0].form.field("resample").widget.count() >= 4
    # an impossible combination is reported, the last good recipe stays
    resize = ed.step_editors()[0].form
    resize.field("factor").set_value(2)
    ed._rebuild()
    assert not ed.error.isHidden() and "exactly one" in ed.error.text()
    assert ed.recipe().hash() == r.hash()
    resize.field("shortest_side").set_value(None)
    ed._rebuild()
    assert ed.error.isHidden() and ed.recipe().scale == 2
    # steps can be added (before the final JPEG) and removed
    ed.add_step("noise")
    assert [e.kind for e in ed.step_editors()] == ["resize", "text", "noise", "jpeg"]
    assert ed.recipe().steps[2].kind == "noise"
    ed._remove(ed.step_editors()[2])
    assert [s.kind for s in ed.recipe().steps] == ["resize", "text", "jpeg"]
    # state round-trips through the settings
    ed2 = RecipeEditor()
    qtbot.addWidget(ed2)
    assert ed2.restore_state(ed.state()) and ed2.recipe().hash() == ed.recipe().hash()


def test_build_dataset_lists_skipped_files(qtbot, panel, photo_folder, ctx):
    (photo_folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    panel.set_folder(photo_folder)
    qtbot.waitUntil(lambda: len(panel.photo_paths()) == 7, timeout=20000)
    panel.recipe_editor.set_preset("superres-x2")
    panel.name_edit.setText("my set")
    panel.workers_spin.setValue(1)
    panel.valid_spin.setValue(30)
    changed = []
    ctx.datasets_changed.connect(lambda: changed.append(1))
    panel.build_button.click()
    assert panel.is_busy() and panel.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: panel.summary_dialog is not None, timeout=60000)
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=10000)
    dst = ctx.project.datasets_dir / "my-set"
    meta = json.loads((dst / "dataset.json").read_text())
    # Variants "auto": a 7-file folder is degraded 8 times per photo; each photo on one side of the split
    from lesson7_studio.core.crappify import auto_variants
    from lesson7_studio.core.crappify.manifest import source_of

    assert panel.build_form.variants_spin.text() == "auto" and auto_variants(7) == 8
    assert len(meta["train"]) + len(meta["valid"]) == 6 * 8
    assert {source_of(k) for k in meta["valid"]}.isdisjoint(source_of(k) for k in meta["train"])
    table = panel.summary_dialog.table
    assert table.topLevelItemCount() == 1  # the broken file once, not once per variant
    assert table.topLevelItem(0).text(0).endswith("broken.jpg") and table.topLevelItem(0).text(1)
    assert changed and panel.build_button.isEnabled() and not panel.progress.isVisible()
    panel.summary_dialog.accept()


def test_the_preview_is_what_the_build_writes_with_the_seed_shown(qtbot, panel, photo_folder, ctx):
    """The seed in the spin box is the dataset's seed, and the preview of the selected photo is
    the pair the build writes for it: HR and LR pixels as decoded from the files, the LR file's
    bytes (the recipe ends with JPEG), the photo's seed and the values drawn."""
    import numpy as np
    from PIL import Image

    from lesson7_studio.gui.widgets.qimage import qimage_to_array

    panel.set_folder(photo_folder)
    qtbot.waitUntil(lambda: panel.preview_count >= 1, timeout=20000)
    panel.recipe_editor.set_preset("decrappify-x2")
    panel.max_size_spin.setValue(40)  # the photos are 48 px: the cap changes the pair
    panel.seed_spin.setValue(4242)
    rel = panel.grid.current_path().relative_to(photo_folder).as_posix()

    def shown() -> bool:
        pv = panel.last_preview
        return pv is not None and pv.seed == crappify.item_seed(4242, rel) and pv.hr.size == (40, 40)

    qtbot.waitUntil(shown, timeout=20000)
    pv = panel.last_preview
    assert np.array_equal(qimage_to_array(panel.crappy_view.pixmap().toImage()), np.asarray(pv.shown()))
    assert np.array_equal(qimage_to_array(panel.original_view.pixmap().toImage()), np.asarray(pv.hr))
    panel.name_edit.setText("seeded")
    panel.valid_spin.setValue(0)
    panel.build_button.click()
    qtbot.waitUntil(lambda: panel.summary_dialog is not None, timeout=60000)
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=10000)
    dst = ctx.project.datasets_dir / "seeded"
    meta = json.loads((dst / "dataset.json").read_text())
    item = meta["items"][rel]
    assert meta["seed"] == 4242 and item["seed"] == pv.seed and item["params"] == json.loads(json.dumps(pv.params))
    assert (dst / item["lr"]).read_bytes() == pv.jpeg_bytes
    with Image.open(dst / item["lr"]) as lr, Image.open(dst / item["hr"]) as hr:
        assert np.array_equal(np.asarray(lr.convert("RGB")), np.asarray(pv.lr))
        assert np.array_equal(np.asarray(hr.convert("RGB")), np.asarray(pv.hr))
    assert ctx.settings.value("data/seed", 0) == 4242  # and the next session starts from it
    panel.summary_dialog.accept()


def _slow_build(src, dst, recipe, *, on_event=None, cancel=None, **kw):
    """Stands in for crappify.build_pairs: reports progress until cancelled."""
    for i in range(1000):
        on_event(Progress(i, 1000, "crappify"))
        cancel.check()
        time.sleep(0.01)
    raise AssertionError("not cancelled")


def test_build_can_be_cancelled(qtbot, panel, photo_folder, monkeypatch):
    monkeypatch.setattr(crappify, "build_pairs", _slow_build)
    panel.set_folder(photo_folder)
    qtbot.waitUntil(lambda: len(panel.photo_paths()) == 6, timeout=20000)
    panel.build_button.click()
    qtbot.waitUntil(lambda: panel.progress.value() > 0, timeout=10000)
    panel.cancel_button.click()
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=10000)
    assert "Cancelled" in panel.build_status.text()
    assert panel.summary_dialog is None and panel.build_button.isEnabled()


# ---------------------------------------------------------------------------- issue 14 layout


@pytest.fixture
def wheel_guard(qapp):
    from lesson7_studio.gui.widgets.wheel import install_wheel_guard

    return install_wheel_guard(qapp)  # what create_application() does for the whole app


@pytest.fixture
def app_style(qapp):
    """The app's own style sheet (wider fields than Qt's defaults), as create_application() sets it."""
    from lesson7_studio.gui.app import stylesheet

    old_sheet = qapp.styleSheet()
    qapp.setStyleSheet(stylesheet())
    yield
    qapp.setStyleSheet(old_sheet)


def _wheel(widget, dy: int = -120, to_child: bool = True):
    """A wheel turn over the middle of ``widget``, delivered as Qt delivers it to the child
    under the pointer (a spin box's line edit), or to ``widget`` itself (where a real, spontaneous
    event the child ignores ends up; a sent one is not passed on). Returns whether it was taken."""
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    target = (widget.childAt(widget.rect().center()) if to_child else None) or widget
    pos = QPointF(target.rect().center())
    glob = QPointF(target.mapToGlobal(target.rect().center()))
    ev = QWheelEvent(pos, glob, QPoint(0, 0), QPoint(0, dy), Qt.MouseButton.NoButton,
                     Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(target, ev)
    return ev.isAccepted()


def test_old_photo_recipe_fits_the_column_at_1280x800(qtbot, app_style, panel):
    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QToolButton

    panel.resize(1184, 740)  # the panel's share of a 1280x800 window (sidebar, menu, status bar)
    panel.recipe_editor.set_preset("old-photo")
    qtbot.wait(50)
    scroll = panel.right_scroll
    view_w = scroll.viewport().width()
    assert scroll.widget().width() <= view_w
    assert not scroll.horizontalScrollBar().isVisible()
    ed = panel.recipe_editor
    remove = [b for b in ed.step_editors()[0].findChildren(QToolButton) if b.text() == "\u2715"]
    assert len(remove) == 1
    for w in (ed.preset, ed.load_button, ed.save_button, remove[0], panel.build_button):
        right = w.mapTo(scroll.viewport(), QPoint(w.width(), 0)).x()
        assert right <= view_w, (w, right, view_w)


def test_wheel_scrolls_the_recipe_column_not_the_field_under_it(qtbot, panel, wheel_guard):
    from PySide6.QtWidgets import QSpinBox

    panel.resize(1100, 420)  # short: the recipe column must scroll
    panel.recipe_editor.set_preset("decrappify-x2")
    qtbot.wait(50)
    preset = panel.recipe_editor.preset.currentText()
    size = panel.recipe_editor.step_editors()[1].form.field("size").widget
    assert isinstance(size, QSpinBox) and not size.hasFocus()
    bar = panel.right_scroll.verticalScrollBar()
    assert bar.maximum() > 0
    before_value, before_scroll = size.value(), bar.value()
    assert _wheel(size)
    assert size.value() == before_value  # the field under the pointer did not change ...
    assert panel.recipe_editor.preset.currentText() == preset  # ... nor the preset to "(custom)"
    assert bar.value() > before_scroll  # the column scrolled instead
    combo = panel.recipe_editor.preset
    _wheel(combo, dy=120)
    assert combo.currentText() == preset
    # a focused field still takes wheel steps; and the wheel alone never gives the focus
    from PySide6.QtCore import Qt

    assert size.focusPolicy() == Qt.FocusPolicy.StrongFocus
    panel.window().activateWindow()
    size.setFocus()
    qtbot.waitUntil(size.hasFocus, timeout=5000)
    _wheel(size, dy=120, to_child=False)
    assert size.value() == before_value + 1


def test_build_keeps_the_column_where_it_is_and_shows_the_progress(qtbot, panel, photo_folder, monkeypatch):
    from PySide6.QtCore import QPoint, Qt

    monkeypatch.setattr(crappify, "build_pairs", _slow_build)
    panel.resize(1100, 460)
    panel.recipe_editor.set_preset("old-photo")
    panel.set_folder(photo_folder)
    qtbot.waitUntil(lambda: len(panel.photo_paths()) == 6, timeout=20000)
    qtbot.waitExposed(panel)
    scroll = panel.right_scroll
    bar = scroll.verticalScrollBar()
    scroll.ensureWidgetVisible(panel.build_button)
    qtbot.wait(20)
    at = bar.value()
    assert at > 0
    panel.window().activateWindow()
    qtbot.mouseClick(panel.build_button, Qt.MouseButton.LeftButton)  # the click gives it the focus
    qtbot.waitUntil(lambda: panel.progress.value() > 0, timeout=10000)
    qtbot.wait(50)
    assert bar.value() >= at  # not back at the top
    view_h = scroll.viewport().height()
    for w in (panel.progress, panel.build_status):
        top = w.mapTo(scroll.viewport(), QPoint(0, 0)).y()
        assert 0 <= top and top + w.height() <= view_h, (w, top, view_h)
    at = bar.value()
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=10000)
    qtbot.wait(50)
    assert bar.value() >= at - panel.progress.height() - 12  # only the hidden bar's room is given back


def test_choosing_another_folder_clears_the_last_build_line(qtbot, panel, photo_folder, tmp_path):
    from tests.gui.conftest import make_images

    panel.set_folder(photo_folder)
    panel.build_status.setText("Done: 28 train / 2 valid pairs, 0 skipped.")  # as a finished build leaves it
    other = tmp_path / "other"
    make_images(other, 2)
    panel.set_folder(other)
    assert panel.build_status.text() == ""
