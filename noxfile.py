"""The version matrix: kvcap's tests on every Python and dependency range it claims.

    make test-compat                   # all sessions (what .ci/run runs after `make test`)
    nox -s newest                      # one session; `nox -l` lists them

- newest: drift. Python 3.11, the local torch wheel (TORCH_SPEC, default torch==2.13.0) and every
  other dependency at its newest release, running the WHOLE suite. `make test` installs
  requirements.lock; this session is what the next `make lock` would give. When it fails, its
  summary line says so and names every package that moved since the lock.
- torchfree-3.12, torchfree-3.13: the newest release of every torch-free dependency, resolved
  fresh, on the newer Pythons (torch-free tests).
- oldest-3.10: every direct dependency at its pyproject lower bound (uv's lowest-direct); the
  session fails if one did not install at exactly its bound, so the bounds stay true.
- oldest_torch-3.11: the torch stack's bounds (transformers, peft, bitsandbytes, accelerate)
  with the local CPU torch wheel (TORCH_SPEC, default torch==2.13.0), running the torch tests
  that are not `slow`. torch's own bound (2.11) is what ran on the lent GPU machines.

Each session but `newest` is a fresh uv virtualenv holding kvcap (`--no-deps`) and its
requirements minus the torch stack (TORCH_STACK), and asserts torch is absent. Tests marked
`torch` (declared in tests/conftest.py) and Textual `snapshot` tests run on `make test` and
`newest` only.

uv does not read pip's configuration: `pip config list` is turned into UV_* variables (find-links,
extra indexes, constraints) so uv sees the same wheels pip does, and uv never downloads a Python:
the interpreters come from PATH or from pyenv's `$(pyenv root)/versions/`.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

import nox
from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True
nox.options.reuse_venv = "no"
# nox creates each venv with `uv venv`, which would otherwise download a missing Python.
os.environ["UV_PYTHON_DOWNLOADS"] = "never"

NEWEST_PYTHONS = ["3.12", "3.13"]
OLDEST_PYTHON = "3.10"
TORCH_PYTHON = "3.11"  # the local CPU torch wheel's Python (/opt/wheels: torch 2.13.0, cp311)
# Requirements that need torch (or are torch): installed and tested by the main job only.
TORCH_STACK = {"torch", "peft", "bitsandbytes", "accelerate"}
# Left out of the lower-bound sessions, which test the bounds of kvcap's own dependencies:
# import-linter 2.17 needs rich>=14.2, above kvcap's rich bound; Ray Data's pyarrow needs NumPy 2,
# above kvcap's numpy bound (the optional extra kvcap[ray]). Their tests skip without them
# (tests/test_import_contracts.py, tests/caption/test_caption_ray.py); the main job and `newest` run them.
NOT_AT_OLDEST = {"import-linter", "ray"}
PYTEST_ARGS = ["-m", "not torch and not snapshot", "-p", "no:cacheprovider", "-q", "--no-header"]
LOCK = "requirements.lock"  # `make lock`: what `make test` installs


def _find_python(version: str) -> str | None:
    """An interpreter for `version` ("3.12"): on PATH, else the newest pyenv build of it."""
    on_path = shutil.which(f"python{version}")
    if on_path and subprocess.run([on_path, "-c", ""], capture_output=True).returncode == 0:
        return on_path  # pyenv's shims exist for every build but fail unless it is selected
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    if shutil.which("pyenv"):
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip() or root
    builds = sorted(
        glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", f"python{version}")),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in p.split(os.sep)[-3].split(".")],
    )
    return builds[-1] if builds else None


def _put_pythons_on_path(versions: list[str]) -> None:
    """Prepend each found interpreter's folder to PATH, where nox and uv look for `pythonX.Y`."""
    found = {v: _find_python(v) for v in versions}
    for version in (v for v, p in found.items() if p is None):
        print(f"noxfile: no Python {version} on PATH or under $(pyenv root)/versions/{version}.*; "
              f"its sessions will fail (install it, e.g. `pyenv install {version}`)", file=sys.stderr)
    dirs = [os.path.dirname(p) for p in found.values() if p]
    os.environ["PATH"] = os.pathsep.join([*dict.fromkeys(dirs), os.environ.get("PATH", "")])


