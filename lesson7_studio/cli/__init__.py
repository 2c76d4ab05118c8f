"""The ``lesson7-studio`` command line.

Each subcommand lives in its own module here with ``add_parser(subparsers)`` and
``run(args) -> int``; heavy imports happen inside ``run`` so ``--help`` stays fast.
With no arguments the desktop app opens on the demo project.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

from lesson7_studio import __version__

# module names under lesson7_studio.cli, in the order `--help` lists them
COMMAND_MODULES = [
    "models_cmd",  # models
    "crappify_cmd",  # crappify
    "train_cmd",  # train, lr-find
    "lessons_cmd",  # lesson (resnet-mnist classifiers, human-numbers RNNs)
    "restore_cmd",  # restore, eval, export
    "app_cmd",  # app (also what no arguments runs)
    "desktop_cmd",  # install-desktop
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lesson7-studio",
        description="Train and apply image-restoration models the fast.ai lesson 7 way. "
        "With no command, opens the desktop app on the demo project.",
    )
    parser.add_argument("--version", action="version", version=f"lesson7-studio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in COMMAND_MODULES:
        importlib.import_module(f"lesson7_studio.cli.{mod}").add_parser(sub)
    return parser


def _printable_streams() -> None:
    """File names that are not UTF-8 (or not in the terminal's encoding) print as escapes
    instead of stopping the command with UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a stream that cannot be reconfigured: leave it
                pass


def main(argv: list[str] | None = None) -> int:
    from lesson7_studio.core.errors import Cancelled, Lesson7Error

    _printable_streams()

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv or ["app"])
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except Cancelled as err:
        print(f"cancelled: {err}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Lesson7Error as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except Exception:  # unexpected: the traceback helps whoever reports it
        traceback.print_exc()
        return 3
