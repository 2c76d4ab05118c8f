"""The imported-models list lives once, in the app context (issue 16 §4): one settings key, a
change signal, shared by every panel and kept across restarts."""

from __future__ import annotations

from pathlib import Path


def model_files(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"m{i}.safetensors"
        p.write_bytes(b"x")
        out.append(p)
    return out


def test_add_remove_persist_and_signal(qtbot, gui_project, gui_settings, tmp_path):
    from lesson7_studio.gui.context import IMPORTED_MODELS_KEY, AppContext, Settings

    ctx = AppContext(gui_project, gui_settings, device="cpu")
    a, b = model_files(tmp_path / "models", 2)
    assert ctx.imported_models == []
    changes = []
    ctx.imported_models_changed.connect(lambda: changes.append(ctx.imported_models))
    assert ctx.add_imported_model(a) and ctx.add_imported_model(str(b))
    assert not ctx.add_imported_model(a)  # listed already: no change, no signal
    assert changes == [[a], [a, b]]
    ctx.imported_models.append(tmp_path / "not-added")  # a copy: the list is not changed behind its back
    assert ctx.imported_models == [a, b]
    assert gui_settings.value(IMPORTED_MODELS_KEY, []) == [str(a), str(b)]
    # a restart (another context on the same ini file) sees them; a file that is gone is dropped
    gui_settings.sync()
    b.unlink()
    again = AppContext(gui_project, Settings(gui_settings.path), device="cpu")
    assert again.imported_models == [a]
    assert again.remove_imported_model(a) and not again.remove_imported_model(a)
    assert again.imported_models == [] and Settings(gui_settings.path).value(IMPORTED_MODELS_KEY, []) == []


def test_existing_users_keep_their_list_and_only_the_last_twenty_are_kept(gui_project, gui_settings, tmp_path):
    from lesson7_studio.gui.context import IMPORTED_LIMIT, AppContext

    files = model_files(tmp_path / "many", IMPORTED_LIMIT + 3)
    gui_settings.set_value("models/imported", [str(p) for p in files[:2]])  # what the panels wrote
    ctx = AppContext(gui_project, gui_settings, device="cpu")
    assert ctx.imported_models == files[:2]
    for p in files[2:]:
        ctx.add_imported_model(p)
    assert ctx.imported_models == files[-IMPORTED_LIMIT:]
    assert gui_settings.value("models/imported", []) == [str(p) for p in files[-IMPORTED_LIMIT:]]


def test_one_entry_survives_the_ini_round_trip(gui_project, gui_settings, tmp_path):
    from lesson7_studio.gui.context import AppContext, Settings

    (a,) = model_files(tmp_path / "one", 1)
    AppContext(gui_project, gui_settings, device="cpu").add_imported_model(a)
    gui_settings.sync()
    assert AppContext(gui_project, Settings(gui_settings.path), device="cpu").imported_models == [a]
