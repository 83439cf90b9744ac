"""`kvcap review OUT [--refs MANIFEST]` and `kvcap caption ... --review` as users run them."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from review.conftest import caption_job

from kvcap.cli import main


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def row_values(html: str, attr: str) -> dict[str, str]:
    return dict(re.findall(rf'<article class="v" data-k="([^"]*)"[^>]*? {attr}="([^"]*)"', html))


def test_refs_put_the_reference_and_its_meteor_beside_each_video(zoo_folder, tmp_path):
    from caption.fake_captioner import FakeCaptioner

    from kvcap.metrics.meteor import nltk_meteor

    videos = zoo_folder({"a.mp4": "h264", "sub/b.mp4": "h264", "c.mp4": "h264"})
    out = tmp_path / "out"
    captions = ["바다 위로 해가 진다", "도시의 밤거리에 차가 달린다", "눈 덮인 산"]
    caption_job([videos], out, FakeCaptioner(captions), batch_size=1)
    refs = {"a.mp4": ["바다 위로 붉은 해가 진다", "해가 진다"], "sub/b.mp4": ["밤거리에 차가 많이 달린다"]}
    manifest = videos / "val.jsonl"  # `video` relative to the manifest, as kvcap's manifests are
    manifest.write_text("".join(json.dumps({"id": f"clip{i}", "video": v, "caption": c}, ensure_ascii=False) + "\n"
                                for i, (v, c) in enumerate(refs.items())), encoding="utf-8")
    result = invoke("review", out, "--refs", manifest, "--tokenizer", "whitespace")
    assert result.exit_code == 0, result.output
    html = (out / "review.html").read_text(encoding="utf-8")
    meteor = row_values(html, "data-m")
    by_key = {r["video"]: r["caption"] for r in map(json.loads, (out / "captions.jsonl").read_text().splitlines())}
    for key, references in refs.items():
        expected = nltk_meteor([r.split() for r in references], by_key[key].split())  # nltk's own formula
        assert float(meteor[key]) == pytest.approx(expected, abs=5e-4), key
        assert f'<b>reference</b> {references[0]}</p>' in html
    assert meteor["c.mp4"] == ""  # not in the manifest: no score, not a zero


def test_errors_are_one_line_with_exit_2(tmp_path):
    for args, words in [([tmp_path / "nope"], "no such folder"), ([tmp_path], "no captions.jsonl")]:
        result = invoke("review", *args)
        assert result.exit_code == 2, result.output
        (line,) = result.output.strip().splitlines()
        assert line.startswith(f"Error: {args[0]}: ") and words in line


def test_an_unreadable_manifest_is_exit_2(zoo_folder, tmp_path):
    out = tmp_path / "out"
    caption_job([zoo_folder({"a.mp4": "h264"})], out)
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    result = invoke("review", out, "--refs", tmp_path / "bad.jsonl")
    assert result.exit_code == 2 and "bad.jsonl:1: not valid JSON" in result.output, result.output


def test_a_video_that_cannot_be_sampled_again_exits_1_and_is_named(zoo_folder, tmp_path):
    videos = zoo_folder({"a.mp4": "h264", "b.mp4": "h264"})
    out = tmp_path / "out"
    caption_job([videos], out)
    (videos / "b.mp4").write_bytes(b"not a video any more")
    result = invoke("review", out)
    assert result.exit_code == 1, result.output
    assert "frames not shown: b.mp4:" in result.output and (out / "review.html").is_file()


def test_caption_review_writes_the_page_at_the_end(zoo_folder, tiny_checkpoint, tmp_path):
    """The real tiny checkpoint through `kvcap caption --review`: the page lists every video."""
    videos = zoo_folder({"a.mp4": "h264", "b/c.mp4": "vfr", "bad.mp4": "truncated"})
    out = tmp_path / "out"
    result = invoke("caption", videos, "--checkpoint", tiny_checkpoint, "-o", out, "--review", "--batch-size", "2")
    assert result.exit_code == 1, result.output  # bad.mp4 failed; the page is still written
    assert f"review page: {out / 'review.html'} (2 strips, 0 without frames)" in result.output
    html = (out / "review.html").read_text(encoding="utf-8")
    assert sorted(re.findall(r'<article class="v" data-k="([^"]*)"', html)) == ["a.mp4", "b/c.mp4", "bad.mp4"]
    assert invoke("caption", videos, "--checkpoint", tiny_checkpoint, "-o", "-", "--review").exit_code == 2
