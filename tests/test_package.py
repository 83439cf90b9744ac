"""Process-wide settings kvcap makes on import."""

import os
import subprocess
import sys


def _policy(env):
    code = "import kvcap, os; print(os.environ['OMP_WAIT_POLICY'])"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.strip()


def test_openmp_threads_wait_passively_unless_the_user_says_otherwise():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert _policy(env) == "PASSIVE"
    assert _policy({**env, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"


def test_every_source_file_compiles_without_warnings():
    # A fresh install compiles without cached bytecode: an invalid escape in a docstring then
    # prints a SyntaxWarning on every user's first run (the GPU bench showed one).
    import warnings
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    files = [p for d in ("src", "bench", "scripts", "tests") for p in (root / d).rglob("*.py")]
    assert len(files) > 50
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for path in files:
            compile(path.read_text(encoding="utf-8"), str(path), "exec")
