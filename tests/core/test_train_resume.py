"""The resume state (checkpoints/<name>.state.pt): its file format, typed reading, and resuming
run folders whose state was written as a plain dict (every version so far)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from lesson7_studio.core import checkpoint
from lesson7_studio.core.datasets import build_pairs
from lesson7_studio.core.errors import CheckpointError
from lesson7_studio.core.train import apply_overrides, get_recipe, resume_config, train
from lesson7_studio.core.train.resume import STATE_FORMAT, ResumeState
from lesson7_studio.core.train.run_folder import RunFolder, checkpoint_name

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: threads only wait

# the keys every version has written, in this order (the file format; changing it breaks resume)
STATE_KEYS = ["format", "stage_index", "stage", "epoch", "batches", "step", "stage_done", "reason", "segments",
              "stage_status", "opt", "opt_owner", "crit_opt", "scaler", "callbacks", "rng", "elapsed", "has_critic"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume_data")
    rng = np.random.default_rng(0)
    src = root / "src"
    src.mkdir()
    yy, xx = np.mgrid[0:48, 0:48] / 48
    for i in range(8):
        f, ph = rng.uniform(1, 4, 3), rng.uniform(0, 6, 3)
        img = np.stack([0.5 + 0.5 * np.sin(2 * np.pi * (f[c] * xx + (c + 1) * yy) + ph[c]) for c in range(3)], -1)
        Image.fromarray((img * 255).astype(np.uint8)).save(src / f"img{i:02d}.png")
    build_pairs(src, root / "x2", "superres-x2", seed=0, valid_pct=0.25, workers=1)
    return root / "x2"


def quick(data, out, **kw):
    opts = dict(data=str(data), out=str(out), epochs=2, size=32, batch_size=2, pretrained=False, precision="fp32",
                preview_samples=1, arch_options={"nf": 8, "self_attention": False}, workers=0, steps_per_epoch=3)
    opts.update(kw)
    return apply_overrides(get_recipe("quick"), **opts)


def _last_state(run):
    name = json.loads((run / "checkpoints" / "last.json").read_text())["name"]
    return run / "checkpoints" / f"{name}.state.pt"


def test_the_state_file_is_a_plain_dict_with_the_historical_keys(data, tmp_path):
    res = train(quick(data, tmp_path / "r", max_steps=4))
    assert res.stopped == "budget" and res.steps == 4
    path = _last_state(tmp_path / "r")
    raw = torch.load(path, weights_only=True)  # tensors and primitives only
    assert isinstance(raw, dict) and list(raw) == STATE_KEYS
    assert raw["format"] == STATE_FORMAT and raw["stage"] == "train" and raw["step"] == 4
    assert (raw["epoch"], raw["batches"], raw["stage_done"]) == (1, 1, False)  # 3 batches an epoch
    st = ResumeState.load(path)
    assert (st.stage, st.epoch, st.batches, st.step, st.opt_owner) == ("train", 1, 1, 4, "gen")
    assert st.where() == "epoch 2, batch 2" and st.segments == {"train": [[0, 2]]}
    assert list(st.to_dict()) == STATE_KEYS and st.to_dict()["callbacks"].keys() == raw["callbacks"].keys()
    assert path.name == f"{checkpoint_name('train', 4)}.state.pt" == "train-s0000004.state.pt"


def test_a_state_written_as_a_plain_dict_by_the_old_writer_resumes_exactly(data, tmp_path):
    """Resume a run folder whose state.pt is the dict the code before the ResumeState wrote
    (torch.save of a dict, same keys), and land on the uninterrupted run's weights."""
    full = train(quick(data, tmp_path / "full"))
    train(quick(data, tmp_path / "cut", max_steps=4))
    path = _last_state(tmp_path / "cut")
    old = torch.load(path, weights_only=True)
    with open(path, "wb") as f:  # exactly as the pre-split writer did it: torch.save of the dict
        torch.save({k: old[k] for k in STATE_KEYS}, f)
    resumed = train(resume_config(tmp_path / "cut", max_steps=1000), resume=True)
    assert resumed.finished and resumed.steps == full.steps == 6
    a, b = load_file(str(full.model_path)), load_file(str(resumed.model_path))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rows = RunFolder(tmp_path / "cut")
    rows.load_rows()
    assert [(r["stage"], r["epoch"]) for r in rows.rows] == [("train", "0"), ("train", "1")]  # none doubled


