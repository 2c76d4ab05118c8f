"""torchrun-style DDP on CPU: two gloo processes keep identical replicas; rank 0 alone writes."""

import csv
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from lesson7_studio.core.datasets import build_pairs


def _sources(folder, n=8, size=48):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"img{i:02d}.png")
    return folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, data: str, out: str, scratch: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    import torch.distributed as dist

    from lesson7_studio.core.train import apply_overrides, get_recipe, train

    cfg = apply_overrides(get_recipe("quick"), data=data, out=out, epochs=2, size=32, batch_size=2,
                          pretrained=False, precision="fp32", device="cpu", preview_samples=1, workers=0,
                          arch_options={"nf": 8, "self_attention": False})
    cfg.steps_per_epoch = cfg.valid_batches = None  # one pass over the data per epoch
    events = []
    res = train(cfg, on_event=events.append)
    state = {"params": [p.detach().clone() for p in res.generator.parameters()], "steps": res.steps,
             "events": len(events), "model_path": str(res.model_path)}
    torch.save(state, os.path.join(scratch, f"rank{rank}.pt"))
    dist.destroy_process_group()


@pytest.mark.timeout(240)
def test_two_gloo_processes_stay_identical_and_write_once(tmp_path):
    build_pairs(_sources(tmp_path / "src"), tmp_path / "ds", "superres-x2", seed=0, valid_pct=0.25, workers=1)
    out, scratch = tmp_path / "run", tmp_path / "scratch"
    scratch.mkdir()
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path / "ds"), str(out), str(scratch)), nprocs=2, join=True)
    r0 = torch.load(scratch / "rank0.pt", weights_only=True)
    r1 = torch.load(scratch / "rank1.pt", weights_only=True)
    # 6 training pairs (2 of 8 validate) -> 3 per rank -> 1 batch of 2 per epoch, 2 epochs
    assert r0["steps"] == r1["steps"] == 2
    assert all(torch.equal(a, b) for a, b in zip(r0["params"], r1["params"]))
    assert r0["events"] > 0 and r1["events"] == 0  # only rank 0 reports
    assert r0["model_path"] == str(out / "model.safetensors") and r1["model_path"] == "None"
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["0", "1"]  # written once, not per process
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    # written once (by rank 0): the best weights and the newest resumable state (keep_checkpoints 1)
    assert names == sorted(["best.safetensors", "last.json", "train-s0000002.safetensors", "train-s0000002.state.pt"])
    assert not list(out.rglob(".*.part"))


def _metrics_worker(rank: int, world: int, port: int, data: str, out: str, scratch: str) -> None:
    import warnings

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    import torch.distributed as dist

    from lesson7_studio.core.train import apply_overrides, get_recipe, train
    from lesson7_studio.core.train.distributed import threads_per_process

    # channels_last on the CPU too: the layout whose gradients used to mismatch DDP's buckets
    cfg = apply_overrides(get_recipe("quick"), data=data, out=out, epochs=1, size=32, batch_size=2,
                          pretrained=False, precision="fp32", device="cpu", preview_samples=0, workers=0,
                          arch_options={"nf": 8, "self_attention": True, "norm_type": "weight"})
    cfg.channels_last = True
    cfg.steps_per_epoch = cfg.valid_batches = None  # one pass; every validation image
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = train(cfg)
    state = {"warnings": [str(w.message) for w in caught], "threads": torch.get_num_threads(),
             "expected_threads": threads_per_process(), "metrics": res.metrics if rank == 0 else {}}
    torch.save(state, os.path.join(scratch, f"m{rank}.pt"))
    dist.destroy_process_group()


def _single_process_valid(model_path, data, size=32):
    """valid L1 loss and PSNR of a saved model, in one process, over the validation split."""
    import torch.nn.functional as F

    from lesson7_studio.core import checkpoint, metrics
    from lesson7_studio.core.datasets import PairedDataset

    model = checkpoint.load_model(model_path).restorer().eval()
    ds = PairedDataset(data, split="valid", crop_size=size, augment=False, seed=0)
    losses, psnrs = [], []
    with torch.no_grad():
        for i in range(len(ds)):
            x, y = ds[i]
            pred = model(x[None]).float()
            losses.append(float(F.l1_loss(pred, y[None])))
            psnrs.append(metrics.batch_sums(pred.clamp(0, 1), y[None], scale=2)["psnr"])  # superres-x2
    return len(ds), sum(losses) / len(losses), sum(psnrs) / len(psnrs)


@pytest.mark.timeout(240)
def test_ddp_validation_metrics_equal_one_process_and_no_stride_warning(tmp_path):
    import json

    # 9 sources at 0.34 -> 3 validation images: an odd count, which padding used to count one twice
    build_pairs(_sources(tmp_path / "src", n=9), tmp_path / "ds", "superres-x2", seed=0, valid_pct=0.34, workers=1)
    n_valid = len(json.loads((tmp_path / "ds" / "dataset.json").read_text())["valid"])
    assert n_valid == 3
    out, scratch = tmp_path / "run", tmp_path / "scratch"
    scratch.mkdir()
    mp.spawn(_metrics_worker, args=(2, _free_port(), str(tmp_path / "ds"), str(out), str(scratch)), nprocs=2,
             join=True)
    r0 = torch.load(scratch / "m0.pt", weights_only=True)
    r1 = torch.load(scratch / "m1.pt", weights_only=True)
    for r in (r0, r1):
        assert not [w for w in r["warnings"] if "Grad strides" in w], r["warnings"]
        assert r["threads"] == r["expected_threads"]  # the cores' share of each process
    count, loss, psnr = _single_process_valid(out / "model.safetensors", tmp_path / "ds")
    assert count == n_valid
    assert r0["metrics"]["valid_loss"] == pytest.approx(loss, rel=1e-5, abs=1e-7)
    assert r0["metrics"]["psnr"] == pytest.approx(psnr, rel=1e-5)


def test_evaluation_shards_cover_each_item_once_and_training_shards_stay_in_step():
    from lesson7_studio.core.train.distributed import ResumableSampler

    for n, world in [(5, 2), (3, 2), (1, 2), (7, 3)]:
        shards = [list(ResumableSampler(n, shuffle=False, rank=r, world_size=world)) for r in range(world)]
        assert sorted(i for s in shards for i in s) == list(range(n))  # no padding, no duplicate
        assert [len(ResumableSampler(n, shuffle=False, rank=r, world_size=world)) for r in range(world)] == \
            [len(s) for s in shards]
        train = [list(ResumableSampler(n, shuffle=True, seed=1, rank=r, world_size=world)) for r in range(world)]
        assert len({len(s) for s in train}) == 1  # every rank runs the same number of steps


def test_threads_per_process_share_the_available_cores(monkeypatch):
    from lesson7_studio.core.train import distributed as d

    assert d.threads_per_process(cores=2, procs=2) == 1
    assert d.threads_per_process(cores=16, procs=2) == 8
    assert d.threads_per_process(cores=3, procs=4) == 1
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("WORLD_SIZE", "4")  # two nodes of two: the local count decides
    monkeypatch.setattr(d.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)
    assert d.available_cores() == 6 and d.threads_per_process() == 3
