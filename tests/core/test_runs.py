"""core.runs: reading run folders (config, metrics rows, checkpoints, sample grids and their layouts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lesson7_studio.core import runs


def _run(root: Path) -> Path:
    (root / "samples").mkdir(parents=True)
    (root / "checkpoints").mkdir()
    stages = [{"name": "pretrain", "kind": "restore", "epochs": 2}, {"name": "gan", "kind": "gan", "epochs": 1}]
    (root / "config.json").write_text(json.dumps({"recipe": "nogan", "arch": "unet-lite", "size": 64,
                                                  "batch_size": 4, "loss": "l1", "stages": stages}))
    (root / "metrics.csv").write_text(
        "stage,epoch,step,train_loss,valid_loss,psnr,gen_loss,lr,seconds\n"
        "pretrain,0,5,0.5,0.6,20.5,,0.001,1.5\n"
        "pretrain,1,10,0.4,0.5,21.25,,0.0005,1.5\n"
        "gan,0,15,0.3,0.4,,nan,0.0001,2.0\n")
    for name in ("pretrain-s0000005.safetensors", "pretrain-s0000010.safetensors", "gan-s0000015.critic.safetensors",
                 "gan-s0000012.critic.safetensors", ".pretrain-s0000099.safetensors.part", "notes.txt"):
        (root / "checkpoints" / name).write_bytes(b"x")
    return root


def test_config_and_stage_kinds(tmp_path):
    run = _run(tmp_path / "r")
    cfg = runs.read_config(run)
    assert runs.stage_kinds(cfg) == {"pretrain": "restore", "gan": "gan"}
    assert runs.run_tag(cfg) == "GAN"
    assert runs.run_tag({"stages": [{"name": "w", "kind": "wgan"}]}) == "WGAN" and runs.run_tag({}) == ""
    assert "stages pretrain\u00d72, gan\u00d71" in runs.describe_config(cfg)
    (run / "config.json").write_text("[1, 2]")
    assert runs.read_config(run) == {}
    assert runs.read_config(tmp_path / "missing") == {}


def test_metrics_are_typed_rows(tmp_path):
    run = _run(tmp_path / "r")
    rows = runs.read_metrics(run)
    assert [(r.stage, r.epoch, r.step) for r in rows] == [("pretrain", 0, 5.0), ("pretrain", 1, 10.0), ("gan", 0, 15.0)]
    assert rows[0].values == {"train_loss": 0.5, "valid_loss": 0.6, "psnr": 20.5}  # empty cells left out
    assert rows[1].lr == 0.0005 and rows[1].seconds == 1.5
    assert np.isnan(rows[2].values["gen_loss"]) and rows[2].get("gen_loss") is None
    assert [r.values.get("psnr") for r in runs.read_metrics(run / "metrics.csv")] == [20.5, 21.25, None]
    assert runs.metrics_by_epoch(rows)[("pretrain", 1)].get("psnr") == 21.25
    assert runs.last_metric(run, "psnr") == 21.25  # the gan row has none
    assert runs.last_metric(run, "ssim") is None
    assert runs.read_metrics(tmp_path / "nowhere") == []


def test_checkpoints(tmp_path):
    from lesson7_studio.core.project import Project

    project = Project(tmp_path / "p").create()
    run = _run(project.runs_dir / "nogan-1")
    assert runs.newest_checkpoint(run) == (run / "checkpoints" / "pretrain-s0000010.safetensors", 10)
    assert runs.newest_critic(run) == run / "checkpoints" / "gan-s0000015.critic.safetensors"
    assert runs.newest_critic(tmp_path) is None and runs.newest_checkpoint(tmp_path) is None
    assert runs.run_checkpoints(project) == [("Run: nogan-1 (step 10)", run / "checkpoints" / "pretrain-s0000010.safetensors",
                                              "checkpoint")]
    (run / "model.safetensors").write_bytes(b"x")  # a finished run offers its model instead
    assert runs.run_checkpoints(project) == []


def test_samples_in_stage_order(tmp_path):
    run = _run(tmp_path / "r")
    for name in ("gan_epoch000.png", "pretrain_epoch001.png", "pretrain_epoch000.png", "wgan_extra_epoch000.png",
                 ".pretrain_epoch002.png", "lr_find.png"):
        (run / "samples" / name).write_bytes(b"")
    got = [(s.stage, s.epoch, s.kind) for s in runs.list_samples(run)]
    assert got == [("pretrain", 0, "restore"), ("pretrain", 1, "restore"), ("gan", 0, "gan"),
                   ("wgan_extra", 0, "wgan")]  # a stage config.json does not list: kind from its name
    assert runs.sample_title(run / "samples" / "gan_epoch004.png") == "gan \u00b7 epoch 5: input | prediction | target"


def _cells(rng, shape, n):
    return [rng.integers(0, 256, (*shape, 3), dtype=np.uint8) for _ in range(n)]


def test_a_saved_grid_is_read_back_by_its_layout(tmp_path):
    from lesson7_studio.core.train.callbacks import save_grid

    rng = np.random.default_rng(0)
    rows = [_cells(rng, (64, 32), 3), _cells(rng, (64, 32), 3)]  # tall cells: guessing would cut 3 rows
    png = save_grid(rows, tmp_path / "samples" / "gan_epoch000.png")
    layout = runs.read_grid_layout(png)
    assert (layout.rows, layout.cols, layout.pad, layout.kind) == (2, 3, runs.GRID_PAD, "pairs")
    assert layout.columns == runs.PAIR_COLUMNS and layout.caption == "input | prediction | target"
    assert layout.boxes[1][2] == (4 + 2 * 36, 4 + 68, 32, 64)
    grid = runs.read_image(png)
    assert (grid.shape[1], grid.shape[0]) == (layout.width, layout.height)
    sample = runs.Sample("gan", 0, png, "gan")
    cells = runs.sample_cells(sample, grid, {"preview_samples": 5})  # the layout wins over the hint
    assert len(cells) == 2 and all(len(r) == 3 for r in cells)
    for got_row, want_row in zip(cells, rows):
        for got, want in zip(got_row, want_row):
            assert np.array_equal(got, want)
    assert len(runs.split_grid(grid)) == 3  # what the old guess made of it
    assert not list(png.parent.glob(".*"))  # no temporary files left


def test_noise_grids_have_no_cells_and_their_own_caption(tmp_path):
    from lesson7_studio.core.train.callbacks import save_grid

    rng = np.random.default_rng(1)
    png = save_grid([_cells(rng, (16, 16), 8)] * 2, tmp_path / "wgan_epoch000.png", pad=2, columns=(),
                    kind="noise", caption="generator on fixed noise")
    grid = runs.read_image(png)
    assert grid.shape[1] == 2 + 8 * 18
    assert runs.sample_cells(runs.Sample("wgan", 0, png, "wgan"), grid) == []
    assert runs.sample_title(png) == "wgan \u00b7 epoch 1: generator on fixed noise"


def test_grids_written_before_layouts_are_cut_by_the_old_rule(tmp_path):
    from lesson7_studio.core.train.callbacks import grid_image, save_png

    rng = np.random.default_rng(0)
    cells = _cells(rng, (64, 64), 3)
    png = save_png(grid_image([cells]), tmp_path / "pretrain_epoch000.png")  # one row, preview_samples 2
    assert runs.read_grid_layout(png) is None
    got = runs.sample_cells(runs.Sample("pretrain", 0, png), runs.read_image(png), {"preview_samples": 2})
    assert len(got) == 1 and np.array_equal(got[0][1], cells[1])
    wide = _cells(rng, (24, 40), 3)  # wide cells: the run's row count is kept when the grid has those rows
    rows = runs.split_grid(grid_image([wide, wide]), n_rows=2)
    assert len(rows) == 2 and np.array_equal(rows[1][2], wide[2])
    assert runs.sample_cells(runs.Sample("wgan", 0, png, "wgan"), runs.read_image(png)) == []


def test_damaged_layouts_say_which_file(tmp_path):
    from lesson7_studio.core.train.callbacks import save_grid

    rng = np.random.default_rng(2)
    png = save_grid([_cells(rng, (8, 8), 3)], tmp_path / "g_epoch000.png")
    layout_file = runs.layout_path(png)
    assert layout_file.name == "g_epoch000.json"
    layout_file.write_text("{not json")
    with pytest.raises(runs.RunFolderError, match="g_epoch000.json"):
        runs.read_grid_layout(png)
    layout_file.write_text(json.dumps({"format": runs.GRID_FORMAT, "version": 1, "width": 10}))
    with pytest.raises(runs.RunFolderError, match="missing"):
        runs.read_grid_layout(png)
    layout_file.write_text(json.dumps({"format": runs.GRID_FORMAT, "version": 99}))
    with pytest.raises(runs.RunFolderError, match="version 99"):
        runs.read_grid_layout(png)
    good = runs.grid_layout([[(8, 8)] * 3])
    with pytest.raises(runs.RunFolderError, match="replaced"):
        good.cells(np.zeros((5, 5, 3), np.uint8))
    assert runs.sample_title(png) == "g \u00b7 epoch 1: input | prediction | target"  # still titled
    (tmp_path / "bad_epoch000.png").write_bytes(b"not a png")
    with pytest.raises(runs.RunFolderError, match="bad_epoch000.png"):
        runs.read_image(tmp_path / "bad_epoch000.png")


def test_grid_image_follows_the_layout():
    from lesson7_studio.core.train.callbacks import grid_image

    a = np.full((10, 6, 3), 200, np.uint8)
    b = np.full((8, 12, 3), 100, np.uint8)
    grid = grid_image([[a, b]], pad=3)
    layout = runs.grid_layout([[a.shape[:2], b.shape[:2]]], pad=3)
    assert grid.shape == (layout.height, layout.width, 3) == (16, 3 + 2 * 15, 3)
    (x0, y0, w0, h0), (x1, y1, w1, h1) = layout.boxes[0]
    assert np.all(grid[y0:y0 + h0, x0:x0 + w0] == 200) and np.all(grid[y1:y1 + h1, x1:x1 + w1] == 100)
    assert grid[0, 0, 0] == runs.GRID_BG and grid[y1 + h1, x1, 0] == runs.GRID_BG  # below b: background


def test_reading_runs_imports_no_torch():
    code = "import sys, lesson7_studio.core.runs; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


class _Learn:
    """The little of a Learner the preview callbacks use."""

    stage, epoch = "gan", 2

    def __init__(self) -> None:
        self.events: list = []

    def predict(self, x):
        return x.flip(-1)

    def emit(self, ev) -> None:
        self.events.append(ev)


def test_training_previews_write_their_layout(tmp_path):
    import torch

    from lesson7_studio.core.train.callbacks import PreviewCallback
    from lesson7_studio.core.train.gan import NoiseGrid

    torch.manual_seed(0)
    pairs = [(torch.rand(3, 12, 20), torch.rand(3, 24, 40)) for _ in range(2)]  # x2: the input is scaled up
    cb = PreviewCallback(pairs, folder=tmp_path / "samples")
    cb.learn = _Learn()
    cb.after_epoch()
    png = tmp_path / "samples" / "gan_epoch002.png"
    ev = cb.learn.events[-1]
    assert ev.path == png and runs.layout_path(png).is_file()
    sample = runs.list_samples(tmp_path)[0]
    cells = runs.sample_cells(sample, runs.read_image(png))
    # the input is shown at the target's size; this fake model's prediction stays small: its own box
    assert len(cells) == 2 and [c.shape[:2] for c in cells[1]] == [(24, 40), (12, 20), (24, 40)]
    for got, want in zip(cells[1], ev.rows[1]):
        assert np.array_equal(got, want)  # input, prediction, target exactly as emitted

    noise = NoiseGrid(torch.rand(6, 3, 1, 1), folder=tmp_path / "w", ncol=4, to_image=lambda t: t.expand(-1, 3, 8, 8))
    noise.learn = _Learn()
    noise.learn.stage = "wgan"
    noise.after_epoch()
    layout = runs.read_grid_layout(tmp_path / "w" / "wgan_epoch002.png")
    assert (layout.kind, layout.rows, layout.cols, layout.pad) == ("noise", 2, 4, 2)
    assert len(layout.boxes[1]) == 2  # 6 images in rows of 4
