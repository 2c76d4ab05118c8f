"""A run's ``ema`` setting: validated, samples, best and final model are the weight average;
checkpoints keep the raw weights for resuming; a resumed run ends with the same average."""

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from lesson7_studio.core.datasets import build_pairs
from lesson7_studio.core.errors import TrainingError
from lesson7_studio.core.errors import Cancelled
from lesson7_studio.core.events import CancelToken, EpochEnd
from lesson7_studio.core.train import apply_overrides, get_recipe, resume_config, train
from lesson7_studio.core.train.ema import ema_weights_from_state

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("ema_data")
    (root / "src").mkdir()
    rng = np.random.default_rng(1)
    for i in range(5):
        img = (rng.random((8, 8, 3)) * 255).astype(np.uint8)
        Image.fromarray(img).resize((48, 48), Image.BICUBIC).save(root / "src" / f"p{i}.png")
    build_pairs(root / "src", root / "x2", "decrappify-x2", seed=0, valid_pct=0.4, workers=1)
    return root / "x2"


def _cfg(data, out, **kw):
    ov = dict(data=str(data), out=str(out), device="cpu", precision="fp32", size=32, batch_size=2, epochs=2,
              steps_per_epoch=3, valid_batches=1, preview_samples=1, arch_options={"nf": 8, "blocks": 1})
    ov.update(kw)
    return apply_overrides(get_recipe("quick"), **ov)


def _tensors(path):
    from safetensors.torch import load_file

    return load_file(str(path))


def test_ema_setting_is_checked():
    with pytest.raises(TrainingError, match="ema"):
        apply_overrides(get_recipe("quick"), ema=1.0)
    assert get_recipe("quick").copy().ema >= 0


def test_final_model_is_the_average_and_checkpoints_keep_the_raw_weights(data, tmp_path):
    out = tmp_path / "run"
    rows = []
    result = train(_cfg(data, out, ema=0.5), on_event=lambda e: rows.append(e) if isinstance(e, EpochEnd) else None)
    assert result.finished and len(rows) == 2
    final = _tensors(out / "model.safetensors")
    state = next((out / "checkpoints").glob("*.state.pt"))
    avg = ema_weights_from_state(state)
    assert avg is not None
    raw = _tensors(next(p for p in (out / "checkpoints").glob("*.safetensors") if "critic" not in p.name
                        and p.name != "best.safetensors"))
    key = next(k for k in final if final[k].is_floating_point() and final[k].numel() > 8)
    # the stage's last checkpoint holds its result (the average), the final model the same
    assert torch.allclose(final[key].float(), avg[key].float(), atol=1e-6)
    assert torch.allclose(raw[key].float(), avg[key].float(), atol=1e-6)
    # the validation figures are those of the model handed over: re-validate it
    with open(out / "metrics.csv") as f:
        last = list(csv.DictReader(f))[-1]
    assert float(last["valid_loss"]) == pytest.approx(rows[-1].metrics["valid_loss"], rel=1e-5)
    assert (out / "checkpoints" / "best.safetensors").exists()


def test_without_ema_the_final_model_is_the_last_weights(data, tmp_path):
    out = tmp_path / "plain"
    train(_cfg(data, out, ema=0.0))
    state = next((out / "checkpoints").glob("*.state.pt"))
    assert ema_weights_from_state(state) is None


def test_validation_sees_the_average_and_training_the_raw_weights(data, tmp_path):
    """Validated weights differ from the raw ones mid-run; after the pass the raw ones are back."""
    from lesson7_studio.core.train.learner import Callback
    import lesson7_studio.core.train.run as run_mod

    probe = {}

    class Probe(Callback):
        order = 55

        def before_validate(self):  # after the EMA (order 20) swapped the average in
            net = self.learn.model.net
            probe.setdefault("valid", []).append(next(net.parameters()).detach().clone())

        def after_epoch(self):
            net = self.learn.model.net
            probe.setdefault("after", []).append(next(net.parameters()).detach().clone())

        def after_step(self):
            net = self.learn.model.net
            probe["raw"] = next(net.parameters()).detach().clone()

    orig = run_mod._Run._common_callbacks

    def patched(self, i, stage, monitor_best, previews):
        return orig(self, i, stage, monitor_best, previews) + [Probe()]

    run_mod._Run._common_callbacks = patched
    try:
        train(_cfg(data, tmp_path / "probe", ema=0.5, epochs=1))
    finally:
        run_mod._Run._common_callbacks = orig
    assert not torch.equal(probe["valid"][0], probe["raw"])  # validated: the average
    assert torch.equal(probe["after"][0], probe["raw"])  # then the raw weights again


