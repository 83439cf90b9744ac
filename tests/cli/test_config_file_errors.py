"""`--config FILE` says what is wrong with FILE: no such file, a folder, not a regular file, empty."""

from __future__ import annotations

import pytest

from cli_helpers import kvcap, one_error_line


@pytest.mark.parametrize(("make", "said"), [
    (lambda tmp: tmp / "missing.toml", "missing.toml: no such file"),
    (lambda tmp: (tmp / "folder").mkdir() or tmp / "folder", "folder' is a directory"),  # click's Path(dir_okay=False)
    (lambda tmp: "/dev/null", "/dev/null: not a regular file"),
    (lambda tmp: (tmp / "empty.toml").write_text(" \n") and tmp / "empty.toml", "empty.toml: empty file"),
], ids=["missing", "folder", "dev-null", "empty"])
def test_config_names_what_is_wrong_with_the_file(tmp_path, make, said):
    proc = kvcap("config", "show", "--config", make(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert said in one_error_line(proc)


def test_an_empty_kvcap_toml_in_the_working_folder_means_the_defaults(tmp_path):
    (tmp_path / "kvcap.toml").write_text("")
    proc = kvcap("config", "show", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
