"""The Lessons panel (panel.py: form, run control, curves, runs) and its explore views (explore.py)."""

from .panel import LessonsPanel, run_lesson

__all__ = ["LessonsPanel", "run_lesson"]
