"""`kvcap caption PATH...` (caption videos) and `kvcap caption merge OUT` (join shard parts).

A thin layer over `kvcap.caption`: flags -> config, what can be refused before the model loads,
`CaptionSession.open` (the model, and what `auto` chose), `caption_folder`, the progress output
(kvcap.commands.progress), Ctrl-C handling and the exit code (0 all ok, 1 some failed,
130 interrupted; errors are mapped to 2 by kvcap.cli).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import click

from kvcap.commands.options import LiveHelpOption, click_type, config_options, format_help, resolve_config
from kvcap.commands.caption_job import finish, run_job, stdout_echo
from kvcap.commands.progress import ProgressReporter
from kvcap.commands.sources import SourcePath

NO_CHECKPOINT = (
    "no checkpoint to caption with: pass --checkpoint DIR (a kvcap checkpoint such as "
    "runs/<name>/best, made by `kvcap train --stage 1` then `kvcap train --stage 2`), "
    "set [caption].checkpoint in kvcap.toml, or use `--checkpoint demo` for the bundled demo model"
)
STDOUT = "-"  # `-o -`: JSONL records to stdout, no files, no resume
DEMO_NOTE = ("note: the demo model knows kvcap's synthetic scenes only (drawn sea, mountains, city, fields, "
             "weather, camera motion); on real videos its captions are confident and wrong")


def generation_flags(*, max_new_tokens: int | None = None, prompt: str | None = None,
                     num_beams: int | None = None, temperature: float | None = None) -> dict[str, Any]:
    """The generation flags as `--set`-style {dotted key: value}, the top settings layer (applied
    after `--set`); flags not given are left out. `--temperature T` samples at T (0 = greedy)."""
    out: dict[str, Any] = {}
    if max_new_tokens is not None:
        out["generation.max_new_tokens"] = max_new_tokens
    if num_beams is not None:
        out["generation.num_beams"] = num_beams
    if temperature is not None:
        out["generation.do_sample"] = temperature > 0
        if temperature > 0:
            out["generation.temperature"] = temperature
    if prompt is not None:
        out["model.prompt"] = prompt
    return out




class DefaultCommandGroup(click.Group):
    """A group whose first argument falls back to a default subcommand.

    `kvcap caption ./videos` runs `run`; `kvcap caption merge OUT` runs `merge`. (A folder
    literally named `merge` is reached as `./merge`.)
    """

    def __init__(self, *args: Any, default_command: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.default_command = default_command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or args[0] not in self.commands:
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


class _DefaultContext(click.Context):
    @property
    def command_path(self) -> str:
        # Usage lines and "Try ... --help" hints read `kvcap caption`, as users type it.
        return self.parent.command_path if self.parent is not None else super().command_path


class DefaultSubcommand(click.Command):
    """The group's default subcommand: shown as the group itself (`kvcap caption [OPTIONS] PATHS...`)."""

    context_class = _DefaultContext


@click.group(cls=DefaultCommandGroup, default_command="run")
def caption() -> None:
    """Caption videos with a trained checkpoint (captions.jsonl + SRT/VTT)."""


@caption.command("run", cls=DefaultSubcommand)
@click.argument("paths", nargs=-1, required=True, type=SourcePath())  # files, folders, .zip, manifests, a.zip::b.mp4
@click.option("--checkpoint", default=None, metavar="DIR",
              help="kvcap checkpoint directory, or `demo` (default: [caption].checkpoint).")
@click.option("-o", "--output", default=None, metavar="OUT", help="Output folder (default: [caption].output).")
@click.option("-f", "--format", "formats", default=None, metavar="LIST", cls=LiveHelpOption, help_from=format_help)
@click.option("--batch-size", type=click_type("caption.batch_size"), default=None,
              help="Videos (or windows) per generation batch, or `auto` (GPU: the largest that fits; CPU: 4).")
@click.option("--frames", type=click_type("model.frames"), default=None, help="Frames per clip (default: the checkpoint's).")
@click.option("--segment", type=click_type("caption.segment"), default=None, metavar="SECONDS|scenes",
              help="Caption fixed windows of this length, one caption each (0 = whole clip), or `scenes`: "
                   "one caption per detected shot.")
@click.option("--shard", default=None, metavar="i/n",
              help="Caption every n-th video starting at i (0-based); under `accelerate launch` RANK/WORLD_SIZE.")
@click.option("--overwrite", is_flag=True, help="Caption again videos that are already ok.")
@click.option("--device", type=click_type("caption.device"), default=None,
              help="auto = CUDA when present, else CPU.")
@click.option("--quantization", type=click_type("caption.quantization"), default=None,
              help="LLM weights: auto (GPU: none when it fits, else 4bit; CPU: as trained), as trained "
                   "(checkpoint), or none/8bit/4bit; none is fastest where it fits.")
@click.option("--workers", type=click_type("caption.workers"), default=None,
              help="Background decoding threads, or `auto` (two per core, at most 16; FFmpeg threads split between them).")