def _pip_settings_as_uv() -> dict[str, str]:
    """pip's index settings (`pip config list`, PIP_* variables) as uv's UV_* variables."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True
    ).stdout
    pip: dict[str, str] = {}
    for line in out.splitlines():  # global.find-links='/opt/wheels' (later scopes win)
        key, _, value = line.partition("=")
        pip[key.split(".", 1)[-1]] = value.strip().strip("'\"")
    for name in ("index-url", "extra-index-url", "find-links", "constraint"):
        env = os.environ.get("PIP_" + name.upper().replace("-", "_"))
        if env:
            pip[name] = env
    uv = {"UV_PYTHON_DOWNLOADS": "never", "UV_INDEX_STRATEGY": "unsafe-best-match"}
    if pip.get("index-url"):
        uv["UV_INDEX_URL"] = pip["index-url"]
    if pip.get("extra-index-url"):
        uv["UV_EXTRA_INDEX_URL"] = " ".join(pip["extra-index-url"].split())
    if pip.get("find-links"):
        uv["UV_FIND_LINKS"] = ",".join(pip["find-links"].split())
    if pip.get("constraint"):
        uv["UV_CONSTRAINT"] = " ".join(pip["constraint"].split())
    return uv


def _pyproject() -> dict:
    with open("pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["project"]


def _requirements(torch_stack: bool = False, oldest: bool = False) -> list[Requirement]:
    """kvcap's requirements and its `dev` extra: without the torch stack, or without torch only;
    `oldest` also leaves out the dev tools that would lift a runtime bound (NOT_AT_OLDEST)."""
    project = _pyproject()
    extras = project["optional-dependencies"]
    names: list[str] = []
    for text in project["dependencies"] + extras["dev"]:
        req = Requirement(text)
        if req.name.lower() == project["name"]:  # `kvcap[ray]` inside `dev`: its extras' own lines, not
            names += [line for extra in sorted(req.extras) for line in extras[extra]]  # kvcap (and torch) again
        else:
            names.append(text)
    leave_out = ({"torch"} if torch_stack else TORCH_STACK) | (NOT_AT_OLDEST if oldest else set())
    return [r for r in map(Requirement, names) if r.name.lower() not in leave_out]


def _prepare(session: nox.Session, resolution: str) -> list[Requirement]:
    """Install kvcap (no deps) and its torch-free requirements at `resolution`; prove no torch."""
    _summary_line(session, "FAILED: stopped before its tests ran (see the log above)")
    session.env.update(_pip_settings_as_uv())
    reqs = _requirements(oldest=resolution == "lowest-direct")
    if resolution == "lowest-direct":
        session.env["KVCAP_TESTS_WITHOUT_RAY"] = "1"
    session.install("--no-deps", ".")
    session.install(f"--resolution={resolution}", "--refresh", *map(str, reqs))
    session.run(
        "python", "-c",
        "import importlib.util, sys; sys.exit('torch is installed in a torch-free session' "
        "if importlib.util.find_spec('torch') else 0)",
    )
    return reqs


# The lower-bound check, run inside the session's Python: every direct requirement that applies
# there must be installed at exactly its `>=` bound.
CHECK_BOUNDS = """
import sys
from importlib.metadata import version
from packaging.requirements import Requirement
from packaging.version import Version
bad = []
for text in sys.argv[1:]:
    req = Requirement(text)
    if req.marker and not req.marker.evaluate():
        continue
    low = min((Version(s.version) for s in req.specifier if s.operator in (">=", "==")), default=None)
    got = Version(version(req.name))
    print(f"{req.name:24} bound {str(low):10} installed {got}")
    if low is not None and got != low:
        bad.append(f"{req.name} installed {got}, bound {low}")
if bad:
    sys.exit("lower bounds no resolver installs (raise them in pyproject.toml): " + "; ".join(bad))
"""


def _plain_verdict(ok: bool, counts: str) -> str:
    return f"{'passed' if ok else 'FAILED'} -- {counts}"


def _run_tests(session: nox.Session, pytest_args: list[str] = PYTEST_ARGS, verdict=_plain_verdict) -> None:
    """Run the tests; leave a one-line summary, `verdict(ok, counts)`, in .nox/<session>.summary."""
    session.run("uv", "pip", "freeze", external=True)  # the versions this session tested
    version = session.run("python", "-c", "import platform; print(platform.python_version())", silent=True)
    report = os.path.abspath(os.path.join(".nox", f"{session.name}.xml"))
    if os.path.exists(report):
        os.unlink(report)
    ok = False
    try:
        session.run("python", "-m", "pytest", *pytest_args, f"--junitxml={report}", *session.posargs)
        ok = True
    finally:
        _summary_line(session, verdict(ok, _counts(report)), f"Python {str(version).strip()}")


def _counts(report: str) -> str:
    """'N passed, N failed, N errors, N skipped in S s' from a pytest JUnit XML report."""
    import xml.etree.ElementTree as ET

    if not os.path.exists(report):
        return "no test report (pytest did not finish)"
    suite = ET.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    n = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    passed = n["tests"] - n["failures"] - n["errors"] - n["skipped"]
    return (f"{passed} passed, {n['failures']} failed, {n['errors']} errors, "
            f"{n['skipped']} skipped in {float(suite.get('time', 0)):.0f} s")


def _torch_spec() -> str:
    return os.environ.get("TORCH_SPEC") or "torch==2.13.0"


# Printed by the session's own Python: {name: version} of what is installed, and its marker
# environment (to read requirements.lock's `; python_full_version < '3.11'` lines as pip would).
INSTALLED = """
import json
from importlib.metadata import distributions
from packaging.markers import default_environment
print(json.dumps({"installed": {d.metadata["Name"]: d.version for d in distributions()},
                  "env": default_environment()}))
