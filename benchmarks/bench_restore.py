"""Folder restore: our engine against the plain way, and a 24 MP photo within 3 GB.

Model: unet-resnet34 (the lesson's generator: self-attention on, as the lesson trains it), random
weights (torch.manual_seed(0); no ImageNet weights offline), CPU. At initialisation the
self-attention's gamma is 0, so it does not change the output, but it is computed (and costs
what it costs) in both methods.

1. Folder: the Kodak24 images (../shared/data/valid/kodak24; --images N for the first N),
   crappified with the decrappify-x2 recipe (seed 0) to 384x256 inputs, restored x2 to 768x512 by
   - "plain": the way the lesson's ``learn.predict`` does it: one image at a time, the whole
     image at once, fp32, contiguous (NCHW) memory;
   - "ours": ``restore.restore_folder`` with the defaults (tiles sized from free memory,
     channels_last, inference_mode, precision "auto", I/O overlapped with compute);
   - "ours-bf16": the same with precision forced to bf16 (what auto picks when the bf16 output
     is within 45 dB PSNR of fp32's on its probe tile).
   Each method runs in its own process (so its peak RSS, VmHWM, is its own), twice,
   alternating, and the faster run is kept (the machine is shared; load averages are recorded).
   Each run records when each output was written, so the same runs also give the figures for
   the first 4 and 8 images (a smaller folder: each method's start-up weighs more) and the time
   per image after the first.
   Then one more process times the compute alone (no file I/O) on --paired-images images, the
   three methods alternating image by image for --rounds rounds, best round kept: the figure least disturbed by other jobs
   (all three share that process's malloc setting once "ours" has made it: freed memory kept for
   reuse, see core/devices.keep_freed_memory; so that figure shows what the engine does beyond
   the allocator, while the separate processes show the whole difference).
   Outputs are scored against the original Kodak images (Y-PSNR, border 2) and against each
   other.
   Both load the same checkpoint: "plain" as the registry model (weight-norm parametrizations
   recomputed every call, as in training) with fastai's attention (one N x N map), "ours"
   through ``restore.load_any_model`` (what the CLI does; it bakes the parametrizations into
   plain weights), whose attention runs in query chunks at inference and whose bf16 runs on a
   bf16 copy of the net (no autocast re-casts).
2. Big photo: a 6000x4000 (24 MP) photo (Kodak upscaled) restored at its size by the same network
   with the Restorer's ``scale=1`` option (the lesson's decrappify setting: the U-Net restores at
   the input's size), by our engine; its peak RSS is measured. The plain way is measured on
   three smaller sizes and its peak RSS fitted (a + b*px + c*px^2: self-attention is quadratic)
   and extrapolated to 24 MP: running it would need far more memory than this shared 24 GB
   machine may use.

Writes benchmarks/results/restore.json.
Usage: python benchmarks/bench_restore.py [--images 24] [--repeats 2] [--rounds 3] [--no-big]
(--no-big / --big-only keep the other part's figures from the previous results file)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KODAK = (ROOT / ".." / "shared" / "data" / "valid" / "kodak24").resolve()
OUT = ROOT / "benchmarks" / "results" / "restore.json"
MODEL = "unet-resnet34"


# ----------------------------------------------------------------------------- helpers


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _make_checkpoint(path: Path, scale: int) -> Path:
    """The benchmark's model: random weights from torch.manual_seed(0), saved once so that every
    process loads the very same weights."""
    import torch

    from lesson7_studio.core import checkpoint, models

    torch.manual_seed(0)
    r = models.restorer(MODEL, pretrained=False, self_attention=True, scale=scale)
    return checkpoint.save_model(path, r, MODEL, r.info.options)


def _lesson_model(ckpt: str):
    """The plain way's model: as a trained learner holds it (the registry model, weight-norm
    parametrizations and all) and with fastai's attention (one N x N map, also at inference)."""
    from lesson7_studio.core import checkpoint
    from lesson7_studio.core.models.layers import SelfAttention

    model = checkpoint.load_model(ckpt, device="cpu").restorer().eval()
    for m in model.modules():
        if isinstance(m, SelfAttention):
            m.chunk_inference = False
    return model


