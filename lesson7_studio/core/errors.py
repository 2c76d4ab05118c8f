"""Typed, user-readable errors (DESIGN.md rule 3).

Every error the library raises on purpose is a :class:`Lesson7Error`. Its message says what
happened and what to do about it; front ends show ``str(err)`` without a traceback.
"""

from __future__ import annotations

from pathlib import Path


class Lesson7Error(Exception):
    """Base class of every error meant for the user."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str = "") -> None:
        self.message = message
        if hint:
            self.hint = hint
        super().__init__(message if not self.hint else f"{message}\n{self.hint}")


class Cancelled(Lesson7Error):
    """Long work was stopped by its CancelToken. Not a failure: nothing half-written is left."""

    def __init__(self, message: str = "Cancelled by the user.") -> None:
        super().__init__(message)


class ImageReadError(Lesson7Error):
    """An image could not be read. ``path`` and ``reason`` are kept for reports."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"Cannot read image {self.path}: {reason}")


class ImageWriteError(Lesson7Error):
    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"Cannot write image {self.path}: {reason}")


class OutputFolderError(Lesson7Error):
    """Nothing can be written into an output folder (under a file, read-only, no room)."""

    def __init__(self, path: str | Path, reason: str, what: str = "output folder") -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"Cannot write into the {what} {self.path}: {reason}.", hint=f"Choose another {what}.")


class ModelError(Lesson7Error):
    """Unknown model name or option, or a model that cannot be built as asked."""


class WeightsError(Lesson7Error):
    """Pretrained weights are needed but cannot be had (offline, missing file, bad hash)."""


class CheckpointError(Lesson7Error):
    """A checkpoint file is missing, damaged, of an unknown format or architecture."""


class UnsafeFileError(CheckpointError):
    """A file would need unsafe unpickling (it could run code); it was refused and nothing ran."""


class RecipeError(Lesson7Error):
    """A crappify or training recipe is unknown or has bad parameters."""


class DatasetError(Lesson7Error):
    """A dataset folder is missing, empty or malformed."""


class TrainingError(Lesson7Error):
    """Training cannot start or cannot go on (bad config, diverged loss, run folder problems)."""


class DeviceError(Lesson7Error):
    """The requested device (cuda, mps) is not available."""
