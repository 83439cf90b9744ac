"""Metric tests keep kvcap's caches (token cache, tiny models) inside a temp dir."""

import pytest


@pytest.fixture(autouse=True)
def _kvcap_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KVCAP_HOME", str(tmp_path / "kvcap-home"))
    return tmp_path / "kvcap-home"
