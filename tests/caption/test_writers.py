"""Writers: SRT/WebVTT golden files, millisecond rounding, parse-back, atomic writes, JSONL log."""

from __future__ import annotations

import html
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fixtures.tools import require_ffmpeg

from kvcap.caption.writers import (
    CaptionsJsonl,
    Segment,
    format_timestamp,
    srt_text,
    to_milliseconds,
    vtt_text,
    write_subtitles,
)
from kvcap.fsutil import remove_stale_temps
from kvcap.records import CaptionRecord
from kvcap.records.formats import subtitle_formats

GOLDEN = Path(__file__).parent / "golden"

# Korean, multi-line with a blank line and padding, a cue past one hour, markup characters,
# an empty cue (left out), rounding edges, a cue past 100 hours, and out-of-order input.
SEGMENTS = [
    Segment(0.0, 1.0005, "맑은 밤의 바다 풍경이다."),
    Segment(3599.9995, 3661.5, "A < B & C --> D"),
    Segment(1.0005, 2.9994, "첫 줄\n\n  둘째 줄  "),
    Segment(5.0, 6.0, "   "),
    Segment(360000.0004, 360001.25, "백 시간 뒤의 자막"),
]


@pytest.mark.parametrize(
    "seconds, ms",
    [
        (0.0, 0),
        (0.0004, 0),
        (0.0005, 1),  # half rounds up, never truncated
        (1.0005, 1001),  # binary 1.0005 is 1.000499...; its decimal value rounds up
        (0.9994, 999),
        (0.9995, 1000),
        (2.9999, 3000),
        (59.9996, 60000),
        (3599.9995, 3600000),
        (3661.5, 3661500),
        (1 / 3, 333),
        (2 / 3, 667),
    ],
)
def test_to_milliseconds_rounds_half_up(seconds, ms):
    assert to_milliseconds(seconds) == ms


@pytest.mark.parametrize(
    "ms, srt_ts, vtt_ts",
    [
        (0, "00:00:00,000", "00:00:00.000"),
        (1001, "00:00:01,001", "00:00:01.001"),
        (59_999, "00:00:59,999", "00:00:59.999"),
        (3_600_000, "01:00:00,000", "01:00:00.000"),
        (3_661_500, "01:01:01,500", "01:01:01.500"),
        (36_000_000 * 10, "100:00:00,000", "100:00:00.000"),
    ],
)
def test_timestamps(ms, srt_ts, vtt_ts):
    assert format_timestamp(ms) == srt_ts
    assert format_timestamp(ms, decimal_marker=".") == vtt_ts


def test_srt_matches_golden_file(tmp_path):
    path = write_subtitles(tmp_path / "out" / "clip.srt", SEGMENTS, "srt")
    assert path.read_bytes() == (GOLDEN / "segments.srt").read_bytes()


def test_vtt_matches_golden_file(tmp_path):
    path = write_subtitles(tmp_path / "out" / "clip.vtt", SEGMENTS, "vtt")
    assert path.read_bytes() == (GOLDEN / "segments.vtt").read_bytes()


EXPECTED_CUES = [
    (0, 1001, "맑은 밤의 바다 풍경이다."),
    (1001, 2999, "첫 줄\n둘째 줄"),
    (3_600_000, 3_661_500, "A < B & C -> D"),
    (360_000_000, 360_001_250, "백 시간 뒤의 자막"),
]


