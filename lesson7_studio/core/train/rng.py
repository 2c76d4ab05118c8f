"""Random-number state of a run: seeding, and the torch / numpy / Python (and CUDA) generator
states as tensors and primitives, so that a resume state loads with ``weights_only=True``."""

from __future__ import annotations

import random

import numpy as np
import torch


def rng_state() -> dict:
    st = np.random.get_state()
    py = random.getstate()
    out = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": st[0], "keys": torch.from_numpy(st[1].astype(np.int64)), "pos": int(st[2]),
                  "has_gauss": int(st[3]), "cached_gaussian": float(st[4])},
        "python": {"version": py[0], "state": list(py[1]), "gauss": py[2]},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    n = s["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = s["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in s and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(s["cuda"])
        except RuntimeError:
            pass


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
