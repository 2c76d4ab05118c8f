"""``lesson7-studio crappify``: presets list, a build with bad files, argument errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lesson7_studio.cli import crappify_cmd
from lesson7_studio.core.crappify import PRESETS
from lesson7_studio.core.errors import RecipeError


def run(argv: list[str]) -> int:
    """Parse with only this subcommand registered (the other commands belong to others)."""
    parser = argparse.ArgumentParser(prog="lesson7-studio")
    crappify_cmd.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def make_src(root: Path) -> None:
    rng = np.random.default_rng(0)
    (root / "sub").mkdir(parents=True)
    for i, rel in enumerate(["a.jpg", "b.png", "sub/c.png"]):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(root / rel)
    (root / "broken.jpg").write_text("not really a jpeg")


def test_list_shows_every_preset(capsys):
    assert run(["crappify", "--list"]) == 0
    out = capsys.readouterr().out
    for name in PRESETS:
        assert name in out
    assert "x2" in out and "fixed size" in out


def test_build_reports_skipped_files_and_exits_0(tmp_path, capsys):
    src, dst = tmp_path / "photos", tmp_path / "pairs"
    make_src(src)
    code = run(["crappify", str(src), str(dst), "--recipe", "superres-x2", "--seed", "4",
                "--workers", "1", "--valid-pct", "0.3", "--max-size", "40"])
    captured = capsys.readouterr()
    assert code == 0
    assert "3 pairs built" in captured.out and "1 skipped" in captured.out
    assert "broken.jpg" in captured.out and "not an image" in captured.out
    meta = json.loads((dst / "dataset.json").read_text())
    assert meta["seed"] == 4 and meta["max_size"] == 40 and meta["counts"]["pairs"] == 3
    assert Image.open(dst / "hr/sub/c.png").size == (40, 32)  # 48x40 capped to 40 on the long side
    # second run: nothing to do
    assert run(["crappify", str(src), str(dst), "--recipe", "superres-x2", "--seed", "4", "--max-size", "40"]) == 0
    assert "0 pairs built, 3 already there" in capsys.readouterr().out


def test_recipe_file(tmp_path, capsys):
    src, dst = tmp_path / "photos", tmp_path / "pairs"
    make_src(src)
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({"name": "blurry", "steps": [{"kind": "blur", "radius": [1, 2]}]}))
    assert run(["crappify", str(src), str(dst), "--recipe", str(recipe)]) == 0
    assert json.loads((dst / "dataset.json").read_text())["recipe"]["name"] == "blurry"


def test_argument_errors(tmp_path, capsys):
    assert run(["crappify", str(tmp_path)]) == 2
    assert "SRC and DST" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run(["crappify", "a", "b", "--seed", "-3"])
    with pytest.raises(RecipeError, match="Unknown recipe"):
        run(["crappify", str(tmp_path), str(tmp_path / "out"), "--recipe", "nope"])


def test_through_main_when_all_commands_exist(tmp_path, capsys):
    from lesson7_studio import cli

    try:
        cli.build_parser()
    except ModuleNotFoundError as err:  # another engineer's subcommand module is not there yet
        pytest.skip(f"full CLI not assembled yet: {err}")
    assert cli.main(["crappify", "--list"]) == 0
    assert cli.main(["crappify", str(tmp_path / "missing"), str(tmp_path / "out")]) == 1
    assert "Source folder not found" in capsys.readouterr().err


def test_progress_in_a_log_is_a_few_lines_not_one_per_image(tmp_path, capsys):
    rng = np.random.default_rng(1)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(40):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(src / f"{i:02d}.png")
    assert run(["crappify", str(src), str(tmp_path / "data"), "--recipe", "jpeg", "--workers", "1"]) == 0
    err = capsys.readouterr().err  # captured: not a terminal
    draws = err.count("\r") + err.count("\n")
    assert "40/40" in err and draws <= 6, err  # the first and the last state (one per event: 40+)


def test_progress_bar_helper_throttles_only_logs(monkeypatch):
    import io
    import sys

    from lesson7_studio.cli.progress import LOG_INTERVAL_S, advance, progress_bar

    class Tty(io.StringIO):
        def isatty(self):
            return True

    for stream, interval in ((io.StringIO(), LOG_INTERVAL_S), (Tty(), 0.1)):
        monkeypatch.setattr(sys, "stderr", stream)
        bar = progress_bar(total=5, desc="x")
        assert bar.mininterval == interval
        advance(bar, 3, "3 done")
        assert bar.n == 3
        bar.close()
        assert "3 done" in stream.getvalue() or interval == LOG_INTERVAL_S


def test_variants_option(tmp_path, capsys):
    src = tmp_path / "photos"
    make_src(src)
    assert run(["crappify", str(src), str(tmp_path / "v2"), "--recipe", "superres-x2", "--variants", "2",
                "--workers", "1"]) == 0
    assert "6 pairs built" in capsys.readouterr().out
    assert run(["crappify", str(src), str(tmp_path / "auto"), "--recipe", "superres-x2", "--variants", "auto",
                "--workers", "1"]) == 0  # 4 files: 8 variants of each of the 3 good photos
    assert "24 pairs built" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        run(["crappify", str(src), str(tmp_path / "x"), "--variants", "0"])
    assert "1 to 64" in capsys.readouterr().err
