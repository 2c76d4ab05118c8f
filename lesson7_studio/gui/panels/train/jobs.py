"""The core jobs the Train panel starts, looked up at call time (tests replace them; torch is
imported only when a job runs, never when the panel is built)."""

from __future__ import annotations

import importlib


def run_training(config, *, resume: bool = False, on_event=None, cancel=None):
    """``core.train.run.train``."""
    run_mod = importlib.import_module("lesson7_studio.core.train.run")
    return run_mod.train(config, on_event=on_event, cancel=cancel, resume=resume)


def run_lr_find(config, *, num_it: int = 100, on_event=None, cancel=None):
    """``core.train.lr_finder.lr_find``."""
    lr_mod = importlib.import_module("lesson7_studio.core.train.lr_finder")
    return lr_mod.lr_find(config, num_it=num_it, on_event=on_event, cancel=cancel)
