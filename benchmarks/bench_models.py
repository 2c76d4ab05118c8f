"""Model zoo speed and device checks.

CPU (``--threads`` threads, default 2): restoring a 512x768 output (256x384 input) with
``unet-lite`` (x2) and with ``unet-resnet34`` (input bicubic-upsampled first), against the
bicubic upsampling alone as the baseline measured in the same run.

CUDA, when available: every registered model runs forward + backward under float32, bfloat16 and
float16 autocast (finite outputs and gradients); SelfAttention's SDPA path against fastai's
bmm/softmax formula under autocast; a checkpoint round trip loaded with ``device="cuda"``; and
timings: a unet-resnet34 training step (bs 8, 128 px, fp16 autocast + GradScaler) with the SDPA
self-attention and, as the baseline in the same run, with fastai's literal formula; inference of
unet-lite and unet-resnet34 on a 1024x1536 output.

Writes benchmarks/results/models.json (or ``--out``). Usage::

    python benchmarks/bench_models.py [--threads 2] [--out PATH] [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from lesson7_studio.core import checkpoint, models  # noqa: E402
from lesson7_studio.core.models import layers  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "models.json"


def timeit(fn, repeat: int, sync=lambda: None) -> dict:
    fn()  # warm-up (kernel selection, allocations)
    sync()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    times.sort()
    return {"median_s": times[len(times) // 2], "min_s": times[0], "repeat": repeat}


def cpu_restore(threads: int, repeat: int) -> dict:
    torch.set_num_threads(threads)
    x = torch.rand(1, 3, 256, 384)
    out: dict = {"threads": threads, "input": [256, 384], "output": [512, 768]}
    with torch.inference_mode():
        out["baseline_bicubic"] = timeit(
            lambda: F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False), repeat)
        lite = layers.bake_parametrizations(models.restorer("unet-lite").eval())
        out["unet-lite"] = timeit(lambda: lite(x), repeat)
        u34 = layers.bake_parametrizations(models.restorer("unet-resnet34").eval())
        out["unet-resnet34"] = timeit(lambda: u34(x), max(1, repeat // 2))
    return out


def sample(name: str, device: str) -> torch.Tensor:
    kind = models.describe(name).kind
    if kind == "restorer":
        return torch.rand(2, 3, 64, 64, device=device)
    if name == "wgan-generator":
        return torch.randn(2, 100, device=device)
    if name in ("gan-critic", "wgan-critic"):
        return torch.rand(2, 3, 64, 64, device=device)
    return torch.rand(2, 1, 28, 28, device=device)


def cuda_checks() -> dict:
    dev = "cuda"
    res: dict = {"device": torch.cuda.get_device_name(0), "models": {}}
    torch.backends.cudnn.benchmark = True
    for name in models.names():
        entry = {}
        torch.manual_seed(0)
        net = models.create(name).to(dev).train()
        x = sample(name, dev)
        for dtype in (torch.float32, torch.bfloat16, torch.float16):
            net.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
                y = net(x)
            loss = y.float().mean()
            loss.backward()
            grads_ok = all(torch.isfinite(p.grad).all().item() for p in net.parameters() if p.grad is not None)
            entry[str(dtype).split(".")[-1]] = bool(torch.isfinite(y).all().item() and grads_ok)
        net.eval()
        with torch.no_grad():
            y_ref = net(x)
        with tempfile.TemporaryDirectory() as tmp:
            path = checkpoint.save_model(Path(tmp) / "m.safetensors", net, name, {})
            loaded = checkpoint.load_model(path, device=dev)
            with torch.no_grad():
                entry["round_trip_max_abs_diff"] = float((loaded.net(x) - y_ref).abs().max())
            if loaded.info.kind == "restorer":
                r = loaded.restorer()
                with torch.no_grad():
                    entry["restorer_output"] = list(r(torch.rand(1, 3, 32, 32, device=dev)).shape)
        res["models"][name] = entry
        del net
        torch.cuda.empty_cache()

    sa = layers.SelfAttention(64).to(dev).eval()
    with torch.no_grad():
        sa.gamma.fill_(1.0)
        x = torch.randn(2, 64, 32, 48, device=dev)
        ref = layers.self_attention_reference(sa, x)
        sa_diff = {}
        for dtype in (torch.bfloat16, torch.float16):
            with torch.autocast("cuda", dtype=dtype):
                sa_diff[str(dtype).split(".")[-1]] = float((sa(x).float() - ref).abs().max())
    res["self_attention_sdpa_vs_reference_max_abs_diff"] = sa_diff

    sync = torch.cuda.synchronize
    timings: dict = {}

    def train_step_timer(reference_attention: bool) -> dict:
        torch.manual_seed(0)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        net = models.create("unet-resnet34").to(dev).train()
        if reference_attention:
            for m in net.modules():
                if isinstance(m, layers.SelfAttention):
                    m.forward = (lambda mod: (lambda inp: layers.self_attention_reference(mod, inp)))(m)
        opt = torch.optim.Adam(net.parameters(), 1e-4)
        scaler = torch.amp.GradScaler("cuda")
        xb = torch.rand(8, 3, 128, 128, device=dev)
        yb = torch.rand(8, 3, 128, 128, device=dev)

        def step():
            with torch.autocast("cuda", dtype=torch.float16):
                loss = F.l1_loss(net(xb), yb)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()

        out = timeit(step, 20, sync)
        out["peak_mem_gb"] = torch.cuda.max_memory_allocated() / 1e9
        return out

    timings["train_step_unet_resnet34_bs8_128px_fp16"] = {
        "sdpa_self_attention": train_step_timer(False),
        "baseline_fastai_formula": train_step_timer(True),
    }
    x = torch.rand(1, 3, 512, 768, device=dev)
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16):
        lite = layers.bake_parametrizations(models.restorer("unet-lite").to(dev).eval())
        u34 = layers.bake_parametrizations(models.restorer("unet-resnet34").to(dev).eval())
        timings["infer_1024x1536_fp16"] = {
            "baseline_bicubic": timeit(lambda: F.interpolate(x, scale_factor=2, mode="bicubic"), 10, sync),
            "unet-lite": timeit(lambda: lite(x), 10, sync),
            "unet-resnet34": timeit(lambda: u34(x), 10, sync),
        }
    res["timings"] = timings
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--no-cpu", action="store_true", help="skip the CPU timings")
    args = ap.parse_args()
    result: dict = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "params": {n: models.describe(n).params for n in models.names()},
    }
    if not args.no_cpu:
        result["cpu_restore_512x768"] = cpu_restore(args.threads, 2 if args.quick else 5)
    if torch.cuda.is_available():
        result["cuda"] = cuda_checks()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
