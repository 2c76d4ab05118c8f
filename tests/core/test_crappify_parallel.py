"""The parallel dataset builder: this process works too, results do not depend on the workers."""

import os

import numpy as np
from PIL import Image

from lesson7_studio.core.crappify import PairJob, get_recipe, run_pair_jobs


def _jobs(tmp_path, n):
    rng = np.random.default_rng(0)
    (tmp_path / "src").mkdir()
    (tmp_path / "out").mkdir()
    recipe = get_recipe("lesson7")
    jobs = []
    for i in range(n):
        src = tmp_path / "src" / f"{i}.png"
        Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(src)
        jobs.append((i, PairJob(src=str(src), hr=str(tmp_path / "out" / f"{i}.png"),
                                lr=str(tmp_path / "out" / f"{i}.jpg"), recipe=recipe, seed=i)))
    return jobs


def test_two_workers_are_this_process_and_one_helper(tmp_path):
    jobs = _jobs(tmp_path, 12)
    results = {}
    run_pair_jobs(jobs, 2, lambda i, job, res: results.__setitem__(i, res), lambda: False, min_parallel_s=0)
    assert sorted(results) == list(range(12)) and all(r["ok"] for r in results.values())
    pids = {r["pid"] for r in results.values()}
    assert os.getpid() in pids and len(pids) == 2  # the parent is not idle while a helper works


def test_one_worker_is_the_plain_loop_and_stop_is_honoured(tmp_path):
    jobs = _jobs(tmp_path, 6)
    seen = []
    run_pair_jobs(jobs, 1, lambda i, job, res: seen.append((i, res["pid"])), lambda: len(seen) >= 3)
    assert seen == [(0, os.getpid()), (1, os.getpid()), (2, os.getpid())]
    seen.clear()
    run_pair_jobs(jobs, 3, lambda i, job, res: seen.append(i), lambda: len(seen) >= 1, min_parallel_s=0)
    assert 1 <= len(seen) <= 1 + 2 * 2  # no job starts after the stop; those in flight finish


def test_helpers_start_only_for_enough_work(tmp_path):
    jobs = _jobs(tmp_path, 8)
    pids = set()
    run_pair_jobs(jobs, 4, lambda i, job, res: pids.add(res["pid"]), lambda: False, min_parallel_s=3600)
    assert pids == {os.getpid()}  # a few small images: spawning helpers would only cost time
