"""Typed config: kvcap.toml covers every key, overrides apply, bad files fail with file:line: key."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kvcap.cli import main
from kvcap.config import (
    Config,
    ConfigError,
    apply_overrides,
    config_to_dict,
    config_to_toml,
    field_docs,
    load_config,
)

REPO = Path(__file__).resolve().parents[1]


def _all_keys(obj, prefix=""):
    for f in dataclasses.fields(obj):
        if f.name == "source":
            continue
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            yield from _all_keys(value, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}"


def _toml_keys(data, prefix=""):
    for key, value in data.items():
        if isinstance(value, dict):
            yield from _toml_keys(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def test_repo_kvcap_toml_names_every_key_with_a_comment():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    text = (REPO / "kvcap.toml").read_text(encoding="utf-8")
    assert set(_toml_keys(tomllib.loads(text))) == set(_all_keys(Config()))
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if "=" in line and not line.lstrip().startswith("#"):
            assert lines[number - 1].lstrip().startswith("#"), f"kvcap.toml:{number + 1} has no comment: {line}"


def test_every_field_has_a_docstring():
    def walk(obj):
        docs = field_docs(type(obj))
        for f in dataclasses.fields(obj):
            assert f.name in docs, f"{type(obj).__name__}.{f.name} has no docstring"
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                walk(value)

    walk(Config())


def test_load_roundtrip_and_overrides(tmp_path):
    path = tmp_path / "k.toml"
    path.write_text('[train]\nbatch_size = 2\n[train.stage1]\nlr = 2e-3\n[caption]\nformats = ["vtt"]\n')
    cfg = load_config(path, ["train.stage2.epochs=1"])
    assert cfg.train.batch_size == 2
    assert cfg.train.stage1.lr == pytest.approx(2e-3)
    assert cfg.train.stage1.epochs == 2  # untouched keys keep their defaults
    assert cfg.train.stage2.epochs == 1.0 and isinstance(cfg.train.stage2.epochs, float)
    assert cfg.caption.formats == ["vtt"]
    # the resolved TOML loads back to the same values
    again = tmp_path / "again.toml"
    again.write_text(config_to_toml(cfg))
    assert config_to_dict(load_config(again)) == config_to_dict(cfg)


def test_overrides_do_not_mutate_the_base():
    base = Config()
    changed = apply_overrides(base, ["train.stage1.lr=0.5", "caption.formats=srt,vtt", "model.prompt=영상 설명"])
    assert base.train.stage1.lr == pytest.approx(1e-3)
    assert changed.train.stage1.lr == pytest.approx(0.5)
    assert changed.caption.formats == ["srt", "vtt"]
    assert changed.model.prompt == "영상 설명"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[train\nbatch_size = 2\n", "k.toml:1: TOML syntax error"),
        ("[train]\nbatch_sise = 2\n", "k.toml:2: train.batch_sise: unknown key"),
        ("[train]\nbatch_size = \"two\"\n", "k.toml:2: train.batch_size: expected an integer"),
        ("[train]\n\n[train.stage2]\nlr = 0\n", "k.toml:4: train.stage2.lr: must be > 0"),
        ("[model]\nquantization = \"3bit\"\n", "k.toml:2: model.quantization: must be one of none, 8bit, 4bit"),
        ("[caption]\nformats = [\"srt\", \"ass\"]\n", "k.toml:2: caption.formats: unknown item 'ass'"),
        ("[bogus]\nx = 1\n", "k.toml:1: bogus: unknown key"),
        ("model = 3\n", "k.toml:1: model: expected a table"),
    ],
)
def test_bad_files_name_file_line_and_key(tmp_path, text, expected):
    path = tmp_path / "k.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_bad_override_names_the_key():
    with pytest.raises(ConfigError, match=r"--set: train.nope: unknown key"):
        apply_overrides(Config(), ["train.nope=1"])
    with pytest.raises(ConfigError, match=r"--set: train.batch_size: must be >= 1"):
        apply_overrides(Config(), ["train.batch_size=0"])


def test_cli_validate_exit_codes(tmp_path):
    runner = CliRunner()
    good = tmp_path / "good.toml"
    good.write_text("[train]\nbatch_size = 2\n")
    result = runner.invoke(main, ["config", "validate", str(good)])
    assert result.exit_code == 0, result.output
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nbatch_size = -1\n")
    result = runner.invoke(main, ["config", "validate", str(bad)])
    assert result.exit_code == 1
    assert "bad.toml:2: train.batch_size: must be >= 1" in result.output


def test_cli_show_applies_set(tmp_path):
    result = CliRunner().invoke(main, ["config", "show", "--config", str(REPO / "kvcap.toml"), "--set", "projector.name=perceiver"])
    assert result.exit_code == 0, result.output
    assert 'name = "perceiver"' in result.output


def test_import_cli_is_light():
    code = "import sys, kvcap.cli; print(sorted(m for m in ('torch', 'textual', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
