"""Sample grids: the layout written beside each PNG (rows, columns, cell boxes, captions), and
reading a grid back into its images (with the old rule for grids written before layouts)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..images import atomic_write
from .folder import RunFolderError, Sample

GRID_PAD = 4  # padding of a sample grid (px), between cells and around them
GRID_BG = 32  # the grid's background grey
GRID_FORMAT = "lesson7-sample-grid"
GRID_VERSION = 1
PAIR_COLUMNS = ("input", "prediction", "target")


def read_image(path: str | Path) -> np.ndarray:
    """A sample grid as HxWx3 uint8 (RunFolderError naming the file when it cannot be read)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as err:
        raise RunFolderError(f"Cannot read the sample grid {path}: {err}",
                             hint="The run may still be writing it; reload in a moment.") from err


Box = tuple[int, int, int, int]  # x, y, width, height (px)


@dataclass(frozen=True)
class GridLayout:
    """Where each image of a sample grid lies: ``boxes[row][col]``; ``columns`` names the
    columns ("input", "prediction", "target") where they have names; ``kind`` is "pairs" (a
    restore / GAN stage's rows) or "noise" (a WGAN's generator on fixed noise)."""

    width: int
    height: int
    pad: int
    boxes: tuple[tuple[Box, ...], ...]
    columns: tuple[str, ...] = ()
    kind: str = "pairs"
    caption: str = ""

    @property
    def rows(self) -> int:
        return len(self.boxes)

    @property
    def cols(self) -> int:
        return max((len(r) for r in self.boxes), default=0)

    def cells(self, grid: np.ndarray) -> list[list[np.ndarray]]:
        """Cut ``grid`` (the PNG this layout describes) into its images."""
        if grid.shape[0] != self.height or grid.shape[1] != self.width:
            raise RunFolderError(
                f"The sample grid is {grid.shape[1]}\u00d7{grid.shape[0]} px but its layout file says "
                f"{self.width}\u00d7{self.height}.", hint="The PNG was replaced after its layout was written; "
                "delete the .json beside it to read the grid without it.")
        return [[grid[y:y + h, x:x + w] for x, y, w, h in row] for row in self.boxes]

    def to_json(self) -> dict[str, Any]:
        return {"format": GRID_FORMAT, "version": GRID_VERSION, "kind": self.kind, "width": self.width,
                "height": self.height, "rows": self.rows, "cols": self.cols, "pad": self.pad,
                "columns": list(self.columns), "caption": self.caption,
                "cells": [[list(b) for b in row] for row in self.boxes]}

    @classmethod
    def from_json(cls, data: Any, source: str | Path = "layout") -> GridLayout:
        if not isinstance(data, dict) or data.get("format") != GRID_FORMAT:
            raise RunFolderError(f"{source} is not a sample-grid layout (no \"format\": \"{GRID_FORMAT}\").")
        if int(data.get("version", 0)) > GRID_VERSION:
            raise RunFolderError(f"{source} is a layout of version {data.get('version')}; this app reads "
                                 f"up to {GRID_VERSION}.", hint="Update Lesson7 Studio to read this run.")
        try:
            boxes = tuple(tuple((int(b[0]), int(b[1]), int(b[2]), int(b[3])) for b in row) for row in data["cells"])
            return cls(width=int(data["width"]), height=int(data["height"]), pad=int(data.get("pad", 0)),
                       boxes=boxes, columns=tuple(str(c) for c in data.get("columns", ()) or ()),
                       kind=str(data.get("kind", "pairs")), caption=str(data.get("caption", "")))
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise RunFolderError(f"{source}: field {err} is missing or not a number.",
                                 hint="Delete the layout file to read the grid without it.") from err


def grid_layout(shapes: Sequence[Sequence[tuple[int, int]]], pad: int = GRID_PAD, *,
                columns: Sequence[str] = (), kind: str = "pairs", caption: str = "") -> GridLayout:
    """The layout of the grid that :func:`~.train.callbacks.grid_image` makes of images of
    ``shapes`` (rows of (height, width)): cells as large as the largest image, ``pad`` px
    apart and around, each image at its cell's top-left corner."""
    if not shapes or not any(shapes):
        raise ValueError("a sample grid needs at least one image")
    ch = max(h for r in shapes for h, _w in r)
    cw = max(w for r in shapes for _h, w in r)
    ncol = max(len(r) for r in shapes)
    boxes = tuple(tuple((pad + j * (cw + pad), pad + i * (ch + pad), w, h) for j, (h, w) in enumerate(r))
                  for i, r in enumerate(shapes))
    return GridLayout(width=pad + ncol * (cw + pad), height=pad + len(shapes) * (ch + pad), pad=pad,
                      boxes=boxes, columns=tuple(columns), kind=kind, caption=caption)


