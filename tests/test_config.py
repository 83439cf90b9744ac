"""Typed config: kvcap.toml covers every key, overrides apply, bad files fail with file:line: key."""

from __future__ import annotations

import dataclasses
import re
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
    config_from_dict,
    config_to_dict,
    config_to_toml,
    field_docs,
    load_config,
    with_checkpoint,
)

REPO = Path(__file__).resolve().parents[1]


def _all_keys(obj, prefix=""):
    for f in dataclasses.fields(obj):
        if f.name in ("source", "provenance"):
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


def _commented_keys(text):
    """Dotted keys written as `# key = value` lines under their [table] headers."""
    import re

    table = ""
    for line in text.splitlines():
        header = re.match(r"^\[([\w.]+)\]", line)
        if header:
            table = header.group(1) + "."
            continue
        key = re.match(r"^# (\w+) = ", line)
        if key:
            yield table + key.group(1)


def test_repo_kvcap_toml_documents_every_key_and_sets_none():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    text = (REPO / "kvcap.toml").read_text(encoding="utf-8")
    assert set(_commented_keys(text)) == set(_all_keys(Config()))
    # it sets nothing: a key the user did not uncomment falls through to the checkpoint / defaults
    assert list(_toml_keys(tomllib.loads(text))) == []
    assert load_config(REPO / "kvcap.toml").explicit_keys() == set()
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^# \w+ = ", line):
            assert lines[number - 1].startswith("# ") and not re.match(r"^# \w+ = ", lines[number - 1]), (
                f"kvcap.toml:{number + 1} has no doc comment: {line}")
    # each documented default is the built-in one (uncommenting a line changes nothing by itself)
    uncommented = re.sub(r"(?m)^# (\w+ = )", r"\1", text)
    assert config_to_dict(config_from_dict(tomllib.loads(uncommented))) == config_to_dict(Config())


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
    assert result.exit_code == 1  # a check that ran and found the file bad (like --check)
    assert "bad.toml:2: train.batch_size: must be >= 1" in result.output


def test_cli_show_applies_set(tmp_path):
    result = CliRunner().invoke(main, ["config", "show", "--config", str(REPO / "kvcap.toml"), "--set", "projector.name=perceiver"])
    assert result.exit_code == 0, result.output
    assert 'name = "perceiver"' in result.output


def test_import_cli_is_light():
    code = "import sys, kvcap.cli; print(sorted(m for m in ('torch', 'textual', 'transformers', 'ray') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------------------------------------
# Layers: defaults < checkpoint < config file < --set < flags
# ---------------------------------------------------------------------------------------------

CHECKPOINT_LAYER = {"model.frames": 4, "model.prompt": "체크포인트 지시", "generation.max_new_tokens": 96,
                    "generation.repetition_penalty": 1.0}


def test_checkpoint_values_hold_where_the_user_set_nothing():
    cfg = with_checkpoint(load_config(REPO / "kvcap.toml"), CHECKPOINT_LAYER)
    assert cfg.generation.max_new_tokens == 96 and cfg.generation.repetition_penalty == 1.0
    assert cfg.model.frames == 4 and cfg.model.prompt == "체크포인트 지시"
    assert cfg.generation.num_beams == 1  # not in the checkpoint: the built-in default
    assert cfg.layer_of("generation.max_new_tokens") == "checkpoint" and cfg.layer_of("generation.num_beams") == "default"
    assert cfg.explicit_keys() == set()


def test_each_layer_beats_the_ones_below(tmp_path):
    path = tmp_path / "k.toml"
    path.write_text("[generation]\nmax_new_tokens = 200\nnum_beams = 2\ntop_p = 0.5\n[model]\nframes = 6\n")
    cfg = load_config(path, ["generation.num_beams=3", "generation.top_p=0.6"])
    cfg = apply_overrides(cfg, {"generation.top_p": 0.7}, layer="flag")
    # the checkpoint layer may be applied last: it still only fills what nobody set
    cfg = with_checkpoint(cfg, {**CHECKPOINT_LAYER, "generation.num_beams": 5, "generation.top_p": 0.1})
    assert cfg.generation.max_new_tokens == 200  # file > checkpoint
    assert cfg.model.frames == 6                 # file > checkpoint
    assert cfg.generation.num_beams == 3         # --set > file > checkpoint
    assert cfg.generation.top_p == pytest.approx(0.7)  # flag > --set > file
    assert cfg.generation.repetition_penalty == 1.0    # checkpoint > default
    assert cfg.generation.temperature == pytest.approx(0.7)  # default
    assert cfg.layer_of("generation.max_new_tokens").endswith("k.toml")  # a file layer is named by its path
    assert cfg.layer_of("generation.num_beams") == "--set" and cfg.layer_of("generation.top_p") == "flag"
    assert cfg.explicit_keys() == {"generation.max_new_tokens", "generation.num_beams", "generation.top_p", "model.frames"}
    assert cfg.is_explicit("model.frames") and not cfg.is_explicit("model.prompt")


