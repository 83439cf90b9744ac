"""The house's import rules (`[tool.importlinter]` in pyproject.toml), checked by import-linter.

The floors contract orders kvcap's packages from the commands down to records and errors, so an
import that climbs back up fails here; `acyclic_siblings` refuses a circle between the files (and
subpackages) of any package; two forbidden contracts keep torch, textual and ray out of the CLI,
the file contracts and the TUI. The second test breaks a copy of the tree on purpose and sees
each contract fail, so a contract that no longer checks anything cannot pass unnoticed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter", reason="import-linter needs Python 3.11 (the dev extra installs it there)")
import tomllib  # noqa: E402 - 3.11 and later, as import-linter

REPO = Path(__file__).resolve().parents[1]

# Runs import-linter's own command (`lint-imports`) with this interpreter, without its cache.
LINT = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def _contracts(pyproject: Path) -> list[dict]:
    return tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    return subprocess.run(
        [sys.executable, "-c", LINT, "--no-cache", "--no-logo", str(root / "pyproject.toml")],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )


def test_the_house_keeps_its_import_contracts():
    contracts = _contracts(REPO / "pyproject.toml")
    assert {c["type"] for c in contracts} >= {"layers", "acyclic_siblings", "forbidden"}
    proc = _lint(REPO)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert f"Contracts: {len(contracts)} kept, 0 broken." in proc.stdout


def _break(path: Path, line: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + "\n" + line + "\n", encoding="utf-8")


def test_a_climb_a_circle_an_unplaced_module_and_torch_each_break_a_contract(tmp_path):
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(REPO / "src" / "kvcap", tmp_path / "src" / "kvcap",
                    ignore=shutil.ignore_patterns("__pycache__", "checkpoint"))
    kvcap = tmp_path / "src" / "kvcap"
    _break(kvcap / "records" / "jsonl.py", "from kvcap.model import captioner  # a climb, and torch with it")
    _break(kvcap / "config" / "constraints.py", "from kvcap.config import toml_io  # a circle")
    (kvcap / "unplaced.py").write_text('"""A module on no floor."""\n', encoding="utf-8")
    _break(kvcap / "tui" / "format.py", "def _heavy():\n    import torch  # even inside a function")

    proc = _lint(tmp_path)
    out = " ".join(proc.stdout.split())  # import-linter wraps long lines
    assert proc.returncode != 0
    assert f"Contracts: 0 kept, {len(_contracts(tmp_path / 'pyproject.toml'))} broken." in out, out[-4000:]
    assert "kvcap.records.jsonl -> kvcap.model.captioner" in out
    assert "kvcap.records is not allowed to import torch" in out
    assert "kvcap.unplaced" in out
    assert "No cycles are allowed in kvcap.config" in out
    assert "kvcap.tui.format -> torch" in out
