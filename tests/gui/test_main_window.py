"""Main window: panels and menus, projects, persisted state, quitting during a run."""

from __future__ import annotations

from pathlib import Path

import pytest

from lesson7_studio import __version__
from lesson7_studio.core.events import BatchEnd


@pytest.fixture
def make_window(qtbot, ctx):
    from lesson7_studio.gui.main_window import MainWindow

    windows = []

    def make(c=None):
        w = MainWindow(c or ctx)
        qtbot.addWidget(w)
        w.show()
        windows.append(w)
        return w

    yield make
    for w in windows:
        w._force_close = True
        for p in w.panels.values():
            p.shutdown()


def test_every_panel_builds_in_order(make_window):
    from lesson7_studio.gui.panels.compare import ComparePanel
    from lesson7_studio.gui.panels.gan import GanPanel
    from lesson7_studio.gui.panels.restore import RestorePanel

    w = make_window()
    labels = [w.sidebar.item(i).text() for i in range(w.sidebar.count())]
    assert labels == ["Data", "Model", "Train", "Compare", "Inspect", "Restore", "Lessons"]
    assert all(not w.sidebar.item(i).icon().isNull() for i in range(w.sidebar.count()))
    assert isinstance(w.panels["compare"], ComparePanel)
    assert isinstance(w.panels["inspect"], GanPanel)
    assert isinstance(w.panels["restore"], RestorePanel)
    for key in ("model", "train", "compare", "inspect", "restore", "data"):
        panel = w.show_panel(key)
        assert w.stack.currentWidget() is panel and w.current_panel_name() == key
    assert w.show_panel("gan") is w.panels["inspect"]
    # View menu entries switch panels too
    acts = {a.data(): a for a in w.panel_actions.actions()}
    acts["train"].trigger()
    assert w.current_panel_name() == "train" and acts["train"].isChecked()
    assert [m.title() for m in (a.menu() for a in w.menuBar().actions())] == ["&File", "&View", "&Help"]


def test_status_bar_and_about(make_window, ctx):
    w = make_window()
    assert "CPU" in w.device_label.text()
    assert ctx.project.name in w.project_label.text()
    text = w.about_text()
    assert __version__ in text and "PyTorch" in text and "cpu" in text
    assert str(ctx.settings.path) in text and str(ctx.project.root) in text


def test_window_state_and_last_panel_persist(make_window, ctx, gui_project, gui_settings):
    from lesson7_studio.gui.context import AppContext, Settings

    w = make_window()
    w.resize(1010, 650)
    w.show_panel("train")
    w.sidebar_action.setChecked(False)
    geometry = w.saveGeometry()
    w.close()
    settings2 = Settings(gui_settings.path)  # a new start reads the same ini file
    assert settings2.value("window/geometry") == geometry
    w2 = make_window(AppContext(gui_project, settings2, device="cpu"))
    assert w2.current_panel_name() == "train"
    assert w2.height() == 650  # (the offscreen screen is narrower than the window: width is clamped)
    assert not w2.sidebar_action.isChecked() and w2.sidebar.isHidden()


def test_new_and_recent_projects(make_window, ctx, tmp_path):
    w = make_window()
    seen = []
    ctx.project_changed.connect(seen.append)
    w._set_project(tmp_path / "second", new=True)
    assert ctx.project.root == (tmp_path / "second").resolve() and ctx.project.exists()
    assert seen and "second" in w.project_label.text() and "second" in w.windowTitle()
    assert str(ctx.project.root) == ctx.settings.recent("recent/projects")[0]
    w._fill_recent()
    assert any("second" in a.text() for a in w.recent_menu.actions())


def test_choose_project_first_start_is_the_demo(gui_settings, tmp_path):
    from lesson7_studio.core.project import Project
    from lesson7_studio.gui.app import choose_project

    p, demo = choose_project(gui_settings, None, demo=False)
    assert demo and (p.root / "photos").is_dir()
    other = Project(tmp_path / "mine").create()
    gui_settings.set_value("project/last", str(other.root))
    assert choose_project(gui_settings, None, demo=False) == (other, False)
    assert choose_project(gui_settings, tmp_path / "given", demo=False)[0].exists()


def test_open_files_go_to_compare(make_window, monkeypatch, photo_folder):
    w = make_window()
    opened = []
    monkeypatch.setattr(w.panels["compare"], "open_images", opened.append)
    w.open_files([photo_folder / "photo0.png"])
    assert w.current_panel_name() == "compare" and opened == [[photo_folder / "photo0.png"]]


def test_closing_during_a_run_asks_then_leaves_a_resumable_checkpoint(
    qtbot, make_window, tiny_dataset, configure_tiny_run, monkeypatch
):
    w = make_window()
    train = w.show_panel("train")
    configure_tiny_run(train, epochs=50)
    train.start()
    batches = []
    train.control.worker.event.connect(lambda ev: batches.append(ev) if isinstance(ev, BatchEnd) else None)
    qtbot.waitUntil(lambda: len(batches) >= 1, timeout=60000)
    asked = []
    monkeypatch.setattr(w, "confirm_quit", lambda busy: asked.append(busy) or False)
    assert not w.close()  # "No": the window stays, training goes on
    assert asked == [["train"]] and w.isVisible() and train.is_busy()
    monkeypatch.setattr(w, "confirm_quit", lambda busy: asked.append(busy) or True)
    monkeypatch.setattr("lesson7_studio.gui.main_window.quit_if_no_window_left", lambda: None)
    with qtbot.waitSignal(w.closed, timeout=120000):
        assert not w.close()  # "Yes": hidden at once, closed once training has stopped
        assert w.isHidden() and train.is_busy()
    assert len(asked) == 2 and not train.is_busy()
    run_dir = Path(train.control.run_dir)
    assert any((run_dir / "checkpoints").iterdir()), "no checkpoint written on quit"
    assert not (run_dir / "model.safetensors").exists()
    from lesson7_studio.core.project import Project

    assert [r.status for r in Project(run_dir.parents[1]).list_runs()] == ["resumable"]


def test_device_text_comes_from_core(monkeypatch, gui_project, gui_settings, qapp):
    from lesson7_studio.gui.about import device_text
    from lesson7_studio.gui.context import AppContext

    monkeypatch.setattr("lesson7_studio.core.system.device_name", lambda d: "Tesla T4" if d == "cuda" else "")
    assert device_text(AppContext(gui_project, gui_settings)) == "Device: \u2026"  # not detected yet
    assert device_text(AppContext(gui_project, gui_settings, device="cuda")) == "Device: CUDA (Tesla T4)"
    assert device_text(AppContext(gui_project, gui_settings, device="mps")) == "Device: MPS"
