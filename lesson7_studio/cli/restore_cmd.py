"""``lesson7-studio restore``, ``eval`` and ``export``: apply, measure and export a model."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._common import int_range, non_negative_int, positive_int
from .progress import ProgressBars, showing


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "restore",
        help="restore a photo or a folder of photos with a model",
        description="Restore SRC (an image file or a folder) into the folder DST, keeping the folder "
        "tree, metadata (EXIF, ICC), alpha and bit depth. SRC is never modified. Files that cannot "
        "be read are listed and skipped; the exit status is 0 when every readable image was restored. "
        "Ctrl-C stops after the current tile and leaves no partial file; rerun with --skip-existing to "
        "resume. Under torchrun each rank restores its share of the files.",
    )
    p.add_argument("src", metavar="SRC", help="image file or folder of images")
    p.add_argument("dst", metavar="DST", help="output folder")
    p.add_argument("--model", default="starter", metavar="PATH|NAME",
                   help="model file (.safetensors, .onnx, or community .pth/.pt via spandrel) or 'starter' "
                   "(the bundled model; default)")
    p.add_argument("--recursive", action=argparse.BooleanOptionalAction, default=True,
                   help="include subfolders (default: yes)")
    p.add_argument("--flat", action="store_true", help="write every output directly in DST (no folder tree)")
    p.add_argument("--skip-existing", action="store_true", help="skip images whose output exists (resume a run)")
    p.add_argument("--format", default="keep", choices=("keep", "png", "jpg", "webp", "tiff"),
                   help="output format (default: keep each file's format)")
    p.add_argument("--quality", type=int_range(1, 100), default=95, metavar="Q",
                   help="JPEG/WebP quality, 1..100 (default: 95; 100 is lossless WebP)")
    p.add_argument("--tile", type=positive_int, default=None, metavar="PX",
                   help="tile size in input pixels (default: chosen from the free memory)")
    p.add_argument("--device", default="auto", metavar="D", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                   help="auto (default): bf16 on CPU or fp16 on CUDA where that output is within 45 dB PSNR of fp32, "
                   "checked once per model file and device (the verdict is cached) and not for images too small "
                   "for the check to pay (fp32 then); .onnx models always run in float32 (a note says so)")
    p.add_argument("--ensemble", action="store_true",
                   help="x8 self-ensemble: average the outputs for the 8 flips/quarter turns of each tile (8 passes, "
                   "about 8x the time); measured on the starter model: +0.017 dB on average on Kodak24 (from -0.22 "
                   "to +0.40 dB per image), 8.5x the time (benchmarks/bench_ensemble.py)")
    p.add_argument("--in-place", action="store_true",
                   help="allow DST to be SRC itself (outputs with the same name replace the originals)")
    p.set_defaults(func=run_restore)

    e = subparsers.add_parser(
        "eval",
        help="measure a model against bicubic upsampling on ground-truth images",
        description="Degrade every image of DATA with a crappify recipe (seeded), restore it with "
        "MODEL, and report Y-PSNR, RGB-PSNR and SSIM (Y) of the model and of bicubic upsampling "
        "against the originals, per image and mean (published tables' convention: BT.601 luma, "
        "scale pixels cropped from each border).",
    )
    e.add_argument("model", metavar="MODEL", help="model file or 'starter'")
    e.add_argument("data", metavar="DATA", help="folder of ground-truth images")
    e.add_argument("--recipe", default="decrappify-x2", metavar="NAME|FILE.json",
                   help="crappify recipe (default: decrappify-x2)")
    e.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default: 0)")
    e.add_argument("--baseline", action="append", default=None, choices=("bicubic", "lanczos", "bilinear", "nearest"),
                   help="baseline upsampling, repeatable (default: bicubic)")
    e.add_argument("--max-images", type=positive_int, default=None, metavar="N", help="use the first N images only")
    e.add_argument("--tile", type=positive_int, default=None, metavar="PX", help="tile size in input pixels")
    e.add_argument("--device", default="auto", metavar="D", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    e.add_argument("--precision", default="fp32", choices=("auto", "fp32", "bf16", "fp16"),
                   help="inference precision (default: fp32, for reference figures)")
    e.add_argument("--ensemble", action="store_true", help="x8 self-ensemble (flips and quarter turns averaged)")
    e.add_argument("--json", action="store_true", help="print the full result as JSON on stdout")
    e.add_argument("--out", metavar="FILE.json", help="also write the JSON result to this file")
    e.set_defaults(func=run_eval)

    x = subparsers.add_parser(
        "export",
        help="export a model to ONNX",
        description="Write MODEL (a .safetensors checkpoint or 'starter') as an ONNX file with dynamic "
        "height and width. The file takes RGB in [0,1] (NCHW float32) and returns the restored image in "
        "[0,1]; it is checked against PyTorch with onnxruntime before it is kept.",
    )
    x.add_argument("model", metavar="MODEL", help="checkpoint (.safetensors) or 'starter'")
    x.add_argument("out", metavar="OUT.onnx", help="ONNX file to write")
    x.add_argument("--opset", type=positive_int, default=17, help="ONNX opset (default: 17)")
    x.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison")
    x.set_defaults(func=run_export)



STOPPING = "cancelling: stopping after the current tile ..."


def _describe(model: Any) -> str:
    info = getattr(model, "info", None)
    return f"{getattr(info, 'name', type(model).__name__)} x{getattr(info, 'scale', '?')}"


def run_restore(args: argparse.Namespace) -> int:
    from lesson7_studio.core.events import CancelToken
    from lesson7_studio.core.files import check_output_folder
    from lesson7_studio.core.restore import load_any_model, restore_folder

    check_output_folder(args.dst, create=False)  # before the model loads or anything is restored
    model = load_any_model(args.model, device=args.device)
    cancel = CancelToken()
    bars = ProgressBars(f"restore ({_describe(model)})", "img", "restore")
    with showing(bars, cancel, STOPPING):
        summary = restore_folder(
            model,
            args.src,
            args.dst,
            recursive=args.recursive,
            keep_tree=not args.flat,
            skip_existing=args.skip_existing,
            out_format=args.format,
            tile=args.tile,
            device=None,  # the model is already on args.device
            precision=args.precision,
            ensemble=args.ensemble,
            allow_in_place=args.in_place,
            quality=args.quality,
            on_event=bars,
            cancel=cancel,
        )

    rate = f", {summary.speed_text}" if summary.speed_text else ""
    share = f" (rank {summary.rank} of {summary.world_size})" if summary.world_size > 1 else ""
    print(
        f"{summary.done} restored, {summary.skipped} skipped (already there), {len(summary.failed)} failed"
        f"{share} -> {summary.dst} ({summary.seconds:.1f} s, {summary.megapixels:.1f} MP{rate})"
    )
    if summary.first_frame_only:
        print(f"Note: {len(summary.first_frame_only)} file(s) have several frames (animation, pages); "
              "only the first frame of each was restored:")
        for path, frames in summary.first_frame_only:
            print(f"  {path}: {frames} frames")
    if summary.failed:
        print(f"Failed files ({len(summary.failed)}):")
        for path, reason in summary.failed:
            print(f"  {path}: {reason}")
    if not summary.ok:
        n = len(summary.failed) - summary.unreadable
        print(f"error: {n} readable image(s) could not be restored", file=sys.stderr)
        return 1
    return 0


def _table(result: dict[str, Any]) -> str:
    names = ["model"] + [k for k in result["mean"] if k != "model"]
    cols = [("psnr_y", "Y-PSNR"), ("psnr_rgb", "RGB-PSNR"), ("ssim_y", "SSIM")]
    width = max([len("mean")] + [len(r["file"]) for r in result["images"]])
    head = f"{'image':<{width}}  " + "  ".join(f"{n[:14]:>{8 * len(cols) + 2 * (len(cols) - 1)}}" for n in names)
    sub = f"{'':<{width}}  " + "  ".join("  ".join(f"{label:>8}" for _k, label in cols) for _ in names)

    def line(label: str, row: dict[str, Any]) -> str:
        cells = []
        for n in names:
            m = row[n]
            cells.append("  ".join(f"{m[k]:8.4f}" if k == "ssim_y" else f"{m[k]:8.2f}" for k, _ in cols))
        return f"{label:<{width}}  " + "  ".join(cells)

    out = [head, sub]
    out += [line(r["file"], r) for r in result["images"]]
    out.append("-" * len(sub))
    out.append(line("mean", result["mean"]))
    gains = ", ".join(f"{v:+.2f} dB over {k}" for k, v in result["gain_psnr_y"].items())
    out.append(
        f"{result['model']} on {result['count']} images, recipe {result['recipe']} seed {result['seed']}, "
        f"border {result['border']} px: Y-PSNR {gains}"
    )
    return "\n".join(out)


def run_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lesson7_studio.core.events import CancelToken
    from lesson7_studio.core.files import check_output_folder
    from lesson7_studio.core.restore import evaluate, load_any_model

    if args.out:
        check_output_folder(Path(args.out).parent, create=False, what="folder of --out")
    model = load_any_model(args.model, device=args.device)
    cancel = CancelToken()
    bars = ProgressBars(f"eval ({_describe(model)})", "img", "eval", failed="skipped")
    with showing(bars, cancel, STOPPING):
        result = evaluate(
            model,
            args.data,
            args.recipe,
            seed=args.seed,
            baselines=tuple(args.baseline or ("bicubic",)),
            tile=args.tile,
            precision=args.precision,
            ensemble=args.ensemble,
            max_images=args.max_images,
            on_event=bars,
            cancel=cancel,
        )
    result["model_file"] = str(args.model)
    text = json.dumps(result, indent=2)
    if args.out:
        from lesson7_studio.core.images import atomic_write

        with atomic_write(args.out) as tmp:
            tmp.write_text(text + "\n", encoding="utf-8")
    if args.json:
        print(text)
    else:
        print(_table(result))
        for s in result["skipped"]:
            print(f"skipped {s['path']}: {s['reason']}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from lesson7_studio.core.export import export_onnx
    from lesson7_studio.core.restore import starter_model_path

    src = starter_model_path() if args.model == "starter" else args.model
    if args.model == "starter" and not starter_model_path().is_file():
        from lesson7_studio.core.errors import CheckpointError

        raise CheckpointError(f"The bundled starter model is missing ({starter_model_path()}).")
    out = export_onnx(src, args.out, opset=args.opset, check=not args.no_check)
    print(f"wrote {out}" + ("" if args.no_check else " (checked against PyTorch with onnxruntime)"))
    return 0
