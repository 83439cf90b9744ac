"""The page's size budget (kvcap.review.page): markup per video beyond its texts, and the fixed
skeleton, style and script, on a job with long Korean captions and several segments."""

from __future__ import annotations

from html import escape

from review.conftest import caption_job

from kvcap.records import read_jsonl
from kvcap.review import write_review
from kvcap.review.page import HTML_BYTES_PER_VIDEO, HTML_FIXED_BYTES, PageSummary, render_page


def test_fixed_part_within_budget():
    empty = render_page("out", PageSummary(0, 0, 0, 0, 0, None, None, None), [])
    assert len(empty.encode()) <= HTML_FIXED_BYTES


def test_markup_per_video_within_budget(h264_folder_for_review, tmp_path):
    from caption.fake_captioner import FakeCaptioner

    videos = h264_folder_for_review(24)
    out = tmp_path / "out"
    # AI-Hub-length captions (~575 characters), two windows a clip, one broken file
    long_caption = ("맑은 하늘 아래 넓은 바다가 펼쳐져 있고 파도가 잔잔하게 해변으로 밀려온다. " * 12)[:575]
    caption_job([videos], out, FakeCaptioner(lambda b: f"{b:.1f} {long_caption}"), segment=1.0)
    (videos / "broken.mp4").write_bytes(b"not a video")
    caption_job([videos], out, FakeCaptioner(lambda b: f"{b:.1f} {long_caption}"), segment=1.0)
    write_review(out)
    records = read_jsonl(out / "captions.jsonl")
    assert len(records) == 25 and sum(r["status"] == "error" for r in records) == 1
    texts = sum(len(escape(s["text"]).encode()) for r in records for s in r["segments"])
    texts += sum(len(escape(r["error"] or "").encode()) + 2 * len(escape(r["video"]).encode()) for r in records)
    page = (out / "review.html").stat().st_size
    empty = len(render_page(str(out), PageSummary(25, 24, 1, 0, 24, None, None, None), []).encode())
    per_video = (page - empty - texts) / len(records)
    assert per_video <= HTML_BYTES_PER_VIDEO, f"{per_video:.0f} bytes of markup per video"
