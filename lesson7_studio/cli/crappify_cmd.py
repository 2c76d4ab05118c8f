"""``lesson7-studio crappify``: build a paired HR/LR dataset from a folder of photos."""

from __future__ import annotations

import argparse
import sys

from ._common import non_negative_int, positive_int
from .progress import ProgressBars, showing


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "crappify",
        help="make a paired dataset (hr/ + lr/) by degrading a folder of photos",
        description="Walk SRC recursively and write DST/hr, DST/lr and DST/dataset.json: every "
        "image degraded by a crappify recipe, split into train/valid. SRC is never modified. "
        "Rerunning into the same DST continues an interrupted build. Unreadable images are "
        "skipped and listed; the exit status is 0 when every readable image was processed.",
    )
    p.add_argument("src", nargs="?", metavar="SRC", help="folder of source images")
    p.add_argument("dst", nargs="?", metavar="DST", help="output folder (new, or a previous build to continue)")
    p.add_argument("--recipe", default="lesson7", metavar="NAME|FILE.json", help="preset name or recipe JSON file (default: lesson7)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default: 0)")
    p.add_argument("--workers", type=non_negative_int, default=0, help="worker processes (default 0: one per CPU for 16+ images)")
    p.add_argument("--valid-pct", type=float, default=0.1, metavar="P", help="fraction for validation, 0..1 (default: 0.1)")
    p.add_argument("--variants", type=_variants_arg, default=1, metavar="N|auto",
                   help="degrade every photo N times, each with its own seed (another JPEG quality, number "
                   "position ...): more to learn from a small folder; a photo's variants stay on one side of "
                   "the train/valid split. auto: the Data panel's default, enough for ~120 pairs (4 for 30 "
                   "photos, 1 from 120 on). Default: 1")
    p.add_argument("--max-size", type=positive_int, default=None, metavar="PX", help="cap the longest side of HR images")
    p.add_argument("--list", action="store_true", help="list the recipe presets and exit")
    p.set_defaults(func=run_crappify)


def _list_presets() -> int:
    from lesson7_studio.core.crappify import PRESETS

    width = max(len(n) for n in PRESETS)
    for name, r in PRESETS.items():
        scale = "fixed size" if r.scale is None else f"x{r.scale}"
        print(f"{name:<{width}}  {scale:<10}  {r.description}")
        print(f"{'':<{width}}  {'':<10}  {r.describe()}")
    return 0


def _variants_arg(text: str) -> int | None:
    """``--variants``: a whole number 1..64, or "auto" (None: chosen from the folder's size)."""
    if text.strip().lower() == "auto":
        return None
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number or 'auto': {text!r}") from None
    if not 1 <= n <= 64:
        raise argparse.ArgumentTypeError("must be from 1 to 64 (or 'auto')")
    return n


def _split_share(train: int, valid: int, valid_pct: float) -> str:
    """The share the validation count is of the pairs, e.g. " (12 % of 16 pairs; --valid-pct 0.1)"."""
    n = train + valid
    if not n:
        return ""
    return f" ({100 * valid / n:.0f} % of {n} pairs; --valid-pct {valid_pct:g})"


def run_crappify(args: argparse.Namespace) -> int:
    if args.list:
        return _list_presets()
    if not args.src or not args.dst:
        print("error: crappify needs SRC and DST (or --list)", file=sys.stderr)
        return 2

    from lesson7_studio.core.crappify import get_recipe
    from lesson7_studio.core.crappify import build_pairs
    from lesson7_studio.core.events import CancelToken

    recipe = get_recipe(args.recipe)
    cancel = CancelToken()
    bars = ProgressBars(f"crappify ({recipe.name})", "img", "crappify", rate=False, failed="skipped")
    with showing(bars, cancel, "cancelling: finishing the images in progress ..."):
        summary = build_pairs(
            args.src,
            args.dst,
            recipe,
            seed=args.seed,
            valid_pct=args.valid_pct,
            max_size=args.max_size,
            workers=args.workers,
            on_event=bars,
            cancel=cancel,
            variants=args.variants,  # None ("auto"): chosen from the photos the build finds
        )

    print(
        f"{summary.built} pairs built, {summary.skipped_existing} already there, "
        f"{len(summary.failed)} skipped; train {summary.train}, valid {summary.valid}"
        f"{_split_share(summary.train, summary.valid, args.valid_pct)} "
        f"-> {summary.dst} ({summary.seconds:.1f} s)"
    )
    if summary.failed:
        print(f"Skipped files ({len(summary.failed)}):")
        for path, reason in summary.failed:
            print(f"  {path}: {reason}")
    if summary.errors:
        print(f"error: {len(summary.errors)} readable images could not be processed", file=sys.stderr)
        return 1
    return 0
