"""What `kvcap caption` prints while it runs: a tqdm bar on a terminal or one log line per video
otherwise, the errors as they come, and the closing summary (no heavy imports at module level)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

MAX_LISTED_FAILURES = 20


class ProgressReporter:
    """The `progress` callback: a tqdm bar on a terminal, one log line per video otherwise."""

    def __init__(self, *, out_dir: Path | str, checkpoint: str, device: str, batch_size: int, workers: int,
                 shard: Any = None, stream=None, tty: bool | None = None, echo=None, verbose: bool = False):
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.out_dir, self.checkpoint, self.device = out_dir, checkpoint, device
        self.batch_size, self.workers, self.shard = batch_size, workers, shard
        self.bar = None
        self.job = None
        self.echo = echo  # StdoutEcho: captions or records to stdout as each video is written
        self.failures: list[tuple[str, str]] = []
        self.started = time.monotonic()
        self.verbose = verbose
        self.not_videos: list[Path] = []  # filled by the folder scan
        self.engine_noted = False

    def note(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            click.echo(text, file=self.stream)

    def __call__(self, job, result) -> None:
        self.job = job
        if result is None:
            self._start(job)
            return
        if result.skipped:
            return
        if job.engine_note and not self.engine_noted:  # once, after the first batch that met it
            self.engine_noted = True
            self.note(job.engine_note)
        if not result.ok:
            self.failures.append((result.video, result.error or "error"))
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(failed=job.failed, refresh=False)
            if not result.ok:
                self.bar.write(f"error: {result.error}", file=self.stream)
        else:
            width = len(str(job.total))
            # an error names its file already
            status = f"{result.video}  ok  {result.elapsed_s:.2f}s" if result.ok else f"ERROR {result.error}"
            click.echo(f"[{job.done:>{width}}/{job.total}] {status}", file=self.stream)
        if self.echo is not None:
            self.echo(result, self._write_stdout)

    def _write_stdout(self, line: str) -> None:
        """One line to stdout, through the bar when there is one (so it is not drawn over)."""
        if self.bar is not None:
            self.bar.write(line, file=sys.stdout)
        else:
            click.echo(line)
        sys.stdout.flush()

    def _start(self, job) -> None:
        from kvcap.video.listing import plural

        if self.not_videos:
            what = "file that is not a video" if len(self.not_videos) == 1 else "files that are not videos"
            self.note(f"skipped {len(self.not_videos)} {what}{'' if self.verbose else ' (--verbose lists them)'}")
            if self.verbose:
                for path in self.not_videos:
                    self.note(f"  {path}")
        shard = f" · shard {self.shard}" if self.shard else ""
        skipped = f" ({job.skipped} already done)" if job.skipped else ""
        self.note(
            f"captioning {plural(job.total, 'video')}{skipped}{shard} with {self.checkpoint} on {self.device} "
            f"(batch {self.batch_size}, {self.workers} decode workers) -> {self.out_dir}"
        )
        if self.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=job.total - job.skipped, unit="video", desc="caption", file=self.stream,
                            dynamic_ncols=True)
            self.bar.set_postfix(failed=0)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def summary(self, status: str, err: bool = False) -> None:
        """The closing lines (on stderr with `err`, when stdout carries the records)."""
        job = self.job
        if job is None:
            return
        wall = time.monotonic() - self.started
        rate = job.processed / job.elapsed_s if job.elapsed_s > 0 else 0.0
        engine = f", engine {job.engine}" if job.engine else ""
        click.echo(
            f"{'finished' if status == 'finished' else 'stopped'}: {job.ok} ok, {job.failed} failed, "
            f"{job.skipped} skipped of {job.total} in {wall:.1f} s ({rate:.2f} videos/s{engine}) -> {self.out_dir}",
            err=err,
        )
        if job.subtitle_overflow:  # one line: no word was dropped, the spans were too short
            from kvcap.caption.cue_timing import overflow_note

            click.echo(overflow_note(job.subtitle_overflow), err=err)
        if self.failures:
            click.echo(f"failed ({len(self.failures)}):", err=err)
            from kvcap.console import first_of

            errors = [error for _video, error in self.failures]  # each error names its file
            for line in first_of(errors, MAX_LISTED_FAILURES, ' (status "error" in the captions JSONL)'):
                click.echo(f"  {line}", err=err)
