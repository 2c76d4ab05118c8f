"""The lesson notebooks' figures, reproduced: accuracy and time of every lesson model.

* human-numbers: each of the six RNNs trained with the notebook's schedule (bs 64, nh 64) on
  the generated streams; validation accuracy after the last epoch and wall time. Target: the
  2-layer GRU (rnn-model5) at >= 0.80 within 5 minutes on a 2-core CPU.
* resnet-mnist on a real handwritten set available offline: scikit-learn's ``load_digits``
  (1,797 8x8 digits, upsampled to 28 px, 80/20 split per class, seed 0), the ResNet variant
  and the DenseNet variant (and the plain CNN) with the lesson's net, ``rand_pad(3, 28)``, bs 128
  and the notebook's schedules (``fit_one_cycle(12, 0.05)``; the CNN ``(10, 0.1)``). Target: the
  ResNet at >= 97 % within 3 minutes.

Baselines measured in the same run: the accuracy of always predicting the most frequent next
token (human numbers) and the most frequent class (digits). Every model runs ``--repeat``
times with different seeds, interleaved round-robin; the JSON holds every repeat, the median
accuracy and time, the notebook's figure and ``os.getloadavg()`` before and after each run.
With a 1-minute load average above the CPU count the results are marked ``"loaded": true``
and, unless ``--out`` is given, written to ``results/lessons_under_load.json``.

    python benchmarks/bench_lessons.py --repeat 3
    python benchmarks/bench_lessons.py --only rnn-model5 resnet-classifier --repeat 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGETS = {"rnn-model5": (0.80, 300.0), "resnet-classifier": (0.97, 180.0)}
DIGITS_MODELS = ("resnet-classifier", "densenet-classifier", "cnn-classifier")
THREADS = 1


def baselines(digits: Path | None) -> dict:
    from lesson7_studio.core.lessons.numbers import StreamBatches, human_numbers

    d = human_numbers()
    out = {}
    y = StreamBatches(d.valid, 64, 20).ids
    common = Counter(d.train.tolist()).most_common(1)[0][0]
    out["human-numbers most frequent token"] = float((y[1:] == common).float().mean())
    if digits is not None:
        from lesson7_studio.core.lessons.images import load_folder

        train, valid = load_folder(digits)
        top = Counter(train.y.tolist()).most_common(1)[0][0]
        out["digits most frequent class"] = float((valid.y == top).float().mean())
    return out


def run_one(arch: str, seed: int, work: Path, digits: Path | None) -> dict:
    from lesson7_studio.core.lessons import lesson_config, lesson_of_arch, train_lesson

    lesson = lesson_of_arch(arch)
    extra = {"data": str(digits)} if lesson == "resnet-mnist" else {}  # the lesson's own schedule
    cfg = lesson_config(lesson, arch, out=str(work / f"{arch}-seed{seed}"), seed=seed, device="cpu",
                        threads=THREADS, **extra)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    res = train_lesson(cfg)
    seconds = time.perf_counter() - t0
    return {"arch": arch, "lesson": lesson, "seed": seed, "epochs": cfg.epochs, "lr": cfg.lr,
            "batch_size": cfg.batch_size, "accuracy": float(res.metrics["accuracy"]),
            "valid_loss": float(res.metrics["valid_loss"]), "seconds": round(seconds, 2),
            "load_before": [round(v, 2) for v in load_before], "load_after": [round(v, 2) for v in os.getloadavg()]}


def main(argv: list[str] | None = None) -> int:
    import torch

    from lesson7_studio.core.lessons import LESSONS

    rnn_models = list(LESSONS["human-numbers"].schedules)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", nargs="*", metavar="ARCH", help="models to run (default: all)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads per run (default 1, as train_lesson)")
    ap.add_argument("--out", type=Path, help="JSON file (default results/lessons.json or lessons_under_load.json)")
    args = ap.parse_args(argv)
    global THREADS
    THREADS = args.threads
    torch.set_num_threads(args.threads)
    archs = args.only or (rnn_models + list(DIGITS_MODELS))
    with tempfile.TemporaryDirectory(prefix="bench-lessons-") as tmp:
        work = Path(tmp)
        digits = None
        if any(a in DIGITS_MODELS for a in archs):
            from lesson7_studio.core.lessons.images import write_digits_folder

            digits = write_digits_folder(work / "digits")
        base = baselines(digits)
        runs = []
        for rep in range(args.repeat):
            for arch in archs:
                r = run_one(arch, rep, work, digits)
                runs.append(r)
                print(f"{arch:<20} seed {rep}: accuracy {r['accuracy']:.4f} in {r['seconds']:.1f} s "
                      f"(load {r['load_before'][0]:.1f} -> {r['load_after'][0]:.1f})", file=sys.stderr, flush=True)
    summary = {}
    for arch in archs:
        mine = [r for r in runs if r["arch"] == arch]
        les = LESSONS[mine[0]["lesson"]]
        s = {"lesson": les.name, "repeats": len(mine),
             "median_accuracy": round(statistics.median(r["accuracy"] for r in mine), 4),
             "min_accuracy": round(min(r["accuracy"] for r in mine), 4),
             "median_seconds": round(statistics.median(r["seconds"] for r in mine), 1),
             "notebook_accuracy": les.schedules[arch].notebook_accuracy,
             "data": "generated human numbers" if les.name == "human-numbers" else "sklearn load_digits, 28 px"}
        if arch in TARGETS:
            acc, secs = TARGETS[arch]
            s["target"] = {"accuracy": acc, "seconds": secs,
                           "met": s["median_accuracy"] >= acc and s["median_seconds"] <= secs}
        summary[arch] = s
    loads = [r["load_before"][0] for r in runs] + [r["load_after"][0] for r in runs]
    ncpu = os.cpu_count() or 1
    loaded = max(loads) > ncpu
    out = {
        "benchmark": "lessons", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": ncpu, "torch_threads": args.threads, "platform": platform.platform(),
                    "python": platform.python_version(), "torch": torch.__version__},
        "loaded": loaded, "load_average_max": round(max(loads), 2), "load_average_median": round(statistics.median(loads), 2),
        "baselines": base, "summary": summary, "runs": runs,
    }
    path = args.out or HERE / "results" / ("lessons_under_load.json" if loaded else "lessons.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_suffix(".json.part")
    tmp_path.write_text(json.dumps(out, indent=2) + "\n")
    os.replace(tmp_path, path)
    print(json.dumps({"summary": summary, "baselines": base, "loaded": loaded,
                      "load_average_max": out["load_average_max"]}, indent=2))
    print(f"written: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