def test_a_flag_declared_with_setting_option_is_the_top_layer(tmp_path):
    import click

    from kvcap.commands.options import config_options, resolve_config, setting_option

    seen = {}

    @click.command()
    @setting_option("--max-new-tokens", "generation.max_new_tokens")
    @setting_option("--siglip", "score.siglip")
    @setting_option("--temperature", "generation.temperature", implies={"generation.do_sample": True})
    @config_options
    def cmd(config_path, overrides):
        cfg = resolve_config(config_path, overrides)
        seen["cfg"] = with_checkpoint(cfg, CHECKPOINT_LAYER)

    path = tmp_path / "k.toml"
    path.write_text("[generation]\nmax_new_tokens = 200\n")
    result = CliRunner().invoke(cmd, ["--config", str(path), "--set", "generation.max_new_tokens=300", "--max-new-tokens", "40"])
    assert result.exit_code == 0, result.output
    cfg = seen["cfg"]
    assert cfg.generation.max_new_tokens == 40 and cfg.layer_of("generation.max_new_tokens") == "flag"
    assert "score.siglip" not in cfg.explicit_keys()  # not given: "did the user name siglip" is no
    result = CliRunner().invoke(cmd, ["--siglip", "/models/siglip2"])
    assert result.exit_code == 0, result.output
    assert seen["cfg"].is_explicit("score.siglip") and seen["cfg"].generation.max_new_tokens == 96
    assert not seen["cfg"].generation.do_sample
    result = CliRunner().invoke(cmd, ["--temperature", "0.3"])
    assert result.exit_code == 0, result.output
    assert seen["cfg"].generation.do_sample and seen["cfg"].layer_of("generation.do_sample") == "flag"
    # the Click type comes from the field's declared range, and the help from its docstring
    result = CliRunner().invoke(cmd, ["--max-new-tokens", "0"])
    assert result.exit_code == 2 and "0 is not in the range x>=1" in result.output
    assert "Longest caption generated" in CliRunner().invoke(cmd, ["--help"]).output


def test_overrides_keep_earlier_provenance_and_do_not_share_it():
    base = apply_overrides(Config(), ["train.seed=1"])
    changed = apply_overrides(base, ["train.seed=2", "train.grad_accum=2"], layer="flag")
    assert base.provenance == {"train.seed": "--set"}
    assert changed.provenance == {"train.seed": "flag", "train.grad_accum": "flag"}


# ---------------------------------------------------------------------------------------------
# Constraints live on the fields; Click choices and the projector registry follow them
# ---------------------------------------------------------------------------------------------


def test_no_side_tables_of_choices_or_ranges():
    import kvcap.config as config

    assert not hasattr(config, "CHOICES") and not hasattr(config, "RANGES") and not hasattr(config, "LIST_CHOICES")


@pytest.mark.parametrize("key, bad, message", [
    ("train.stage1.lr", 2, "must be <= 1"),
    ("generation.top_p", 0, "must be > 0"),
    ("model.frames", 257, "must be <= 256"),
    ("caption.workers", -1, "must be >= 0"),
    ("caption.device", "tpu", "must be one of auto, cpu, cuda"),
    ("caption.quantization", "2bit", "must be one of auto, checkpoint, none, 8bit, 4bit"),
    ("caption.batch_size", 0, "must be >= 1"),
    ("caption.batch_size", "many", "expected a number or auto"),
    ("score.metrics", "meteor,bleu", "unknown item 'bleu'"),
])
def test_declared_constraints_are_enforced(key, bad, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(Config(), {key: bad})


def test_click_types_come_from_the_fields():
    import click

    from kvcap.commands.caption import run
    from kvcap.commands.options import click_type
    from kvcap.config import AUTO, QUANTIZATIONS, USE_CHECKPOINT

    params = {p.name: p for p in run.params}
    assert list(params["quantization"].type.choices) == [AUTO, USE_CHECKPOINT, *QUANTIZATIONS]
    assert list(params["device"].type.choices) == ["auto", "cpu", "cuda"]
    batch = params["batch_size"].type  # a number >= 1 or `auto`, from the field's Union
    assert batch.convert("auto", None, None) == "auto" and batch.convert("3", None, None) == 3
    with pytest.raises(click.BadParameter, match="or one of: auto"):
        batch.convert("0", None, None)
    segment = params["segment"].type
    assert segment.convert("scenes", None, None) == "scenes" and segment.convert("2.5", None, None) == 2.5
    frames = click_type("model.frames")
    assert (frames.min, frames.max) == (1, 256)
    assert click_type("generation.temperature").min_open


def test_projector_names_match_the_registry():
    from kvcap.config import PROJECTOR_NAMES
    from kvcap.model.projectors import PROJECTORS

    assert tuple(PROJECTORS) == PROJECTOR_NAMES


def test_caption_quantization_sentinel_in_one_place():
    from kvcap.config import QUANTIZATIONS, quantization_override

    assert quantization_override("checkpoint") is None and quantization_override(None) is None
    assert [quantization_override(q) for q in QUANTIZATIONS] == list(QUANTIZATIONS)
    from kvcap.model import llm

    assert llm.QUANTIZATIONS is QUANTIZATIONS  # the loader checks against the same tuple
