"""The one-way rule (DESIGN.md rule 1): every core module imports with Qt, the GUI and the CLI
hidden. (That no core file imports them, at any level, is checked in tests/test_layering.py.)"""

import json
import subprocess
import sys
from pathlib import Path

import lesson7_studio

PKG = Path(lesson7_studio.__file__).resolve().parent
CORE = PKG / "core"
FORBIDDEN = ("PySide6", "shiboken6", "PyQt5", "PyQt6", "pyqtgraph", "lesson7_studio.gui", "lesson7_studio.cli")


def core_modules() -> list[str]:
    mods = []
    for path in sorted(CORE.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods.append(".".join(parts))
    return mods


def test_core_modules_are_found():
    mods = core_modules()
    assert "lesson7_studio.core" in mods
    assert "lesson7_studio.core.checkpoint" in mods and "lesson7_studio.core.models.unet" in mods


def test_every_core_module_imports_without_qt_gui_or_cli():
    code = f"""
import importlib, json, sys, traceback
for name in {FORBIDDEN!r}:
    sys.modules[name] = None  # any import of these now raises ImportError
failed = {{}}
for mod in {core_modules()!r}:
    try:
        importlib.import_module(mod)
    except BaseException:
        failed[mod] = traceback.format_exc(limit=3)
leaked = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'PyQt5', 'PyQt6')
          and sys.modules[m] is not None]
print(json.dumps({{"failed": failed, "leaked": leaked}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240,
                          env={**__import__("os").environ, "LESSON7_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["failed"] == {}, "\n".join(f"{m}:\n{tb}" for m, tb in result["failed"].items())
    assert result["leaked"] == []