def _worker(args: argparse.Namespace) -> dict:
    """Runs in a fresh process; returns its measurements."""
    import torch
    from PIL import Image

    from lesson7_studio.core import restore

    if args.worker.startswith("plain"):
        model = _lesson_model(args.ckpt)
    else:
        model = restore.load_any_model(args.ckpt, device="cpu")  # what `lesson7-studio restore` does
    rss_model = _status("VmRSS")
    res: dict = {"mode": args.worker, "threads": torch.get_num_threads()}
    src, dst = Path(args.src) if args.src else None, Path(args.dst) if args.dst else None
    t0, c0 = time.perf_counter(), time.process_time()
    done_at: list[float] = []  # seconds from the start to each image's output written
    if args.worker == "plain":
        mp = 0.0
        for path in sorted(src.glob("*.png")):
            img = np.asarray(Image.open(path).convert("RGB"))
            x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0
            with torch.no_grad():
                y = model(x)[0].clamp(0, 1)
            out = (y.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
            dst.mkdir(parents=True, exist_ok=True)
            Image.fromarray(out).save(dst / path.name)
            mp += img.shape[0] * img.shape[1] / 1e6
            done_at.append(time.perf_counter() - t0)
        res["input_megapixels"] = mp
    elif args.worker in ("ours", "ours-bf16"):
        precision = "bf16" if args.worker == "ours-bf16" else "auto"
        from lesson7_studio.core.events import ItemDone

        def on_event(e):
            if isinstance(e, ItemDone):
                done_at.append(time.perf_counter() - t0)

        s = restore.restore_folder(model, src, dst, precision=precision, on_event=on_event)
        res["input_megapixels"] = s.megapixels
        res["failed"] = [str(p) for p, _ in s.failed]
        res["precision_probe"] = {str(k): v for k, v in restore.facts.model_cache(model).items() if isinstance(k, tuple) and k[0] == "precision"}
    elif args.worker == "paired":
        # compute only, one process, methods alternating image by image: load spikes from other
        # jobs on the machine hit all methods alike; the best of the rounds is kept
        plain_model = _lesson_model(args.ckpt)
        imgs = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(src.glob("*.png"))[: args.paired_images]]

        def plain_run(img):
            x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0
            with torch.no_grad():
                return (plain_model(x)[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)

        methods = {
            "plain": plain_run,
            "ours": lambda img: restore.restore_array(model, img, precision="auto"),
            "ours-bf16": lambda img: restore.restore_array(model, img, precision="bf16"),
        }
        for f in methods.values():  # warm-up: probes, oneDNN kernels
            f(imgs[0])
        times: dict[str, list[float]] = {k: [] for k in methods}
        cpu: dict[str, list[float]] = {k: [] for k in methods}
        for _round in range(args.rounds):
            acc = {k: 0.0 for k in methods}
            acc_cpu = {k: 0.0 for k in methods}
            for img in imgs:
                for k, f in methods.items():
                    w, c = time.perf_counter(), time.process_time()
                    f(img)
                    acc[k] += time.perf_counter() - w
                    acc_cpu[k] += time.process_time() - c
            for k in methods:
                times[k].append(acc[k])
                cpu[k].append(acc_cpu[k])
        res["rounds_seconds"] = times
        res["rounds_cpu_seconds"] = cpu
        res["input_megapixels"] = sum(i.shape[0] * i.shape[1] for i in imgs) / 1e6
        res["precision_probe"] = {str(k): v for k, v in restore.facts.model_cache(model).items() if isinstance(k, tuple) and k[0] == "precision"}
    elif args.worker == "plain-mem":
        w, h = (int(v) for v in args.size.split("x"))
        x = torch.rand(1, 3, h, w)
        with torch.no_grad():
            model(x)
        res["input_megapixels"] = w * h / 1e6
    elif args.worker == "ours-big":
        s = restore.restore_folder(model, src, dst, precision="auto")
        res["input_megapixels"] = s.megapixels
        res["failed"] = [str(p) for p, _ in s.failed]
        res["precision_probe"] = {str(k): v for k, v in restore.facts.model_cache(model).items() if isinstance(k, tuple) and k[0] == "precision"}
        res["bytes_per_net_px_estimate"] = restore.facts.model_cache(model).get("bytes_per_px")
    res["seconds"] = time.perf_counter() - t0
    res["cpu_seconds"] = time.process_time() - c0
    if done_at:
        res["done_at"] = [round(t, 3) for t in done_at]
    res["rss_after_model_gb"] = rss_model / 1e9
    res["peak_rss_gb"] = _status("VmHWM") / 1e9
    return res


def _spawn(mode: str, **kw) -> dict:
    cmd = [sys.executable, __file__, "--worker", mode]
    for k, v in kw.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    load = os.getloadavg()[0]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} failed:\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["load_avg_1min_at_start"] = round(load, 2)
    print(f"  {mode:10s} {json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in res.items() if k not in ('precision_probe', 'done_at')})}", flush=True)
    return res


