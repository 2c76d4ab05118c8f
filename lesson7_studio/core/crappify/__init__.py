"""Composable, seeded degradations: the lesson's crappifier and more.

A :class:`Recipe` is a name plus an ordered list of steps. Each step is a small dataclass with
typed parameters and a ``kind`` name; ``apply(img, rng, ctx)`` maps a Pillow RGB image to a
Pillow RGB image. Recipes round-trip through JSON and have a stable :meth:`Recipe.hash` (sha256
of the canonical JSON of the steps and the algorithm version; the name and description are not
part of it, so a renamed copy hashes the same).

Randomness: step ``i`` gets its own generator ``default_rng(SeedSequence(seed, spawn_key=(i,)))``,
so what a step draws depends only on the seed and its position. Before any step runs, each
step's ``prepare`` draws values other steps need: the JPEG step draws its quality there, which
lets the text step (which runs earlier, as in the course: resize, write q, save at q) write the
quality the JPEG step will use.

Determinism: the same image, recipe and seed give the same bytes on any machine running the
same Pillow version (resizing and drawing are Pillow's integer code, JPEG is the bundled
libjpeg-turbo with the integer DCT, noise comes from numpy's PCG64). Text uses Pillow's bundled
Aileron font (``ImageFont.load_default(size=...)``) rendered by the FreeType that Pillow's wheels
bundle; a Pillow built without FreeType falls back to its fixed-size bitmap font
(:data:`FONT_BACKEND` says which).

Modules: :mod:`.steps` and :mod:`.old_photo` (the degradations, checked by :mod:`.checks`),
:mod:`.recipes` (recipes, JSON, presets, :func:`apply_recipe`), :mod:`.pairs` (one HR/LR pair),
:mod:`.jobs` (pair jobs over processes), :mod:`.manifest` (``dataset.json``), :mod:`.build`
(the paired-dataset builder), :mod:`.previews` (a photo's pair exactly as the builder makes it).
The package is free of torch, so the builder's worker processes start fast.
"""

from __future__ import annotations

from .build import BuildSummary, auto_variants, build_pairs
from .jobs import MIN_PARALLEL_WORK_S, init_worker, run_pair_jobs
from .manifest import DATASET_FILE, FORMAT_VERSION, read_dataset_json, valid_count
from .old_photo import OldPhoto
from .pairs import PairJob, RenderedPair, item_seed, make_pair, prepare_hr, render_pair
from .previews import Preview, PreviewSource, preview
from .recipes import (
    ALGORITHM_VERSION,
    PRESETS,
    STEP_TYPES,
    CrappifyResult,
    Recipe,
    apply_recipe,
    crappify,
    get_recipe,
    step_from_dict,
)
from .steps import _RESAMPLE, FONT_BACKEND, Blur, Greyscale, Jpeg, Noise, Resize, Step, StepContext, Text
from .steps import _font as _font  # the text step's font cache (benchmarks/bench_robustness.py)

#: the names of the resampling filters a resize step accepts
RESAMPLE_NAMES: tuple[str, ...] = tuple(sorted(_RESAMPLE))

__all__ = [
    "ALGORITHM_VERSION",
    "DATASET_FILE",
    "FONT_BACKEND",
    "FORMAT_VERSION",
    "MIN_PARALLEL_WORK_S",
    "PRESETS",
    "RESAMPLE_NAMES",
    "STEP_TYPES",
    "Blur",
    "BuildSummary",
    "CrappifyResult",
    "Greyscale",
    "Jpeg",
    "Noise",
    "OldPhoto",
    "PairJob",
    "Preview",
    "PreviewSource",
    "Recipe",
    "RenderedPair",
    "Resize",
    "Step",
    "StepContext",
    "Text",
    "apply_recipe",
    "auto_variants",
    "build_pairs",
    "crappify",
    "get_recipe",
    "init_worker",
    "item_seed",
    "make_pair",
    "prepare_hr",
    "preview",
    "read_dataset_json",
    "render_pair",
    "run_pair_jobs",
    "step_from_dict",
    "valid_count",
]
