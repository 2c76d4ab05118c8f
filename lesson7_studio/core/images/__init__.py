"""Image files in and out: one representation for everything Pillow reads.

Modules: :mod:`.data` (:class:`ImageData` and conversions), :mod:`.io` (load/save),
:mod:`.decode` and :mod:`.meta` (modes, EXIF orientation, ICC), :mod:`.formats16` (16-bit
PNG/TIFF), :mod:`.atomic` (atomic writes), :mod:`.listing` (image suffixes, folder walking).

:func:`load_image` turns any readable file into an :class:`ImageData`: EXIF orientation
applied (and reset to 1 in the EXIF kept), palette / LA / RGBA split into RGB plus an alpha
plane, CMYK / YCbCr / LAB / HSV converted to RGB, greyscale flagged, 16-bit kept as uint16,
EXIF and ICC profile kept as bytes. Anything that cannot be read raises
:class:`~..errors.ImageReadError` with the file and a human reason.

:func:`save_image` writes an :class:`ImageData` back atomically, keeping what the format allows:

========  =========  ===========  =====  ===  ==================================
format    16-bit     alpha        EXIF   ICC  notes
========  =========  ===========  =====  ===  ==================================
PNG       yes        yes          yes    yes  16-bit colour/alpha: own writer
TIFF      yes        yes          no     yes  16-bit colour/alpha: own writer
JPEG      no (8)     flattened    yes    yes  alpha composited onto white
WebP      no (8)     yes          yes    yes
BMP, GIF  no (8)     flattened    no     no   GIF is palettised (256 colours)
========  =========  ===========  =====  ===  ==================================

JPEG has no alpha: the image is composited onto white rather than the alpha dropped, because
the colour under fully transparent pixels is often arbitrary. Pillow has no 16-bit colour mode;
16-bit RGB(A) PNG and TIFF are read at full depth by decoding the file twice (high and low
bytes) and written by small built-in PNG / TIFF writers.

Decompression bombs: images over ``max_pixels`` (default 300 MP) are refused from their
header, before decoding. To let that limit govern, this package raises Pillow's own
``Image.MAX_IMAGE_PIXELS`` to 300 MP at import (unless someone set it to None or higher).
``ImageFile.LOAD_TRUNCATED_IMAGES`` is never changed: truncated files are errors.
"""


from __future__ import annotations

from .atomic import atomic_bytes, atomic_open, atomic_write
from .data import ImageData, flatten, from_float, from_pil, to_float, to_pil
from .io import DEFAULT_MAX_PIXELS, load_image, save_image
from .listing import HEIF_AVAILABLE, IMAGE_EXTENSIONS, iter_images, list_images

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "HEIF_AVAILABLE",
    "IMAGE_EXTENSIONS",
    "ImageData",
    "atomic_bytes",
    "atomic_open",
    "atomic_write",
    "flatten",
    "from_float",
    "from_pil",
    "iter_images",
    "list_images",
    "load_image",
    "save_image",
    "to_float",
    "to_pil",
]
