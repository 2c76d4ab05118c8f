"""``lesson7-studio app [FILES...] [--project DIR]``: open the desktop app."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "app",
        help="open the desktop app (what no command does)",
        description="Open the desktop app. Image files given open in the Compare panel. "
        "Without --project it opens the last project used, or the demo project on first start.",
    )
    p.add_argument("files", nargs="*", metavar="FILES", help="images to open in the Compare panel")
    p.add_argument("--project", metavar="DIR", help="project folder (created if missing)")
    p.add_argument("--demo", action="store_true", help="open the demo project")
    p.add_argument("--settings", metavar="FILE", help="settings .ini file (default: user config dir)")
    p.set_defaults(func=run_app)


def run_app(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lesson7_studio.core.errors import Lesson7Error

    missing = [f for f in args.files if not Path(f).exists()]
    if missing:
        raise Lesson7Error(f"No such file: {', '.join(missing)}")
    try:
        from lesson7_studio.gui.app import run_app as gui_run
    except ImportError as err:
        raise Lesson7Error(
            f"The desktop app cannot start: {err}.",
            hint="Install the GUI dependencies: pip install pyside6-essentials pyqtgraph",
        ) from None
    return gui_run(args.files, args.project, demo=args.demo, settings_path=args.settings)
