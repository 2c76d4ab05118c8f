"""A wheel carries its resources: build it, install it away from the source tree, restore a photo.

Issue 16 §5, the proof that a non-editable install works. The wheel is built from a copy of
the package sources (the checkout gets no build/ or egg-info), installed with
``pip install --target`` into a temporary folder and run from another folder with only that
folder on PYTHONPATH (torch, PySide6 and the other dependencies come from this interpreter's
site-packages). It is part of the ordinary test run, so CI (.ci/run) runs it; about 30 s.
Skipped only when pip or setuptools' bdist_wheel (setuptools >= 70.1) is absent.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
RESOURCES = ROOT / "lesson7_studio" / "resources"
MAX_WHEEL_MB = 15  # starter model 6.4 MB + samples 2.3 MB + code: README screenshots stay out


def _can_build() -> bool:
    """pip, and a setuptools that builds wheels itself (70.1+); read from metadata, not imported
    (importing setuptools here would replace distutils under the other tests)."""
    try:
        version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return False
    major_minor = tuple(int(v) for v in re.findall(r"\d+", version)[:2])
    return importlib.util.find_spec("pip") is not None and major_minor >= (70, 1)


pytestmark = pytest.mark.skipif(
    not _can_build(), reason="pip or setuptools>=70.1 (bdist_wheel) is not installed: cannot build the wheel")


def _resource_files() -> set[str]:
    return {p.relative_to(ROOT).as_posix() for p in RESOURCES.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built offline from a copy of pyproject.toml, README.md and lesson7_studio/."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "lesson7_studio", src / "lesson7_studio",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.part"))
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(tmp / "dist")],
        capture_output=True, text=True, timeout=240, cwd=tmp)
    assert res.returncode == 0, res.stdout + res.stderr
    wheels = sorted((tmp / "dist").glob("lesson7_studio-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The wheel installed with ``pip install --target`` (no dependencies, no index)."""
    site = tmp_path_factory.mktemp("site")
    res = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(site), str(wheel)],
        capture_output=True, text=True, timeout=240, cwd=site.parent)
    assert res.returncode == 0, res.stdout + res.stderr
    return site


def _run(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """``python *args`` with only the installed wheel on PYTHONPATH, from ``cwd`` (not the checkout)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(site), LESSON7_DATA_DIR=str(cwd / "data"), LESSON7_CONFIG_DIR=str(cwd / "config"),
               LESSON7_CACHE_DIR=str(cwd / "cache"), LESSON7_OFFLINE="1", QT_QPA_PLATFORM="offscreen")
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=240, cwd=cwd, env=env)


def test_the_wheel_holds_every_resource_and_no_more(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    have = {n for n in names if n.startswith("lesson7_studio/resources/")}
    missing = _resource_files() - have
    assert not missing, f"not package data (add a pattern to [tool.setuptools.package-data]): {sorted(missing)}"
    assert "lesson7_studio/resources/models/starter.safetensors" in have
    assert "lesson7_studio/resources/linux/io.github.lesson7studio.Lesson7Studio.desktop" in have
    assert not [n for n in names if n.startswith(("tests/", "docs/", "benchmarks/", "resources/"))]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert wheel.stat().st_size < MAX_WHEEL_MB * 1e6, f"wheel is {wheel.stat().st_size / 1e6:.1f} MB"


def test_the_installed_wheel_restores_a_photo_with_the_starter_model(installed, tmp_path):
    work = tmp_path / "elsewhere"
    work.mkdir()
    probe = _run(installed, work, "-c", (
        "import json, lesson7_studio; from lesson7_studio.core import project, desktop;"
        "print(json.dumps({'file': lesson7_studio.__file__, 'resources': str(project.resources_dir()),"
        " 'starter': [str(p) for p in project.starter_models()], 'samples': len(project.sample_images()),"
        " 'desktop': (desktop.packaging_dir() / (desktop.APP_ID + '.desktop')).is_file()}))"))
    assert probe.returncode == 0, probe.stderr
    info = json.loads(probe.stdout.strip().splitlines()[-1])
    assert Path(info["file"]).resolve().is_relative_to(installed.resolve()), info  # not the checkout
    assert Path(info["resources"]).resolve() == (installed / "lesson7_studio" / "resources").resolve()
    assert [Path(p).name for p in info["starter"]] == ["starter.safetensors"] and info["samples"] == 4
    assert info["desktop"], "install-desktop would find no desktop entry"
    assert (installed / "bin" / "lesson7-studio").is_file(), "no console script"

    # a half-size, JPEG-damaged crop of a sample photo: what the starter model is trained for
    with Image.open(RESOURCES / "samples" / "kodim03.png") as im:
        gt = im.convert("RGB").crop((200, 150, 328, 246))  # 128 x 96
    small = gt.resize((64, 48), Image.Resampling.BILINEAR)
    src = work / "in" / "photo.jpg"
    src.parent.mkdir()
    small.save(src, quality=40)
    res = _run(installed, work, "-m", "lesson7_studio", "restore", str(src), str(work / "out"), "--device", "cpu")
    assert res.returncode == 0, res.stdout + res.stderr
    out_path = work / "out" / "photo.jpg"
    assert out_path.is_file(), list((work / "out").rglob("*"))
    with Image.open(out_path) as im:
        out = np.asarray(im.convert("RGB"), np.float64)
    with Image.open(src) as im:
        bicubic = np.asarray(im.convert("RGB").resize((128, 96), Image.Resampling.BICUBIC), np.float64)
    assert out.shape == bicubic.shape == (96, 128, 3)
    assert np.abs(out - bicubic).mean() > 1.0, "the output is a bicubic upscale, not the model's"
    truth = np.asarray(gt, np.float64)

    def psnr(a):
        return 10 * np.log10(255.0 ** 2 / np.mean((a - truth) ** 2))

    # the model restores: closer to the truth than bicubic (starter v2: 27.2 vs 26.1 dB here, even
    # though the output is re-saved as JPEG at quality 95)
    assert psnr(out) > psnr(bicubic), (psnr(out), psnr(bicubic))
