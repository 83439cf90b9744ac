"""What both caption engines (`kvcap caption` in this process, and on a Ray cluster:
kvcap.commands.caption_ray) do around a job: the stdout echo, Ctrl-C while it runs (the first
stops after the current batch), the review page, and the end (the summary, then the exit code,
with the command that resumes an interrupted job)."""

from __future__ import annotations

import shlex
import signal
import sys
import threading
from pathlib import Path

import click

from kvcap.commands.progress import ProgressReporter


def finish(status: str, reporter: "ProgressReporter", *, to_stdout: bool, review=None, notes=()) -> None:
    """The summary and its `notes` (lines after it, e.g. what each Ray worker chose), the review
    page when asked (`review`: (OUT, config)), then the exit code: 130 interrupted (with how to
    resume), 1 some failed."""
    reporter.summary(status, err=to_stdout)
    for line in notes:
        click.echo(line, err=to_stdout)
    if review is not None:
        write_review_page(*review)
    if status == "interrupted" and to_stdout:
        click.echo("interrupted", err=True)
        sys.exit(130)
    if status == "interrupted":
        click.echo(f"interrupted: rerun the same command to resume:\n  {resume_command()}", err=True)
        sys.exit(130)
    if reporter.failures:
        sys.exit(1)


def write_review_page(out_dir: Path, cfg) -> None:
    """The review page of what the job wrote (its frames are decoded again, at thumbnail size)."""
    from kvcap.review import write_review

    report = write_review(out_dir, score_cfg=cfg.score, workers=cfg.caption.workers, backend=cfg.video.backend)
    click.echo(f"review page: {report.page} ({report.strips} strips, {len(report.frame_errors)} without frames)")


def stdout_echo(to_stdout: bool, quiet: bool):
    """JSONL records with `-o -`; cues on a terminal unless --quiet; else nothing on stdout."""
    from kvcap.caption.echo import StdoutEcho

    if to_stdout:
        return StdoutEcho("jsonl")
    if quiet or not sys.stdout.isatty():
        return None
    return StdoutEcho("cues")


def run_job(make_results, stop: threading.Event, reporter: "ProgressReporter") -> str:
    """Drain the pipeline; the first Ctrl-C stops it after the current batch, a second aborts."""

    def on_sigint(signum, frame):  # noqa: ARG001
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        reporter.note("Ctrl-C: stopping after the current batch (press again to abort now)")

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_sigint) if in_main else None
    try:
        for _ in make_results():
            pass
    except KeyboardInterrupt:
        stop.set()
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)
        reporter.close()
    return "interrupted" if stop.is_set() else "finished"


def resume_command() -> str:
    argv = list(sys.argv)
    if argv and argv[0].endswith(("kvcap", "__main__.py", "cli.py")):
        argv[0] = "kvcap"
    return shlex.join(argv)
