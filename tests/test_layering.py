"""Import contracts (DESIGN.md rule 1, issue 16 §1), checked the way import-linter would:

- the GUI imports no torch/torchvision (what it shows comes from core as numpy/PIL), at any
  level of any module: top-level, inside functions, through importlib;
- core imports neither Qt nor the GUI nor the CLI;
- importing the main window does not load torch (its panels that need it are built later).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import lesson7_studio

PKG = Path(lesson7_studio.__file__).resolve().parent
ROOT = PKG.parent

# package -> modules (and their submodules) it must never import
CONTRACTS = {
    "gui": ("torch", "torchvision"),
    "core": ("PySide6", "shiboken6", "PyQt5", "PyQt6", "pyqtgraph", "lesson7_studio.gui", "lesson7_studio.cli"),
}


def imported_names(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a file, at any level (relative imports
    resolved; ``importlib.import_module("x")`` and ``__import__("x")`` with a constant count)."""
    rel = path.relative_to(ROOT).with_suffix("")
    package = list(rel.parts[:-1])
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.append((node.lineno, mod))
            found += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Call):
            func = node.func
            name = getattr(func, "attr", getattr(func, "id", ""))
            if name in ("import_module", "__import__"):
                found += [(node.lineno, a.value) for a in node.args[:1]
                          if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    return found


def forbidden(name: str, banned: tuple[str, ...]) -> bool:
    return any(name == b or name.startswith(b + ".") for b in banned)


def violations(package: str) -> dict[str, list[str]]:
    banned = CONTRACTS[package]
    bad: dict[str, list[str]] = {}
    for path in sorted((PKG / package).rglob("*.py")):
        hits = sorted({f"line {ln}: {n}" for ln, n in imported_names(path) if forbidden(n, banned)})
        if hits:
            bad[path.relative_to(ROOT).as_posix()] = hits
    return bad


def test_the_scanner_sees_every_kind_of_import(tmp_path, monkeypatch):
    pkg = tmp_path / "lesson7_studio" / "gui"
    pkg.mkdir(parents=True)
    f = pkg / "sample.py"
    f.write_text(
        "import os\n"
        "def f():\n"
        "    import torch.nn as nn\n"
        "    from torchvision import models\n"
        "    import importlib\n"
        "    importlib.import_module('torch')\n"
        "from .widgets import common\n"
        "from ..core import devices\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    names = [n for _ln, n in imported_names(f)]
    assert {"torch.nn", "torchvision", "torch", "lesson7_studio.gui.widgets.common",
            "lesson7_studio.core.devices"} <= set(names)
    assert [n for n in names if forbidden(n, CONTRACTS["gui"])] == ["torch.nn", "torchvision",
                                                                     "torchvision.models", "torch"]
    assert not forbidden("torchmetrics_like", ("torch",))


# Panels owned by others that still import torch when this test was written (issue 16 is
# moving their work into core). Empty when the rule holds everywhere.
STILL_IMPORTING_TORCH: tuple[str, ...] = ()


def test_the_gui_imports_no_torch():
    bad = violations("gui")
    if STILL_IMPORTING_TORCH:  # strict: exactly these files, and the list goes once they are fixed
        assert bad, "no GUI module imports torch any more: empty STILL_IMPORTING_TORCH"
        if set(bad) == set(STILL_IMPORTING_TORCH):
            pytest.xfail(f"still importing torch: {', '.join(STILL_IMPORTING_TORCH)}")
    assert bad == {}, "GUI modules import torch (move that work into core):\n" + json.dumps(bad, indent=1)


def test_core_imports_no_qt_gui_or_cli():
    bad = violations("core")
    assert bad == {}, "core modules import Qt, the GUI or the CLI:\n" + json.dumps(bad, indent=1)


def test_importing_the_main_window_loads_no_torch():
    pytest.importorskip("PySide6")
    code = (
        "import json, sys\n"
        "import lesson7_studio.gui.main_window, lesson7_studio.gui.app, lesson7_studio.gui.context\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision'))))\n"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
