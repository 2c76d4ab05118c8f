"""Desktop integration (freedesktop.org): install the launcher, icons and AppStream metainfo.

The validated sources are package data: ``lesson7_studio/resources/linux/`` (desktop entry,
metainfo) and ``lesson7_studio/resources/icons/`` (``lesson7-studio.svg`` and its hicolor PNGs),
so a wheel install can install them too. :func:`install` copies
them into a data folder (``$XDG_DATA_HOME``, default ``~/.local/share``, or ``PREFIX/share``)
with the desktop entry's ``Exec`` pointing at the absolute path of the running
``lesson7-studio`` launcher, so a venv install works from the menu. :func:`uninstall` removes
exactly the files :func:`install` writes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .errors import Lesson7Error
from .images import atomic_write
from .project import resources_dir

APP_ID = "io.github.lesson7studio.Lesson7Studio"
ICON_NAME = "lesson7-studio"
LAUNCHER_NAME = "lesson7-studio"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


@dataclass
class DesktopResult:
    """What :func:`install` / :func:`uninstall` did: files written or removed, helper tools run."""

    data_dir: Path
    files: list[Path] = field(default_factory=list)
    launcher: Path | None = None
    tools: list[str] = field(default_factory=list)


def packaging_dir() -> Path:
    """``lesson7_studio/resources/linux``: the desktop entry and AppStream metainfo (package data)."""
    return resources_dir() / "linux"


def data_dir(prefix: str | os.PathLike[str] | None = None) -> Path:
    """``PREFIX/share`` if a prefix is given, else ``$XDG_DATA_HOME`` or ``~/.local/share``."""
    if prefix is not None:
        return Path(prefix).expanduser().absolute() / "share"
    env = os.environ.get("XDG_DATA_HOME", "")
    if env and Path(env).is_absolute():  # the spec says relative values are ignored
        return Path(env)
    return Path.home() / ".local" / "share"


def launcher_path() -> Path:
    """Absolute path of the ``lesson7-studio`` launcher that is running (or on PATH).

    Frozen bundle: the executable itself. Else ``sys.argv[0]`` when it is the launcher, else
    the one ``shutil.which`` finds, else the one beside the Python interpreter (venv ``bin/``).
    """
    if getattr(sys, "frozen", False):
        return Path(sys.executable).absolute()
    names = {LAUNCHER_NAME, f"{LAUNCHER_NAME}.exe", f"{LAUNCHER_NAME}-script.py"}
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.name in names and argv0.is_file():
        return argv0.absolute()
    found = shutil.which(LAUNCHER_NAME)
    if found:
        return Path(found).absolute()
    beside = Path(sys.executable).parent / LAUNCHER_NAME
    if beside.is_file():
        return beside.absolute()
    raise Lesson7Error(
        "The lesson7-studio launcher was not found (not the running program, not on PATH).",
        hint='Install the package (pip install -e .) and run "lesson7-studio install-desktop".',
    )


def quote_exec_arg(arg: str) -> str:
    """One ``Exec`` argument quoted as the Desktop Entry spec requires (then string-escaped)."""
    if "%" in arg:
        arg = arg.replace("%", "%%")
    reserved = set(" \t\n\"'\\><~|&;$*?#()`")
    if any(c in reserved for c in arg):
        for c in ("\\", '"', "`", "$"):
            arg = arg.replace(c, "\\" + c)
        arg = f'"{arg}"'
    # the value is then a desktop-file string: backslashes are escaped once more
    return arg.replace("\\", "\\\\")


def desktop_entry(launcher: str | os.PathLike[str], template: str | None = None) -> str:
    """The packaged desktop entry with ``Exec``/``TryExec`` set to the launcher's absolute path."""
    if template is None:
        template = (packaging_dir() / f"{APP_ID}.desktop").read_text(encoding="utf-8")
    launcher = str(launcher)
    lines = []
    for line in template.splitlines():
        if line.startswith("Exec="):
            line = f"Exec={quote_exec_arg(launcher)} %F"
        elif line.startswith("TryExec="):
            line = "TryExec=" + launcher.replace("\\", "\\\\")
        lines.append(line)
    return "\n".join(lines) + "\n"


