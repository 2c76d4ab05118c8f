"""The rest of lesson 7: the resnet-mnist classifiers and the human-numbers RNNs.

    from lesson7_studio.core.lessons import lesson_config, train_lesson, next_words
    cfg = lesson_config("human-numbers", "rnn-model5", out="runs/gru")
    result = train_lesson(cfg, on_event=print)
    next_words(result.out, "eight thousand one , eight thousand")   # [('two', 0.97), ...]
"""

from .interpret import (
    Interpretation,
    LessonModel,
    RunSummary,
    classify,
    continue_text,
    list_lesson_runs,
    load_lesson_model,
    next_words,
    progression,
    read_interpretation,
    run_summary,
)
from .recipes import LESSONS, LessonConfig, get_lesson, lesson_config, lesson_names, lesson_of_arch
from .run import LessonResult, resume_lesson_config, train_lesson

__all__ = [
    "Interpretation",
    "LESSONS",
    "LessonConfig",
    "LessonModel",
    "LessonResult",
    "RunSummary",
    "classify",
    "continue_text",
    "get_lesson",
    "lesson_config",
    "lesson_names",
    "lesson_of_arch",
    "list_lesson_runs",
    "load_lesson_model",
    "next_words",
    "progression",
    "read_interpretation",
    "resume_lesson_config",
    "run_summary",
    "train_lesson",
]