def test_cancelled_ema_run_resumes_to_the_same_model(data, tmp_path):
    whole = tmp_path / "whole"
    train(_cfg(data, whole, ema=0.5))
    ref = _tensors(whole / "model.safetensors")

    part = tmp_path / "part"
    token = CancelToken()
    steps = []

    def stop_after_four(ev):
        if type(ev).__name__ == "BatchEnd":
            steps.append(ev.step)
            if len(steps) == 4:
                token.cancel()

    with pytest.raises(Cancelled):
        train(_cfg(data, part, ema=0.5), on_event=stop_after_four, cancel=token)
    train(resume_config(part), resume=True)
    got = _tensors(part / "model.safetensors")
    for k in ref:
        assert torch.allclose(ref[k].float(), got[k].float(), atol=1e-5), k


# -- keep_best -------------------------------------------------------------------------------------


def test_keep_best_hands_back_the_start_when_training_only_hurts(data, tmp_path):
    """An absurd learning rate wrecks the model: the run keeps its validated starting weights."""
    from lesson7_studio.core.events import Log
    from safetensors.torch import load_file

    out = tmp_path / "wrecked"
    logs = []
    cfg = _cfg(data, out, keep_best=True, lr=3.0)
    start_net = None
    import lesson7_studio.core.train.stages as stages_mod

    orig = stages_mod.fit_stage

    def spy(run, learn, i, stage, pos):
        nonlocal start_net
        start_net = {k: v.detach().clone() for k, v in run.gen.net.state_dict().items()}
        return orig(run, learn, i, stage, pos)

    stages_mod.fit_stage = spy
    try:
        result = train(cfg, on_event=lambda e: logs.append(e.message) if isinstance(e, Log) else None)
    finally:
        stages_mod.fit_stage = orig
    final = load_file(str(out / "model.safetensors"))
    for k, v in start_net.items():
        assert torch.allclose(final[k].float(), v.float()), k
    assert any("starting weights validate" in m for m in logs)
    assert any(m.startswith("Kept the starting weights") for m in logs)
    assert result.finished and result.kept["step"] == 0 and result.kept["valid_loss"] < result.kept["last_valid_loss"]


def test_with_keep_best_the_final_model_is_always_the_best_validated_one(data, tmp_path):
    from lesson7_studio.core.checkpoint import read_metadata

    out = tmp_path / "fine"
    result = train(_cfg(data, out, keep_best=True, epochs=3))
    with open(out / "metrics.csv") as f:
        losses = [float(r["valid_loss"]) for r in csv.DictReader(f)]
    final = _tensors(out / "model.safetensors")
    best = _tensors(out / "checkpoints" / "best.safetensors")
    for k in final:
        assert torch.equal(final[k], best[k]), k
    kept = read_metadata(out / "model.safetensors")["info"]["summary"]["kept"]
    if kept == "last":
        assert losses[-1] <= min(losses)
    else:
        assert kept["valid_loss"] < losses[-1] and kept["valid_loss"] == pytest.approx(min(losses + [kept["valid_loss"]]), rel=1e-4)
    assert result.finished


def test_keep_best_is_a_checked_bool():
    with pytest.raises(TrainingError, match="keep_best"):
        apply_overrides(get_recipe("quick"), keep_best="yes")


def test_keep_best_names_the_epoch_it_kept(data, tmp_path, monkeypatch):
    """Scripted validation losses: start 1.0, epochs 0.5, 0.3, 0.4 -> the second epoch's weights."""
    from lesson7_studio.core.train.callbacks import Recorder

    losses = iter([1.0, 0.5, 0.3, 0.4])
    real = Recorder._valid_metrics

    def scripted(self):
        m = real(self)
        return {**m, "valid_loss": next(losses)} if m else m

    monkeypatch.setattr(Recorder, "_valid_metrics", scripted)
    out = tmp_path / "mid"
    steps = []
    result = train(_cfg(data, out, keep_best=True, epochs=3),
                   on_event=lambda e: steps.append(e.step) if isinstance(e, EpochEnd) else None)
    assert result.kept == {"step": steps[1], "valid_loss": 0.3, "last_valid_loss": 0.4}
    final, best = _tensors(out / "model.safetensors"), _tensors(out / "checkpoints" / "best.safetensors")
    assert all(torch.equal(final[k], best[k]) for k in final)