def _score(out_dir: Path, gt_dir: Path, ref_dir: Path | None = None) -> dict:
    from PIL import Image

    from lesson7_studio.core import metrics

    ys, rgbs, agree = [], [], []
    for p in sorted(out_dir.glob("*.png")):
        out = np.asarray(Image.open(p).convert("RGB"), dtype=np.float64) / 255
        gt = np.asarray(Image.open(gt_dir / p.name).convert("RGB"), dtype=np.float64) / 255
        ys.append(metrics.psnr(out, gt, y_channel=True, crop=2))
        rgbs.append(metrics.psnr(out, gt, crop=2))
        if ref_dir is not None:
            ref = np.asarray(Image.open(ref_dir / p.name).convert("RGB"), dtype=np.float64) / 255
            agree.append(metrics.psnr(out, ref))
    res = {"psnr_y_vs_original": float(np.mean(ys)), "psnr_rgb_vs_original": float(np.mean(rgbs))}
    if agree:
        res["psnr_vs_plain_output"] = float(np.mean(agree))
    return res


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


# ----------------------------------------------------------------------------- main


def _folder_benchmark(args, result, tmp, lr, gt, sizes, ckpt2) -> None:

    runs: dict[str, list[dict]] = {"plain": [], "ours": [], "ours-bf16": []}
    for rep in range(args.repeats):
        for mode in runs:
            dst = tmp / f"{mode}-{rep}"
            r = _spawn(mode, src=lr, dst=dst, ckpt=ckpt2)
            r["out_dir"] = str(dst)
            runs[mode].append(r)
    folder: dict = {"images": args.images, "input_sizes": [list(s) for s in sizes], "methods": {}}
    plain_dir = Path(min(runs["plain"], key=lambda r: r["seconds"])["out_dir"])
    for mode, rs in runs.items():
        best = min(rs, key=lambda r: r["seconds"])
        scores = _score(Path(best["out_dir"]), gt, None if mode == "plain" else plain_dir)
        folder["methods"][mode] = {
            "seconds_best": round(best["seconds"], 2),
            "seconds_all": [round(r["seconds"], 2) for r in rs],
            "cpu_seconds_best": round(min(r["cpu_seconds"] for r in rs), 2),
            "input_megapixels_per_s": round(best["input_megapixels"] / best["seconds"], 4),
            "output_megapixels_per_s": round(4 * best["input_megapixels"] / best["seconds"], 4),
            "peak_rss_gb": round(max(r["peak_rss_gb"] for r in rs), 3),
            "rss_after_model_gb": round(best["rss_after_model_gb"], 3),
            "load_avg_at_start": [r["load_avg_1min_at_start"] for r in rs],
            "precision_probe": best.get("precision_probe"),
            **{k: round(v, 3) for k, v in scores.items()},
        }
    m = folder["methods"]
    # the same runs read after their first k images: what a smaller folder would have measured
    # (each method's fixed start-up cost weighs more there), and the rate once started
    firsts = {}
    for k in sorted({min(4, args.images), min(8, args.images), args.images}):
        row = {}
        for mode, rs in runs.items():
            row[mode] = round(min(r["done_at"][k - 1] for r in rs), 2)
        row["speedup_ours_bf16_vs_plain"] = round(row["plain"] / row["ours-bf16"], 3)
        row["speedup_ours_vs_plain"] = round(row["plain"] / row["ours"], 3)
        firsts[str(k)] = row
    folder["seconds_to_first_k_images"] = firsts
    if args.images > 1:
        per_image = {mode: round(min((r["done_at"][-1] - r["done_at"][0]) / (args.images - 1) for r in rs), 3)
                     for mode, rs in runs.items()}
        folder["seconds_per_image_after_the_first"] = per_image
        folder["speedup_ours_bf16_vs_plain_after_the_first"] = round(per_image["plain"] / per_image["ours-bf16"], 3)
    folder["speedup_ours_vs_plain"] = round(m["plain"]["seconds_best"] / m["ours"]["seconds_best"], 3)
    folder["speedup_ours_bf16_vs_plain"] = round(m["plain"]["seconds_best"] / m["ours-bf16"]["seconds_best"], 3)
    folder["cpu_time_ratio_plain_over_ours"] = round(m["plain"]["cpu_seconds_best"] / m["ours"]["cpu_seconds_best"], 3)
    folder["psnr_y_difference_db"] = {
        k: round(abs(m[k]["psnr_y_vs_original"] - m["plain"]["psnr_y_vs_original"]), 4) for k in ("ours", "ours-bf16")
    }
    paired = _spawn("paired", src=lr, ckpt=ckpt2, rounds=args.rounds, paired_images=args.paired_images)
    best = {k: min(v) for k, v in paired["rounds_seconds"].items()}
    best_cpu = {k: min(v) for k, v in paired["rounds_cpu_seconds"].items()}
    folder["paired_compute_only"] = {
        "rounds": args.rounds,
        "images": min(args.paired_images, args.images),
        "seconds_best": {k: round(v, 2) for k, v in best.items()},
        "seconds_all": {k: [round(x, 2) for x in v] for k, v in paired["rounds_seconds"].items()},
        "cpu_seconds_best": {k: round(v, 2) for k, v in best_cpu.items()},
        "input_megapixels_per_s": {k: round(paired["input_megapixels"] / v, 4) for k, v in best.items()},
        "speedup_vs_plain": {k: round(best["plain"] / v, 3) for k, v in best.items() if k != "plain"},
        "load_avg_at_start": paired["load_avg_1min_at_start"],
        "precision_probe": paired.get("precision_probe"),
    }
    result["folder"] = folder





