"""Scale-out: the same training code under ``torchrun`` (DDP) and a resumable sampler.

Under ``torchrun --nproc_per_node N`` the environment carries RANK / WORLD_SIZE / LOCAL_RANK;
:func:`init_from_env` joins the process group (gloo on CPU, nccl on CUDA). Every rank runs the
same loop on its shard of each epoch's permutation; only rank 0 writes the run folder and
reports events.

Three details keep a run on N processes honest and fast:

* Validation is sharded without padding: every validation item is counted exactly once, and the
  ranks' sums and counts are added up (:func:`reduce_sums`), so the validation metrics equal a
  single process's (a padded shard would count some images twice).
* The DDP wrapper (:func:`wrap_ddp`) keeps gradients *as views of its buckets*; they are zeroed
  in place, never dropped, so a channels_last model's gradients keep the layout of the buckets
  (no "Grad strides do not match bucket view strides" warning, and no copy per step).
* On the CPU each process uses ``cores available / processes on this node`` threads
  (:func:`threads_per_process`), whatever ``OMP_NUM_THREADS`` says: two processes of two threads
  each on two cores ran 7x slower than one process.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, which taskset and cgroups narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def local_world_size() -> int:
    """Processes on this node: torchrun's LOCAL_WORLD_SIZE (--nproc_per_node), else WORLD_SIZE."""
    for key in ("LOCAL_WORLD_SIZE", "WORLD_SIZE"):
        try:
            n = int(os.environ.get(key, "") or 0)
        except ValueError:
            n = 0
        if n > 0:
            return n
    return 1


def threads_per_process(cores: int | None = None, procs: int | None = None) -> int:
    """``cores // procs``, at least 1: each process of a node its share of the cores."""
    cores = available_cores() if cores is None else int(cores)
    procs = local_world_size() if procs is None else int(procs)
    return max(1, cores // max(1, procs))


def init_from_env(device_type: str = "cpu") -> DistInfo:
    """Join the torchrun process group when WORLD_SIZE > 1 (idempotent).

    On the CPU this also sets torch's intra-op threads to :func:`threads_per_process`.
    """
    world = env_world_size()
    if world <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if device_type == "cpu":
        n = threads_per_process()
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend)
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local)


def current() -> DistInfo:
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))
    return DistInfo()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over ranks (no-op without a process group)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def reduce_sums(sums: dict[str, torch.Tensor | float], count: float) -> tuple[dict[str, float], float]:
    """Add up per-rank sums (by key) and counts over all ranks; identity without a process group.

    Every rank must call it, also one whose shard was empty (it passes ``{}``, 0): a rank may see
    fewer keys than another, so the dicts are exchanged as objects, not as one fixed tensor.
    """
    local = {k: float(v.detach().float().cpu()) if isinstance(v, torch.Tensor) else float(v) for k, v in sums.items()}
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return local, float(count)
    box: list = [None] * dist.get_world_size()
    dist.all_gather_object(box, (local, float(count)))
    total: dict[str, float] = {}
    n = 0.0
    for part, c in box:  # rank order: the same float additions on every rank
        n += c
        for k, v in part.items():
            total[k] = total.get(k, 0.0) + v
    return total, n


def wrap_ddp(model: torch.nn.Module, device: torch.device):
    """``DistributedDataParallel(model)`` whose gradients are views of its buckets.

    Each trainable parameter gets a zero gradient of its own layout before wrapping, which DDP
    turns into a view of its bucket; frozen parameters lose theirs (so an optimizer skips them).
    Zero the gradients in place afterwards (``zero_grad(set_to_none=False)``), or they stop being
    bucket views and every step warns about and copies mismatched strides (channels_last).
    """
    from torch.nn.parallel import DistributedDataParallel as DDP

    for p in model.parameters():
        if not p.requires_grad:
            p.grad = None
        elif p.grad is None:
            p.grad = torch.zeros_like(p)  # preserve_format: the parameter's strides
    ids = [device.index or 0] if device.type == "cuda" else None
    return DDP(model, device_ids=ids, find_unused_parameters=False, gradient_as_bucket_view=True)


def broadcast_buffers(model: torch.nn.Module, src: int = 0) -> None:
    """Give every rank ``src``'s buffers (BatchNorm running statistics): each rank's last training
    forward updated its own, and validation must judge the one model rank 0 saves."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        for b in model.buffers():
            dist.broadcast(b.data, src=src)


def broadcast_object(obj, src: int = 0):
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        box = [obj]
        dist.broadcast_object_list(box, src=src)
        return box[0]
    return obj


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class ResumableSampler(Sampler[int]):
    """Each epoch's order is a pure function of (seed, epoch); it can skip a prefix of batches.

    With ``world_size > 1`` every rank takes an interleaved shard of the same permutation.
    Training shards (``pad``, the default when ``shuffle``) are padded by wrapping, like
    DistributedSampler, so every rank runs the same number of steps; evaluation shards
    (``shuffle=False``) are not: each item is seen by exactly one rank, once, and the shards'
    lengths may differ by one (validation needs no lock-step). ``set_epoch(e)`` picks the permutation and
    ``skip(n)`` drops the first ``n`` items of this rank's shard for the next iteration only,
    which is how a run cancelled mid-epoch resumes exactly.
    """

    def __init__(self, n: int, *, shuffle: bool = True, seed: int = 0, rank: int = 0, world_size: int = 1,
                 drop_last: bool = False, pad: bool | None = None) -> None:
        self.n = n
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.epoch = 0
        self._skip = 0
        self.pad = shuffle if pad is None else bool(pad)
        if drop_last and n % world_size:
            self.per_rank = n // world_size
        elif self.pad:
            self.per_rank = math.ceil(n / world_size)
        else:  # this rank's items of rank, rank + world, ...
            self.per_rank = len(range(rank, n, world_size))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def skip(self, n_items: int) -> None:
        self._skip = max(0, int(n_items))

    def order(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed * 1_000_003 + self.epoch)
            idx = torch.randperm(self.n, generator=g).tolist()
        else:
            idx = list(range(self.n))
        if not self.pad and not self.drop_last:
            return idx[self.rank :: self.world_size]
        total = self.per_rank * self.world_size
        if total > len(idx):
            idx = (idx * math.ceil(total / max(1, len(idx))))[:total]
        else:
            idx = idx[:total]
        return idx[self.rank : total : self.world_size]

    def __iter__(self) -> Iterator[int]:
        idx = self.order()[self._skip :]
        self._skip = 0
        return iter(idx)

    def __len__(self) -> int:
        return self.per_rank
