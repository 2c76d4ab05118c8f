"""The app's icons (resources/icons)."""

from __future__ import annotations

from PySide6.QtGui import QIcon

from lesson7_studio.core.project import resources_dir


def icon(name: str) -> QIcon:
    return QIcon(str(resources_dir() / "icons" / name))
