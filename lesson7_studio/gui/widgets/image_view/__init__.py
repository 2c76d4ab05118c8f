"""Image viewers: zoom at the cursor, drag to pan, fit / 1:1, linked views, split and flicker.

``ImageView`` shows one image. ``link(other)`` puts views in one group whose zoom and pan
follow each other in *normalised* image coordinates (centre as a fraction of the image,
zoom as view pixels per image width), so an input and a 2x output stay on the same region.
``SplitView`` overlays two images with a draggable divider; ``FlickerView`` alternates them.
Zoomed in past 1:1 the pixels are drawn as squares (nearest); below 1:1 smoothly.
"""

from .base import BACKGROUND, MAX_ZOOM, MIN_ZOOM, WHEEL_STEP, ImageView, ViewState
from .flicker import FlickerView
from .split import SplitView
from .zoom_bar import ZoomBar

__all__ = ["BACKGROUND", "MAX_ZOOM", "MIN_ZOOM", "WHEEL_STEP", "FlickerView", "ImageView", "SplitView",
           "ViewState", "ZoomBar"]
