"""Training engine: learner loop, callbacks, schedules, GANs, recipes, runs, LR finder.

    from lesson7_studio.core.train import get_recipe, apply_overrides, train
    cfg = apply_overrides(get_recipe("quick"), data="DATASET", out="RUN", epochs=2)
    result = train(cfg, on_event=print)

Recipes and schedules import without torch (the GUI's forms use them); the names that need
torch (the learner, runs, the LR finder) are imported on first use (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import Any

from .recipes import RECIPES, StageConfig, TrainConfig, apply_overrides, get_recipe, recipe_names
from .schedule import OneCycle, group_lrs

_LAZY = {
    "Callback": ".learner",
    "Learner": ".learner",
    "resolve_device": ".learner",
    "resolve_precision": ".learner",
    "LRFindResult": ".lr_finder",
    "find_lr": ".lr_finder",
    "lr_find": ".lr_finder",
    "RunResult": ".run",
    "resume_config": ".run",
    "train": ".run",
}

__all__ = [
    "Callback",
    "Learner",
    "LRFindResult",
    "OneCycle",
    "RECIPES",
    "RunResult",
    "StageConfig",
    "TrainConfig",
    "apply_overrides",
    "find_lr",
    "get_recipe",
    "group_lrs",
    "lr_find",
    "recipe_names",
    "resolve_device",
    "resolve_precision",
    "resume_config",
    "train",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value  # once
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
