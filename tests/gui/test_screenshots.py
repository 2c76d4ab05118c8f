"""gui/screenshots.py keeps working with the panels it drives (the shots that need no training)."""

from __future__ import annotations

import numpy as np
from PIL import Image


def test_the_shots_that_need_no_training_render(qtbot, tmp_path):
    from lesson7_studio.core.project import demo_project
    from lesson7_studio.gui import screenshots

    project = demo_project(tmp_path / "demo", build=False)
    app, win = screenshots._open_window(project, (1000, 640), tmp_path)
    qtbot.addWidget(win)
    out = tmp_path / "out"
    out.mkdir()
    logged = []
    shots = screenshots._Shots(app, win, project, out, tmp_path, logged.append)
    shots.data()
    shots.model()
    shots.about()
    shots.close()
    assert [p.name for p in shots.written] == ["data.png", "model.png", "about.png"]
    assert logged == [f"wrote {p}" for p in shots.written]
    for p in shots.written:
        with Image.open(p) as im:
            assert im.width > 100 and np.unique(np.asarray(im.convert("L"))).size > 10  # drawn, not blank
    assert win.isHidden()