@click.option("--backend", type=click_type("video.backend"), default=None, help="Video decoder.")
@click.option("--cluster", type=click_type("caption.cluster"), default=None,
              help="local = this process; ray = a Ray cluster: CPU decode tasks feed one captioner per GPU "
                   "(needs kvcap[ray]; see [ray] in kvcap.toml).")
@click.option("-q", "--quiet", is_flag=True, help="Do not print captions on the terminal as they are written.")
@click.option("--max-new-tokens", type=click_type("generation.max_new_tokens"), default=None, help="Longest caption, in tokens.")
@click.option("--prompt", default=None, metavar="TEXT", help="Instruction given with the video (default: the checkpoint's).")
@click.option("--num-beams", type=click_type("generation.num_beams"), default=None, help="Beam search width (1 = greedy or sampling).")
@click.option("--temperature", type=click.FloatRange(min=0), default=None,
              help="Sample at this temperature (0 = greedy).")
@click.option("--cue-style", type=click_type("subtitle.cue_style"), default=None,
              help="srt/vtt cues: broadcast (lines of 16 Hangul, 2 a cue; the default) or segment (one per segment).")
@click.option("--max-line-width", type=click_type("subtitle.max_line_chars"), default=None, metavar="UNITS",
              help="Broadcast cues: longest line (Hangul 1 unit; Latin, digits, spaces, punctuation 1/2).")
@click.option("--max-line-count", type=click_type("subtitle.max_lines"), default=None, metavar="N",
              help="Broadcast cues: most lines per cue.")
@click.option("-v", "--verbose", is_flag=True, help="List the files passed over because they are not videos.")
@click.option("--review", "review_page", is_flag=True,
              help="Also write OUT/review.html at the end (as `kvcap review OUT`: frames beside each caption).")
@config_options
def run(paths: tuple[Path, ...], checkpoint: str | None, output: str | None, formats: str | None,
        batch_size: int | str | None, frames: int | None, segment: float | None, shard: str | None,
        overwrite: bool, device: str | None, quantization: str | None, workers: int | str | None, backend: str | None,
        cluster: str | None, quiet: bool, max_new_tokens: int | None, prompt: str | None, num_beams: int | None,
        temperature: float | None, cue_style: str | None, max_line_width: int | None, max_line_count: int | None,
        verbose: bool, review_page: bool, config_path: str | None, overrides: tuple[str, ...]) -> None:
    """Caption every video under PATHS: folders (searched recursively), video files, zips (read
    in place), zip members (a.zip::b.mp4) and manifests (.jsonl: their clips' videos).

    \b
      kvcap caption ./videos --checkpoint runs/x/best -o out --format jsonl,srt
      kvcap caption ./videos -o out --shard 0/4    shard 0 of 4 (one per GPU or machine)
      kvcap caption merge out                       join the shard parts into captions.jsonl
      kvcap caption clip.mp4 --segment scenes       one cue per shot
      kvcap caption ./videos -o - | jq .caption     JSONL records on stdout (no files, no resume)

    Writes OUT/captions.jsonl (one record per video), OUT/<path>.srt/.vtt/.txt/.tsv mirroring the
    input tree, and OUT/job.json. Reruns skip videos already ok (--overwrite redoes them); Ctrl-C
    stops after the current batch. `--cluster ray` runs the same job on a Ray cluster (one
    captioner per GPU, decoding on every node's CPUs). Exit status: 0 all ok, 1 some failed, 2 usage, config or
    environment error (unwritable OUT, missing checkpoint, no videos), 130 interrupted.
    """
    format_list, shard_spec = _parse_flags(formats, shard)
    cfg = resolve_config(config_path, overrides, flags={
        "caption.checkpoint": checkpoint, "caption.output": output, "caption.formats": format_list,
        "caption.batch_size": batch_size, "caption.segment": segment, "caption.device": device,
        "caption.quantization": quantization, "caption.workers": workers, "video.backend": backend,
        "subtitle.cue_style": cue_style, "subtitle.max_line_chars": max_line_width, "subtitle.max_lines": max_line_count,
        "caption.cluster": cluster,
        **generation_flags(max_new_tokens=max_new_tokens, prompt=prompt, num_beams=num_beams, temperature=temperature),
    })
    out_dir = _check_before_loading(cfg, paths, frames, format_list, output_flag=output is not None, review=review_page)
    if cfg.caption.cluster == "ray":  # the driver loads no model: kvcap.commands.caption_ray
        from kvcap.commands.caption_ray import run_ray

        return run_ray(paths, cfg, out_dir, frames, shard_spec, overwrite, quiet, verbose, review=review_page)

    from kvcap.caption.session import CaptionSession

    # auto quantization and batch size; the checkpoint's frames/prompt/generation below what the user set
    session = CaptionSession.open(cfg)
    click.echo(session.describe(), err=True)
    options = session.caption_options(frames=frames, shard=shard_spec, overwrite=overwrite)
    reporter = ProgressReporter(out_dir=out_dir or "stdout", checkpoint=session.checkpoint_id,
                                device=session.device, batch_size=options.batch_size, workers=options.workers,
                                shard=shard_spec, echo=stdout_echo(out_dir is None, quiet), verbose=verbose)
    stop = threading.Event()
    status = run_job(lambda: _caption_folder(paths, session, out_dir, options, reporter, stop), stop, reporter)
    finish(status, reporter, to_stdout=out_dir is None, review=(out_dir, cfg) if review_page else None)


