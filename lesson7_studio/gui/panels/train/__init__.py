"""Train panel: recipe, where the generator starts from (scratch, ImageNet encoder, the starter
model or any checkpoint of the project), hyper-parameters, Start / Pause / Cancel / Resume, the
whole run's progress with an ETA, live curves, sample predictions, the LR finder (drawn as it
sweeps), a log, and the project's past runs.

``form`` (with ``start_from``) builds the TrainConfig; ``monitor`` shows progress; ``views``
holds the samples, LR-finder and runs tabs; ``panel`` puts them together; ``jobs`` names the
core functions it runs.
"""

from .jobs import run_lr_find, run_training
from .panel import TrainPanel

__all__ = ["TrainPanel", "run_lr_find", "run_training"]
