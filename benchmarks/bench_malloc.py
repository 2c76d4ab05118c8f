"""Page faults and time of a repeated CPU forward pass with and without the malloc setting.

``core.devices.keep_freed_memory`` asks glibc to keep freed memory for reuse: without it every
allocation over 32 MB is a fresh ``mmap``, so each forward pass of a restoration net faults its
activations in again. This measures what that saves: a small conv net (3 -> 16 -> 16 -> 3,
64 MB activations at 1024x1024) runs one warm-up pass and then ``--passes`` passes in a fresh
process per mode ("default" = LESSON7_MALLOC_TUNING=0, the baseline; "tuned" = the setting on),
the modes alternating, ``--repeats`` processes each; the figures are the medians over repeats
of the per-pass minor faults and seconds. The load average is recorded before and after (the
seconds mean little on a busy machine; the fault counts do not depend on load).

Expected (this project's 2-core machine): ~150,000 faults a pass by default, almost none tuned
(at most one 64 MB activation, 16,384 pages, where the heap is fragmented).

    python benchmarks/bench_malloc.py [--size 1024] [--passes 5] [--repeats 5] [--out benchmarks/results/malloc.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results" / "malloc.json"

# The child: `python -c CHILD SIZE PASSES`; prints one JSON line.
CHILD = r"""
import json, resource, sys, time
import torch
from torch import nn
from lesson7_studio.core import devices
size, passes = int(sys.argv[1]), int(sys.argv[2])
active = devices.keep_freed_memory()
torch.set_num_threads(1)
net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1),
                    nn.ReLU(), nn.Conv2d(16, 3, 3, padding=1)).eval()
x = torch.rand(1, 3, size, size)

def one_pass():
    f0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
    with torch.inference_mode():
        net(x)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0, time.perf_counter() - t0

one_pass()  # warm-up: the first pass faults everything in either way
runs = [one_pass() for _ in range(passes)]
print(json.dumps({"active": active, "faults": [f for f, _ in runs], "seconds": [s for _, s in runs]}))
"""


def load_avg() -> list[float] | None:
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


def run_child(tuning: str, size: int, passes: int) -> dict:
    env = {**os.environ, "LESSON7_MALLOC_TUNING": tuning}
    res = subprocess.run([sys.executable, "-c", CHILD, str(size), str(passes)], capture_output=True,
                         text=True, env=env, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def summary(runs: list[dict]) -> dict:
    """Medians over the repeats of each process's median pass."""
    faults = [statistics.median(r["faults"]) for r in runs]
    seconds = [statistics.median(r["seconds"]) for r in runs]
    return {
        "setting_active": [r["active"] for r in runs],
        "faults_per_pass_median": statistics.median(faults),
        "faults_per_pass_min": min(faults), "faults_per_pass_max": max(faults),
        "seconds_per_pass_median": round(statistics.median(seconds), 4),
        "seconds_per_pass_min": round(min(seconds), 4),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1024, help="input side in pixels (1024: 64 MB activations)")
    ap.add_argument("--passes", type=int, default=5, help="measured passes per process")
    ap.add_argument("--repeats", type=int, default=5, help="processes per mode; the median is reported")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if not sys.platform.startswith("linux"):
        print("glibc malloc only (Linux)", file=sys.stderr)
        return 2
    result: dict = {
        "benchmark": "malloc",
        "what": "minor page faults and seconds per CPU forward pass of a 3-16-16-3 conv net, after a "
                "warm-up pass; 'default' = glibc as is (LESSON7_MALLOC_TUNING=0, the baseline), "
                "'tuned' = core.devices.keep_freed_memory(); medians over fresh processes",
        "size": args.size, "passes": args.passes, "repeats": args.repeats,
        "activation_mb": round(16 * args.size * args.size * 4 / 2**20, 1),
        "loadavg_before": load_avg(), "cpu_count": os.cpu_count(),
        "python": platform.python_version(), "machine": platform.machine(),
    }
    runs: dict[str, list[dict]] = {"default": [], "tuned": []}
    for _ in range(args.repeats):  # alternating, so load spikes hit both modes alike
        runs["default"].append(run_child("0", args.size, args.passes))
        runs["tuned"].append(run_child("1", args.size, args.passes))
    result["loadavg_after"] = load_avg()
    result["default"] = summary(runs["default"])
    result["tuned"] = summary(runs["tuned"])
    base = result["default"]["faults_per_pass_median"]
    result["faults_saved_fraction"] = round(1 - result["tuned"]["faults_per_pass_median"] / base, 4) if base else None
    result["runs"] = runs
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.out)
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
