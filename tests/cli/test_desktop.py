"""install-desktop: files, Exec path, validation, uninstall; `app FILES` routing (%F)."""

from __future__ import annotations

import argparse
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from lesson7_studio.cli import desktop_cmd
from lesson7_studio.core import desktop


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lesson7-studio")
    desktop_cmd.add_parser(parser.add_subparsers(dest="command"))
    return parser


def _entry(path: Path) -> dict[str, str]:
    keys = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            k, v = line.split("=", 1)
            keys[k] = v
    return keys


def _exec_argv(value: str) -> list[str]:
    """Split an Exec value as the Desktop Entry spec says a launcher does."""
    value = value.replace("\\\\", "\\")  # string escaping first
    argv, cur, quoted, i, started = [], "", False, 0, False
    while i < len(value):
        c = value[i]
        if quoted and c == "\\":
            i += 1
            cur += value[i]
        elif c == '"':
            quoted, started = not quoted, True
        elif c == " " and not quoted:
            if cur or started:
                argv.append(cur)
            cur, started = "", False
        elif c == "%" and value[i + 1:i + 2] == "%":
            cur += "%"
            i += 1
        else:
            cur += c
        i += 1
    if cur or started:
        argv.append(cur)
    return argv


@pytest.fixture
def launcher(tmp_path):
    exe = tmp_path / "venv dir" / "bin" / "lesson7-studio"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


def test_install_then_uninstall_with_prefix(tmp_path, launcher, capsys, monkeypatch):
    monkeypatch.setattr(desktop, "launcher_path", lambda: launcher)
    prefix = tmp_path / "prefix"
    args = _parser().parse_args(["install-desktop", "--prefix", str(prefix)])
    assert args.func(args) == 0
    share = prefix / "share"
    entry = share / "applications" / f"{desktop.APP_ID}.desktop"
    expected = [entry, share / "metainfo" / f"{desktop.APP_ID}.metainfo.xml",
                share / "icons" / "hicolor" / "scalable" / "apps" / "lesson7-studio.svg"]
    expected += [share / "icons" / "hicolor" / f"{n}x{n}" / "apps" / "lesson7-studio.png"
                 for n in (16, 24, 32, 48, 64, 128, 256, 512)]
    for path in expected:
        assert path.is_file() and path.stat().st_size > 0, path
    assert sorted(expected) == sorted(desktop.installed_files(prefix))
    assert not list(share.rglob("*.part")), "temporary files left behind"
    # the installed icons are the packaged ones, byte for byte
    src = desktop.resources_dir() / "icons" / "hicolor" / "48x48" / "apps" / "lesson7-studio.png"
    assert (share / "icons" / "hicolor" / "48x48" / "apps" / "lesson7-studio.png").read_bytes() == src.read_bytes()

    keys = _entry(entry)
    argv = _exec_argv(keys["Exec"])
    assert argv == [str(launcher), "%F"]  # absolute path with a space, quoted; files as %F
    assert keys["TryExec"] == str(launcher)
    assert keys["Icon"] == desktop.ICON_NAME
    assert str(launcher) in capsys.readouterr().out

    if shutil.which("desktop-file-validate"):
        res = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
        assert res.returncode == 0 and "error" not in res.stdout + res.stderr, res.stdout + res.stderr

    # a file that is not ours stays
    other = share / "applications" / "other.desktop"
    other.write_text("[Desktop Entry]\n")
    args = _parser().parse_args(["install-desktop", "--prefix", str(prefix), "--uninstall"])
    assert args.func(args) == 0
    for path in expected:
        assert not path.exists(), path
    assert other.is_file()
    # uninstalling again is harmless
    assert args.func(args) == 0
    assert "Nothing to remove" in capsys.readouterr().out


def test_default_target_is_xdg_data_home(tmp_path, monkeypatch, launcher):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert desktop.data_dir() == tmp_path / "xdg"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert desktop.data_dir() == tmp_path / "home" / ".local" / "share"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    result = desktop.install(launcher=launcher, run_tools=False)
    assert result.data_dir == tmp_path / "xdg"
    assert (tmp_path / "xdg" / "applications" / f"{desktop.APP_ID}.desktop").is_file()
    assert len(desktop.uninstall(run_tools=False).files) == len(result.files)


def test_launcher_path_prefers_running_launcher(tmp_path, monkeypatch, launcher):
    monkeypatch.setattr("sys.argv", [str(launcher), "install-desktop"])
    assert desktop.launcher_path() == launcher
    monkeypatch.setattr("sys.argv", ["pytest"])
    monkeypatch.setenv("PATH", str(launcher.parent))
    assert desktop.launcher_path() == launcher
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    monkeypatch.setattr("sys.executable", str(tmp_path / "python3"))
    with pytest.raises(desktop.Lesson7Error, match="launcher was not found"):
        desktop.launcher_path()


@pytest.mark.parametrize("path, quoted", [
    ("/opt/l7/bin/lesson7-studio", "/opt/l7/bin/lesson7-studio"),
    ("/home/a b/bin/lesson7-studio", '"/home/a b/bin/lesson7-studio"'),
    ('/x/$HOME "q"/l', '"/x/\\\\$HOME \\\\"q\\\\"/l"'),
    ("/x/100%/l", "/x/100%%/l"),
])
def test_quote_exec_arg(path, quoted):
    assert desktop.quote_exec_arg(path) == quoted
    assert _exec_argv(quoted) == [path]


def test_missing_packaged_files_is_a_readable_error(tmp_path, monkeypatch, launcher):
    monkeypatch.setattr(desktop, "packaging_dir", lambda: tmp_path / "nowhere")
    with pytest.raises(desktop.Lesson7Error, match="missing"):
        desktop.install(tmp_path / "p", launcher=launcher, run_tools=False)
    assert not (tmp_path / "p").exists()


def test_app_files_from_the_launcher_reach_the_compare_panel(tmp_path, monkeypatch, qapp):
    """`lesson7-studio %F` -> `app` (no command) with FILES -> gui run_app(files) -> open_files."""
    pytest.importorskip("PySide6")
    from lesson7_studio.cli import build_parser
    from lesson7_studio.cli.app_cmd import run_app
    from lesson7_studio.gui import app as gui_app

    a, b = tmp_path / "a b.png", tmp_path / "c.jpg"
    a.write_bytes(b"x")
    b.write_bytes(b"x")
    args = build_parser().parse_args(["app", str(a), str(b)])
    assert args.func is run_app and args.files == [str(a), str(b)]
    args.project = str(tmp_path / "project")
    args.settings = str(tmp_path / "settings.ini")
    opened = []

    class FakeApp:
        class aboutToQuit:  # noqa: N801 - stands in for the Qt signal
            @staticmethod
            def connect(slot):
                pass

        def exec(self):  # no event loop
            return 0

    class RecordingWindow:  # stands in for MainWindow: only the routing is under test
        def __init__(self, ctx, deferred=()):
            self.ctx = ctx

        def show(self):
            pass

        def open_files(self, paths):
            opened.extend(paths)

    monkeypatch.setattr(gui_app, "create_application", FakeApp)
    monkeypatch.setattr(gui_app, "after_first_paint", lambda widget, callback: None)  # no torch start-up
    monkeypatch.setattr("lesson7_studio.gui.main_window.MainWindow", RecordingWindow)
    assert run_app(args) == 0
    assert opened == [a, b]  # MainWindow.open_files shows them in Compare (tests/gui covers it)
