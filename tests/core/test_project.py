"""Projects: folders, listings of datasets / runs / models, default and demo projects."""

from __future__ import annotations

import json
import os
import time

import pytest

from lesson7_studio.core.errors import DatasetError, Lesson7Error
from lesson7_studio.core.project import (
    DEMO_DATASET,
    Project,
    data_dir,
    default_project,
    demo_project,
    sample_images,
)


def test_create_is_idempotent_and_makes_the_three_folders(tmp_path):
    p = Project(tmp_path / "a" / "proj")
    assert not p.exists()
    p.create()
    assert p.datasets_dir.is_dir() and p.runs_dir.is_dir() and p.models_dir.is_dir()
    meta = json.loads(p.meta_path.read_text())
    assert meta["format_version"] == 1
    p.create()  # again: nothing breaks, nothing is rewritten
    assert json.loads(p.meta_path.read_text()) == meta
    assert Project.is_project(p.root) and p.exists()
    assert Project(str(p.root)) == p and p.name == "proj"
    assert not list(p.root.glob(".*.part")), "temporary file left behind"


def test_create_refuses_a_file_in_the_way(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(Lesson7Error, match="file is in the way"):
        Project(f).create()


def test_a_folder_with_the_three_subfolders_is_a_project(tmp_path):
    for d in ("datasets", "runs", "models"):
        (tmp_path / d).mkdir()
    assert Project.is_project(tmp_path)
    assert not Project.is_project(tmp_path / "runs")


def test_list_datasets_reads_dataset_json(tmp_path):
    p = Project(tmp_path).create()
    ds = p.datasets_dir / "pets"
    ds.mkdir()
    (ds / "dataset.json").write_text(json.dumps({
        "recipe": {"name": "decrappify-x2", "steps": []}, "scale": 2,
        "train": ["a.png", "b.png"], "valid": ["c.png"],
    }))
    (p.datasets_dir / "not-a-dataset").mkdir()
    (p.datasets_dir / "broken").mkdir()
    (p.datasets_dir / "broken" / "dataset.json").write_text("{oops")
    found = {d.name: d for d in p.list_datasets()}
    assert set(found) == {"pets", "broken"}
    pets = found["pets"]
    assert (pets.n_train, pets.n_valid, pets.scale, pets.recipe_name) == (2, 1, 2, "decrappify-x2")
    assert found["broken"].n_train == 0 and found["broken"].scale is None
    assert p.dataset("pets").path == ds
    with pytest.raises(DatasetError):
        p.dataset("nope")


def test_list_runs_newest_first_with_status(tmp_path):
    p = Project(tmp_path).create()
    old = p.runs_dir / "old"
    (old / "checkpoints").mkdir(parents=True)
    (old / "config.json").write_text(json.dumps({"recipe": "quick", "arch": "unet-lite"}))
    (old / "metrics.csv").write_text("stage,epoch,step,train_loss\ntrain,0,1,0.5\n")
    (old / "model.safetensors").write_bytes(b"x")
    (old / "samples").mkdir()
    (old / "samples" / "train_epoch000.png").write_bytes(b"x")
    past = time.time() - 100
    for f in (old / "config.json", old / "metrics.csv"):
        os.utime(f, (past, past))
    new = p.runs_dir / "new"
    (new / "checkpoints").mkdir(parents=True)
    (new / "checkpoints" / "last.json").write_text("{}")
    (new / "config.json").write_text("{}")
    (p.runs_dir / "empty").mkdir()
    (p.runs_dir / ".lr-find").mkdir()
    runs = p.list_runs()
    assert [r.name for r in runs] == ["new", "old"]
    assert runs[0].status == "resumable" and runs[1].status == "finished"
    assert runs[1].config["arch"] == "unet-lite" and runs[1].n_samples == 1
    assert runs[1].model_path == old / "model.safetensors"


def test_list_models_and_new_run_dir(tmp_path):
    p = Project(tmp_path).create()
    (p.models_dir / "b.safetensors").write_bytes(b"x")
    (p.models_dir / "a.safetensors").write_bytes(b"x")
    (p.models_dir / ".a.safetensors.part").write_bytes(b"x")
    (p.models_dir / "notes.txt").write_text("x")
    assert [m.name for m in p.list_models()] == ["a.safetensors", "b.safetensors"]
    r1 = p.new_run_dir("quick")
    r1.mkdir()
    r2 = p.new_run_dir("quick")
    assert r1 != r2 and r1.parent == p.runs_dir and r2.name.startswith("quick-")


def test_default_project_lives_in_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LESSON7_DATA_DIR", str(tmp_path / "data"))
    assert data_dir() == tmp_path / "data"
    p = default_project()
    assert p.root == (tmp_path / "data" / "default").resolve() and p.exists()


def test_demo_project_holds_the_samples_and_a_dataset(tmp_path):
    if not sample_images():
        pytest.skip("no bundled sample photos")
    p = demo_project(tmp_path / "demo", build=False)
    photos = p.root / "photos"
    assert sorted(x.name for x in photos.glob("*.png")) == sorted(x.name for x in sample_images())
    assert not (p.datasets_dir / DEMO_DATASET).exists()
    p = demo_project(tmp_path / "demo")
    ds = p.dataset(DEMO_DATASET)
    assert ds.n_train + ds.n_valid == len(sample_images()) and ds.n_valid >= 1
    assert ds.scale == 2
    mtime = (ds.path / "dataset.json").stat().st_mtime
    demo_project(tmp_path / "demo")  # already there: kept as is
    assert (ds.path / "dataset.json").stat().st_mtime == mtime
