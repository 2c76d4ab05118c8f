"""Hostile inputs through the command line (issue 14, sections 2 and 3): one-line errors, exit 1."""

from __future__ import annotations

import json
import os
import pickle
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from lesson7_studio.cli import build_parser, main
from lesson7_studio.core.datasets import build_pairs

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: threads only wait


def crafted(path: Path, name: str, options: dict, kind: str) -> Path:
    meta = {"format_version": 1, "name": name, "kind": kind, "options": options}
    save_file({"w": torch.zeros(2)}, str(path), metadata={"lesson7": json.dumps(meta), "format": "pt"})
    return path


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile_cli") / "photos"
    root.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(os.fsencode(root) + b"/bad\xff.png")
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(root / "good.png")
    return root


@pytest.mark.parametrize("name,options,kind", [
    ("gan-critic", {"nf": 600}, "critic"),
    ("gan-critic", {"nf": 10**9}, "critic"),
    ("unet-resnet34", {"n_out": 10**9}, "restorer"),
    ("wgan-generator", {"n_features": 10**9}, "generator"),
    ("wgan-critic", {"n_extra_layers": 10**6}, "critic"),
])
def test_crafted_checkpoint_in_restore_and_eval(photos, tmp_path, capsys, name, options, kind):
    model = crafted(tmp_path / "evil.safetensors", name, options, kind)
    assert main(["restore", str(photos), str(tmp_path / "out"), "--model", str(model), "--device", "cpu"]) == 1
    assert name in error_line(capsys)
    assert main(["eval", str(model), str(photos), "--device", "cpu"]) == 1
    assert name in error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_output_folder_is_checked_before_the_model(photos, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    missing_model = tmp_path / "no-such-model.safetensors"
    assert main(["restore", str(photos), str(tmp_path / "afile" / "out"), "--model", str(missing_model)]) == 1
    assert "Cannot write into the output folder" in error_line(capsys)
    assert main(["eval", str(missing_model), str(photos), "--out", str(tmp_path / "afile" / "r.json")]) == 1
    assert "is a file, not a folder" in error_line(capsys)


def test_quality_1000_is_refused(photos, tmp_path, capsys):
    with pytest.raises(SystemExit) as ei:
        main(["restore", str(photos), str(tmp_path / "out"), "--quality", "1000"])
    assert ei.value.code == 2 and "must be from 1 to 100" in capsys.readouterr().err


def test_non_utf8_names_in_crappify_and_eval_with_a_strict_terminal(photos, tmp_path):
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict", "PYTHONUTF8": "0"}
    cmd = [sys.executable, "-m", "lesson7_studio"]
    r = subprocess.run(cmd + ["crappify", str(photos), str(tmp_path / "ds"), "--recipe", "superres-x2"],
                       capture_output=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert os.path.exists(os.fsencode(tmp_path / "ds" / "hr") + b"/bad\xff.png")
    r = subprocess.run(cmd + ["eval", "starter", str(photos), "--device", "cpu"], capture_output=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert b"bad\\udcff.png" in r.stdout and b"good.png" in r.stdout


# ----------------------------------------------------------------------------- train


@pytest.fixture(scope="module")
def ds(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile_train_cli")
    (root / "src").mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / "src" / f"{i}.png")
    build_pairs(root / "src", root / "ds", "superres-x2", seed=0, valid_pct=0.3, workers=1)
    return root / "ds"


def test_train_size_100000_is_refused(ds, tmp_path, capsys):
    assert main(["train", "--recipe", "quick", "--data", str(ds), "--out", str(tmp_path / "r"), "--size", "100000"]) == 1
    assert "'size'" in error_line(capsys) and not (tmp_path / "r").exists()
    assert main(["train", "--recipe", "quick", "--data", str(ds), "--out", str(tmp_path / "r"), "--size", "512"]) == 1
    line = error_line(capsys)
    assert "larger than every image" in line and not (tmp_path / "r").exists()


@pytest.mark.parametrize("text", [b"[1,2,3]", b'"just a string"', b"\xff\xfe\x00garbage",
                                  b'{"recipe": "quick", "stages": null}'])
def test_train_garbage_config_file(tmp_path, capsys, text):
    (tmp_path / "config.json").write_bytes(text)
    assert main(["train", str(tmp_path / "config.json")]) == 1
    assert str(tmp_path / "config.json") in error_line(capsys)


def test_resume_with_the_readme_command_and_leftovers(ds, tmp_path, capsys):
    run = tmp_path / "run"
    base = ["train", "--recipe", "quick", "--data", str(ds), "--out", str(run)]
    assert main(base + ["--epochs", "1", "--size", "32", "--batch-size", "2", "--precision", "fp32",
                        "--max-steps", "1"]) == 0
    capsys.readouterr()
    # a different recipe is refused, naming the saved one
    assert main(["train", "--recipe", "wgan", "--data", str(ds), "--out", str(run), "--resume", "--epochs", "2"]) == 1
    assert "started with recipe 'quick'" in error_line(capsys)
    # leftovers of a write killed with -9
    stale = run / "checkpoints" / ".last.safetensors.999999999-0badc0de.part"
    stale.write_bytes(b"half")
    # the README's form: --recipe that matches the run, with --resume --epochs (and the step cap lifted)
    assert main(base + ["--resume", "--epochs", "2", "--max-steps", "1000"]) == 0
    captured = capsys.readouterr()
    assert "finished" in captured.out and not stale.exists()
    assert "unfinished file" in captured.err
    # an evil resume state is refused in one line, nothing executed
    last = json.loads((run / "checkpoints" / "last.json").read_text())["name"]

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    with open(run / "checkpoints" / f"{last}.state.pt", "wb") as f:
        pickle.dump({"format": 1, "evil": Evil()}, f)
    assert main(base + ["--resume", "--epochs", "3"]) == 1
    assert "Refused" in error_line(capsys) and not (tmp_path / "pwned").exists()


def test_not_a_dataset_hint_is_a_command_that_parses(tmp_path, capsys):
    (tmp_path / "plain").mkdir()
    assert main(["train", "--recipe", "quick", "--data", str(tmp_path / "plain"), "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    hint = err.split("`")[1]
    assert hint == "lesson7-studio crappify SRC DATASET" and "--out" not in hint
    args = build_parser().parse_args(shlex.split(hint)[1:])
    assert args.command == "crappify" and (args.src, args.dst) == ("SRC", "DATASET")
