"""Broadcast-style subtitle cues (issue 26): the width rule, where captions break, how time is
shared, overflow, and the files the srt/webvtt/pysubs2 readers and ffmpeg read back."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest
from fixtures.tools import ffmpeg_srt_cues, require_ffmpeg

from kvcap.caption.cue_timing import broadcast_segments, gap_ms, overflow_note
from kvcap.caption.results import CaptionResult
from kvcap.caption.sink import write_outputs
from kvcap.caption.subtitles import (
    CLAUSE,
    SENTENCE,
    WORD,
    SubtitleSettingsError,
    SubtitleStyle,
    break_strength,
    layout_cues,
    text_width,
)
from kvcap.caption.writers import Segment, srt_text, vtt_text

BROADCAST = SubtitleStyle()
# 107 characters, as long as the demo's references (69-125): three sentences, a clause comma.
CAPTION = ("맑은 낮, 넓은 바다 위로 하얀 구름이 천천히 흘러가고 파도가 잔잔하게 일렁인다. "
           "멀리 작은 배 한 척이 보이며 카메라는 왼쪽으로 천천히 움직인다. GPS 기준 3대의 drone이 보인다.")


def _ms(cue: Segment) -> tuple[int, int]:
    return round(cue.start * 1000), round(cue.end * 1000)


# --- the width rule ---------------------------------------------------------------------------


@pytest.mark.parametrize("text, units", [
    ("가", 1), ("한글", 2), ("ㄱ", 1), ("漢", 1),  # Hangul syllables, jamo, CJK: wide, 1 unit
    ("a", 0.5), ("Z", 0.5), ("7", 0.5), (" ", 0.5), (".", 0.5), (",", 0.5), ("?", 0.5), ("%", 0.5),
    ("한글 ABC", 4.0), ("3대의 drone이", 6.5), ("e\u0301", 0.5),  # a combining accent adds nothing
    ("", 0),
])
def test_text_width_counts_hangul_one_and_latin_digits_spaces_punctuation_half(text, units):
    assert text_width(text) == units


# --- where captions break ---------------------------------------------------------------------


@pytest.mark.parametrize("word, strength", [
    ("보인다.", SENTENCE), ("무엇일까?", SENTENCE), ('말했다."', SENTENCE), ("끝!", SENTENCE),
    ("낮,", CLAUSE), ("맑고", CLAUSE), ("보이며", CLAUSE), ("흐리지만", CLAUSE),
    ("바다", WORD), ("3.5", WORD), ("drone이", WORD),
])
def test_break_strength_finds_sentence_and_clause_ends(word, strength):
    assert break_strength(word) == strength


def _words(cues: list[tuple[str, ...]]) -> list[str]:
    return [w for cue in cues for line in cue for w in line.split()]


def test_sentences_get_their_own_cues_before_a_cue_is_filled():
    first, second = "하늘에 하얀 구름이 천천히 흘러간다.", "바다 위로 작은 배 한 척이 지나간다."  # ~17-18 units each
    cues = layout_cues(f"{first} {second}", BROADCAST)
    # Word filling would pull the start of the second sentence into the first cue (it has room).
    assert [" ".join(cue) for cue in cues] == [first, second]
    assert all(len(cue) == 2 for cue in cues)


def test_a_long_sentence_breaks_at_its_clause_then_at_words():
    text = "넓은 바다 위에 하얀 구름이 천천히 흘러가고, 멀리 작은 배 한 척이 천천히 지나가는 맑은 오후이다."
    cues = layout_cues(text, BROADCAST)
    assert " ".join(cues[0]).endswith("흘러가고,")  # the clause end, not wherever the cue filled up
    assert _words(cues) == text.split()


def test_two_short_sentences_share_a_cue_one_line_each():
    assert layout_cues("하늘이 맑다. 바다 위로 배가 지나간다.", BROADCAST) == [("하늘이 맑다.", "바다 위로 배가 지나간다.")]


def test_a_cue_is_cut_into_even_lines_not_at_every_clause_like_ending():
    # 크고 looks like a connective ending (-고) but here means "big"; cutting after it leaves a lone word.
    (cue,) = layout_cues("크고 작은 건물들이 줄지어 서 있다.", BROADCAST)
    assert len(cue) == 2 and min(text_width(line) for line in cue) >= 4


def test_words_are_never_cut_and_an_over_long_word_stands_alone():
    long_word = "가나다라마바사아자차카타파하가나다라마바사"  # 21 units: wider than a line
    cues = layout_cues(f"짧은 말 {long_word} 뒤의 말", BROADCAST)
    lines = [line for cue in cues for line in cue]
    assert long_word in lines  # alone on its line, whole
    assert all(text_width(line) <= 16 for line in lines if line != long_word)
    assert _words(cues) == f"짧은 말 {long_word} 뒤의 말".split()


def test_split_sentences_carry_no_ellipsis_or_dash():
    cues = layout_cues(CAPTION, BROADCAST)
    assert len(cues) > 1
    joined = "".join(line.replace(" ", "") for cue in cues for line in cue)
    assert joined == "".join(CAPTION.split())  # nothing added, nothing lost
    assert "…" not in joined and "..." not in joined and not any(line.startswith("-") for cue in cues for line in cue)


def test_line_width_and_count_are_settings():
    style = SubtitleStyle(max_line_chars=8, max_lines=3)
    cues = layout_cues(CAPTION, style)
    assert all(len(cue) <= 3 for cue in cues) and any(len(cue) == 3 for cue in cues)
    assert all(text_width(line) <= 8 for cue in cues for line in cue if " " in line)


def test_settings_that_cannot_go_together_are_one_line_errors():
    with pytest.raises(SubtitleSettingsError, match="subtitle.min_cue_seconds .* subtitle.max_cue_seconds"):
        SubtitleStyle(min_cue_seconds=8, max_cue_seconds=7)
    with pytest.raises(SubtitleSettingsError, match="subtitle.cue_style"):
        SubtitleStyle(cue_style="karaoke")


# --- time -------------------------------------------------------------------------------------


def test_time_is_shared_in_proportion_to_length():
    short, long = "바다가 보인다.", "넓은 바다 위로 하얀 구름이 천천히 흘러가고 파도가 잔잔하다."  # 7 and 29.5 units
    cues, overflow = broadcast_segments([Segment(0, 6.0, f"{short} {long}")], BROADCAST, 25)
    assert overflow == 0 and [c.text.replace("\n", " ") for c in cues] == [short, long]
    (a0, a1), (b0, b1) = map(_ms, cues)
    assert a0 == 0 and b1 == 6000 - 0  # the segment's span is used from its start to its end
    assert b0 - a1 == gap_ms(BROADCAST, 25) == 80  # two frames at 25 fps
    assert (a1 - a0) / (b1 - b0) == pytest.approx(text_width(short) / text_width(long), abs=0.002)


def test_durations_are_clamped_to_the_limits_and_the_rest_is_blank():
    text = "바다. 하늘이 아주 맑고 구름 한 점 없는 낮이며 바다 위로 배가 지나간다."  # cues of 2.5 and 32 units
    cues, overflow = broadcast_segments([Segment(10.0, 40.0, text)], BROADCAST, 30)
    durations = [b - a for a, b in map(_ms, cues)]
    assert overflow == 0 and len(cues) == 2
    # A 30 s segment: each cue gets its share of the span (less the gap) by width, at most 7 s;
    # the time cut off the long one is left without subtitles, not given to the short one.
    assert durations[1] == 7000 and durations[0] == pytest.approx((30000 - 67) * 2.5 / 34.5, abs=1)
    assert _ms(cues[-1])[1] < 40000
    short, _ = broadcast_segments([Segment(0, 3.0, text)], BROADCAST, 30)  # in proportion "바다." gets 0.22 s
    assert min(b - a for a, b in map(_ms, short)) == 834  # 5/6 s (rounded up to a millisecond)


@pytest.mark.parametrize("fps, gap", [(8, 250), (23.976, 84), (25, 80), (30, 67), (60, 34), (None, 84)])
def test_the_gap_is_two_frames_at_the_clips_rate(fps, gap):
    cues, _ = broadcast_segments([Segment(0, 10.0, CAPTION)], BROADCAST, fps)
    gaps = [_ms(b)[0] - _ms(a)[1] for a, b in zip(cues, cues[1:])]
    assert gap_ms(BROADCAST, fps) == gap and min(gaps) >= gap


def test_the_gap_holds_across_segments():
    segments = [Segment(0, 5.0, "바다 위로 하얀 구름이 흘러간다."), Segment(5.0, 10.0, "파도가 잔잔하게 일렁인다.")]
    cues, overflow = broadcast_segments(segments, BROADCAST, 30)
    assert overflow == 0 and len(cues) == 2
    assert _ms(cues[1])[0] - _ms(cues[0])[1] >= 67 and _ms(cues[1])[0] == 5000


def test_a_span_too_short_keeps_every_word_and_counts_its_cues():
    cues, overflow = broadcast_segments([Segment(0, 2.0, CAPTION)], BROADCAST, 8)  # the demo's 2-second clips
    assert overflow == len(cues) > 1
    assert "".join("".join(c.text.split()) for c in cues) == "".join(CAPTION.split())
    assert _ms(cues[0])[0] == 0 and _ms(cues[-1])[1] == 2000
    assert all(len(c.text.splitlines()) <= 2 and all(text_width(x) <= 16 for x in c.text.splitlines()) for c in cues)
    assert all(_ms(b)[0] >= _ms(a)[1] for a, b in zip(cues, cues[1:]))
    assert overflow_note(3).startswith("3 subtitle cues are shorter than subtitle.min_cue_seconds")


def test_a_tight_span_packs_fuller_cues_before_it_overflows():
    preferred = layout_cues(CAPTION, BROADCAST)
    tight = layout_cues(CAPTION, BROADCAST, tight=True)
    assert len(tight) < len(preferred)
    span = len(tight) * 0.834 + (len(tight) - 1) * 0.067 + 0.01  # room for the tight cut only
    cues, overflow = broadcast_segments([Segment(0, span, CAPTION)], BROADCAST, 30)
    assert overflow == 0 and len(cues) == len(tight)


# --- the outputs ------------------------------------------------------------------------------


def _result(caption: str = CAPTION, duration: float = 12.0, fps: float | None = 25.0) -> CaptionResult:
    return CaptionResult(video="clip.mp4", path=Path("clip.mp4"), status="ok", caption=caption,
                         segments=[{"start": 0.0, "end": duration, "text": caption}], duration=duration, fps=fps)


def test_srt_and_vtt_are_split_while_txt_and_tsv_keep_the_segment(tmp_path):
    import srt

    overflow = write_outputs(tmp_path, "clip", ("jsonl", "srt", "vtt", "txt", "tsv"), _result())
    assert overflow == 0
    cues = list(srt.parse((tmp_path / "clip.srt").read_text(encoding="utf-8")))
    assert len(cues) > 2 and all(len(c.content.splitlines()) <= 2 for c in cues)
    assert (tmp_path / "clip.txt").read_text(encoding="utf-8") == CAPTION + "\n"
    assert (tmp_path / "clip.tsv").read_text(encoding="utf-8").splitlines()[1:] == [f"0\t12000\t{CAPTION}"]


def test_segment_style_is_one_cue_per_segment(tmp_path):
    import srt

    write_outputs(tmp_path, "clip", ("srt",), _result(), SubtitleStyle(cue_style="segment"))
    cues = list(srt.parse((tmp_path / "clip.srt").read_text(encoding="utf-8")))
    assert [(c.start.total_seconds(), c.end.total_seconds(), c.content) for c in cues] == [(0.0, 12.0, CAPTION)]


def test_overflow_is_counted_in_job_json(tmp_path):
    from kvcap.caption.job import JobFile, JobProgress
    from kvcap.records import JobState

    counts = JobProgress(total=1)
    counts.subtitle_overflow += write_outputs(tmp_path, "clip", ("srt",), _result(duration=2.0))
    job = JobFile(tmp_path / "job.json", counts, checkpoint="demo", inputs=["x"], output=str(tmp_path))
    job.close("finished")
    state = JobState.from_dict(json.loads((tmp_path / "job.json").read_text(encoding="utf-8")))
    assert state.subtitle_overflow == counts.subtitle_overflow == len(layout_cues(CAPTION, BROADCAST, tight=True))


def _expected() -> list[tuple[int, int, str]]:
    cues, _ = broadcast_segments([Segment(0, 12.0, CAPTION), Segment(12.0, 13.5, "끝.")], BROADCAST, 25)
    return [(*_ms(c), c.text) for c in cues]


def test_srt_webvtt_and_pysubs2_read_the_broadcast_cues_back(tmp_path):
    import pysubs2
    import srt
    import webvtt

    cues, _ = broadcast_segments([Segment(0, 12.0, CAPTION), Segment(12.0, 13.5, "끝.")], BROADCAST, 25)
    (tmp_path / "c.srt").write_text(srt_text(cues), encoding="utf-8")
    (tmp_path / "c.vtt").write_text(vtt_text(cues), encoding="utf-8")
    expected = _expected()
    got_srt = [(c.start // _td_ms(), c.end // _td_ms(), c.content) for c in srt.parse((tmp_path / "c.srt").read_text(encoding="utf-8"))]
    got_vtt = [(_vtt_ms(c.start), _vtt_ms(c.end), html.unescape(c.text)) for c in webvtt.read(str(tmp_path / "c.vtt"))]
    assert got_srt == got_vtt == expected
    for name in ("c.srt", "c.vtt"):
        events = pysubs2.load(str(tmp_path / name), encoding="utf-8")
        assert [(e.start, e.end, e.plaintext) for e in events] == expected


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_ffmpeg_reads_the_broadcast_cues_back(tmp_path, fmt):
    ffmpeg = require_ffmpeg()
    cues, _ = broadcast_segments([Segment(0, 12.0, CAPTION), Segment(12.0, 13.5, "끝.")], BROADCAST, 25)
    path = tmp_path / f"c.{fmt}"
    path.write_text(srt_text(cues) if fmt == "srt" else vtt_text(cues), encoding="utf-8")
    got = [(round(a * 1000), round(b * 1000), text) for a, b, text in ffmpeg_srt_cues(ffmpeg, path)]
    assert got == _expected()


def _td_ms():
    import datetime

    return datetime.timedelta(milliseconds=1)


def _vtt_ms(stamp: str) -> int:
    hours, minutes, seconds = stamp.split(":")
    return round((int(hours) * 3600 + int(minutes) * 60 + float(seconds)) * 1000)


def test_subtitle_settings_that_cannot_go_together_stop_the_command_before_the_model_loads(h264_folder, tmp_path):
    from click.testing import CliRunner

    from kvcap.cli import main

    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["caption", str(h264_folder(1)), "--checkpoint", "demo", "-o", str(out),
                                       "--set", "subtitle.min_cue_seconds=8"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].endswith(
        "subtitle.min_cue_seconds (8.0) must be at most subtitle.max_cue_seconds (7.0), which must be above 0")
    assert not (out / "job.json").exists()  # nothing started
