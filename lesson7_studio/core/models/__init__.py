"""The model zoo of fast.ai lesson 7, in plain PyTorch, behind one registry."""

from .registry import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ModelInfo,
    Option,
    Restorer,
    create,
    describe,
    names,
    options_of,
    register,
    resolve_options,
    restorer,
)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ModelInfo",
    "Option",
    "Restorer",
    "create",
    "describe",
    "names",
    "options_of",
    "register",
    "resolve_options",
    "restorer",
]