def _parse_flags(formats: str | None, shard: str | None):
    """--format and --shard (or RANK/WORLD_SIZE) parsed, a bad value naming its flag -> (formats, shard)."""
    from kvcap.caption.inputs import parse_formats
    from kvcap.caption.shard import ShardError, parse_shard, shard_from_env

    try:
        format_list = list(parse_formats(formats)) if formats is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc).split(": ", 1)[-1], param_hint="--format") from None
    try:
        shard_spec = parse_shard(shard) if shard is not None else shard_from_env()
    except ShardError as exc:
        raise click.BadParameter(str(exc).split(": ", 1)[-1], param_hint="--shard") from None
    return format_list, shard_spec


def _check_before_loading(cfg, paths, frames: int | None, format_list, *, output_flag: bool,
                          review: bool = False) -> Path | None:
    """What can be refused in a second, before the model loads (a minute for an 8B LLM): no
    checkpoint, `-o -` with other formats or --review, an unwritable OUT, --frames the projector does not
    take, `[subtitle]` values that cannot go together, no video -> OUT (None with `-o -`)."""
    from kvcap.caption.subtitles import SubtitleStyle

    if not cfg.caption.checkpoint:
        raise click.UsageError(NO_CHECKPOINT)
    to_stdout = cfg.caption.output == STDOUT
    if to_stdout and format_list and set(format_list) != {"jsonl"}:
        raise click.UsageError("-o - writes the JSONL records to stdout; other --format files need an output folder")
    if to_stdout and review:
        raise click.UsageError("--review writes OUT/review.html; it needs an output folder, not -o -")
    out_dir = None if to_stdout else Path(cfg.caption.output)
    if out_dir is not None:
        from kvcap.fsutil import check_writable_dir

        check_writable_dir(out_dir, "--output" if output_flag else "caption.output")
    from kvcap.model.checkpoint import read_spec  # kvcap.json, read without torch

    _check_frames(cfg.caption.checkpoint, read_spec(cfg.caption.checkpoint), frames)
    SubtitleStyle.from_config(cfg.subtitle)  # min above max: one line, exit 2 (a KvcapError)
    _check_any_video(paths)
    if cfg.caption.checkpoint == "demo":
        click.echo(DEMO_NOTE, err=True)
    return out_dir


def _caption_folder(paths, session, out_dir, options, reporter, stop):
    from kvcap.caption.pipeline import caption_folder
    from kvcap.caption.results import PipelineStats

    stats = PipelineStats()
    results = caption_folder(list(paths), session.captioner, out_dir, options, progress=reporter, stop=stop,
                             stats=stats, skipped=reporter.not_videos)
    stats_path = os.environ.get("KVCAP_CAPTION_STATS")  # bench/caption_e2e.py reads where the time went
    return session.write_stats(results, stats, stats_path) if stats_path else results


def _check_any_video(paths: tuple[Path, ...]) -> None:
    """No video under PATHS is a one-line error before the model loads (a minute for an 8B LLM);
    the job's own plan lists them again and keeps the same check for library callers."""
    from kvcap.caption.inputs import resolve_inputs
    from kvcap.video.listing import NoVideosError

    not_videos: list[Path] = []
    if not resolve_inputs(list(paths), not_videos):
        raise NoVideosError(paths, not_videos)


def _check_frames(checkpoint: str, spec: dict[str, Any], frames: int | None) -> None:
    """Every projector is built for the frame count it was trained on: refuse another, up front."""
    trained = spec.get("frames")
    if frames is not None and trained is not None and frames != trained:
        raise click.BadParameter(f"{checkpoint} was trained on {trained} frames per clip and its projector "
                                 f"takes only that; got {frames} (leave --frames out to use {trained})",
                                 param_hint="--frames")


@caption.command("merge")
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--shards", type=click.IntRange(min=1), default=None, metavar="N",
              help="Join the parts of this shard count (needed only when parts of several counts exist).")
def merge(out: Path, shards: int | None) -> None:
    """Join captions.shard-i-of-n.jsonl parts in OUT into OUT/captions.jsonl."""
    from kvcap.caption.shard import merge_shards

    report = merge_shards(out, shards)  # a ShardError is one line, printed by kvcap.cli
    from kvcap.video.listing import plural

    click.echo(f"merged {plural(len(report.parts), 'part')}: {plural(report.records, 'video')} "
               f"({report.ok} ok, {report.failed} failed) -> {report.path}")
