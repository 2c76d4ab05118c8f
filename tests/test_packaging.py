"""Packaging files: desktop entry, AppStream metainfo, icons, version, CHANGELOG, PyInstaller spec."""

from __future__ import annotations

import ast
import configparser
import importlib.util
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lesson7_studio import __version__
from lesson7_studio.core import desktop

ROOT = Path(__file__).resolve().parents[1]
RESOURCES = ROOT / "lesson7_studio" / "resources"
LINUX = RESOURCES / "linux"
DESKTOP = LINUX / f"{desktop.APP_ID}.desktop"
METAINFO = LINUX / f"{desktop.APP_ID}.metainfo.xml"
ICONS = RESOURCES / "icons"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
MIME = {"image/jpeg", "image/png", "image/tiff", "image/webp", "image/bmp", "image/gif"}


def _desktop_entry() -> configparser.SectionProxy:
    cp = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    cp.optionxform = str
    cp.read(DESKTOP, encoding="utf-8")
    return cp["Desktop Entry"]


def test_desktop_entry_keys():
    e = _desktop_entry()
    assert e["Type"] == "Application" and e["Name"] == "Lesson7 Studio"
    assert e["GenericName"] and e["Comment"]
    assert e["Exec"] == "lesson7-studio %F" and e["Terminal"] == "false"
    assert e["Icon"] == desktop.ICON_NAME
    assert e["Categories"].rstrip(";").split(";") == ["Graphics", "Photography", "Education"]
    assert set(e["MimeType"].rstrip(";").split(";")) == MIME
    assert e["StartupWMClass"] == "lesson7-studio"  # X11 WM_CLASS instance = launcher name


def test_metainfo_matches_desktop_entry_and_version():
    root = ET.parse(METAINFO).getroot()
    assert root.get("type") == "desktop-application"
    assert root.findtext("id") == desktop.APP_ID
    assert root.findtext("launchable") == DESKTOP.name
    assert root.findtext("project_license") == "Apache-2.0"
    assert root.findtext("metadata_license") == "CC0-1.0"
    assert root.find("content_rating") is not None
    releases = root.findall("releases/release")
    assert releases and releases[0].get("version") == __version__, "newest <release> must be __version__"
    assert {m.text for m in root.findall("provides/mediatype")} == MIME
    assert [c.text for c in root.findall("categories/category")] == ["Graphics", "Photography", "Education"]
    shots = [i.text for i in root.findall("screenshots/screenshot/image")]
    assert shots
    for url in shots:
        assert url.startswith("https://raw.githubusercontent.com/lesson7-studio/lesson7-studio/main/")
        rel = url.split("/main/", 1)[1]
        assert (ROOT / rel).is_file(), f"screenshot {rel} is not in the repository"


def test_changelog_has_the_version():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## \[{re.escape(__version__)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", text, re.M)
    date = re.search(rf"^## \[{re.escape(__version__)}\] - (\S+)$", text, re.M).group(1)
    release = ET.parse(METAINFO).getroot().find("releases/release")
    assert release.get("date") == date