def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=24, help="Kodak images in the folder (all 24 by default)")
    ap.add_argument("--paired-images", type=int, default=4, help="images in the compute-only comparison")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--no-big", action="store_true", help="skip the 24 MP photo")
    ap.add_argument("--big-only", action="store_true", help="only the 24 MP photo")
    ap.add_argument("--big-size", default="6000x4000")
    ap.add_argument("--out", default=str(OUT))
    # worker mode (internal)
    ap.add_argument("--worker", default=None)
    ap.add_argument("--src", default=None)
    ap.add_argument("--dst", default=None)
    ap.add_argument("--size", default=None)
    ap.add_argument("--ckpt", default=None)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(_worker(args)))
        return 0

    if not KODAK.is_dir():
        print(f"skipped: {KODAK} is absent", file=sys.stderr)
        return 0
    import torch
    from PIL import Image

    from lesson7_studio.core.crappify import apply_recipe, get_recipe, prepare_hr
    from lesson7_studio.core.devices import cpu_supports_bf16
    from lesson7_studio.core.crappify import item_seed
    from lesson7_studio.core.images import load_image

    result: dict = {
        "benchmark": "bench_restore",
        "model": f"{MODEL} (random weights, torch.manual_seed(0), self_attention=True, gamma=0 at init)",
        "machine": {
            "cpu": _cpu_name(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "cpu_bf16": cpu_supports_bf16(),
            "note": "shared machine (other engineers' jobs running); load averages recorded per run",
        },
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    recipe = get_recipe("decrappify-x2")
    with tempfile.TemporaryDirectory(prefix="bench_restore_") as tmp:
        tmp = Path(tmp)
        ckpt2 = _make_checkpoint(tmp / "x2.safetensors", 2)
        ckpt1 = _make_checkpoint(tmp / "x1.safetensors", 1)  # same weights, scale option 1
        gt, lr = tmp / "gt", tmp / "lr"
        gt.mkdir()
        lr.mkdir()
        for path in sorted(KODAK.glob("*.png"))[: args.images]:
            hr, _ = prepare_hr(load_image(path), recipe.scale, None)
            hr.save(gt / path.name)
            apply_recipe(hr, recipe, item_seed(0, path.name)).image.save(lr / path.name)
        sizes = sorted({Image.open(p).size for p in lr.glob("*.png")})
        print(f"folder: {args.images} images, input sizes {sizes}", flush=True)
        if not args.big_only:
            _folder_benchmark(args, result, tmp, lr, gt, sizes, ckpt2)

        if not args.no_big:
            w, h = (int(v) for v in args.big_size.split("x"))
            big = tmp / "big"
            big.mkdir()
            src_img = Image.open(sorted(KODAK.glob("*.png"))[0]).convert("RGB")
            src_img.resize((w, h), Image.Resampling.BICUBIC).save(big / "photo24mp.png", compress_level=1)
            print(f"big photo: {w}x{h} ({w * h / 1e6:.1f} MP), scale=1", flush=True)
            ours_big = _spawn("ours-big", src=big, dst=tmp / "big-out", ckpt=ckpt1)
            out_size = Image.open(tmp / "big-out" / "photo24mp.png").size
            plain_points = []
            for pw, ph in ((512, 384), (768, 512), (1024, 768)):
                r = _spawn("plain-mem", size=f"{pw}x{ph}", ckpt=ckpt1)
                plain_points.append({"size": [pw, ph], "megapixels": pw * ph / 1e6, "peak_rss_gb": round(r["peak_rss_gb"], 3),
                                     "seconds": round(r["seconds"], 2)})
            px = np.array([p["megapixels"] for p in plain_points])
            peak = np.array([p["peak_rss_gb"] for p in plain_points])
            coef = np.polyfit(px, peak, 2)  # c, b, a
            target_mp = w * h / 1e6
            est_quad = float(np.polyval(coef, target_mp))
            lin = np.polyfit(px, peak, 1)
            est_lin = float(np.polyval(lin, target_mp))
            result["big_photo"] = {
                "size": [w, h],
                "megapixels": round(target_mp, 2),
                "output_size": list(out_size),
                "ours": {
                    "seconds": round(ours_big["seconds"], 1),
                    "cpu_seconds": round(ours_big["cpu_seconds"], 1),
                    "input_megapixels_per_s": round(ours_big["input_megapixels"] / ours_big["seconds"], 4),
                    "peak_rss_gb": round(ours_big["peak_rss_gb"], 3),
                    "rss_after_model_gb": round(ours_big["rss_after_model_gb"], 3),
                    "under_3gb": ours_big["peak_rss_gb"] < 3.0,
                    "precision_probe": ours_big.get("precision_probe"),
                    "failed": ours_big.get("failed"),
                },
                "plain_measured": plain_points,
                "plain_extrapolated_peak_rss_gb": {"quadratic_fit": round(est_quad, 1), "linear_fit": round(est_lin, 1)},
                "plain_note": "not run at 24 MP: extrapolated from the three measured sizes "
                "(a fresh process each; whole image at once, fp32)",
            }
    out = Path(args.out)
    if out.is_file():  # --no-big / --big-only: keep the other part's figures from the last run
        previous = json.loads(out.read_text())
        for part in ("folder", "big_photo"):
            if part not in result and part in previous:
                result[part] = {**previous[part], "from_run": previous[part].get("from_run", previous.get("created"))}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(f".{out.name}.part")
    tmp_out.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp_out, out)
    print(json.dumps({k: v for k, v in result.items() if k in ("folder", "big_photo")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