"""
# Not in the lock on purpose: torch and the packages each torch build pins itself.
UNLOCKED = ("torch", "triton", "nvidia-", "cuda-", "kvcap", "pip")


def _moved_since_lock(session: nox.Session) -> list[str]:
    """'name locked -> installed' for each package whose version differs from requirements.lock
    (and 'name installed (not in the lock)' for new ones), as the session's Python reads it."""
    import json

    from packaging.markers import Marker
    from packaging.utils import canonicalize_name

    seen = json.loads(session.run("python", "-c", INSTALLED, silent=True))
    installed = {canonicalize_name(k): v for k, v in seen["installed"].items()}
    locked: dict[str, str] = {}
    with open(LOCK, encoding="utf-8") as fh:
        for line in fh:
            if not line[:1].isalnum():
                continue  # comments, `# via` annotations
            pin, _, marker = line.strip().partition(";")
            name, _, version = pin.strip().partition("==")
            if not marker.strip() or Marker(marker.strip()).evaluate(seen["env"]):
                locked[canonicalize_name(name)] = version.strip()
    moved = [f"{n} {locked[n]} -> {v}" for n, v in sorted(installed.items()) if n in locked and locked[n] != v]
    moved += [f"{n} {v} (not in the lock)" for n, v in sorted(installed.items())
              if n not in locked and not n.startswith(UNLOCKED)]
    return moved


def _summary_line(session: nox.Session, text: str, python: str = "") -> None:
    """.nox/<session>.summary: the line `make test-compat` prints for this session at the end."""
    os.makedirs(".nox", exist_ok=True)
    label = f"{session.name} ({python})" if python else session.name
    with open(os.path.join(".nox", f"{session.name}.summary"), "w", encoding="utf-8") as fh:
        fh.write(f"{label}: {text}\n")


_put_pythons_on_path([*NEWEST_PYTHONS, OLDEST_PYTHON, TORCH_PYTHON])


@nox.session(python=TORCH_PYTHON)
def newest(session: nox.Session) -> None:
    """The whole suite with the local torch wheel and every other dependency at its newest: the
    drift the lock hides from `make test`, caught under its own name."""
    _summary_line(session, "FAILED: stopped before its tests ran (see the log above)")
    session.env.update(_pip_settings_as_uv())
    # torch alone first (a bare `torch` next to the rest could pull PyPI's CUDA build); the rest
    # then resolves around it, newest first, ignoring requirements.lock on purpose.
    session.install(_torch_spec())
    session.install("--resolution=highest", "--refresh", ".[dev]")
    moved = _moved_since_lock(session)
    session.log("moved since requirements.lock: " + ("; ".join(moved) or "nothing"))

    def verdict(ok: bool, counts: str) -> str:
        if ok:
            return f"passed ({len(moved)} dependencies differ from the lock) -- {counts}"
        if not moved:
            return f"FAILED with the locked versions (not drift) -- {counts}"
        return f"FAILED -- dependencies moved since the lock: {', '.join(moved)} -- {counts}"

    _run_tests(session, ["-p", "no:cacheprovider", "-q", "--no-header"], verdict=verdict)


@nox.session(python=NEWEST_PYTHONS)
def torchfree(session: nox.Session) -> None:
    """Newest torch-free dependencies, resolved fresh, on the newer Pythons."""
    _prepare(session, "highest")
    _run_tests(session)


@nox.session(python=[OLDEST_PYTHON])
def oldest(session: nox.Session) -> None:
    """Every direct dependency at its pyproject lower bound, on the oldest Python allowed."""
    reqs = _prepare(session, "lowest-direct")
    session.install("packaging")
    session.run("python", "-c", CHECK_BOUNDS, *map(str, reqs))
    _run_tests(session)


@nox.session(python=[TORCH_PYTHON])
def oldest_torch(session: nox.Session) -> None:
    """The torch stack's lower bounds (transformers, peft, bitsandbytes, accelerate) with the
    local torch wheel (TORCH_SPEC), running the torch tests that are not `slow`."""
    _summary_line(session, "FAILED: stopped before its tests ran (see the log above)")
    session.env.update(_pip_settings_as_uv())
    reqs = _requirements(torch_stack=True, oldest=True)
    session.env["KVCAP_TESTS_WITHOUT_RAY"] = "1"
    session.install("--no-deps", ".")
    # torch first, newest that TORCH_SPEC and pyproject allow (lowest-direct on a bare `torch`
    # would fetch an ancient multi-GB CUDA build); the rest at their bounds around it.
    torch_req = next(r for r in map(Requirement, _pyproject()["dependencies"]) if r.name == "torch")
    session.install(_torch_spec(), str(torch_req))
    session.install("--resolution=lowest-direct", "--refresh", *map(str, reqs))
    session.install("packaging")
    session.run("python", "-c", CHECK_BOUNDS, *map(str, reqs))
    _run_tests(session, ["-m", "torch and not slow", "-p", "no:cacheprovider", "-q", "--no-header"])
