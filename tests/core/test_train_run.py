"""Training runs end to end on tiny data: run folder, resume, budget, every recipe."""

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from lesson7_studio.core import checkpoint
from lesson7_studio.core.datasets import build_pairs
from lesson7_studio.core.errors import Cancelled, TrainingError, WeightsError
from lesson7_studio.core.events import BatchEnd, CancelToken, CheckpointSaved, EpochEnd, SampleImages
from lesson7_studio.core.train import apply_overrides, get_recipe, recipe_names, resume_config, train
from lesson7_studio.core.train.recipes import TrainConfig


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: threads only wait


def _sources(folder, n=8, size=48, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        f, ph = rng.uniform(1, 4, 3), rng.uniform(0, 6, 3)
        img = np.stack([0.5 + 0.5 * np.sin(2 * np.pi * (f[c] * xx + (c + 1) * yy) + ph[c]) for c in range(3)], -1)
        Image.fromarray((img * 255).astype(np.uint8)).save(folder / f"img{i:02d}.png")
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_data")
    build_pairs(_sources(root / "src"), root / "x2", "superres-x2", seed=0, valid_pct=0.25, workers=1)
    build_pairs(root / "src", root / "grey", "colorize", seed=0, valid_pct=0.25, workers=1)
    return root


def quick(data, out, **kw):
    opts = dict(data=str(data / "x2"), out=str(out), epochs=2, size=32, batch_size=2, pretrained=False,
                precision="fp32", preview_samples=2, arch_options={"nf": 8, "self_attention": False}, workers=0,
                steps_per_epoch=3)  # one pass over the 6 training pairs (the recipe's epoch is 150 batches)
    opts.update(kw)
    return apply_overrides(get_recipe("quick"), **opts)


def test_quick_run_writes_the_run_folder(data, tmp_path):
    events = []
    res = train(quick(data, tmp_path / "run"), on_event=events.append)
    run = tmp_path / "run"
    assert res.finished and res.steps == 6 and res.model_path == run / "model.safetensors"
    cfg = TrainConfig.load(run / "config.json")
    assert cfg.to_dict() == quick(data, run).to_dict()
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["0", "1"]
    assert list(rows[0])[:7] == ["stage", "epoch", "step", "train_loss", "valid_loss", "psnr", "ssim"]
    assert list(rows[0])[-2:] == ["lr", "seconds"]
    assert (run / "samples" / "train_epoch000.png").exists() and (run / "samples" / "train_epoch001.png").exists()
    loaded = checkpoint.load_model(run / "model.safetensors")
    assert loaded.name == "unet-lite" and loaded.options["scale"] == 2
    info = loaded.meta["info"]
    assert info["recipe"] == "quick" and info["crappify_recipe"]["name"] == "superres-x2"
    assert info["summary"]["steps"] == 6
    last = json.loads((run / "checkpoints" / "last.json").read_text())
    state = torch.load(run / "checkpoints" / f"{last['name']}.state.pt", weights_only=True)
    assert state["stage_done"] and state["step"] == 6 and "torch" in state["rng"]
    kinds = {type(e).__name__ for e in events}
    assert {"StageStart", "BatchEnd", "EpochEnd", "SampleImages", "CheckpointSaved", "Finished"} <= kinds
    ep = [e for e in events if isinstance(e, EpochEnd)]
    assert {"train_loss", "valid_loss", "psnr", "ssim"} <= set(ep[-1].metrics)
    sample = [e for e in events if isinstance(e, SampleImages)][0]
    # preview_samples=2, and 25 % of 8 pairs is exactly 2 validation pairs now (datasets.valid_count)
    assert len(sample.rows) == 2 and sample.rows[0][1].dtype == np.uint8 and sample.rows[0][1].shape == (32, 32, 3)
    with pytest.raises(TrainingError, match="already holds"):
        train(quick(data, run))


def test_cancel_mid_epoch_then_resume_equals_uninterrupted(data, tmp_path):
    full = train(quick(data, tmp_path / "full"))
    tok = CancelToken()
    saved = []

    def on_event(ev):
        if isinstance(ev, BatchEnd) and ev.step == 4:  # epoch 1, after its first batch
            tok.cancel()
        if isinstance(ev, CheckpointSaved):
            saved.append(ev.reason)

    with pytest.raises(Cancelled):
        train(quick(data, tmp_path / "cut"), on_event=on_event, cancel=tok)
    assert saved[-1] == "cancel"
    assert not (tmp_path / "cut" / "model.safetensors").exists()
    resumed = train(resume_config(tmp_path / "cut"), resume=True)
    a, b = load_file(str(full.model_path)), load_file(str(resumed.model_path))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rows_a = list(csv.DictReader(open(tmp_path / "full" / "metrics.csv")))
    rows_b = list(csv.DictReader(open(tmp_path / "cut" / "metrics.csv")))
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(rows_a) == strip(rows_b)


def test_budget_stop_resume_and_extend(data, tmp_path):
    run = tmp_path / "run"
    res = train(quick(data, run, max_steps=2))
    assert not res.finished and res.stopped == "budget" and res.steps == 2
    assert res.model_path.exists()  # weights so far are usable
    with pytest.raises(TrainingError):
        resume_config(run, size=64)  # a resumed run keeps its settings
    res = train(resume_config(run, max_steps=100), resume=True)
    assert res.finished and res.steps == 6
    res = train(resume_config(run, epochs=3), resume=True)  # extend a finished run
    assert res.finished and res.steps == 9
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    with pytest.raises(TrainingError, match="Nothing to resume"):
        train(quick(data, tmp_path / "none"), resume=True)


def tiny(recipe, data, out, **kw):
    gan_data = "grey" if recipe == "colorize" else "x2"
    opts = dict(data=str(data / gan_data), out=str(out), epochs=1, size=32, batch_size=2, pretrained=False,
                precision="fp32", steps_per_epoch=2, valid_batches=1, preview_samples=1, workers=0)
    opts.update(kw)
    cfg = apply_overrides(get_recipe(recipe), **opts)
    if recipe == "wgan":
        cfg.arch_options.update(in_size=32, n_features=8)
        cfg.critic_options.update(in_size=32, n_features=8)
    elif recipe in ("superres-gan", "colorize"):
        cfg.arch, cfg.arch_options = "unet-lite", {"nf": 8, "self_attention": False}
        cfg.critic_options = {"nf": 8, "n_blocks": 1}
    return cfg


def test_recipes_are_complete():
    assert recipe_names() == ["superres-feature", "superres-gan", "wgan", "colorize", "quick", "finetune"]
    sr = get_recipe("superres-feature")
    assert sr.loss == "feature" and sr.arch == "unet-resnet34" and sr.wd == 1e-3
    assert [s.freeze for s in sr.stages] == [True, False, True, False]
    assert sr.stages[1].lr == slice(1e-5, 1e-3) and sr.stages[0].pct_start == 0.9
    gan = get_recipe("superres-gan")
    assert [s.kind for s in gan.stages] == ["restore", "restore", "save-preds", "critic", "gan"]
    assert gan.gan_weights == (1.0, 50.0) and gan.critic_thresh == 0.65 and gan.gan_betas == (0.0, 0.99)
    assert gan.critic_lr_mult == 5.0 and gan.stages[-1].lr == 1e-4 and not gan.stages[-1].one_cycle
    w = get_recipe("wgan")
    assert w.stages[0].lr == 2e-4 and w.clip == 0.01 and w.n_critic == 5 and w.gan_betas == (0.0, 0.99)
    for name in recipe_names():
        cfg = get_recipe(name)
        assert TrainConfig.from_json(cfg.to_json()).to_dict() == cfg.to_dict()
    cfg = apply_overrides(get_recipe("superres-feature"), lr=1e-3, epochs=2)  # recipe: slice(1e-2) first
    assert cfg.stages[0].lr.start is None and cfg.stages[0].lr.stop == pytest.approx(1e-3)
    assert cfg.stages[1].lr.start == pytest.approx(1e-6) and cfg.stages[1].lr.stop == pytest.approx(1e-4)
    assert all(s.epochs == 2 for s in cfg.stages)


def test_superres_feature_runs_with_freeze_stages(data, tmp_path):
    cfg = tiny("superres-feature", data, tmp_path / "r", arch="unet-resnet18",
               arch_options={"self_attention": False})
    events = []
    res = train(cfg, on_event=events.append)
    assert res.finished and res.stages_done == [s.name for s in cfg.stages]
    rows = list(csv.DictReader(open(tmp_path / "r" / "metrics.csv")))
    assert {"pixel", "feat_0", "gram_2"} <= set(rows[0])
    assert [r["stage"] for r in rows] == [s.name for s in cfg.stages]


@pytest.mark.parametrize("recipe", ["superres-gan", "colorize"])
def test_nogan_recipes_run_every_stage(data, tmp_path, recipe):
    cfg = tiny(recipe, data, tmp_path / "r")
    events = []
    res = train(cfg, on_event=events.append)
    run = tmp_path / "r"
    assert res.finished and res.stages_done == [s.name for s in cfg.stages]
    assert len(list((run / "preds" / "train").glob("*.png"))) == 6  # 8 pairs at valid_pct 0.25: 2 validate
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    critic_row = [r for r in rows if r["stage"] == "critic"][0]
    assert 0.0 <= float(critic_row["accuracy"]) <= 1.0
    gan_row = [r for r in rows if r["stage"] == "gan"][0]
    assert gan_row["crit_loss"] != "" and gan_row["adv"] != ""
    ck = list((run / "checkpoints").glob("gan-*.critic.safetensors"))
    assert ck and checkpoint.read_metadata(ck[0])["name"] == "gan-critic"
    gan_samples = [e for e in events if isinstance(e, SampleImages) and e.stage == "gan"]
    assert gan_samples and gan_samples[0].critic_scores is not None


def test_wgan_recipe_runs(data, tmp_path):
    cfg = tiny("wgan", data, tmp_path / "r", steps_per_epoch=6, batch_size=1)
    events = []
    res = train(cfg, on_event=events.append)
    assert res.finished and res.steps == 6
    grid = [e for e in events if isinstance(e, SampleImages)][0]
    assert grid.rows[0][1].shape[2] == 3 and (tmp_path / "r" / "samples" / "wgan_epoch000.png").exists()
    loaded = checkpoint.load_model(res.model_path)
    assert loaded.name == "wgan-generator"
    crit = list((tmp_path / "r" / "checkpoints").glob("*.critic.safetensors"))
    assert max(t.abs().max().item() for t in load_file(str(crit[0])).values()
               if t.is_floating_point() and t.ndim > 1) <= 0.01 + 1e-6


def test_errors_before_anything_is_written(data, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))  # no weights cached, offline
    monkeypatch.setenv("LESSON7_OFFLINE", "1")
    cfg = tiny("superres-feature", data, tmp_path / "w", arch="unet-lite", pretrained=True)
    with pytest.raises(WeightsError):
        train(cfg)
    assert not (tmp_path / "w").exists()
    cfg = tiny("superres-feature", data, tmp_path / "s", arch="unet-resnet18", size=48)
    with pytest.raises(TrainingError, match="multiple of 32"):
        train(cfg)
    assert not (tmp_path / "s").exists()
    one_pass = quick(data, tmp_path / "b", batch_size=8)
    one_pass.steps_per_epoch = None  # epochs of one pass over the 6 pairs: fewer than a batch of 8
    with pytest.raises(TrainingError, match="fewer than one batch"):
        train(one_pass)
    assert not (tmp_path / "b").exists()


