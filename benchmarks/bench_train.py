"""Training throughput: this engine vs fastai 2.8's ``unet_learner``, same model and data.

Model: U-Net on ResNet-34 (random init), self-attention, weight norm, blur, y_range (-3, 3);
MSE loss; 128 px, batch 8; Adam(W) wd 1e-2, one-cycle lr 1e-3. Data: the same synthetic
degraded/clean pairs for both, held in memory (the loop is measured, not image decoding).
Figures: images/s over ``--steps`` training steps after ``--warmup`` steps, and the mean loss
of the last steps. fastai runs in a separate interpreter (``--fastai-python``, a venv with
fastai 2.8); the project never imports fastai.

Every configuration runs ``--repeat`` times, interleaved round-robin (a change of machine load
hits all alike); the JSON reports the median images/s and final loss of each, every repeat's
figures, and the load average (``os.getloadavg()``) before and after each run. With a load
average above the CPU count the figures are marked ``"loaded": true`` and, unless ``--out`` is
given, written to ``results/train_under_load.json`` so that they never replace quiet ones.

    python benchmarks/bench_train.py --fastai-python /work/scratch/fastai_venv/bin/python --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def make_data(path: Path, n: int, size: int, seed: int = 0) -> None:
    """Smooth random colour fields (clean) and a blurred, noisy, quantised copy (degraded)."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, size // 16, size // 16, generator=g)
    mid = torch.rand(n, 3, size // 4, size // 4, generator=g)
    hr = 0.6 * F.interpolate(low, size=size, mode="bicubic", align_corners=False) + 0.4 * F.interpolate(
        mid, size=size, mode="bilinear", align_corners=False)
    hr = hr.clamp(0, 1)
    lr = F.avg_pool2d(hr, 3, 1, 1) + 0.05 * torch.randn(hr.shape, generator=g)
    lr = (lr.clamp(0, 1) * 15).round() / 15
    torch.save({"lr": (lr * 255).round().to(torch.uint8), "hr": (hr * 255).round().to(torch.uint8)}, path)


# ---------------------------------------------------------------------------------------------
# fastai worker (runs in the fastai venv)


FASTAI_WORKER = r'''
import json, sys, time, torch
from fastai.vision.all import *
data_path, out_path, device, mode, bs, steps, warmup, threads = sys.argv[1:9]
bs, steps, warmup, threads = int(bs), int(steps), int(warmup), int(threads)
torch.set_num_threads(threads)
torch.manual_seed(0)
d = torch.load(data_path)
lr_t, hr_t = d["lr"].float() / 255, d["hr"].float() / 255
items = list(zip(lr_t, hr_t))
n = (steps + warmup) * bs
dls = DataLoaders(DataLoader(items[:n], bs=bs, shuffle=False, drop_last=True),
                  DataLoader(items[:bs], bs=bs), device=torch.device(device))
# unet_learner(dls, resnet34, pretrained=False, n_out=3, self_attention=True, norm_type=NormType.Weight,
# blur=True, y_range=(-3., 3.)) builds this model; the wrapper adds the ImageNet normalisation in and out
# that this project's Restorer applies, so both engines train the same function on the same data.
unet = create_unet_model(resnet34, 3, (lr_t.shape[-2], lr_t.shape[-1]), pretrained=False, self_attention=True,
                         norm_type=NormType.Weight, blur=True, y_range=(-3., 3.))
class Norm(nn.Module):
    def __init__(self, net):
        super().__init__(); self.net = net
        self.register_buffer("m", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("s", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
    def forward(self, x): return self.net((x - self.m) / self.s) * self.s + self.m
learn = Learner(dls, Norm(unet), loss_func=MSELossFlat(), opt_func=Adam, lr=1e-3, wd=None, wd_bn_bias=False,
                train_bn=True, moms=(0.95, 0.85, 0.95))
if mode == "bf16": learn = learn.to_bf16()
elif mode == "fp16": learn = learn.to_fp16()
class Timer(Callback):
    order = 99
    def before_fit(self): self.t, self.l = [], []
    def after_batch(self):
        if not self.training: return
        if self.dls.device.type == "cuda": torch.cuda.synchronize()
        self.t.append(time.perf_counter()); self.l.append(float(self.learn.loss))
timer = Timer()
with learn.no_bar(), learn.no_logging():
    learn.fit_one_cycle(1, 1e-3, cbs=[timer])
t = timer.t
dt = t[-1] - t[warmup - 1]
json.dump({"images_per_s": steps * bs / dt, "step_s": dt / steps, "steps": steps,
           "first_loss": timer.l[0], "final_loss": sum(timer.l[-3:]) / 3, "losses": timer.l,
           "fastai": __import__("fastai").__version__, "torch": torch.__version__}, open(out_path, "w"))
'''


def run_fastai(python: str, data: Path, device: str, mode: str, bs: int, steps: int, warmup: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as td:
        script = Path(td) / "fastai_worker.py"
        script.write_text(FASTAI_WORKER)
        out = Path(td) / "out.json"
        cmd = [python, str(script), str(data), str(out), device, mode, str(bs), str(steps), str(warmup), str(threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            return {"error": proc.stderr[-2000:]}
        return json.loads(out.read_text())


# ---------------------------------------------------------------------------------------------
# this engine


def run_ours(data: Path, device: str, precision: str, channels_last: bool, bs: int, steps: int, warmup: int,
             threads: int) -> dict:
    import torch

    sys.path.insert(0, str(HERE.parent))
    from lesson7_studio.core import models
    from lesson7_studio.core.losses import PixelLoss
    from lesson7_studio.core.train.learner import Callback, Learner

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    d = torch.load(data)
    lr_t, hr_t = d["lr"].float() / 255, d["hr"].float() / 255
    n = (steps + warmup) * bs
    ds = torch.utils.data.TensorDataset(lr_t[:n], hr_t[:n])
    dl = torch.utils.data.DataLoader(ds, batch_size=bs, shuffle=False, drop_last=True)
    net = models.restorer("unet-resnet34", pretrained=False, scale=1, self_attention=True, norm_type="weight",
                          blur=True, y_range=(-3.0, 3.0))

    class Timer(Callback):
        order = 99

        def before_fit(self):
            self.t, self.l = [], []

        def after_batch(self):
            if not self.learn.training:
                return
            if self.learn.device.type == "cuda":
                torch.cuda.synchronize()
            self.t.append(time.perf_counter())
            self.l.append(float(self.learn.loss))

    timer = Timer()
    learn = Learner(net, dl, None, PixelLoss("mse"), callbacks=[timer], device=device, precision=precision,
                    channels_last=channels_last, wd=1e-2)
    learn.fit(1, 1e-3, one_cycle=True)
    t = timer.t
    dt = t[-1] - t[warmup - 1]
    return {"images_per_s": steps * bs / dt, "step_s": dt / steps, "steps": steps, "first_loss": timer.l[0],
            "final_loss": sum(timer.l[-3:]) / 3, "losses": timer.l, "precision": learn.precision.mode,
            "channels_last": learn.channels_last, "torch": torch.__version__}


def load_avg() -> list[float] | None:
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


def median_summary(reps: list[dict], base: float | None) -> dict:
    """Median images/s and final loss over the repeats of one configuration."""
    ok = [r for r in reps if "images_per_s" in r]
    if not ok:
        return {"error": (reps[-1].get("error", "") if reps else "")[-300:]}
    ips = statistics.median(r["images_per_s"] for r in ok)
    return {"images_per_s": round(ips, 2), "images_per_s_all": [round(r["images_per_s"], 2) for r in ok],
            "final_loss": round(statistics.median(r["final_loss"] for r in ok), 5),
            "speedup_vs_fastai_fp32": round(ips / base, 2) if base else None,
            "load_avg_1min": [r["load_avg_before"][0] for r in ok if r.get("load_avg_before")]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fastai-python", default="/work/scratch/fastai_venv/bin/python")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each configuration; the median is reported")
    ap.add_argument("--out", default=None, help="JSON to write (default results/train.json, or "
                    "results/train_under_load.json when the machine is loaded)")
    ap.add_argument("--skip-fastai", action="store_true")
    ap.add_argument("--channels-last", action="store_true", help="also time bf16 + channels_last on the CPU")
    args = ap.parse_args()


    with tempfile.TemporaryDirectory() as td:
        data = Path(td) / "pairs.pt"
        make_data(data, (args.steps + args.warmup) * args.batch_size, args.size)
        runs: dict[str, dict] = {}
        common = dict(bs=args.batch_size, steps=args.steps, warmup=args.warmup, threads=args.threads)
        if args.device == "cpu":
            ours_cfgs = [("ours_fp32", "fp32", False), ("ours_bf16", "bf16", False)]
            if args.channels_last:
                ours_cfgs.append(("ours_bf16_channels_last", "bf16", True))
            fa_cfgs = [("fastai_fp32", "fp32")]
        else:
            ours_cfgs = [("ours_fp32", "fp32", False), ("ours_bf16_channels_last", "bf16", True)]
            fa_cfgs = [("fastai_fp32", "fp32"), ("fastai_bf16", "bf16")]
        jobs = [] if args.skip_fastai else [
            (name, lambda mode=mode: run_fastai(args.fastai_python, data, args.device, mode, **common))
            for name, mode in fa_cfgs]
        jobs += [(name, lambda prec=prec, cl=cl: run_ours(data, args.device, prec, cl, **common))
                 for name, prec, cl in ours_cfgs]
        load_start = load_avg()
        for rep in range(max(1, args.repeat)):
            for name, fn in jobs:
                print(f"{name} (repeat {rep + 1}/{args.repeat}) ...", file=sys.stderr, flush=True)
                before = load_avg()
                r = fn()
                r["load_avg_before"], r["load_avg_after"] = before, load_avg()
                runs.setdefault(name, []).append(r)
            # written after every round: a run stopped early keeps the rounds it finished
            out, summary, loaded = write_result(args, runs, load_start, rep + 1)
    print(json.dumps(summary, indent=1))
    print(f"written {out}" + (f" (machine loaded: load average {load_start})" if loaded else ""))
    return 0


def write_result(args, runs: dict, load_start, rounds: int) -> tuple[Path, dict, bool]:
    import torch

    load_now = load_avg()
    fa = [r["images_per_s"] for r in runs.get("fastai_fp32", []) if "images_per_s" in r]
    base = statistics.median(fa) if fa else None
    summary = {name: median_summary(reps, base) for name, reps in runs.items()}
    cpus = os.cpu_count() or 1
    # the 1-minute load average before a run includes the previous run's own threads (about
    # --threads, all the CPUs by default): only what comes on top of that is other work
    own = min(args.threads or cpus, cpus)
    loaded = any(v and v[0] > own + 0.5 for v in [load_start, load_now] + [
        r.get("load_avg_before") for reps in runs.values() for r in reps])
    dev = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else (platform.processor() or platform.machine())
    result = {
        "benchmark": "train throughput: unet-resnet34, self-attention, weight norm, MSE, one-cycle 1e-3",
        "device": args.device, "device_name": dev, "threads": args.threads, "cpu_count": os.cpu_count(),
        "size": args.size, "batch_size": args.batch_size, "steps_timed": args.steps, "warmup": args.warmup,
        "cpu_bf16": bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()),
        "repeat": args.repeat, "rounds_done": rounds, "load_avg_start": load_start, "load_avg_end": load_now,
        "loaded": loaded, "summary": summary, "runs": runs,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if loaded:
        result["note"] = (f"measured with a load average above the {cpus} CPUs: these figures say how the "
                          "engines share a busy machine, not how fast they are")
    out = Path(args.out) if args.out else HERE / "results" / ("train_under_load.json" if loaded else "train.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    return out, summary, loaded


if __name__ == "__main__":
    raise SystemExit(main())
