"""One table of output formats (kvcap.records.formats): a format registered there is accepted by
the config, offered by `kvcap caption --help`, written by `-f all` through the real pipeline and
sink, and the README and docs list exactly the registered formats."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from kvcap.records.formats import OutputFormat, format_names, register_format, subtitle_formats, unregister_format

from .fake_captioner import FakeCaptioner

REPO = Path(__file__).resolve().parents[2]


def _upper_text(segments) -> str:
    """The fake format's document: one upper-cased cue text a line, prefixed by its start."""
    return "".join(f"{s.start:.2f} {s.text.upper()}\n" for s in segments)


@pytest.fixture
def fake_format():
    """Register `fake` (a per-video file) for one test, then remove it again."""
    fmt = register_format(OutputFormat("fake", "a test-only format", _upper_text))
    yield fmt
    unregister_format("fake")
    assert "fake" not in format_names()


def test_config_accepts_a_registered_format_and_still_refuses_others(fake_format):
    from kvcap.config import ConfigError, config_from_dict

    cfg = config_from_dict({"caption": {"formats": ["jsonl", "fake"]}}, source="kvcap.toml")
    assert cfg.caption.formats == ["jsonl", "fake"]
    with pytest.raises(ConfigError, match=r"caption.formats: unknown item 'fakes' \(valid: jsonl, srt, vtt, txt, tsv, fake\)"):
        config_from_dict({"caption": {"formats": ["fakes"]}}, source="kvcap.toml")


def test_an_unregistered_format_is_refused_by_the_config():
    from kvcap.config import ConfigError, config_from_dict

    with pytest.raises(ConfigError, match="unknown item 'fake'"):
        config_from_dict({"caption": {"formats": ["fake"]}}, source="kvcap.toml")


def test_caption_help_lists_the_registered_formats(fake_format):
    from kvcap.cli import main

    result = CliRunner().invoke(main, ["caption", "--help"], terminal_width=400)
    assert result.exit_code == 0, result.output
    assert "Comma list of jsonl, srt, vtt, txt, tsv, fake, or `all`" in result.output


def test_format_all_writes_a_registered_format_through_the_pipeline(fake_format, h264_folder, tmp_path):
    from kvcap.caption import CaptionOptions, caption_folder, parse_formats

    assert parse_formats("all") == ("jsonl", "srt", "vtt", "txt", "tsv", "fake")
    out = tmp_path / "out"
    options = CaptionOptions(formats="all", batch_size=2, workers=1, checkpoint="ck")
    assert options.formats == ("jsonl", "srt", "vtt", "txt", "tsv", "fake")
    results = list(caption_folder([h264_folder(2)], FakeCaptioner(lambda b: "밝은 화면"), out, options))
    assert [r.status for r in results] == ["ok", "ok"]
    for stem in ("clip00", "clip01"):
        assert sorted(p.name for p in out.glob(f"{stem}.*")) == sorted(f"{stem}.{f}" for f in subtitle_formats())
        assert (out / f"{stem}.fake").read_text(encoding="utf-8") == "0.00 밝은 화면\n"


def _listed(pattern: str, text: str, where: str) -> list[str]:
    found = re.search(pattern, text)
    assert found, f"{where}: no format list matching {pattern!r}"
    return [name.strip() for name in re.split(r"[,|]", found.group(1)) if name.strip()]


def test_readme_and_docs_list_exactly_the_registered_formats():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    internals = (REPO / "docs" / "internals.md").read_text(encoding="utf-8")
    architecture = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    names = list(format_names())
    assert _listed(r"\[-f ([a-z,]+)\\\|all\]", readme, "README commands table") == names
    assert _listed(r"`all` = ([a-z, ]+) \|", readme, "README captioning table") == names
    assert _listed(r"any\s+per-video one\):\s+([a-z,\s]+)\.", internals, "docs/internals.md") == names
    assert _listed(r"Today's\s+formats:\s+([a-z,\s]+)\.", architecture, "docs/architecture.md") == names