def _targets(data: Path) -> list[tuple[Path, Path | None]]:
    """(destination, source file) pairs; source None means the generated desktop entry."""
    icons = resources_dir() / "icons"
    pairs: list[tuple[Path, Path | None]] = [(data / "applications" / f"{APP_ID}.desktop", None)]
    for size in ICON_SIZES:
        rel = Path("hicolor") / f"{size}x{size}" / "apps" / f"{ICON_NAME}.png"
        pairs.append((data / "icons" / rel, icons / rel))
    pairs.append((data / "icons" / "hicolor" / "scalable" / "apps" / f"{ICON_NAME}.svg",
                  icons / f"{ICON_NAME}.svg"))
    pairs.append((data / "metainfo" / f"{APP_ID}.metainfo.xml",
                  packaging_dir() / f"{APP_ID}.metainfo.xml"))
    return pairs


def installed_files(prefix: str | os.PathLike[str] | None = None) -> list[Path]:
    """Every path :func:`install` writes (and :func:`uninstall` removes)."""
    return [dst for dst, _ in _targets(data_dir(prefix))]


def _refresh(data: Path, run_tools: bool) -> list[str]:
    """Run update-desktop-database / gtk-update-icon-cache where present; failures ignored."""
    if not run_tools:
        return []
    ran = []
    commands = []
    apps = data / "applications"
    if apps.is_dir() and shutil.which("update-desktop-database"):
        commands.append(["update-desktop-database", "-q", str(apps)])
    hicolor = data / "icons" / "hicolor"
    if (hicolor / "index.theme").is_file() and shutil.which("gtk-update-icon-cache"):
        commands.append(["gtk-update-icon-cache", "-q", "-f", str(hicolor)])
    for cmd in commands:
        try:
            subprocess.run(cmd, check=False, timeout=60, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            continue
        ran.append(cmd[0])
    return ran


def install(
    prefix: str | os.PathLike[str] | None = None,
    *,
    launcher: str | os.PathLike[str] | None = None,
    run_tools: bool = True,
) -> DesktopResult:
    """Install the desktop entry, icons and metainfo; each file is written atomically."""
    data = data_dir(prefix)
    exe = Path(launcher).absolute() if launcher is not None else launcher_path()
    targets = _targets(data)
    missing = [src for _, src in targets if src is not None and not src.is_file()]
    if not (packaging_dir() / f"{APP_ID}.desktop").is_file():
        missing.insert(0, packaging_dir() / f"{APP_ID}.desktop")
    if missing:
        raise Lesson7Error(f"Desktop files are missing from this installation: {missing[0]}",
                           hint="Its package data is incomplete: reinstall lesson7-studio "
                                "(pip install --force-reinstall lesson7-studio).")
    result = DesktopResult(data, launcher=exe)
    for dst, src in targets:
        try:
            with atomic_write(dst) as tmp:
                if src is None:
                    tmp.write_text(desktop_entry(exe), encoding="utf-8")
                else:
                    shutil.copyfile(src, tmp)
                os.chmod(tmp, 0o644)
        except OSError as err:
            raise Lesson7Error(f"Cannot write {dst}: {err.strerror or err}") from err
        result.files.append(dst)
    result.tools = _refresh(data, run_tools)
    return result


def uninstall(prefix: str | os.PathLike[str] | None = None, *, run_tools: bool = True) -> DesktopResult:
    """Remove the files :func:`install` writes (those that exist); nothing else."""
    data = data_dir(prefix)
    result = DesktopResult(data)
    for dst in installed_files(prefix):
        try:
            dst.unlink()
        except FileNotFoundError:
            continue
        except OSError as err:
            raise Lesson7Error(f"Cannot remove {dst}: {err.strerror or err}") from err
        result.files.append(dst)
    result.tools = _refresh(data, run_tools)
    return result
