"""`caption.segment`: a number of seconds or the word `scenes`, from kvcap.toml, --set and --segment."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from kvcap.cli import main
from kvcap.config import ConfigError, Config, apply_overrides, load_config


def test_segment_takes_a_number_or_scenes(tmp_path):
    path = tmp_path / "kvcap.toml"
    path.write_text('[caption]\nsegment = "scenes"\nscene_max_seconds = 30\n', encoding="utf-8")
    cfg = load_config(path)
    assert cfg.caption.segment == "scenes" and cfg.caption.scene_max_seconds == 30.0
    assert apply_overrides(Config(), ["caption.segment=2"]).caption.segment == 2.0
    assert apply_overrides(Config(), ["caption.segment=scenes"]).caption.segment == "scenes"


@pytest.mark.parametrize("text, reason", [
    ('segment = "shots"', "caption.segment: expected a number or scenes, got 'shots'"),
    ("segment = -1", "caption.segment: must be >= 0"),
    ("segment = true", "caption.segment: expected a number or a word"),
    ("scene_min_seconds = -0.5", "caption.scene_min_seconds: must be >= 0"),
])
def test_a_bad_segment_names_the_file_line_and_key(tmp_path, text, reason):
    path = tmp_path / "kvcap.toml"
    path.write_text(f"[caption]\n{text}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}:2: ") and reason in str(err.value)


def test_segment_flag_rejects_other_words_with_exit_2(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"")
    result = CliRunner().invoke(main, ["caption", str(tmp_path), "--checkpoint", "x", "--segment", "-2"])
    assert result.exit_code == 2 and "x>=0" in result.output and "scenes" in result.output
