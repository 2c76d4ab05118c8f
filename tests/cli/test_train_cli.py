"""`lesson7-studio train` / `lr-find` on tiny data."""

import argparse
import json

import numpy as np
import pytest
from PIL import Image

from lesson7_studio.cli import train_cmd
from lesson7_studio.core.datasets import build_pairs


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: threads only wait


def cli(*argv):
    """Run a train_cmd subcommand the way cli.main does (Lesson7Error -> exit 1)."""
    from lesson7_studio.core.errors import Lesson7Error

    p = argparse.ArgumentParser()
    train_cmd.add_parser(p.add_subparsers())
    args = p.parse_args(list(argv))
    try:
        return args.func(args)
    except Lesson7Error as err:
        print(f"error: {err}")
        return 1


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_train")
    src = root / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(src / f"{i}.png")
    build_pairs(src, root / "ds", "superres-x2", seed=0, valid_pct=0.3, workers=1)
    return root / "ds"


def test_train_resume_config_and_errors(ds, tmp_path, capsys):
    run = tmp_path / "run"
    rc = cli("train", "--recipe", "quick", "--data", str(ds), "--out", str(run), "--epochs", "1", "--size", "32",
             "--batch-size", "2", "--precision", "fp32", "--max-steps", "1", "--steps-per-epoch", "3")
    out = capsys.readouterr()
    assert rc == 0 and "stopped (budget)" in out.out and (run / "model.safetensors").exists()
    assert "train epoch 1" in out.err  # the progress bar
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["recipe"] == "quick" and cfg["size"] == 32 and cfg["max_steps"] == 1
    assert cli("train", "--out", str(run), "--resume", "--max-steps", "100") == 0
    assert "finished" in capsys.readouterr().out
    assert cli("train", "--out", str(run), "--resume", "--size", "64") == 1
    assert "keeps its settings" in capsys.readouterr().out
    assert cli("train", "--recipe", "quick", "--data", str(ds), "--out", str(run)) == 1
    assert "already holds" in capsys.readouterr().out
    assert cli("train", "--recipe", "nope", "--data", str(ds), "--out", str(tmp_path / "x")) == 1
    assert "Known recipes" in capsys.readouterr().out
    # CONFIG.json form: the saved config, pointed at a new folder
    cfg["out"] = str(tmp_path / "again")
    cfg["max_steps"] = 1
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    assert cli("train", str(tmp_path / "cfg.json")) == 0
    assert (tmp_path / "again" / "model.safetensors").exists()


def test_list_and_lr_find(ds, tmp_path, capsys):
    assert cli("train", "--list") == 0
    listing = capsys.readouterr().out
    assert all(n in listing for n in ("superres-feature", "superres-gan", "wgan", "colorize", "quick"))
    plot = tmp_path / "lr.png"
    rc = cli("lr-find", "--recipe", "quick", "--data", str(ds), "--size", "32", "--batch-size", "2",
             "--num-it", "12", "--precision", "fp32", "--plot", str(plot))
    out = capsys.readouterr().out
    assert rc == 0 and "suggested lr:" in out and plot.exists()


def test_ema_and_keep_best_options(ds, tmp_path, capsys):
    run = tmp_path / "avg"
    rc = cli("train", "--recipe", "quick", "--data", str(ds), "--out", str(run), "--epochs", "1", "--size", "32",
             "--batch-size", "2", "--precision", "fp32", "--steps-per-epoch", "2", "--ema", "0.9", "--keep-best")
    assert rc == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["ema"] == 0.9 and cfg["keep_best"] is True
    assert "starting weights validate" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: a decay of 1 averages nothing
        cli("train", "--recipe", "quick", "--data", str(ds), "--out", str(tmp_path / "x"), "--ema", "1")
    assert "[0, 1)" in capsys.readouterr().err
    rc = cli("train", "--recipe", "finetune", "--data", str(ds), "--out", str(tmp_path / "ft"), "--no-keep-best",
             "--init", "scratch", "--list")
    assert rc == 0
