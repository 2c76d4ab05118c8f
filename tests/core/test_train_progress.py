"""Overall progress of a training run: total steps across stages, steps done, ETA, pauses, lr text."""

import numpy as np
import pytest
from PIL import Image

from lesson7_studio.core.datasets import build_pairs
from lesson7_studio.core.events import (BatchEnd, CancelToken, LRFindPoint, RunProgress, StageStart, format_duration,
                                        format_lr)
from lesson7_studio.core.train import apply_overrides, get_recipe, lr_find, train
from lesson7_studio.core.train.recipes import StageConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("progress_data")
    src = root / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(src / f"img{i}.png")
    build_pairs(src, root / "x2", "superres-x2", seed=0, valid_pct=0.25, workers=1)  # 6 train, 2 valid
    return root / "x2"


def _two_stages(data, out, **kw):
    cfg = apply_overrides(get_recipe("quick"), data=str(data), out=str(out), size=32, batch_size=2, pretrained=False,
                          precision="fp32", preview_samples=0, arch_options={"nf": 8, "self_attention": False},
                          workers=0, **kw)
    cfg.stages = [StageConfig("first", epochs=2, lr=1e-3), StageConfig("second", epochs=1, lr=1e-4)]
    cfg.steps_per_epoch = None  # an epoch = one pass over the 6 training pairs
    return cfg


def test_events_carry_the_whole_runs_steps_and_an_eta(data, tmp_path):
    events = []
    res = train(_two_stages(data, tmp_path / "run"), on_event=events.append)
    batches = [e for e in events if isinstance(e, BatchEnd)]
    starts = [e for e in events if isinstance(e, StageStart)]
    # 6 training pairs in batches of 2: 3 steps an epoch; 2 + 1 epochs
    assert {b.total_steps for b in batches} == {9}
    assert [b.step for b in batches] == list(range(1, 10)) and res.steps == 9
    assert [(s.steps_done, s.stage_steps, s.total_steps) for s in starts] == [(0, 6, 9), (6, 3, 9)]
    assert [b.stage_index for b in batches] == [0] * 6 + [1] * 3 and {b.n_stages for b in batches} == {2}
    etas = [b.eta_s for b in batches]
    assert all(e is not None and e >= 0 for e in etas[1:]), etas
    assert etas[-1] == 0.0
    elapsed = [b.elapsed_s for b in batches]
    assert elapsed == sorted(elapsed) and elapsed[0] > 0


def test_max_steps_caps_the_total(data, tmp_path):
    events = []
    train(_two_stages(data, tmp_path / "run", max_steps=4), on_event=events.append)
    batches = [e for e in events if isinstance(e, BatchEnd)]
    assert {b.total_steps for b in batches} == {4} and batches[-1].step == 4


def test_eta_leaves_pauses_out():
    now = [0.0]

    class FakeCancel:
        paused_seconds = 0.0

    cancel = FakeCancel()
    events = []
    prog = RunProgress(events.append, cancel, clock=lambda: now[0])
    prog.set_plan([10, 10])
    prog(StageStart("a", 0, 2, epochs=1))

    def batch(step):
        ev = BatchEnd(stage="a", epoch=0, step=step, iteration=step - 1, n_iter=10, loss=1.0, smooth_loss=1.0, lr=1e-3)
        prog(ev)
        return ev

    for step in range(1, 6):  # one step a second
        now[0] += 1.0
        ev = batch(step)
    assert ev.eta_s == pytest.approx(15.0) and ev.total_steps == 20
    now[0] += 100.0  # paused for 99 s during the next step
    cancel.paused_seconds = 99.0
    ev = batch(6)
    assert ev.eta_s == pytest.approx(14.0)
    assert ev.elapsed_s == pytest.approx(6.0)
    # a new stage keeps the last rate until it has steps of its own
    prog(StageStart("b", 1, 2, epochs=1))
    now[0] += 5.0  # start-up of the stage (first batch) is not counted
    ev = batch(11)
    assert ev.eta_s == pytest.approx(9.0)


def test_cancel_token_counts_paused_seconds():
    tok = CancelToken()
    assert tok.paused_seconds == 0.0
    tok.pause()
    assert tok.paused and tok.paused_seconds >= 0.0
    tok.resume()
    first = tok.paused_seconds
    assert first > 0.0 and tok.paused_seconds == first  # frozen while running


@pytest.mark.parametrize("lr,text", [(9.2e-4, "9.2e-4"), (1e-3, "1e-3"), (1.25e-5, "1.25e-5"), (2.4999e-4, "2.5e-4"), (3e-3, "3e-3"),
                                     (0.03, "0.03"), (10.0, "10"), (0.0, "0")])
def test_format_lr_keeps_the_exponent(lr, text):
    assert format_lr(lr) == text


def test_format_duration():
    assert (format_duration(5), format_duration(75), format_duration(3725), format_duration(None)) == (
        "0:05", "1:15", "1:02:05", "?")


def test_lr_finder_reports_each_point_as_it_sweeps(data):
    cfg = _two_stages(data, "")
    events = []
    res = lr_find(cfg, num_it=8, on_event=events.append)
    pts = [e for e in events if isinstance(e, LRFindPoint)]
    assert [p.done for p in pts] == list(range(1, len(pts) + 1)) and pts[0].total == 8
    assert [p.lr for p in pts] == res.lrs and [p.loss for p in pts] == res.losses
    assert "valley" in res.rule


def test_nogan_plan_counts_every_stage(data, tmp_path):
    """Generator stages, save-preds (no steps), the critic (real and fake images: twice the items), GAN."""
    cfg = apply_overrides(get_recipe("superres-gan"), data=str(data), out=str(tmp_path / "r"), epochs=1, size=32,
                          batch_size=2, pretrained=False, precision="fp32", valid_batches=1, preview_samples=0,
                          workers=0)
    cfg.arch, cfg.arch_options = "unet-lite", {"nf": 8, "self_attention": False}
    cfg.critic_options = {"nf": 8, "n_blocks": 1}
    cfg.steps_per_epoch = None  # one pass over the data per epoch
    events = []
    res = train(cfg, on_event=events.append)
    batches = [e for e in events if isinstance(e, BatchEnd)]
    starts = {e.name: e for e in events if isinstance(e, StageStart)}
    assert res.finished and {b.total_steps for b in batches} == {res.steps} == {3 + 3 + 6 + 3}
    assert starts["critic"].steps_done == 6 and starts["critic"].stage_steps == 6
    assert starts["save-preds"].stage_steps == 0 and starts["gan"].steps_done == 12
