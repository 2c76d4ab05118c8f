"""The Compare panel (panel.py) and its parts: side column (form.py), views (views.py), metrics
table (table.py). The job it runs is :mod:`lesson7_studio.core.compare`."""

from .panel import ComparePanel

__all__ = ["ComparePanel"]
