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
    # 7 training pairs -> 4 per rank -> 2 batches of 2 per epoch, 2 epochs
    assert r0["steps"] == r1["steps"] == 4
    assert all(torch.equal(a, b) for a, b in zip(r0["params"], r1["params"]))
    assert r0["events"] > 0 and r1["events"] == 0  # only rank 0 reports
    assert r0["model_path"] == str(out / "model.safetensors") and r1["model_path"] == "None"
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["0", "1"]  # written once, not per process
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert names == sorted(["best.safetensors", "last.json", "train-s0000002.safetensors",
                            "train-s0000002.state.pt", "train-s0000004.safetensors", "train-s0000004.state.pt"])
    assert not list(out.rglob(".*.part"))