def _minimal(**kw):
    d = {"format": STATE_FORMAT, "stage_index": 0, "stage": "train", "epoch": 1, "batches": 0, "step": 3,
         "stage_done": False, "rng": {"torch": torch.get_rng_state()}}
    d.update(kw)
    return d


def test_keys_a_state_may_lack_default_to_what_their_absence_meant():
    st = ResumeState.from_dict(_minimal(), "x.state.pt")
    assert st.reason == "" and st.segments == {} and st.stage_status == {} and st.callbacks == {}
    assert st.opt is None and st.crit_opt is None and st.scaler is None and st.opt_owner == ""
    assert st.elapsed == 0.0 and st.has_critic is False and st.where() == "epoch 2"
    assert ResumeState.from_dict(_minimal(stage_done=True)).where() == "its end"


@pytest.mark.parametrize("bad, match", [
    ({"format": 2}, "unknown format 2"),
    ({"rng": None, "step": None}, None),
    ({"epoch": "one"}, "damaged resume state"),
])
def test_a_broken_state_is_a_checkpoint_error_naming_the_file(bad, match):
    d = _minimal()
    for k, v in bad.items():
        if v is None:
            del d[k]
        else:
            d[k] = v
    with pytest.raises(CheckpointError, match=match or "lacks step, rng") as err:
        ResumeState.from_dict(d, "run/checkpoints/train-s0000003.state.pt")
    assert "train-s0000003.state.pt" in str(err.value)
    with pytest.raises(CheckpointError, match="unknown format 'list'"):
        ResumeState.from_dict([1, 2], "p")


def test_a_damaged_last_json_names_itself(data, tmp_path):
    train(quick(data, tmp_path / "r", max_steps=2))
    (tmp_path / "r" / "checkpoints" / "last.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="last.json is damaged"):
        train(resume_config(tmp_path / "r"), resume=True)


def test_fine_tuning_names_the_checkpoints_after_the_starting_models_architecture(data, tmp_path):
    """--init adopts the checkpoint's architecture; the run's files carry that name, not the recipe's."""
    start = train(quick(data, tmp_path / "start", epochs=1, steps_per_epoch=1, preview_samples=0))
    cfg = quick(data, tmp_path / "ft", epochs=1, steps_per_epoch=1, preview_samples=0, init=str(start.model_path))
    cfg.arch, cfg.arch_options = "unet-resnet18", {}  # the recipe says one thing, the start file another
    res = train(cfg)
    loaded = checkpoint.load_model(res.model_path)
    assert loaded.name == "unet-lite" and loaded.options["nf"] == 8
    ck = sorted((tmp_path / "ft" / "checkpoints").glob("*-s*.safetensors"))
    assert ck and all(checkpoint.read_metadata(p)["name"] == "unet-lite" for p in ck)


def test_a_run_subclass_extends_the_common_callbacks_and_its_state_resumes(data, tmp_path):
    """A subclass of _Run may add callbacks in ``_common_callbacks`` (the hook is called for the
    restore stage and its callbacks see every step); the run's own EMA (``ema``) rides in state.pt
    and resumes: the finished run's model is the average of all 6 steps."""
    from lesson7_studio.core.train import run as run_mod
    from lesson7_studio.core.train.ema import ema_weights_from_state
    from lesson7_studio.core.train.learner import Callback

    class Count(Callback):
        steps = 0

        def after_step(self):
            Count.steps += 1

    class CountingRun(run_mod._Run):
        def _common_callbacks(self, i, stage, monitor_best, previews):
            return super()._common_callbacks(i, stage, monitor_best, previews) + [Count()]

    run = CountingRun(quick(data, tmp_path / "r", max_steps=4, ema=0.9), None, None, False)
    res = run.run()
    assert res.stopped == "budget" and Count.steps == 4 and run.ema.updates == 4 and run.ema.shadow
    saved = ema_weights_from_state(_last_state(tmp_path / "r"))
    assert saved is not None and saved.keys() == run.ema.shadow.keys()
    again = CountingRun(resume_config(tmp_path / "r", max_steps=1000), None, None, True)
    res = again.run()
    assert res.finished and res.steps == 6 and Count.steps == 6
    state = ema_weights_from_state(_last_state(tmp_path / "r"))
    import torch
    from safetensors.torch import load_file

    final = load_file(str(tmp_path / "r" / "model.safetensors"))
    k = next(iter(final))
    assert torch.allclose(final[k].float(), state[k].float(), atol=1e-6)  # the model is the resumed average
