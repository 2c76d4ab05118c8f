"""Recipes: a name plus an ordered list of steps; JSON round trips, a stable hash, the
presets, and running a recipe on an image (:func:`apply_recipe`)."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import RecipeError
from ..images import ImageData, to_pil
from .old_photo import OldPhoto
from .steps import Blur, Greyscale, Jpeg, Noise, Resize, Step, StepContext, Text

#: bump when a step's pixels change for the same parameters: old datasets then rebuild.
ALGORITHM_VERSION = 1


STEP_TYPES: dict[str, type[Step]] = {
    cls.kind: cls for cls in (Resize, Jpeg, Text, Noise, Blur, Greyscale, OldPhoto)
}


def step_from_dict(d: dict[str, Any]) -> Step:
    if not isinstance(d, dict) or "kind" not in d:
        raise RecipeError(f"A crappify step must be an object with a 'kind', got {d!r}")
    kind = d["kind"]
    cls = STEP_TYPES.get(kind)
    if cls is None:
        raise RecipeError(f"Unknown crappify step '{kind}'. Known steps: {', '.join(sorted(STEP_TYPES))}")
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = set(d) - names - {"kind"}
    if unknown:
        raise RecipeError(
            f"Crappify step '{kind}' has no parameter {', '.join(sorted(unknown))}; "
            f"its parameters are: {', '.join(sorted(names)) or '(none)'}"
        )
    return cls(**{k: v for k, v in d.items() if k != "kind"})


# ----------------------------------------------------------------------------- recipes


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


@dataclass
class Recipe:
    """A named, ordered list of steps."""

    name: str
    steps: list[Step]
    description: str = ""

    def __post_init__(self) -> None:
        self.steps = list(self.steps)
        if not self.steps:
            raise RecipeError(f"Recipe '{self.name}' has no steps")
        for i, s in enumerate(self.steps):
            if not isinstance(s, Step):
                raise RecipeError(f"Recipe '{self.name}': step {i} is not a crappify step: {s!r}")
            if isinstance(s, Text) and s.text is None and not any(isinstance(t, Jpeg) for t in self.steps[i + 1 :]):
                raise RecipeError(
                    f"Recipe '{self.name}': text step {i} writes the JPEG quality, so a JPEG step must follow it"
                )

    @property
    def scale(self) -> int | None:
        """Overall integer downscale factor (1 = same size); None when a step resizes to a
        fixed size (shortest side), as the lesson7 recipe does."""
        total = 1
        for s in self.steps:
            f = s.downscale()
            if f is None:
                return None
            total *= f
        return total

    @property
    def ends_with_jpeg(self) -> bool:
        return isinstance(self.steps[-1], Jpeg)

    @property
    def lr_suffix(self) -> str:
        """File suffix of the low-res images the builder writes: the JPEG bytes or a PNG."""
        return ".jpg" if self.ends_with_jpeg else ".png"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "version": ALGORITHM_VERSION,
            "steps": [s.to_dict() for s in self.steps],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Recipe":
        if not isinstance(d, dict) or not isinstance(d.get("steps"), list):
            raise RecipeError("A recipe must be a JSON object with a 'steps' list")
        return cls(
            name=str(d.get("name") or "custom"),
            steps=[step_from_dict(s) for s in d["steps"]],
            description=str(d.get("description") or ""),
        )

    @classmethod
    def from_json(cls, text: str | bytes | dict[str, Any]) -> "Recipe":
        if isinstance(text, dict):
            return cls.from_dict(text)
        try:
            d = json.loads(text)
        except (ValueError, TypeError) as err:
            raise RecipeError(f"Recipe is not valid JSON: {err}") from None
        return cls.from_dict(d)

    def hash(self) -> str:
        """Stable hex digest of what determines the output (steps, parameters, algorithm version)."""
        payload = {"version": ALGORITHM_VERSION, "steps": [s.to_dict() for s in self.steps]}
        return hashlib.sha256(_canonical(payload).encode("ascii")).hexdigest()

    def describe(self) -> str:
        """One line per step, for listings."""
        parts = []
        for s in self.steps:
            params = {k: v for k, v in s.to_dict().items() if k != "kind"}
            parts.append(s.kind + (" " + _canonical(params) if params else ""))
        return " -> ".join(parts)


PRESETS: dict[str, Recipe] = {
    r.name: r
    for r in [
        Recipe(
            "lesson7",
            [Resize(shortest_side=96, resample="bilinear"), Text(size=10), Jpeg(quality=(10, 70))],
            "The course's crappifier: shortest side 96 (bilinear), the JPEG quality q in 10..70 "
            "written in white in the top-left quarter, saved as JPEG at q.",
        ),
        Recipe(
            "decrappify-x2",
            [Resize(factor=2, resample="bilinear"), Text(relative_size=10 / 96), Jpeg(quality=(10, 70))],
            "As lesson7 but at half size (text scaled to the image): the starter model's task.",
        ),
        Recipe("superres-x2", [Resize(factor=2, resample="bicubic")], "Bicubic downscale by 2."),
        Recipe("superres-x4", [Resize(factor=4, resample="bicubic")], "Bicubic downscale by 4."),
        Recipe("jpeg", [Jpeg(quality=(10, 70))], "JPEG artefacts only (q in 10..70), same size."),
        Recipe("colorize", [Greyscale()], "Greyscale (3 channels), same size: learn to colourise."),
        Recipe("old-photo", [OldPhoto()], "Sepia, fading, grain, scratches and dust, same size."),
    ]
}


def get_recipe(name_or_path: str | Path | Recipe) -> Recipe:
    """A preset by name, a recipe JSON file, or a Recipe (returned as is). RecipeError otherwise."""
    if isinstance(name_or_path, Recipe):
        return name_or_path
    key = str(name_or_path)
    if key in PRESETS:
        return copy.deepcopy(PRESETS[key])
    p = Path(key).expanduser()
    if p.suffix.lower() == ".json" or p.is_file():
        if not p.is_file():
            raise RecipeError(f"Recipe file not found: {p}")
        try:
            return Recipe.from_json(p.read_text(encoding="utf-8"))
        except RecipeError as err:
            raise RecipeError(f"Bad recipe file {p}: {err}") from None
        except OSError as err:
            raise RecipeError(f"Cannot read recipe file {p}: {err}") from None
    raise RecipeError(f"Unknown recipe '{key}'. Presets: {', '.join(PRESETS)}; or give a recipe .json file.")


# ----------------------------------------------------------------------------- running


@dataclass
class CrappifyResult:
    image: Image.Image
    jpeg_bytes: bytes | None  # the encoded bytes when the last step is JPEG, else None
    params: dict[str, Any]  # what was drawn: quality, text, text_xy, ...


def _as_rgb(img: Any) -> Image.Image:
    if isinstance(img, ImageData):
        return to_pil(img, alpha=False)
    if not isinstance(img, Image.Image):
        raise TypeError(f"expected a PIL image or ImageData, got {type(img).__name__}")
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA", "P", "RGBa", "La"):  # composite onto white, as save_image does
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    return img.convert("RGB")


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise RecipeError(f"The crappify seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def apply_recipe(img: Image.Image | ImageData, recipe: Recipe, seed: int) -> CrappifyResult:
    """Run ``recipe`` on ``img`` (converted to RGB) with ``seed``; see :class:`CrappifyResult`."""
    seed = _check_seed(seed)
    out = _as_rgb(img)
    steps = recipe.steps
    rngs = [np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i,))) for i in range(len(steps))]
    ctx = StepContext(seed=seed, steps=steps)
    for i, (step, rng) in enumerate(zip(steps, rngs)):
        ctx.index = i
        step.prepare(rng, ctx)
    for i, (step, rng) in enumerate(zip(steps, rngs)):
        ctx.index = i
        ctx.jpeg_bytes = None
        out = step.apply(out, rng, ctx)
    params: dict[str, Any] = {}
    for i in sorted(ctx.drawn):
        params.update(ctx.drawn[i])
    return CrappifyResult(image=out, jpeg_bytes=ctx.jpeg_bytes, params=params)


def crappify(img: Image.Image | ImageData, recipe: Recipe | str, seed: int) -> Image.Image:
    """The degraded RGB image. Same image, recipe and seed -> same pixels."""
    return apply_recipe(img, get_recipe(recipe), seed).image
