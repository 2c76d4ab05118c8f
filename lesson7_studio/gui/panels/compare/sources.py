"""What the Compare panel shows: the images to compare, by key, and the constants its parts share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lesson7_studio.core.compare import BICUBIC

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.tif *.tiff *.webp *.bmp *.gif *.heic *.heif);;All files (*)"
INPUT, GT = "input", "gt"  # keys of the input and the ground truth; BICUBIC and model paths are the others
TILE_CHOICES = [("Auto", None), ("128 px", 128), ("256 px", 256), ("512 px", 512), ("1024 px", 1024)]

__all__ = ["BICUBIC", "GT", "IMAGE_FILTER", "INPUT", "Source", "TILE_CHOICES"]


@dataclass
class Source:
    """One image that can be shown as Before or After."""

    label: str
    display: np.ndarray  # uint8 HxWx3 at the reference size