def layout_path(png: str | Path) -> Path:
    """Where the layout of sample grid ``png`` is written: the same name with .json."""
    return Path(png).with_suffix(".json")


def write_grid_layout(png: str | Path, layout: GridLayout) -> Path:
    """Write ``layout`` beside ``png`` atomically (temporary file, then rename)."""
    path = layout_path(png)
    with atomic_write(path) as tmp:
        Path(tmp).write_text(json.dumps(layout.to_json(), indent=1) + "\n", encoding="utf-8")
    return path


def read_grid_layout(png: str | Path) -> GridLayout | None:
    """The layout written beside ``png``, or None for a grid written before layouts were
    (RunFolderError for a layout file that is there but damaged)."""
    path = layout_path(png)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as err:
        raise RunFolderError(f"Cannot read {path}: {err}") from err
    try:
        data = json.loads(text)
    except ValueError as err:
        raise RunFolderError(f"{path} is not valid JSON ({err}).",
                             hint="Delete it to read the grid without its layout.") from err
    return GridLayout.from_json(data, path)


def sample_cells(sample: Sample, grid: np.ndarray, config: dict[str, Any] | None = None) -> list[list[np.ndarray]]:
    """The (input, prediction, target) images of each row of a restore / GAN sample grid; []
    for a WGAN noise grid. Uses the layout file beside the PNG; a grid written before layouts
    were is cut apart by :func:`split_grid` with the run's ``preview_samples`` as a hint."""
    layout = read_grid_layout(sample.path)
    if layout is not None:
        return [] if layout.kind == "noise" else layout.cells(grid)
    if sample.kind == "wgan":
        return []
    n_rows = int((config or {}).get("preview_samples") or 0) or None
    return split_grid(grid, n_rows)


def split_grid(grid: np.ndarray, n_rows: int | None = None, n_cols: int = 3,
               pad: int = GRID_PAD) -> list[list[np.ndarray]]:
    """Cut a grid written without a layout file (rows of ``n_cols`` equal cells, ``pad`` px
    apart) into its cells.

    ``n_rows`` (the run's preview_samples) is a hint: a dataset with fewer valid images gives
    fewer rows, so it is kept only when the padding between its rows is plain background; else
    the cells are taken as square."""
    h, w = grid.shape[:2]
    cw = (w - pad) // n_cols - pad
    if cw <= 0:
        return []
    square = max(1, (h - pad) // (cw + pad))
    if n_rows is None or n_rows <= 0 or (n_rows != square and not _rows_fit(grid, n_rows, pad)):
        n_rows = square
    ch = (h - pad) // n_rows - pad
    if ch <= 0:
        return []
    rows = []
    for i in range(n_rows):
        y = pad + i * (ch + pad)
        rows.append([grid[y:y + ch, pad + j * (cw + pad): pad + j * (cw + pad) + cw] for j in range(n_cols)])
    return rows


def _rows_fit(grid: np.ndarray, n_rows: int, pad: int) -> bool:
    """True when ``grid`` divides into ``n_rows`` rows separated by bands of its background."""
    h = grid.shape[0]
    ch = (h - pad) // n_rows - pad
    if ch <= 0 or pad <= 0:
        return ch > 0
    bg = grid[0, 0]
    for i in range(1, n_rows):
        y = pad + i * (ch + pad)
        if not np.all(grid[y - pad:y] == bg):
            return False
    return True


def sample_title(path: str | Path) -> str:
    """"gan_epoch004.png" -> "gan · epoch 5: input | prediction | target" (the grid's caption
    from its layout file when it has one)."""
    path = Path(path)
    stage, sep, num = path.stem.rpartition("_epoch")
    if not (sep and num.isdigit()):
        return path.stem
    try:
        layout = read_grid_layout(path)
    except RunFolderError:
        layout = None
    caption = layout.caption if layout is not None and layout.caption else " | ".join(PAIR_COLUMNS)
    return f"{stage} \u00b7 epoch {int(num) + 1}: {caption}"