def test_epochs_in_steps_train_a_dataset_smaller_than_a_batch(data, tmp_path):
    """The demo project's dataset has 3 training pairs and `quick` uses batches of 8: with epochs
    counted in steps the sampler repeats the pairs (new crops each pass) instead of refusing."""
    res = train(quick(data, tmp_path / "r", batch_size=8, steps_per_epoch=2, epochs=1))
    assert res.finished and res.steps == 2


@pytest.mark.parametrize("cut_stage", ["critic", "gan"])
def test_nogan_cancel_and_resume_is_exact(data, tmp_path, cut_stage):
    from lesson7_studio.core.events import StageStart

    def cfg(out):
        c = tiny("superres-gan", data, out, steps_per_epoch=3, preview_samples=0)
        c.critic_thresh = 0.7  # so that the GAN stage switches between generator and critic
        return c

    full = train(cfg(tmp_path / "full"))
    tok, seen = CancelToken(), {}

    def on_event(ev):
        if isinstance(ev, StageStart):
            seen["stage"] = ev.name
        if isinstance(ev, BatchEnd) and seen.get("stage") == cut_stage:
            tok.cancel()

    with pytest.raises(Cancelled):
        train(cfg(tmp_path / "cut"), on_event=on_event, cancel=tok)
    resumed = train(resume_config(tmp_path / "cut"), resume=True)
    a, b = load_file(str(full.model_path)), load_file(str(resumed.model_path))
    assert resumed.steps == full.steps and all(torch.equal(a[k], b[k]) for k in a)
