"""The desktop app (PySide6). The only package that imports Qt."""

from . import qtcompat  # noqa: F401  (PySide6 6.12 emit() refcount work-around; must come first)
