"""Training engine: learner loop, callbacks, schedules, GANs, recipes, runs, LR finder.

    from lesson7_studio.core.train import get_recipe, apply_overrides, train
    cfg = apply_overrides(get_recipe("quick"), data="DATASET", out="RUN", epochs=2)
    result = train(cfg, on_event=print)
"""

from .learner import Callback, Learner, resolve_device, resolve_precision
from .lr_find import LRFindResult, find_lr, lr_find
from .recipes import RECIPES, StageConfig, TrainConfig, apply_overrides, get_recipe, recipe_names
from .run import RunResult, resume_config, train
from .schedule import OneCycle, group_lrs

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
