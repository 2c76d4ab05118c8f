"""The house rules of docs/ARCHITECTURE.md that a test can check: small modules, short functions,
and a module map that names every package and module of lesson7_studio."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "lesson7_studio"
DOC = ROOT / "docs" / "ARCHITECTURE.md"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 100


def _modules() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts)


def _rel(p: Path) -> str:
    return p.relative_to(PKG).as_posix()


def test_there_are_modules_to_check():
    assert len(_modules()) > 100


@pytest.mark.parametrize("path", _modules(), ids=_rel)
def test_module_is_small(path: Path):
    n = path.read_text(encoding="utf-8").count("\n")
    assert n <= MAX_MODULE_LINES, f"{_rel(path)} has {n} lines (at most {MAX_MODULE_LINES}): split it into a package"


def _long_functions(source: str) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1
            if n > MAX_FUNCTION_LINES:
                out.append(f"{node.name} (line {node.lineno}, {n} lines)")
    return out


def test_long_function_check_can_fail():
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    assert _long_functions(f"def f():\n{body}\n") == [f"f (line 1, {MAX_FUNCTION_LINES + 1} lines)"]
    assert _long_functions("def g():\n    return 1\n") == []


@pytest.mark.parametrize("path", _modules(), ids=_rel)
def test_functions_are_short(path: Path):
    assert _long_functions(path.read_text(encoding="utf-8")) == [], f"{_rel(path)}: split these functions"


def _doc_words() -> set[str]:
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", DOC.read_text(encoding="utf-8")))


def test_module_map_names_every_package():
    text = DOC.read_text(encoding="utf-8")
    packages = sorted({_rel(p.parent) for p in _modules() if p.name == "__init__.py" and p.parent != PKG})
    missing = [p for p in packages if f"{p.rsplit('/', 1)[-1]}/" not in text]
    assert not missing, f"docs/ARCHITECTURE.md does not name these packages: {missing}"


def test_module_map_names_every_module():
    words = _doc_words()
    missing = [_rel(p) for p in _modules() if p.stem not in ("__init__", "__main__") and p.stem not in words]
    assert not missing, f"docs/ARCHITECTURE.md does not name these modules (add a line each): {missing}"
