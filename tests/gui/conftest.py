"""Fixtures for the GUI tests (pytest-qt, offscreen): isolated settings, projects, tiny data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")



@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    """Projects and settings of the tests never touch the user's folders."""
    base = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("LESSON7_DATA_DIR", str(base / "data"))
    monkeypatch.setenv("LESSON7_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("LESSON7_OFFLINE", "1")
    yield


@pytest.fixture
def gui_settings(tmp_path):
    from lesson7_studio.gui.context import Settings

    return Settings(tmp_path / "settings.ini")


@pytest.fixture
def gui_project(tmp_path):
    from lesson7_studio.core.project import Project

    return Project(tmp_path / "project").create()


@pytest.fixture
def ctx(qapp, gui_project, gui_settings):
    from lesson7_studio.gui.context import AppContext

    c = AppContext(gui_project, gui_settings, device="cpu")
    yield c
    c.cancel_all(wait_ms=60000)


@pytest.fixture(autouse=True)
def error_dialogs(monkeypatch):
    """Error dialogs are recorded, never shown modally (a test would hang): list of QMessageBox."""
    from lesson7_studio.gui import errors

    shown = []
    monkeypatch.setattr(errors, "_exec_dialog", lambda box: shown.append(box))
    return shown


def make_images(folder: Path, n: int = 6, size: int = 48) -> list[Path]:
    """``n`` small, distinct PNG photos (smooth gradients and a square) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    y, x = np.mgrid[0:size, 0:size]
    for i in range(n):
        a = np.stack([(x * 5 + i * 40) % 256, (y * 4 + i * 13) % 256, ((x + y) * 3) % 256], -1).astype(np.uint8)
        a[size // 4 : size // 2, size // 4 : size // 2] = (255 - 30 * i) % 256
        p = folder / f"photo{i}.png"
        Image.fromarray(a).save(p)
        out.append(p)
    return out


@pytest.fixture
def photo_folder(tmp_path) -> Path:
    folder = tmp_path / "photos"
    make_images(folder)
    return folder


@pytest.fixture
def tiny_dataset(gui_project, photo_folder) -> Path:
    """A 4 train / 2 valid superres-x2 dataset in the project's datasets/."""
    from lesson7_studio.core import datasets

    dst = gui_project.datasets_dir / "tiny"
    datasets.build_pairs(photo_folder, dst, "superres-x2", seed=0, valid_pct=0.34)
    return dst


TINY_MODEL = ("unet-lite", {"nf": 8, "blocks": 1, "self_attention": False, "blur": False})


def _configure_tiny_run(panel, epochs: int = 1) -> None:
    """The quick recipe made tiny: unet-lite nf 8, 32 px crops, batch 2."""
    from PySide6.QtCore import Qt

    idx = panel.form.recipe_combo.findData("quick")
    panel.form.recipe_combo.setCurrentIndex(idx)
    panel.ctx.set_model_choice(*TINY_MODEL)
    panel.form.size_spin.setValue(32)
    panel.form.bs_spin.setValue(2)
    panel.form.steps_spin.setValue(2)  # one pass over the 4 training pairs (quick's epoch is 150 batches)
    panel.form.set_stage_epochs(epochs)
    panel.refresh_datasets()
    i = panel.form.dataset_combo.findText("tiny", flags=Qt.MatchFlag.MatchStartsWith)
    assert i >= 0, "the tiny dataset is not listed"
    panel.form.dataset_combo.setCurrentIndex(i)


@pytest.fixture
def configure_tiny_run():
    """``configure_tiny_run(train_panel, epochs=1)``: set the panel up for a run of seconds."""
    return _configure_tiny_run
