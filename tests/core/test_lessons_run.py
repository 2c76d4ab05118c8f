"""Lesson runs: folders, checkpoints with metadata, exact resume, interpretation, prediction."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from lesson7_studio.core import checkpoint
from lesson7_studio.core.errors import Cancelled, CheckpointError, DatasetError, TrainingError
from lesson7_studio.core.events import BatchEnd, CancelToken, EpochEnd
from lesson7_studio.core.lessons import (
    classify,
    continue_text,
    lesson_config,
    list_lesson_runs,
    next_words,
    progression,
    read_interpretation,
    resume_lesson_config,
    train_lesson,
)
from lesson7_studio.core.lessons.images import load_folder, load_mnist, write_shapes_folder

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return write_shapes_folder(tmp_path_factory.mktemp("data") / "shapes", n_train=24, n_valid=8)


def _rnn(tmp_path, arch="rnn-model2", name="run", **kw):
    kw = {"epochs": 2, "steps_per_epoch": 3, "valid_batches": 2, "batch_size": 8, **kw}
    return lesson_config("human-numbers", arch, out=str(tmp_path / name), **kw)


def _weights(path):
    from safetensors.torch import load_file

    return load_file(str(path))


def test_rnn_run_folder_and_checkpoint_metadata(tmp_path):
    events = []
    r = train_lesson(_rnn(tmp_path, "rnn-model5"), on_event=events.append)
    assert r.finished and r.epochs_done == 2 and r.steps == 6
    assert sorted(p.name for p in r.out.iterdir()) == ["checkpoints", "config.json", "metrics.csv", "model.safetensors"]
    cfg = json.loads((r.out / "config.json").read_text())
    assert cfg["kind"] == "lesson" and cfg["lesson"] == "human-numbers" and cfg["arch"] == "rnn-model5"
    assert cfg["lr"] == 1e-2 and cfg["bptt"] == 20  # the notebook's schedule for the GRU
    rows = (r.out / "metrics.csv").read_text().splitlines()
    assert rows[0].split(",")[:6] == ["stage", "epoch", "step", "train_loss", "valid_loss", "accuracy"]
    assert len(rows) == 3
    meta = checkpoint.read_metadata(r.model_path)
    assert meta["name"] == "rnn-model5" and meta["kind"] == "language-model" and meta["params"] == 54950
    info = meta["info"]
    assert info["lesson"] == "human-numbers" and len(info["vocab"]) == 38 and info["bptt"] == 20
    assert info["summary"]["epochs"] == 2 and 0 <= info["summary"]["metrics"]["accuracy"] <= 1
    accs = [e.metrics["accuracy"] for e in events if isinstance(e, EpochEnd)]
    assert len(accs) == 2 and all(0 <= a <= 1 for a in accs)
    assert (r.out / "checkpoints" / "best.safetensors").is_file()


def test_cancel_mid_epoch_then_resume_is_exact(tmp_path):
    ref = train_lesson(_rnn(tmp_path, name="ref"))
    cancel = CancelToken()

    def stop_at_4(ev):
        if isinstance(ev, BatchEnd) and ev.step == 4:
            cancel.cancel()

    with pytest.raises(Cancelled):
        train_lesson(_rnn(tmp_path, name="cut"), on_event=stop_at_4, cancel=cancel)
    cut = tmp_path / "cut"
    assert (cut / "checkpoints" / "last.json").is_file() and not (cut / "model.safetensors").exists()
    with pytest.raises(TrainingError, match="already holds"):
        train_lesson(_rnn(tmp_path, name="cut"))
    r = train_lesson(resume_lesson_config(cut), resume=True)
    assert r.finished and r.steps == ref.steps
    a, b = _weights(ref.model_path), _weights(r.model_path)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (cut / "metrics.csv").read_text().count("\n") == 3  # header + one row per epoch, none twice


def test_resume_rules_and_extension(tmp_path):
    with pytest.raises(TrainingError, match="Nothing to resume"):
        train_lesson(_rnn(tmp_path, name="none"), resume=True)
    r = train_lesson(_rnn(tmp_path, epochs=1))
    with pytest.raises(TrainingError, match="finished its 1 epochs"):
        train_lesson(resume_lesson_config(r.out), resume=True)
    with pytest.raises(TrainingError, match="cannot change lr"):
        resume_lesson_config(r.out, lr=0.1)
    r2 = train_lesson(resume_lesson_config(r.out, epochs=2), resume=True)
    assert r2.epochs_done == 2 and r2.steps == 6


def test_next_words_and_progression(tmp_path):
    r = train_lesson(_rnn(tmp_path, "rnn-model0", epochs=1, bptt=3))
    words = next_words(r.out, "eight thousand one , eight thousand", k=5)
    assert len(words) == 5 and [p for _, p in words] == sorted((p for _, p in words), reverse=True)
    assert all(w in ("xxunk", ",", "hundred", "thousand") or w.isalpha() for w, _ in words)
    assert len(continue_text(r.out, "one , two ,", 4).split()) == 4
    with pytest.raises(DatasetError, match="and"):
        next_words(r.out, "eight thousand and one")
    rows = {row["arch"]: row for row in progression(tmp_path)}
    assert list(rows) == [f"rnn-model{i}" for i in range(6)]
    assert rows["rnn-model0"]["accuracy"] is not None and rows["rnn-model5"]["accuracy"] is None
    assert rows["rnn-model5"]["notebook_accuracy"] == pytest.approx(0.807102)
    assert [s.arch for s in list_lesson_runs(tmp_path)] == ["rnn-model0"]
    with pytest.raises(TrainingError, match="at most 3 tokens"):
        train_lesson(_rnn(tmp_path, "rnn-model0", name="long", bptt=20))


def test_classifier_learns_shapes_and_is_interpreted(tmp_path, shapes):
    cfg = lesson_config("resnet-mnist", "resnet-classifier", out=str(tmp_path / "cls"), data=str(shapes),
                        epochs=4, batch_size=16, lr=0.02)
    r = train_lesson(cfg)
    meta = checkpoint.read_metadata(r.model_path)
    assert meta["kind"] == "classifier" and meta["options"]["n_classes"] == 4
    assert meta["info"]["classes"] == ["diagonal", "horizontal", "ring", "vertical"]
    assert len(meta["info"]["mean"]) == 1 and meta["info"]["size"] == 28
    it = read_interpretation(r.out)
    assert it.confusion.shape == (4, 4) and it.confusion.sum() == it.n == 32
    assert it.accuracy == pytest.approx(np.trace(it.confusion) / 32)
    assert it.accuracy > 0.5  # chance is 0.25
    assert abs(it.accuracy - r.metrics["accuracy"]) < 1e-6
    assert list(it.top_loss) == sorted(it.top_loss, reverse=True) and it.top_images.shape == (16, 28, 28)
    assert all(c >= 1 for _, _, c in it.most_confused())
    files = sorted((shapes / "valid" / "ring").glob("*.png"))[:3]
    probs, classes = classify(r.out, files + [np.asarray(Image.open(files[0]))])
    assert probs.shape == (4, 4) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert np.allclose(probs[0], probs[3], atol=1e-5)  # a file and its pixels agree
    with pytest.raises(CheckpointError, match="image classifier"):
        next_words(r.out, "one , two")


def test_classifier_resume_is_exact(tmp_path, shapes):
    base = dict(data=str(shapes), epochs=2, batch_size=16, arch_options={})
    ref = train_lesson(lesson_config("resnet-mnist", "cnn-classifier", out=str(tmp_path / "ref"), **base))
    cancel = CancelToken()
    with pytest.raises(Cancelled):
        train_lesson(lesson_config("resnet-mnist", "cnn-classifier", out=str(tmp_path / "cut"), **base),
                     cancel=cancel, on_event=lambda ev: cancel.cancel() if isinstance(ev, BatchEnd) and ev.step == 8 else None)
    r = train_lesson(resume_lesson_config(tmp_path / "cut"), resume=True)
    a, b = _weights(ref.model_path), _weights(r.model_path)
    assert all(torch.equal(a[k], b[k]) for k in a)


def _png(path, value=128, size=(20, 20), mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value).save(path)


def test_folder_layouts(tmp_path):
    for split in ("training", "testing"):
        for c in ("0", "1", "10"):
            _png(tmp_path / "mn" / split / c / "a.png")
    train, valid = load_folder(tmp_path / "mn")
    assert train.classes == ["0", "1", "10"] and len(train) == len(valid) == 3  # numeric order
    assert train.x.shape == (3, 1, 28, 28) and train.x.dtype == torch.uint8
    for c in ("cat", "dog"):
        for i in range(10):
            _png(tmp_path / "flat" / c / f"{i}.png", mode="RGB", value=(i * 20, 0, 0))
    (tmp_path / "flat" / "cat" / "broken.png").write_bytes(b"not a png")
    logs = []
    train, valid = load_folder(tmp_path / "flat", valid_pct=0.25, seed=1, channels=3, on_event=logs.append)
    assert len(train) + len(valid) == 20 and len(valid) == 5 and train.x.shape[1] == 3
    assert any("unreadable" in getattr(e, "message", "") for e in logs)
    again, _ = load_folder(tmp_path / "flat", valid_pct=0.25, seed=1, channels=3)
    assert train.paths == again.paths
    _png(tmp_path / "bad" / "train" / "a" / "x.png")
    _png(tmp_path / "bad" / "train" / "b" / "x.png")
    _png(tmp_path / "bad" / "valid" / "c" / "x.png")
    with pytest.raises(DatasetError, match="lacks: c"):
        load_folder(tmp_path / "bad")
    with pytest.raises(DatasetError, match="not an image-class folder"):
        load_folder(tmp_path / "flat" / "cat")


def test_mnist_offline_names_files_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LESSON7_OFFLINE", "1")
    with pytest.raises(DatasetError) as ei:
        load_mnist(tmp_path / "cache")
    msg = str(ei.value)
    for f in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert f in msg
    assert str(tmp_path / "cache" / "MNIST" / "raw") in msg


def test_digits_folder(tmp_path):
    pytest.importorskip("sklearn")
    from lesson7_studio.core.lessons.images import write_digits_folder

    out = write_digits_folder(tmp_path / "digits")
    n = {s: sum(1 for _ in (out / s).rglob("*.png")) for s in ("train", "valid")}
    assert n["train"] + n["valid"] == 1797 and 340 <= n["valid"] <= 380
    assert Image.open(next((out / "train" / "7").iterdir())).size == (28, 28)
    with pytest.raises(DatasetError, match="not empty"):
        write_digits_folder(out)
