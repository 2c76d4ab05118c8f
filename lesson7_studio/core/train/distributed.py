"""Scale-out: the same training code under ``torchrun`` (DDP) and a resumable sampler.

Under ``torchrun --nproc_per_node N`` the environment carries RANK / WORLD_SIZE / LOCAL_RANK;
:func:`init_from_env` joins the process group (gloo on CPU, nccl on CUDA). Every rank runs the
same loop on its shard of each epoch's permutation; only rank 0 writes the run folder and
reports events.
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


def init_from_env(device_type: str = "cpu") -> DistInfo:
    """Join the torchrun process group when WORLD_SIZE > 1 (idempotent)."""
    world = env_world_size()
    if world <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
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

    With ``world_size > 1`` every rank takes an interleaved shard of the same permutation
    (padded by wrapping, like DistributedSampler). ``set_epoch(e)`` picks the permutation and
    ``skip(n)`` drops the first ``n`` items of this rank's shard for the next iteration only,
    which is how a run cancelled mid-epoch resumes exactly.
    """

    def __init__(self, n: int, *, shuffle: bool = True, seed: int = 0, rank: int = 0, world_size: int = 1,
                 drop_last: bool = False) -> None:
        self.n = n
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.epoch = 0
        self._skip = 0
        if drop_last and n % world_size:
            self.per_rank = n // world_size
        else:
            self.per_rank = math.ceil(n / world_size)

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
