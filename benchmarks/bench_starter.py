"""Quality of the starter model against bicubic and FSRCNN x2 on the validation sets.

    python benchmarks/bench_starter.py [--model starter] [--sets kodak24 live1] [--seed 0] [--ensemble]

Every ground-truth image of ../shared/data/valid/<set> is crappified with the decrappify-x2
recipe (seeded per file, exactly as `lesson7-studio eval` does), then upsampled by the model, by
bicubic interpolation and by FSRCNN x2 (../shared/baselines/FSRCNN_x2.pb through OpenCV's
dnn_superres; `pip install "lesson7-studio[bench]"`). Y-PSNR / RGB-PSNR / SSIM(Y) with a 2 px
border crop. ``--ensemble`` also scores the model's x8 self-ensemble (flips and quarter turns
averaged; `lesson7-studio eval --ensemble`). Writes benchmarks/results/starter.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def fsrcnn_baseline(pb: Path):
    import cv2

    sr = cv2.dnn_superres.DnnSuperResImpl_create()
    sr.readModel(str(pb))
    sr.setModel("fsrcnn", 2)

    def run(lr: Image.Image, size: tuple[int, int]) -> Image.Image:
        bgr = np.ascontiguousarray(np.asarray(lr.convert("RGB"))[:, :, ::-1])
        out = sr.upsample(bgr)[:, :, ::-1]
        img = Image.fromarray(np.ascontiguousarray(out))
        return img if img.size == size else img.resize(size, Image.BICUBIC)

    return run


def main() -> int:
    from lesson7_studio.core.restore import evaluate, load_any_model

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="starter")
    ap.add_argument("--sets", nargs="+", default=["kodak24", "live1"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ensemble", action="store_true", help="also score the x8 self-ensemble")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "starter.json"))
    a = ap.parse_args()
    pb = SHARED / "baselines" / "FSRCNN_x2.pb"
    if not pb.exists():
        raise SystemExit(f"skip: {pb} is absent")
    model = load_any_model(a.model, device="cpu")
    results = {"model": a.model, "recipe": "decrappify-x2", "seed": a.seed, "sets": {}}
    for name in a.sets:
        folder = SHARED / "data" / "valid" / name
        if not folder.is_dir():
            print(f"skip {name}: {folder} is absent")
            continue
        t0 = time.perf_counter()
        r = evaluate(model, folder, "decrappify-x2", seed=a.seed,
                     baselines=("bicubic", ("fsrcnn-x2", fsrcnn_baseline(pb))))
        results["sets"][name] = {"count": r["count"], "mean": r["mean"], "gain_psnr_y": r["gain_psnr_y"],
                                 "seconds": round(time.perf_counter() - t0, 1)}
        m = r["mean"]
        print(f"{name} ({r['count']} images)")
        for k in ("model", "bicubic", "fsrcnn-x2"):
            print(f"  {k:10s} Y-PSNR {m[k]['psnr_y']:.2f}  RGB-PSNR {m[k]['psnr_rgb']:.2f}  SSIM {m[k]['ssim_y']:.4f}")
        print(f"  model gain over bicubic {r['gain_psnr_y']['bicubic']:+.2f} dB, "
              f"over FSRCNN {r['gain_psnr_y']['fsrcnn-x2']:+.2f} dB")
        if a.ensemble:
            t0 = time.perf_counter()
            e = evaluate(model, folder, "decrappify-x2", seed=a.seed, baselines=(), ensemble=True)["mean"]["model"]
            gain = e["psnr_y"] - m["bicubic"]["psnr_y"]
            results["sets"][name]["ensemble"] = {"mean": e, "gain_psnr_y_over_bicubic": gain,
                                                 "seconds": round(time.perf_counter() - t0, 1)}
            print(f"  model x8    Y-PSNR {e['psnr_y']:.2f}  RGB-PSNR {e['psnr_rgb']:.2f}  SSIM {e['ssim_y']:.4f}"
                  f"  ({gain:+.2f} dB over bicubic)")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(results, indent=2))
    print(f"-> {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
