"""``lesson7-studio install-desktop [--uninstall] [--prefix DIR]``: menu launcher, icons, metainfo."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "install-desktop",
        help="add Lesson7 Studio to the desktop's application menu (Linux)",
        description="Install the desktop entry, icons and AppStream metainfo for the current "
        "user (into $XDG_DATA_HOME, default ~/.local/share). The launcher runs this "
        "lesson7-studio (its absolute path), so it works from a virtual environment. "
        "Images dropped on the launcher open in the Compare panel.",
    )
    p.add_argument("--uninstall", action="store_true", help="remove exactly the files install-desktop writes")
    p.add_argument("--prefix", metavar="DIR",
                   help="install into DIR/share instead (e.g. /usr/local, or a test folder)")
    p.set_defaults(func=run_install_desktop)


def run_install_desktop(args: argparse.Namespace) -> int:
    import sys

    from lesson7_studio.core import desktop
    from lesson7_studio.core.errors import Lesson7Error

    if args.prefix is None and sys.platform in ("win32", "darwin"):
        raise Lesson7Error("install-desktop is for Linux desktops (freedesktop.org menus).",
                           hint="On Windows and macOS use the app bundle (README.md, \"App bundle\").")
    if args.uninstall:
        result = desktop.uninstall(args.prefix)
        if result.files:
            print(f"Removed {len(result.files)} files from {result.data_dir}:")
        else:
            print(f"Nothing to remove in {result.data_dir}.")
    else:
        result = desktop.install(args.prefix)
        print(f"Installed {len(result.files)} files into {result.data_dir}:")
    for path in result.files:
        print(f"  {path}")
    if not args.uninstall:
        print(f"The menu entry runs {result.launcher}")
    return 0
