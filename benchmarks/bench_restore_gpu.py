"""Restore engine on a CUDA GPU, and low-precision error on a briefly trained model.

Run on a machine with a GPU (it also runs, slowly, on a CPU with --device cpu --train-seconds 5).
Needs the images in DATA (default .gpu/restore_data with bsds/ and kodak/ PNG/JPEG files, or
../shared/data when present).

1. SSIM of core.metrics against scikit-image (when installed) on two Kodak images.
2. unet-resnet34 (self-attention on) trained for --train-seconds on decrappify-x2 pairs (128 px
   crops, L1 loss, Adam) so that the precision question is asked of a model that does something:
   PSNR of its fp16 and bf16 outputs against fp32 on whole Kodak images, the decisions of
   precision "auto" (CUDA and, where the CPU has bf16, CPU), and its Y-PSNR against bicubic.
   The same for the untrained (random) network.
3. Speed and memory on the GPU: our tiled restore against the whole image at once in fp32, on
   inputs of 1536x1024 and 3000x2000 (outputs up to 24 MP).
4. Out of memory: with the process capped to a few GB, a 2048 px tile must fail and be halved
   until it fits, with the same output.
5. Folder restore on the GPU, as the CPU benchmark (bench_restore.py) does it: --folder-images
   Kodak images crappified to 384x256 (and --folder-large of them at 1536x1024, outputs 6 MP) restored x2 by
   the plain way (one image at a time, whole, fp32, NCHW, PIL decode/encode in line) and by
   ``restore_folder`` (precision auto, file I/O overlapped with the GPU): seconds, megapixels/s,
   peak GPU memory, and the outputs' agreement.
Writes $OUT/restore_gpu.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _psnr(a, b) -> float:
    mse = float(((a.float() - b.float()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT / ".gpu" / "restore_data"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--train-seconds", type=float, default=150)
    ap.add_argument("--pairs", type=int, default=3000)
    ap.add_argument("--out", default=os.path.join(os.environ.get("OUT", str(ROOT / "benchmarks" / "results")), "restore_gpu.json"))
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--folder-images", type=int, default=24)
    ap.add_argument("--folder-large", type=int, default=8, help="images in the 1536x1024-input folder (0: none)")
    ap.add_argument("--only-folder", action="store_true", help="skip sections 1-4 (random weights)")
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F
    from PIL import Image

    from lesson7_studio.core import metrics, models, restore
    from lesson7_studio.core.devices import cpu_supports_bf16
    from lesson7_studio.core.crappify import apply_recipe, get_recipe, prepare_hr
    from lesson7_studio.core.events import Log
    from lesson7_studio.core.images import load_image

    data = Path(args.data)
    if not data.is_dir():
        data = (ROOT / ".." / "shared" / "data").resolve()
        bsds = sorted((data / "train" / "bsds500_train").glob("*.jpg"))
        kodak = sorted((data / "valid" / "kodak24").glob("*.png"))
    else:
        bsds = sorted((data / "bsds").glob("*.jpg"))
        kodak = sorted((data / "kodak").glob("*.png"))
    dev = torch.device(args.device)
    res: dict = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu", "torch": torch.__version__,
                 "cpu_bf16": cpu_supports_bf16(), "train_seconds": args.train_seconds}
    t_start = time.time()
    recipe = get_recipe("decrappify-x2")

    def log(*a):
        print(f"[{time.time() - t_start:6.1f}s]", *a, flush=True)

    def save() -> None:  # after every section, so a run cut short still reports
        res["seconds_total"] = round(time.time() - t_start, 1)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=2, default=str) + "\n")

    # 1. SSIM against scikit-image
    try:
        from skimage.metrics import structural_similarity

        rows = []
        for p in kodak[:2]:
            hr = np.asarray(Image.open(p).convert("RGB"), dtype=np.float64) / 255
            rng = np.random.default_rng(0)
            noisy = np.clip(hr + rng.normal(0, 0.05, hr.shape), 0, 1)
            ours = metrics.ssim(noisy, hr)
            ref = structural_similarity(noisy, hr, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False, data_range=1.0)
            ours_y = metrics.ssim(noisy, hr, y_channel=True, crop=2)
            ref_y = structural_similarity(metrics.rgb_to_y(noisy)[2:-2, 2:-2], metrics.rgb_to_y(hr)[2:-2, 2:-2],
                                          gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
            rows.append({"file": p.name, "ours_rgb": ours, "skimage_rgb": ref, "ours_y": ours_y, "skimage_y": ref_y})
        res["ssim_vs_skimage"] = {"rows": rows, "max_abs_diff": max(max(abs(r["ours_rgb"] - r["skimage_rgb"]), abs(r["ours_y"] - r["skimage_y"])) for r in rows)}
        log("ssim vs skimage", res["ssim_vs_skimage"]["max_abs_diff"])
    except ImportError:
        res["ssim_vs_skimage"] = "scikit-image not installed"
    log("start", res)

    # test images: Kodak, crappified
    gts, lrs = [], []
    for p in kodak[: args.images]:
        hr, _ = prepare_hr(load_image(p), 2, None)
        gts.append(np.asarray(hr))
        lrs.append(np.asarray(apply_recipe(hr, recipe, 0).image))

    def to_t(a):
        return torch.from_numpy(np.array(a)).permute(2, 0, 1)[None].float().div(255)

    def precision_report(model, name):
        model = model.to(dev).eval()
        out = {}
        dtypes = (("fp16", torch.float16), ("bf16", torch.bfloat16)) if dev.type == "cuda" else (("bf16", torch.bfloat16),)
        for dt_name, dt in dtypes:
            vals = []
            for lr in lrs:
                x = to_t(lr).to(dev)
                with torch.inference_mode():
                    ref = model(x)
                    with torch.autocast(dev.type, dtype=dt):
                        low = model(x).float()
                vals.append(_psnr(ref, low))
            out[f"psnr_{dt_name}_vs_fp32_{dev.type}"] = [round(v, 2) for v in vals]
        # what precision "auto" decides (its probe), on this device and on the CPU
        restore.facts.MODEL_CACHE.pop(model, None)
        restore.restore_array(model, lrs[0], precision="auto", device=dev)
        out["auto_decision_" + dev.type] = {str(k): v for k, v in restore.facts.model_cache(model).items() if isinstance(k, tuple) and k[0] == "precision"}
        if dev.type == "cuda" and cpu_supports_bf16():
            cpu_model = model.to("cpu")
            x = to_t(lrs[0][:128, :192])
            with torch.inference_mode():
                ref = cpu_model(x)
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    low = cpu_model(x).float()
            out["psnr_bf16_vs_fp32_cpu_crop"] = round(_psnr(ref, low), 2)
            restore.restore_array(cpu_model, lrs[0][:128, :192], precision="auto", device="cpu")
            out["auto_decision_cpu"] = {str(k): v for k, v in restore.facts.model_cache(cpu_model).items() if isinstance(k, tuple) and k[0] == "precision" and "cpu" in k[1]}
            model.to(dev)
        # quality against bicubic (fp32)
        ys, bic = [], []
        for lr, gt in zip(lrs, gts):
            o = restore.restore_array(model, lr, precision="fp32", device=dev)
            ys.append(metrics.psnr(o / 255.0, gt / 255.0, y_channel=True, crop=2))
            b = np.asarray(Image.fromarray(lr).resize((gt.shape[1], gt.shape[0]), Image.Resampling.BICUBIC))
            bic.append(metrics.psnr(b / 255.0, gt / 255.0, y_channel=True, crop=2))
        out["psnr_y_model"] = round(float(np.mean(ys)), 3)
        out["psnr_y_bicubic"] = round(float(np.mean(bic)), 3)
        log(name, json.dumps(out))
        return out

    torch.manual_seed(0)
    model = models.restorer("unet-resnet34", pretrained=False, self_attention=True)
    if args.only_folder:
        res["folder"] = folder_benchmark(model.to(dev).eval(), kodak[: args.folder_images], dev, recipe, log, args.folder_large)
        save()
        log("wrote", args.out)
        return 0
    res["random"] = precision_report(model, "random")
    save()

    # 2. brief training
    rng = np.random.default_rng(0)
    imgs = [np.asarray(Image.open(p).convert("RGB")) for p in bsds]
    hr_c, lr_c = [], []
    for i in range(args.pairs):
        im = imgs[rng.integers(len(imgs))]
        y, x = rng.integers(0, im.shape[0] - 128), rng.integers(0, im.shape[1] - 128)
        crop = Image.fromarray(im[y : y + 128, x : x + 128])
        hr_c.append(np.asarray(crop))
        lr_c.append(np.asarray(apply_recipe(crop, recipe, i).image))
    hr_t = torch.from_numpy(np.stack(hr_c)).permute(0, 3, 1, 2).contiguous()
    lr_t = torch.from_numpy(np.stack(lr_c)).permute(0, 3, 1, 2).contiguous()
    log("pairs", tuple(hr_t.shape), tuple(lr_t.shape))
    model = model.to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps, losses = 0, []
    t0 = time.time()
    bs = 32
    while time.time() - t0 < args.train_seconds:
        idx = torch.randint(0, len(hr_t), (bs,))
        hr_b = hr_t[idx].to(dev).float().div(255)
        lr_b = lr_t[idx].to(dev).float().div(255)
        if steps % 2:
            hr_b, lr_b = hr_b.flip(-1), lr_b.flip(-1)
        frac = min(1.0, (time.time() - t0) / args.train_seconds)
        for g in opt.param_groups:
            g["lr"] = 1e-3 * 0.5 * (1 + math.cos(math.pi * frac))
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            loss = F.l1_loss(model(lr_b).float(), hr_b)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        steps += 1
    res["training"] = {"steps": steps, "batch": bs, "crop": 128, "loss_first": float(np.mean(losses[:20])),
                       "loss_last": float(np.mean(losses[-20:]))}
    log("trained", res["training"])
    model.eval()
    res["trained"] = precision_report(model, "trained")
    save()

    # 3. speed and memory on the GPU
    if dev.type == "cuda" and not args.skip_speed:
        speed = []
        base = Image.fromarray(gts[0])
        for w, h in ((1536, 1024), (3000, 2000)):
            lr = np.asarray(base.resize((w, h), Image.Resampling.BICUBIC))
            row = {"input": [w, h], "output_megapixels": 4 * w * h / 1e6}
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            t = time.perf_counter()
            out = restore.restore_array(model, lr, device=dev)  # precision auto
            torch.cuda.synchronize()
            row["ours_seconds"] = round(time.perf_counter() - t, 3)
            row["ours_peak_gpu_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 2)
            t = time.perf_counter()
            restore.restore_array(model, lr, device=dev)  # warm
            torch.cuda.synchronize()
            row["ours_seconds_warm"] = round(time.perf_counter() - t, 3)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            try:
                x = to_t(lr).to(dev)
                with torch.no_grad():
                    model(x[..., :64, :64])
                    torch.cuda.synchronize()
                    t = time.perf_counter()
                    y = model(x)[0].clamp(0, 1)
                    plain = (y.permute(1, 2, 0).float().cpu().numpy() * 255 + 0.5).astype(np.uint8)
                torch.cuda.synchronize()
                row["plain_seconds"] = round(time.perf_counter() - t, 3)
                row["plain_peak_gpu_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 2)
                row["psnr_ours_vs_plain"] = round(metrics.psnr(out / 255.0, plain / 255.0), 2)
                del x, y
            except torch.OutOfMemoryError as err:
                row["plain"] = f"out of memory: {str(err)[:120]}"
            row["ours_vs_plain_speedup_warm"] = round(row.get("plain_seconds", float("nan")) / row["ours_seconds_warm"], 2)
            speed.append(row)
            log("speed", row)
            torch.cuda.empty_cache()
            res["gpu_speed"] = speed
            save()

        # 4. out of memory -> halve the tile
        lr = np.asarray(base.resize((1024, 768), Image.Resampling.BICUBIC))
        ref = restore.restore_array(model, lr, device=dev, precision="fp32", tile=256)
        torch.cuda.empty_cache()
        free, total = torch.cuda.mem_get_info(dev)
        cap_gb = 4.0
        torch.cuda.set_per_process_memory_fraction(cap_gb * 1e9 / total, torch.cuda.current_device())
        events = []
        try:
            got = restore.restore_array(model, lr, device=dev, precision="fp32", tile=2048, on_event=events.append)
            res["oom_halving"] = {
                "cap_gb": cap_gb,
                "messages": [e.message for e in events if isinstance(e, Log)],
                "max_abs_diff_vs_256_tiles": float(np.abs(got.astype(int) - ref.astype(int)).max()),
                "mean_abs_diff_vs_256_tiles": float(np.abs(got.astype(float) - ref.astype(float)).mean()),
            }
        except Exception as err:  # recorded, not hidden
            res["oom_halving"] = {"error": f"{type(err).__name__}: {err}"[:500], "messages": [getattr(e, "message", "") for e in events]}
        finally:
            torch.cuda.set_per_process_memory_fraction(1.0, torch.cuda.current_device())
        log("oom", res["oom_halving"])
        save()

    # 5. folder restore, ours against the plain way
    if args.folder_images:
        res["folder"] = folder_benchmark(model, kodak[: args.folder_images], dev, recipe, log, args.folder_large)
    save()
    log("wrote", args.out)
    return 0


def folder_benchmark(model, kodak, dev, recipe, log, n_large: int) -> dict:
    """Section 5: a folder of Kodak images restored the plain way and by restore_folder."""
    import copy
    import shutil
    import tempfile

    import torch
    from PIL import Image

    from lesson7_studio.core import metrics, restore
    from lesson7_studio.core.crappify import apply_recipe, prepare_hr
    from lesson7_studio.core.images import load_image

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    def reset_peak():
        if dev.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(dev)

    def peak_gb():
        return round(torch.cuda.max_memory_allocated(dev) / 1e9, 2) if dev.type == "cuda" else None

    plain_model = copy.deepcopy(model).to(dev).to(memory_format=torch.contiguous_format).eval()
    model = model.to(dev).eval()
    tmp = Path(tempfile.mkdtemp(prefix="bench_gpu_folder_"))
    out: dict = {"images": len(kodak)}
    try:
        for label, factor, n in (("small", 1, len(kodak)), ("large", 4, n_large)):
            if n == 0:
                continue
            src, gt_dir = tmp / f"src_{label}", tmp / f"gt_{label}"
            src.mkdir()
            gt_dir.mkdir()
            for p in kodak[:n]:
                hr, _ = prepare_hr(load_image(p), 2, None)
                if factor > 1:
                    hr = hr.resize((hr.width * factor, hr.height * factor), Image.Resampling.BICUBIC)
                hr.save(gt_dir / f"{p.stem}.png")
                apply_recipe(hr, recipe, 0).image.save(src / f"{p.stem}.png")
            files = sorted(src.glob("*.png"))
            lr_size = Image.open(files[0]).size
            row: dict = {"input": list(lr_size), "output": [2 * lr_size[0], 2 * lr_size[1]]}
            out_mp = sum(4 * Image.open(f).size[0] * Image.open(f).size[1] for f in files) / 1e6

            # the plain way (warm-up on a small crop first: CUDA context, cuDNN)
            with torch.no_grad():
                plain_model(torch.rand(1, 3, 64, 64, device=dev))
            sync()
            reset_peak()
            plain_dir = tmp / f"plain_{label}"
            plain_dir.mkdir()
            t = time.perf_counter()
            for f in files:
                a = np.array(Image.open(f).convert("RGB"))
                x = torch.from_numpy(a).permute(2, 0, 1)[None].float().div(255).to(dev)
                with torch.no_grad():
                    y = plain_model(x)[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy()
                Image.fromarray((y * 255.0 + 0.5).astype(np.uint8)).save(plain_dir / f.name)
            sync()
            row["plain_seconds"] = round(time.perf_counter() - t, 3)
            row["plain_peak_gpu_gb"] = peak_gb()

            reset_peak()
            ours_dir = tmp / f"ours_{label}"
            t = time.perf_counter()
            summary = restore.restore_folder(model, src, ours_dir, device=dev)
            sync()
            row["ours_seconds"] = round(time.perf_counter() - t, 3)
            row["ours_peak_gpu_gb"] = peak_gb()
            row["ours_failed"] = [str(x) for x in summary.failed]
            row["ours_precision"] = {str(k): v for k, v in restore.facts.model_cache(model).items() if isinstance(k, tuple) and k[0] == "precision"}
            row["plain_mp_per_s"] = round(out_mp / row["plain_seconds"], 2)
            row["ours_mp_per_s"] = round(out_mp / row["ours_seconds"], 2)
            row["speedup_ours_vs_plain"] = round(row["plain_seconds"] / row["ours_seconds"], 2)
            agree, y_plain, y_ours = [], [], []
            for f in files:
                a = np.asarray(Image.open(plain_dir / f.name)) / 255.0
                b = np.asarray(Image.open(ours_dir / f.name)) / 255.0
                g = np.asarray(Image.open(gt_dir / f.name)) / 255.0
                agree.append(metrics.psnr(b, a))
                y_plain.append(metrics.psnr(a, g, y_channel=True, crop=2))
                y_ours.append(metrics.psnr(b, g, y_channel=True, crop=2))
            row["psnr_ours_vs_plain_output"] = round(float(np.mean(agree)), 2)
            row["psnr_y_vs_original"] = {"plain": round(float(np.mean(y_plain)), 3), "ours": round(float(np.mean(y_ours)), 3)}
            row["psnr_y_difference"] = round(abs(row["psnr_y_vs_original"]["plain"] - row["psnr_y_vs_original"]["ours"]), 4)
            log("folder", label, json.dumps(row))
            out[label] = row
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


if __name__ == "__main__":
    sys.exit(main())
