"""The size rule of src/kvcap: no module over 400 lines, no function over 60 (measured by AST,
a function from its `def` line to its last, docstring and comments included).

A module or function that grows past it does several jobs; split it by responsibility, into
named steps or neighbouring modules, rather than squeezing lines (issues 16 and 23)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "kvcap"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def test_there_are_modules_to_measure():
    assert len(_modules()) > 50


def test_no_module_over_the_limit():
    over = []
    for path in _modules():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            over.append(f"{path.relative_to(SRC.parent)}: {lines} lines")
    assert not over, f"modules over {MAX_MODULE_LINES} lines: " + "; ".join(over)


def test_no_function_over_the_limit():
    over = []
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for fn in _functions(tree):
            length = fn.end_lineno - fn.lineno + 1  # from `def`: a command's Click options are declarations
            if length > MAX_FUNCTION_LINES:
                over.append(f"{path.relative_to(SRC.parent)}:{fn.lineno} {fn.name}: {length} lines")
    assert not over, f"functions over {MAX_FUNCTION_LINES} lines: " + "; ".join(over)
