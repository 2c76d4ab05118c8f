"""Restore panel (issue 14, 2.7): tiles done inside one image in the status line, and a
multi-frame file named in the summary."""

from __future__ import annotations


import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PIL import Image  # noqa: E402


@pytest.fixture
def ctx(qapp, tmp_path):
    from lesson7_studio.core.project import Project
    from lesson7_studio.gui.context import AppContext, Settings

    c = AppContext(Project(tmp_path / "project").create(), Settings(tmp_path / "settings.ini"), device="cpu")
    yield c
    c.cancel_all(wait_ms=60000)


def test_tiles_in_the_status_and_frames_in_the_summary(qtbot, ctx, tmp_path):
    import torch

    from lesson7_studio.core import checkpoint, models
    from lesson7_studio.core.events import Progress
    from lesson7_studio.core.restore import restore_inputs
    from lesson7_studio.gui.panels.restore import RestorePanel

    torch.manual_seed(0)
    opts = dict(nf=8, blocks=1, scale=2, self_attention=False)
    model = checkpoint.save_model(tmp_path / "tiny.safetensors", models.create("unet-lite", **opts), "unet-lite", opts)
    frames = [Image.new("RGB", (40, 32), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    Image.new("RGB", (40, 32), (9, 9, 9)).save(tmp_path / "still.png")
    events = []
    summary = restore_inputs(model, [tmp_path / "anim.gif", tmp_path / "still.png"], tmp_path / "out", tile=16,
                        device="cpu", on_event=events.append)
    assert summary.done == 2 and summary.first_frame_only == [(tmp_path / "anim.gif", 3)]
    tiles = [e for e in events if isinstance(e, Progress) and e.stage == "tiles"]
    assert tiles and all(e.total > 1 for e in tiles)
    overall = [e for e in events if isinstance(e, Progress) and e.stage != "tiles"]
    assert all(e.total == 2 for e in overall)  # tiles never move the batch's own count

    p = RestorePanel(ctx)
    qtbot.addWidget(p)
    p._on_event(Progress(0, 2, "anim.gif", stage="restore"))
    p._on_event(Progress(3, 12, "anim.gif", stage="tiles"))
    assert "anim.gif: tile 3 / 12" in p.status_label.text() and "0 / 2" in p.status_label.text()
    assert p.progress.maximum() == 2  # the bar still counts images
    p._on_finished(summary)
    assert "anim.gif" in p.status_label.text() and "only the first frame" in p.status_label.text()
