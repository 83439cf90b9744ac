"""`kvcap demo`: caption a handful of unseen synthetic clips with the bundled demo model."""

from __future__ import annotations

from pathlib import Path

import click

from kvcap.commands.options import click_type, config_options, resolve_config


@click.command()
@click.option("--out", "out_dir", default="demo-out", show_default=True, type=click.Path(file_okay=False),
              help="Output folder: scenes/ (the clips and their manifest), captions.jsonl, one .srt per clip.")
@click.option("--count", default=6, show_default=True, type=click.IntRange(1, 500), help="Clips to synthesize and caption.")
@click.option("--seed", default=None, type=int, help="Scene seed (default: one the demo recipe never trained on).")
@click.option("--device", type=click_type("caption.device"), default="cpu", show_default=True,
              help="Where the demo model runs (it is tiny: the CPU is plenty).")
@config_options
def demo(out_dir: str, count: int, seed: int | None, device: str, config_path: str | None, overrides: tuple[str, ...]) -> None:
    """Caption synthetic clips the demo model never saw; show them beside the truth; score them.

    \b
    The clips are captioned exactly as `kvcap caption DIR --checkpoint demo` would, and scored
    with the `kvcap score` library (METEOR, diversity) plus the grounding checks (METEOR
    against another clip's reference, attribute accuracy). The demo model knows synthetic
    scenes only; real use trains on real video with CLIP + Qwen3.
    """
    from kvcap.console import table_console
    from kvcap.model.vision import resolve_device
    from kvcap.demo.run import DEMO_SEED, format_clip, run_demo
    from kvcap.metrics.grounding import render_grounding

    from kvcap.fsutil import check_writable_dir

    cfg = resolve_config(config_path, overrides)
    check_writable_dir(out_dir, "--out")
    say = lambda message: click.echo(message, err=True)  # noqa: E731
    result = run_demo(cfg, out_dir, count=count, seed=DEMO_SEED if seed is None else seed,
                      device=str(resolve_device(device)), say=say)
    click.echo("")
    for index, clip in enumerate(result.clips, start=1):
        click.echo("\n".join(format_clip(index, len(result.clips), clip)))
    click.echo("")
    if result.grounding:
        table_console().print(render_grounding(result.grounding))
        s = result.score
        click.echo(f"unique captions {s.get('unique_ratio', 0):.2f} (references {s.get('ref_unique_ratio', 0):.2f}); "
                   f"{result.siglip_note}.")
        if len(result.clips) < 50:
            click.echo(f"({len(result.clips)} clips are a glimpse, not a measurement: "
                       "`scripts/build_demo_model.sh` scores 200 held-out clips.)")
    failed = [c for c in result.clips if c.caption is None]
    click.echo(f"wrote {result.out_dir}/captions.jsonl and {len(result.clips) - len(failed)} .srt files "
               f"(clips and their true descriptions: {result.out_dir}/scenes/manifest.jsonl)")
    _say_subtitle_overflow(Path(result.out_dir) / "job.json")
    if failed:
        raise SystemExit(1)


def _say_subtitle_overflow(job_path: Path) -> None:
    """The one line `kvcap caption` ends with when cues overflow (2-second clips hold ~95 characters)."""
    from kvcap.caption.cue_timing import overflow_note
    from kvcap.records import JobState, read_json_object

    overflow = JobState.from_dict(read_json_object(job_path) or {}).subtitle_overflow
    if overflow:
        click.echo(overflow_note(overflow))