@pytest.mark.skipif(not shutil.which("desktop-file-validate"), reason="desktop-file-utils not installed")
def test_desktop_file_validate():
    res = subprocess.run(["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True)
    out = res.stdout + res.stderr
    assert res.returncode == 0 and ": error:" not in out and ": warning:" not in out, out


@pytest.mark.skipif(not shutil.which("appstreamcli"), reason="appstream not installed")
def test_appstreamcli_validate():
    res = subprocess.run(["appstreamcli", "validate", "--no-net", str(METAINFO)],
                         capture_output=True, text=True)
    out = res.stdout + res.stderr
    assert res.returncode == 0 and not re.search(r"^[EW]: ", out, re.M), out


def test_icons_exist_in_every_size():
    from PIL import Image

    svg = ET.parse(ICONS / "lesson7-studio.svg").getroot()
    assert svg.tag.endswith("svg") and svg.get("viewBox")
    assert svg.find("{http://www.w3.org/2000/svg}text") is None, "text renders differently per font"
    for n in SIZES:
        with Image.open(ICONS / "hicolor" / f"{n}x{n}" / "apps" / "lesson7-studio.png") as im:
            assert im.size == (n, n) and im.mode == "RGBA"
            assert im.getpixel((0, 0))[3] == 0 and im.getpixel((n // 2, n // 2))[3] == 255


def test_pngs_are_rendered_from_the_svg(qapp):
    """The SVG is the source: re-rendering it gives the stored PNGs (packaging/render_icons.py)."""
    pytest.importorskip("PySide6.QtSvg")
    import numpy as np
    from PIL import Image
    from PySide6.QtGui import QImage

    spec = importlib.util.spec_from_file_location("render_icons", ROOT / "packaging" / "render_icons.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert tuple(mod.SIZES) == SIZES == desktop.ICON_SIZES
    for n in (16, 64):
        img = mod.render(ICONS / "lesson7-studio.svg", n).convertToFormat(QImage.Format.Format_RGBA8888)
        fresh = np.frombuffer(bytes(img.constBits()), np.uint8)[: n * n * 4].reshape(n, n, 4)
        stored = np.asarray(Image.open(ICONS / "hicolor" / f"{n}x{n}" / "apps" / "lesson7-studio.png"))
        diff = np.abs(fresh.astype(int) - stored.astype(int)).mean()
        assert diff < 2.0, f"{n}px PNG differs from the SVG (mean diff {diff:.1f}): run render_icons.py"


def test_pyinstaller_spec_is_portable_and_complete():
    spec_path = ROOT / "packaging" / "lesson7-studio.spec"
    text = spec_path.read_text(encoding="utf-8")
    tree = ast.parse(text)  # valid Python
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert {"Analysis", "PYZ", "EXE", "COLLECT", "SPECPATH"} <= names
    strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    assert "resources" in strings and "entry.py" in strings and "lesson7_studio" in strings
    # the package data goes where importlib.resources looks in the bundle: lesson7_studio/resources
    assert 'datas = [\n    (RESOURCES, os.path.join("lesson7_studio", "resources")),\n]' in text
    assert "collect_submodules" in text and "exclude_binaries=True" in text  # one-folder
    assert 'collect_dynamic_libs("torchvision"' in text  # its ops .so files (import fails without)
    for s in strings:
        assert not s.startswith(("/", "C:\\")) and "\\" not in s, f"platform-specific path {s!r}"
    assert (ROOT / "packaging" / "entry.py").is_file()


def test_bundle_entry_runs_the_cli(monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("l7_entry", ROOT / "packaging" / "entry.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr("sys.argv", ["lesson7-studio", "--version"])
    with pytest.raises(SystemExit) as exc:
        mod.run()
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"lesson7-studio {__version__}"


def test_style_and_panel_icons_come_from_the_package_resources(qapp):
    """The style sheet loads from the package data and every icon it or the panel list names is
    there and renders (a missing file would give an empty style or blank icons, no error)."""
    from lesson7_studio.core.project import resources_dir
    from lesson7_studio.gui import main_window
    from lesson7_studio.gui.app import stylesheet
    from lesson7_studio.gui.icons import icon

    assert resources_dir() == RESOURCES
    qss = stylesheet()
    assert qss and "@ICONS@" not in qss
    urls = re.findall(r"url\(([^)]+)\)", qss)
    assert len(urls) >= 3
    for url in urls:
        assert Path(url).is_file() and Path(url).parent == ICONS, url
    names = [p[2] for p in main_window.PANELS] + ["lesson7-studio.svg"]
    for name in names:
        assert not icon(name).pixmap(32, 32).isNull(), f"icon {name} missing from {ICONS}"
    assert icon("no-such-icon.svg").pixmap(32, 32).isNull()  # the check above can fail
