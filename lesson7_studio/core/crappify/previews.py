"""The preview is what gets built: a photo's pair exactly as :func:`~.build.build_pairs` writes it.

For a photo at relative path ``rel`` under the source folder, a dataset built with ``seed``
crappifies it with :func:`~.pairs.item_seed` ``(seed, rel)`` after :func:`~.pairs.prepare_hr`
(the ``max_size`` cap and the crop to the recipe's scale). :func:`preview` runs those same
functions, so ``preview(photo, recipe, seed, root=src, max_size=m)`` has the pixels of the pair
``build_pairs(src, dst, recipe, seed=seed, max_size=m)`` writes for that photo (and, for a
recipe ending with JPEG, the very bytes of its ``lr/*.jpg``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import DatasetError
from ..images import DEFAULT_MAX_PIXELS, ImageData, from_pil, load_image
from .pairs import item_seed, prepare_hr
from .recipes import Recipe, _check_seed, apply_recipe, get_recipe


@dataclass
class Preview:
    """One photo's pair as the builder makes it. ``hr`` is the HR image (RGB 8-bit), ``lr`` the
    crappified image (the pixels of the LR file; for a recipe ending with JPEG the decoded
    ``jpeg_bytes``, which are the file's bytes), ``params`` what was drawn (quality, text ...),
    ``seed`` the photo's own crappify seed (``item_seed(dataset seed, rel)``)."""

    hr: Image.Image
    lr: Image.Image
    jpeg_bytes: bytes | None
    params: dict[str, Any]
    seed: int
    rel: str
    seconds: float = 0.0

    def shown(self) -> Image.Image:
        """``lr`` at the size of ``hr`` for display: nearest-neighbour enlargement, so pixels
        and JPEG blocks stay visible (``lr`` itself when the sizes match)."""
        if self.lr.size == self.hr.size:
            return self.lr
        return self.lr.resize(self.hr.size, Image.Resampling.NEAREST)


def _rel_of(path: Path | None, root: str | Path | None) -> str:
    """The builder's name for ``path``: its posix path relative to the source folder ``root``
    (the file name without ``root``; "" for an image that has no file)."""
    if path is None:
        return ""
    if root is None:
        return path.name
    root = Path(root).expanduser()
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        pass
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise DatasetError(f"{path} is not inside the photo folder {root}.",
                           hint="Give the folder the dataset is built from as root.") from None


class PreviewSource:
    """A photo loaded once and previewed with many recipes and seeds (its HR image is cached
    per scale and size cap). ``photo`` is a file path, an :class:`ImageData` or a Pillow image;
    ``root`` is the folder the dataset is built from, or ``rel`` the photo's path in it."""

    def __init__(self, photo: str | Path | ImageData | Image.Image, *, root: str | Path | None = None,
                 rel: str | None = None, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> None:
        if isinstance(photo, ImageData):
            self.data = photo
        elif isinstance(photo, Image.Image):
            self.data = from_pil(photo)
        else:
            self.data = load_image(photo, max_pixels=max_pixels)
        self.rel = rel if rel is not None else _rel_of(self.data.path, root)
        self._hr: tuple[tuple[int | None, int | None], Image.Image] | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the photo as loaded (upright)."""
        return self.data.size

    def hr(self, scale: int | None, max_size: int | None) -> Image.Image:
        """The HR image the builder makes of this photo (:func:`~.pairs.prepare_hr`)."""
        key = (scale, max_size)
        if self._hr is None or self._hr[0] != key:
            self._hr = (key, prepare_hr(self.data, scale, max_size)[0])
        return self._hr[1]

    def render(self, recipe: Recipe | str, seed: int = 0, *, max_size: int | None = None) -> Preview:
        """The pair of this photo in a dataset built with ``recipe``, ``seed`` and ``max_size``."""
        t0 = time.perf_counter()
        recipe = get_recipe(recipe)
        own_seed = item_seed(_check_seed(seed), self.rel)
        hr = self.hr(recipe.scale, max_size)
        res = apply_recipe(hr, recipe, own_seed)
        return Preview(hr=hr, lr=res.image, jpeg_bytes=res.jpeg_bytes, params=res.params, seed=own_seed,
                       rel=self.rel, seconds=time.perf_counter() - t0)


def preview(photo: str | Path | ImageData | Image.Image, recipe: Recipe | str, seed: int = 0, *,
            root: str | Path | None = None, rel: str | None = None, max_size: int | None = None) -> Preview:
    """The pair ``build_pairs(root, dst, recipe, seed=seed, max_size=max_size)`` writes for
    ``photo`` (see the module docstring); ``root`` (or ``rel``) names the photo as the builder
    does, which decides its crappify seed. For many previews of one photo use
    :class:`PreviewSource`."""
    return PreviewSource(photo, root=root, rel=rel).render(recipe, seed, max_size=max_size)
