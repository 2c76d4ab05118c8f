"""``lesson7-studio lesson ...``: list, train / resume, predict, classify, interpret, progress, data."""

from __future__ import annotations

import json

import pytest

from lesson7_studio.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = ["--epochs", "1", "--steps-per-epoch", "3", "--batch-size", "8"]


def test_list_shows_models_params_and_schedules(capsys):
    assert main(["lesson", "list"]) == 0
    out = capsys.readouterr().out
    assert "resnet-mnist" in out and "human-numbers" in out
    assert "rnn-model5" in out and "55.0K params" in out and "fit_one_cycle(10, 0.01), bptt 20" in out
    assert "resnet-classifier" in out and "notebook accuracy 0.9952" in out


def test_models_lists_the_lesson_models_with_parameters(capsys):
    assert main(["models"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["rnn-model0"][1:3] == ["language-model", "9.2K"]
    assert rows["cnn-classifier"][1:3] == ["classifier", "12.0K"]


def test_train_predict_resume_progress(tmp_path, capsys):
    run = tmp_path / "gru"
    assert main(["lesson", "train", "human-numbers", "--out", str(run), *TINY]) == 0
    out = capsys.readouterr().out
    assert "finished: 1 epochs, 3 steps" in out and "accuracy" in out and str(run / "model.safetensors") in out
    assert json.loads((run / "config.json").read_text())["arch"] == "rnn-model5"
    assert main(["lesson", "predict", str(run), "eight thousand one , eight thousand", "--top", "3",
                 "--continue", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[0].strip().endswith(tuple("abcdefghijklmnopqrstuvwxyz,")) and "%" in lines[0]
    assert lines[3].startswith("eight thousand one , eight thousand … ")
    assert main(["lesson", "predict", str(run), "eight thousand and one"]) == 1
    assert "Not in the vocabulary: and" in capsys.readouterr().err
    assert main(["lesson", "train", "--resume", "--out", str(run), "--epochs", "2"]) == 0
    assert "finished: 2 epochs" in capsys.readouterr().out
    assert main(["lesson", "train", "--resume", "--out", str(run), "--lr", "0.1"]) == 1
    assert "cannot change lr" in capsys.readouterr().err
    assert main(["lesson", "progress", str(tmp_path)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["MODEL", "NOTEBOOK", "HERE"] and len(table) == 7
    gru = next(line for line in table if line.startswith("rnn-model5")).split()
    assert gru[1] == "0.8071" and gru[2] != "—" and gru[3] == "2/10"


def test_train_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LESSON7_DATA_DIR", str(tmp_path / "data"))  # no MNIST cached there
    assert main(["lesson", "train", "--out", str(tmp_path / "x")]) == 1
    assert "Which lesson" in capsys.readouterr().err
    assert main(["lesson", "train", "human-numbers", "--arch", "resnet-classifier", "--out", str(tmp_path / "y")]) == 1
    assert "trains rnn-model0" in capsys.readouterr().err
    assert main(["lesson", "train", "resnet-mnist", "--out", str(tmp_path / "z"), "--epochs", "1"]) == 1
    err = capsys.readouterr().err  # tests run offline: MNIST says what to download and where
    assert "train-images-idx3-ubyte.gz" in err and "MNIST" in err


def test_classifier_cli_on_generated_shapes(tmp_path, capsys):
    data = tmp_path / "shapes"
    assert main(["lesson", "data", "shapes", "--out", str(data)]) == 0
    assert (data / "train" / "ring").is_dir()
    run = tmp_path / "cnn"
    assert main(["lesson", "train", "--arch", "cnn-classifier", "--data", str(data), "--out", str(run),
                 "--epochs", "1", "--batch-size", "32"]) == 0
    capsys.readouterr()
    img = sorted((data / "valid" / "vertical").iterdir())[0]
    assert main(["lesson", "classify", str(run), str(img), "--top", "2"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{img}: ") and line.count("%") == 2
    assert main(["lesson", "interpret", str(run)]) == 0
    out = capsys.readouterr().out
    assert "validation accuracy" in out and "80 images" in out and "top losses" in out
    header = next(line for line in out.splitlines() if "diagonal" in line and "ring" in line)
    assert header.split() == ["diagonal", "horizontal", "ring", "vertical"]


def test_data_human_numbers(tmp_path, capsys):
    assert main(["lesson", "data", "human-numbers", "--out", str(tmp_path / "hn")]) == 0
    assert (tmp_path / "hn" / "valid.txt").read_text().splitlines()[-1] == "nine thousand nine hundred ninety nine"
    run = tmp_path / "from-files"
    assert main(["lesson", "train", "human-numbers", "--arch", "rnn-model1", "--data", str(tmp_path / "hn"),
                 "--out", str(run), *TINY]) == 0
