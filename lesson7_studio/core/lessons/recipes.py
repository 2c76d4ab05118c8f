"""The lesson recipes: which models each lesson trains and with which schedule.

``resnet-mnist`` (MNIST, bs 128, ``rand_pad(3, 28)``) and ``human-numbers`` (bs 64) take the
notebooks' ``fit_one_cycle`` schedules model by model. :func:`lesson_config` fills a
:class:`LessonConfig` from them; the CLI and the Lessons panel override single fields.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..errors import RecipeError, TrainingError


@dataclass(frozen=True)
class Schedule:
    epochs: int
    lr: float
    pct_start: float = 0.3  # fastai v1's fit_one_cycle default
    bptt: int = 0  # language models: tokens per row of a batch
    notebook_accuracy: float | None = None  # what the course-v3 notebook printed after the last epoch


@dataclass(frozen=True)
class Lesson:
    name: str
    title: str
    description: str
    default_arch: str
    batch_size: int
    schedules: dict[str, Schedule]
    default_data: Optional[str]


LESSONS: dict[str, Lesson] = {
    "resnet-mnist": Lesson(
        "resnet-mnist", "MNIST ResNets",
        "Handwritten digits with the lesson's small nets built from scratch: stride-2 conv layers, "
        "then res_blocks (skip connections) added in between; the dense variant concatenates.",
        "resnet-classifier", 128,
        {
            "cnn-classifier": Schedule(10, 0.1, notebook_accuracy=0.9916),
            "resnet-classifier": Schedule(12, 0.05, notebook_accuracy=0.9952),
            "densenet-classifier": Schedule(12, 0.05),
        },
        "mnist",
    ),
    "human-numbers": Lesson(
        "human-numbers", "Human numbers RNNs",
        "Predict the next word of 'one , two , three , ...' written in English: from a hand-unrolled "
        "three-token network to a 2-layer GRU, each model a step beyond the last.",
        "rnn-model5", 64,
        {
            "rnn-model0": Schedule(6, 1e-4, bptt=3, notebook_accuracy=0.408778),
            "rnn-model1": Schedule(6, 1e-4, bptt=3, notebook_accuracy=0.393153),
            "rnn-model2": Schedule(10, 1e-4, pct_start=0.1, bptt=20, notebook_accuracy=0.349787),
            "rnn-model3": Schedule(20, 3e-3, bptt=20, notebook_accuracy=0.442827),
            "rnn-model4": Schedule(20, 3e-3, bptt=20, notebook_accuracy=0.614702),
            "rnn-model5": Schedule(10, 1e-2, bptt=20, notebook_accuracy=0.807102),
        },
        None,
    ),
}


def lesson_names() -> list[str]:
    return list(LESSONS)


def get_lesson(name: str) -> Lesson:
    try:
        return LESSONS[name]
    except KeyError:
        raise RecipeError(f"Unknown lesson '{name}'. Lessons: {', '.join(LESSONS)}.") from None


def lesson_of_arch(arch: str) -> str:
    for name, lesson in LESSONS.items():
        if arch in lesson.schedules:
            return name
    raise RecipeError(f"Model '{arch}' belongs to no lesson. Lesson models: "
                      + "; ".join(f"{n}: {', '.join(l.schedules)}" for n, l in LESSONS.items()) + ".")


@dataclass
class LessonConfig:
    """Everything a lesson run needs (saved as the run's config.json)."""

    lesson: str
    arch: str
    out: str = ""
    data: Optional[str] = None  # resnet-mnist: "mnist" or an image folder; human-numbers: None or a folder
    arch_options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 1
    lr: float = 1e-3
    pct_start: float = 0.3
    div: float = 25.0
    div_final: float = 25e4  # fastai v1: final lr = lr / (div * 1e4)
    batch_size: int = 64
    bptt: int = 0
    size: int = 28
    channels: int = 1
    augment_pad: int = 3  # rand_pad(3, 28)
    valid_pct: float = 0.2  # a single folder of class folders is split at random
    wd: float = 1e-2
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    threads: int = 0  # CPU intra-op threads; 0: one (the lesson's nets are tiny: more threads only wait)
    max_minutes: Optional[float] = None
    steps_per_epoch: Optional[int] = None
    valid_batches: Optional[int] = None
    keep_checkpoints: int = 2
    kind: str = "lesson"  # tells lesson runs from restorer runs in a folder listing

    @property
    def recipe(self) -> str:
        return self.lesson

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["recipe"] = self.lesson
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: dict) -> "LessonConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def load(cls, path: str | Path) -> "LessonConfig":
        path = Path(path)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise TrainingError(f"Cannot read lesson config {path}: {err}") from None
        if not isinstance(d, dict) or d.get("kind") != "lesson":
            raise TrainingError(f"{path} is not the config of a lesson run.",
                                hint="Restoration runs are continued with `lesson7-studio train --resume`.")
        return cls.from_dict(d)

    def validate(self) -> None:
        lesson = get_lesson(self.lesson)
        if self.arch not in lesson.schedules:
            raise RecipeError(f"Lesson '{self.lesson}' trains {', '.join(lesson.schedules)}; not '{self.arch}'.")
        for name, lo in (("epochs", 1), ("batch_size", 1), ("size", 8), ("keep_checkpoints", 1)):
            if int(getattr(self, name)) < lo:
                raise TrainingError(f"{name} must be at least {lo}, got {getattr(self, name)}.")
        if self.lesson == "human-numbers" and self.bptt < 1:
            raise TrainingError(f"bptt must be at least 1, got {self.bptt}.")
        if self.arch in ("rnn-model0",) and self.bptt > 3:
            raise TrainingError(f"rnn-model0 reads at most 3 tokens; bptt {self.bptt} is too long.")
        if not self.lr > 0:
            raise TrainingError(f"The learning rate must be > 0, got {self.lr}.")
        if not 0 < self.valid_pct < 1:
            raise TrainingError(f"valid_pct must be between 0 and 1, got {self.valid_pct}.")
        if self.channels not in (1, 3):
            raise TrainingError(f"channels must be 1 (grey) or 3 (RGB), got {self.channels}.")


def lesson_config(lesson: str, arch: str | None = None, **overrides: Any) -> LessonConfig:
    """The lesson's config for ``arch`` (default: the lesson's own), overrides applied (None skipped)."""
    les = get_lesson(lesson)
    arch = arch or les.default_arch
    if arch not in les.schedules:
        raise RecipeError(f"Lesson '{lesson}' trains {', '.join(les.schedules)}; not '{arch}'.")
    s = les.schedules[arch]
    cfg = LessonConfig(lesson=lesson, arch=arch, data=les.default_data, epochs=s.epochs, lr=s.lr,
                       pct_start=s.pct_start, batch_size=les.batch_size, bptt=s.bptt)
    return apply_overrides(cfg, **overrides)


RESUME_CHANGEABLE = ("epochs", "max_minutes", "device", "precision", "out", "data", "valid_batches", "threads")


def apply_overrides(cfg: LessonConfig, **overrides: Any) -> LessonConfig:
    names = {f.name for f in dataclasses.fields(LessonConfig)}
    unknown = sorted(k for k in overrides if k not in names)
    if unknown:
        raise TrainingError(f"Unknown lesson setting(s): {', '.join(unknown)}.")
    out = dataclasses.replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    return out