def test_srt_parses_back_with_the_srt_library():
    import srt

    parsed = list(srt.parse(srt_text(SEGMENTS)))
    assert [s.index for s in parsed] == [1, 2, 3, 4]
    got = [(s.start // _ms(), s.end // _ms(), s.content) for s in parsed]
    assert got == EXPECTED_CUES


def _ms():
    import datetime

    return datetime.timedelta(milliseconds=1)


def _vtt_ms(ts: str) -> int:
    hours, minutes, rest = ts.split(":")
    seconds, millis = rest.split(".")
    return ((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + int(millis)


def test_vtt_parses_back_with_webvtt_py(tmp_path):
    webvtt = pytest.importorskip("webvtt")
    path = write_subtitles(tmp_path / "clip.vtt", SEGMENTS, "vtt")
    cues = list(webvtt.read(str(path)))
    got = [(_vtt_ms(c.start), _vtt_ms(c.end), html.unescape(c.text)) for c in cues]
    assert got == EXPECTED_CUES


def test_srt_and_vtt_agree_and_pysubs2_reads_both(tmp_path):
    pysubs2 = pytest.importorskip("pysubs2")
    # pysubs2 reads at most two hour digits, so the 100-hour cue is left out here.
    under_100h = [s for s in SEGMENTS if s.start < 360000]
    srt_file = write_subtitles(tmp_path / "a.srt", under_100h, "srt")
    vtt_file = write_subtitles(tmp_path / "a.vtt", under_100h, "vtt")
    for path in (srt_file, vtt_file):
        events = pysubs2.load(str(path), encoding="utf-8").events
        assert [(e.start, e.end) for e in events] == [(a, b) for a, b, _ in EXPECTED_CUES[:3]]
        assert events[0].plaintext == "맑은 밤의 바다 풍경이다."


def test_invalid_segments_raise_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="segment 2: start -1.0 s is negative"):
        srt_text([Segment(0, 1, "a"), Segment(-1.0, 1, "b")])
    with pytest.raises(ValueError, match="segment 1: end 1.0 s is before start 2.0 s"):
        vtt_text([Segment(2.0, 1.0, "a")])
    with pytest.raises(ValueError, match="finite"):
        srt_text([Segment(0.0, float("nan"), "a")])
    assert not list(tmp_path.iterdir())


def test_zero_length_cue_is_kept_one_millisecond_long():
    assert "00:00:01,000 --> 00:00:01,001" in srt_text([Segment(1.0, 1.0002, "짧음")])


def _big(tag: str, n: int = 20_000) -> list[Segment]:
    """A subtitle file of ~1.5 MB: its write takes long enough for a reader or a kill to land inside it."""
    return [Segment(i, i + 1, f"{tag} 자막 {i} " + "가나다라" * 10) for i in range(n)]


def _child(code: str) -> subprocess.Popen:
    """A real python process running `code` with this kvcap on its path."""
    import kvcap

    env = {**os.environ, "PYTHONPATH": str(Path(kvcap.__file__).resolve().parents[1])}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env, stdout=subprocess.PIPE, text=True)


def test_writes_replace_the_old_file(tmp_path):
    target = tmp_path / "clip.srt"
    target.write_text("old", encoding="utf-8")
    write_subtitles(target, SEGMENTS[:1], "srt")
    assert target.read_text(encoding="utf-8").startswith("1\n00:00:00,000 --> 00:00:01,001\n")
    assert [p.name for p in tmp_path.iterdir()] == ["clip.srt"]  # the temp file was renamed away
    assert subtitle_formats() == ("srt", "vtt", "txt", "tsv")


def test_a_reader_never_sees_a_torn_file(tmp_path):
    """A writer process rewrites a big file over and over with two contents; every read is one of them."""
    target = tmp_path / "clip.srt"
    first, second = srt_text(_big("A")), srt_text(_big("B"))
    write_subtitles(target, _big("A"), "srt")
    child = _child(f"""
        from pathlib import Path
        from kvcap.caption.writers import Segment, write_subtitles
        big = lambda tag: [Segment(i, i + 1, f"{{tag}} 자막 {{i}} " + "가나다라" * 10) for i in range(20_000)]
        both = [big("A"), big("B")]
        print("ready", flush=True)
        while True:
            for segments in both:
                write_subtitles(Path({str(target)!r}), segments, "srt")
        """)
    try:
        assert child.stdout.readline() == "ready\n"
        seen = {first: 0, second: 0}
        deadline = time.monotonic() + 60
        while min(seen.values()) < 3 and time.monotonic() < deadline:
            text = target.read_text(encoding="utf-8")
            assert text in seen, f"torn read: {len(text)} chars, not {len(first)}"
            seen[text] += 1
        assert min(seen.values()) >= 3, seen  # the reads really overlapped the rewrites
        child.send_signal(signal.SIGKILL)  # killed at some point inside its loop
        child.wait(timeout=30)
        assert target.read_text(encoding="utf-8") in seen  # whole, old or new
    finally:
        child.kill()
        child.wait(timeout=30)
        child.stdout.close()


def test_a_writer_killed_mid_write_leaves_the_old_file_and_a_temp_a_rerun_removes(tmp_path):
    target = tmp_path / "clip.srt"
    target.write_text("old", encoding="utf-8")
    # The child stops between writing the temp file and renaming it over the target.
    child = _child(f"""
        import os, time
        from pathlib import Path
        from kvcap.caption.writers import Segment, write_subtitles
        real_fsync = os.fsync
        def fsync_then_stall(fd):
            real_fsync(fd)
            print("written", flush=True)
            time.sleep(600)
        os.fsync = fsync_then_stall
        write_subtitles(Path({str(target)!r}), [Segment(i, i + 1, f"새 자막 {{i}}") for i in range(1000)], "srt")
        """)
    try:
        assert child.stdout.readline() == "written\n"
        temps = [p for p in tmp_path.iterdir() if p != target]
        assert len(temps) == 1
        name = temps[0].name
        assert re.fullmatch(rf"\.clip\.srt\.kvcap-{re.escape(socket.gethostname())}-{child.pid}\.\w+\.tmp", name), name
        assert temps[0].read_text(encoding="utf-8") == srt_text([Segment(i, i + 1, f"새 자막 {i}") for i in range(1000)])
        assert remove_stale_temps(tmp_path) == []  # its writer is alive: left alone
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        child.kill()
        child.wait(timeout=30)
        child.stdout.close()
    assert target.read_text(encoding="utf-8") == "old"  # the crash left the old file intact
    assert remove_stale_temps(tmp_path) == [tmp_path / name]  # the rerun's cleanup finds the orphan
    assert [p.name for p in tmp_path.iterdir()] == ["clip.srt"]


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_ffmpeg_reads_the_files_with_the_same_cues(tmp_path, fmt):
    """ffmpeg decodes each file without complaint; re-muxed to SRT, the cue times are unchanged."""
    import srt

    ffmpeg = require_ffmpeg()  # skipped where missing locally; a failure under CI=true
    path = write_subtitles(tmp_path / f"clip.{fmt}", SEGMENTS, fmt)
    result = subprocess.run(
        [ffmpeg, "-v", "error", "-nostdin", "-i", str(path), "-f", "srt", "-"],
        capture_output=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    assert result.stderr.strip() == b""
    cues = list(srt.parse(result.stdout.decode("utf-8")))
    assert [(c.start // _ms(), c.end // _ms()) for c in cues] == [(a, b) for a, b, _ in EXPECTED_CUES]
    assert [cues[i].content for i in (0, 1, 3)] == [EXPECTED_CUES[i][2] for i in (0, 1, 3)]
    if fmt == "vtt":  # the escaped markup characters come back as written
        assert cues[2].content == "A < B & C -> D"


# --- captions.jsonl ---------------------------------------------------------------------------


def _ok(video: str, caption: str = "맑은 낮의 도시 풍경이다.") -> CaptionRecord:
    return CaptionRecord(
        video=video, status="ok", caption=caption, segments=[Segment(0.0, 4.0, caption)], duration=4.0,
        frame_times=[0.25, 0.75], checkpoint="demo", elapsed_s=0.5,
    )


def test_captions_jsonl_records_resume_and_latest_wins(tmp_path):
    path = tmp_path / "out" / "captions.jsonl"
    with CaptionsJsonl(path) as log:
        assert log.done == {}
        log.append(_ok("a/x.mp4"))
        log.append(CaptionRecord(video="b/x.mp4", status="error", error="b/x.mp4: not a video\nTraceback ..."))
        log.append({"video": "c.mp4", "status": "ok", "caption": "밤"})
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    first = json.loads(lines[0])
    assert list(first) == ["video", "status", "caption", "segments", "duration", "fps", "frame_times", "checkpoint",
                           "elapsed_s", "error", "avg_logprob", "compression_ratio", "suspect"]  # (the last three: issue 26)
    assert first["segments"] == [{"start": 0.0, "end": 4.0, "text": "맑은 낮의 도시 풍경이다."}]
    assert json.loads(lines[1])["error"] == "b/x.mp4: not a video"  # one line
    with CaptionsJsonl(path) as log:
        assert set(log.done) == {"a/x.mp4", "c.mp4"}
        log.append(CaptionRecord(video="a/x.mp4", status="error", error="boom"))  # a redo that failed
        assert set(log.done) == {"c.mp4"}
    with CaptionsJsonl(path) as log:
        assert set(log.done) == {"c.mp4"}


def test_captions_jsonl_repairs_a_torn_last_line(tmp_path):
    path = tmp_path / "captions.jsonl"
    path.write_text(json.dumps(_ok("a.mp4").to_dict(), ensure_ascii=False) + "\n" + '{"video": "b.mp4", "sta', encoding="utf-8")
    with CaptionsJsonl(path) as log:
        assert set(log.done) == {"a.mp4"}
        log.append(_ok("b.mp4"))
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [r["video"] for r in records] == ["a.mp4", "b.mp4"]


def test_captions_jsonl_rejects_bad_records(tmp_path):
    with pytest.raises(ValueError, match="status 'done' is not one of ok, error"):
        CaptionRecord(video="a.mp4", status="done")
    with CaptionsJsonl(tmp_path / "c.jsonl") as log:
        with pytest.raises(ValueError, match="unknown record key"):
            log.append({"video": "a.mp4", "status": "ok", "colour": "red"})
    with pytest.raises(RuntimeError, match="open"):
        CaptionsJsonl(tmp_path / "c.jsonl").append(_ok("a.mp4"))


# --- whisper's txt and tsv --------------------------------------------------------------------


def test_txt_and_tsv_parse_back_to_the_same_cues_as_srt(tmp_path):
    import csv

    import srt

    reference = list(srt.parse(srt_text(SEGMENTS)))  # the cues SRT carries, in order
    txt = write_subtitles(tmp_path / "clip.txt", SEGMENTS, "txt").read_text(encoding="utf-8")
    assert txt.endswith("\n") and "\n\n" not in txt
    assert txt.splitlines() == [" ".join(c.content.splitlines()) for c in reference]
    with open(write_subtitles(tmp_path / "clip.tsv", SEGMENTS, "tsv"), encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert [(int(r["start"]), int(r["end"]), r["text"]) for r in rows] == [
        (c.start // _ms(), c.end // _ms(), " ".join(c.content.splitlines())) for c in reference
    ]
    assert rows[0]["start"] == "0" and rows[0]["end"] == "1001"  # milliseconds, rounded half-up


def test_tsv_keeps_one_row_per_cue_when_text_has_tabs(tmp_path):
    from kvcap.caption.writers import tsv_text

    text = tsv_text([Segment(0.0, 1.5, "왼쪽\t오른쪽"), Segment(1.5, 2.0, "둘째")])
    assert text.splitlines() == ["start\tend\ttext", "0\t1500\t왼쪽 오른쪽", "1500\t2000\t둘째"]
