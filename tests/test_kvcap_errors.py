"""One base for user-facing errors and one one-line formatter (kvcap.errors)."""

from __future__ import annotations

import ast
import errno
import importlib
from pathlib import Path

import click

from kvcap.errors import KvcapError, one_line

SRC = Path(__file__).resolve().parents[1] / "src" / "kvcap"


def _modules():
    for path in sorted(SRC.rglob("*.py")):
        name = ".".join(path.relative_to(SRC.parent).with_suffix("").parts).removesuffix(".__init__")
        yield name, ast.parse(path.read_text(encoding="utf-8"))


def test_every_error_class_derives_from_kvcap_error():
    checked = []
    for module_name, tree in _modules():
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name.endswith(("Error", "Unavailable")):
                cls = getattr(importlib.import_module(module_name), node.name)
                if issubclass(cls, click.ClickException):  # how the CLI shows one, not a kind of error
                    continue
                assert issubclass(cls, KvcapError), f"{module_name}.{node.name}"
                checked.append(node.name)
    assert {"ConfigError", "CheckpointError", "PromptError", "VideoError", "JobLockedError"} <= set(checked)


def test_one_line_formatter_is_defined_once():
    defined = [module for module, tree in _modules() for node in ast.walk(tree)
               if isinstance(node, ast.FunctionDef) and node.name.strip("_") == "one_line"]
    assert defined == ["kvcap.errors"]


def test_one_line_collapses_names_files_and_cuts():
    assert one_line(ValueError("a\n  b\tc")) == "a b c"
    assert one_line(KeyError()) == "KeyError"
    assert one_line(OSError(errno.EROFS, "Read-only file system", "/mnt/x")) == "/mnt/x: Read-only file system"
    long = one_line(RuntimeError("x" * 1000))
    assert len(long) == 400 and long.endswith("...")
