"""Running many pair jobs: this process plus spawned helpers, started only when worth it."""

from __future__ import annotations

import signal
import time
from collections import deque
from typing import Any, Callable, Sequence

from ..errors import DatasetError
from .pairs import make_pair

MIN_PARALLEL_WORK_S = 2.0  # helper processes start only for at least this much work left (one process)


def init_worker() -> None:
    """Builder worker processes leave Ctrl-C to the parent, which cancels cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_pair_jobs(
    jobs: Sequence[tuple[Any, ...]],
    workers: int,
    on_result: Callable[..., None],
    should_stop: Callable[[], bool],
    *,
    min_parallel_s: float = MIN_PARALLEL_WORK_S,
) -> None:
    """Build every ``(key..., job)`` of ``jobs`` with up to ``workers`` processes in all: this one
    plus ``workers - 1`` spawned helpers; ``on_result(*item, result)`` runs here, once per job.

    This process always works through the queue itself, timing its jobs; helpers are spawned only
    once the work left (jobs left x the mean time of a job here) is at least ``min_parallel_s``
    seconds, because a spawned interpreter costs a good fraction of a second to start. Each helper
    is fed two jobs at a time while this process keeps working. So more workers never make a small
    build slower than the plain loop (a pool with an idle parent was 0.56x, bench_crappify.py),
    and a large one gets every process. ``should_stop()`` is asked before each job starts (it may
    block while paused); once it is true no new job starts and those in flight finish.
    """
    runner = _Runner(jobs, workers, on_result, min_parallel_s)
    try:
        runner.run(should_stop)
    except Exception as err:
        from concurrent.futures.process import BrokenProcessPool

        if isinstance(err, BrokenProcessPool):
            raise DatasetError(
                "A crappify worker process died (out of memory?). What was built is kept; "
                "rerun to continue, perhaps with fewer workers."
            ) from err
        raise
    finally:
        if runner.pool is not None:
            runner.pool.shutdown(wait=True, cancel_futures=True)


class _Runner:
    """The queue, the helper pool (once started) and the jobs in flight in it."""

    def __init__(self, jobs: Sequence[tuple[Any, ...]], workers: int, on_result: Callable[..., None],
                 min_parallel_s: float) -> None:
        self.queue = deque(jobs)
        self.helpers = max(0, int(workers) - 1) if len(self.queue) > 1 else 0
        self.on_result = on_result
        self.min_parallel_s = min_parallel_s
        self.pool: Any = None
        self.inflight: dict[Any, tuple[Any, ...]] = {}
        self.spent, self.done_here = 0.0, 0

    def run(self, should_stop: Callable[[], bool]) -> None:
        stopping = False
        while self.queue or self.inflight:
            stopping = stopping or should_stop()
            if stopping:
                self.queue.clear()
            if self._worth_a_pool():
                self.pool = _helper_pool(self.helpers)
            self._feed_helpers()
            for fut in [f for f in self.inflight if f.done()]:
                self.on_result(*self.inflight.pop(fut), fut.result())
            if self.queue:
                self._work_one()
            elif self.inflight:
                self._wait_for_helpers()

    def _worth_a_pool(self) -> bool:
        if self.pool is not None or not self.helpers or not self.queue:
            return False
        if self.min_parallel_s <= 0:
            return True
        return bool(self.done_here) and len(self.queue) * self.spent / self.done_here >= self.min_parallel_s

    def _feed_helpers(self) -> None:
        while self.pool is not None and self.queue and len(self.inflight) < 2 * self.helpers:
            item = self.queue.popleft()
            self.inflight[self.pool.submit(make_pair, item[-1])] = item

    def _work_one(self) -> None:
        """This process works too (from the back once helpers take the front)."""
        item = self.queue.pop() if self.pool is not None else self.queue.popleft()
        t = time.perf_counter()
        res = make_pair(item[-1])
        self.spent += time.perf_counter() - t
        self.done_here += 1
        self.on_result(*item, res)

    def _wait_for_helpers(self) -> None:
        from concurrent.futures import FIRST_COMPLETED, wait

        finished, _ = wait(list(self.inflight), timeout=0.5, return_when=FIRST_COMPLETED)
        for fut in finished:
            self.on_result(*self.inflight.pop(fut), fut.result())


def _helper_pool(n: int) -> Any:
    """``n`` spawn-context worker processes (safe next to GUI threads, the same on every OS)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn"),
                               initializer=init_worker)
