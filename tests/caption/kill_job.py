"""A caption job that can SIGKILL itself at a chosen point (used by test_caption_kill.py).

    python kill_job.py VIDEOS OUT [--kill POINT:N] [--delay SECONDS] [--batch-size N]

Kill points (N = the Nth occurrence, 1-based):
    torn:N           half of the Nth captions.jsonl line is written, then the process dies
    before-record:N  the Nth video's subtitles are written, its record is not
    after-record:N   right after the Nth record line
    subtitle:N       in the middle of writing the Nth subtitle file's temp file
    compact:1        in the middle of the final compaction of captions.jsonl
It uses the fake captioner (with `--delay` per batch), so the only thing exercised is the
pipeline's on-disk behaviour.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from fake_captioner import FakeCaptioner  # noqa: E402

import kvcap.caption.job as job  # noqa: E402
import kvcap.caption.writers as writers  # noqa: E402
from kvcap.caption import CaptionOptions, caption_folder  # noqa: E402


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install(point: str, nth: int) -> None:
    calls = {"n": 0}
    real_append, real_atomic = writers.append_jsonl, job.atomic_write_text

    def hit() -> bool:
        calls["n"] += 1
        return calls["n"] == nth

    if point in ("torn", "before-record", "after-record"):
        def append(handle, record):
            if point == "before-record" and hit():
                die()
            if point == "torn" and hit():
                line = json.dumps(record, ensure_ascii=False) + "\n"
                handle.write(line[: len(line) // 2])
                handle.flush()
                die()
            real_append(handle, record)
            if point == "after-record" and hit():
                die()

        writers.append_jsonl = append
    elif point == "subtitle":
        def atomic(path, text):
            if hit():
                tmp = Path(path).with_name(f".{Path(path).name}.killed.tmp")
                tmp.write_text(text[: len(text) // 2], encoding="utf-8")
                die()
            real_atomic(path, text)

        writers.atomic_write_text = atomic
    elif point == "compact":
        def atomic(path, text):
            if Path(path).suffix == ".jsonl" and hit():
                Path(path).with_name(f".{Path(path).name}.killed.tmp").write_text(text[: len(text) // 2])
                die()
            real_atomic(path, text)

        job.atomic_write_text = atomic  # CaptionsLedger.compact's writer
    else:
        raise SystemExit(f"unknown kill point {point}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("videos")
    parser.add_argument("out")
    parser.add_argument("--kill", default=None)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--batch-size", type=int, default=2)
    args = parser.parse_args()
    if args.kill:
        point, _, nth = args.kill.partition(":")
        install(point, int(nth or 1))
    options = CaptionOptions(formats="srt,vtt", batch_size=args.batch_size, workers=2, checkpoint="fake")
    results = list(caption_folder(args.videos, FakeCaptioner(delay_s=args.delay), args.out, options))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
