"""requirements.lock (what `make test` / `make demo` install) holds every dependency pyproject
declares, but torch, at a version pyproject allows, once for each Python pyproject claims.

When this fails after a change to pyproject's dependencies: run `make lock` and commit the lock."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from packaging.markers import Marker, default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements.lock"
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]  # requires-python >= 3.10, as far as tested
FIX = "run `make lock` and commit requirements.lock"


def _environment(python: str) -> dict[str, str]:
    env = default_environment()
    env.update(python_version=python, python_full_version=f"{python}.0", sys_platform="linux",
               platform_system="Linux", platform_machine="x86_64")
    return env


def _locked(env: dict[str, str]) -> dict[str, list[str]]:
    """name -> the versions the lock pins for that environment (one, when the lock is sound)."""
    pins: dict[str, list[str]] = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        if not line[:1].isalnum():
            continue
        pin, _, marker = line.partition(";")
        name, _, version = pin.strip().partition("==")
        if not marker.strip() or Marker(marker.strip()).evaluate(env):
            pins.setdefault(canonicalize_name(name), []).append(version.strip())
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    texts = project["dependencies"] + [t for extra in project.get("optional-dependencies", {}).values() for t in extra]
    return [r for r in map(Requirement, texts) if canonicalize_name(r.name) not in ("torch", "kvcap")]


@pytest.mark.parametrize("python", PYTHONS)
def test_every_declared_dependency_is_locked_once_within_its_bounds(python):
    env = _environment(python)
    pins = _locked(env)
    for req in _declared():
        if req.marker and not req.marker.evaluate({**env, "extra": ""}):
            continue
        versions = pins.get(canonicalize_name(req.name), [])
        assert len(versions) == 1, f"{req.name} on Python {python}: locked {versions or 'nowhere'}; {FIX}"
        assert req.specifier.contains(versions[0], prereleases=True), (
            f"{req.name} {versions[0]} is locked, pyproject asks {req.specifier}; {FIX}")


def test_torch_and_its_build_specific_packages_are_not_locked():
    """TORCH_SPEC picks torch; each torch build pins its own CUDA packages (`==`)."""
    names = set(_locked(_environment("3.11"))) | set(_locked(_environment("3.10")))
    assert not {n for n in names if n in ("torch", "triton") or n.startswith(("nvidia-", "cuda-"))}
