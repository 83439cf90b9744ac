"""`kvcap projectors`: parameter and visual-token counts of every projector, offline."""

from __future__ import annotations

import click

from kvcap.commands.options import config_options, resolve_config


def _human(count: int) -> str:
    """4198400 -> '4.2M', 65536 -> '65.5K'."""
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if count >= scale:
            return f"{count / scale:.1f}{suffix}"
    return str(count)


@click.command()
@config_options
@click.option("--frames", type=click.IntRange(min=1), default=None, help="Frames per clip (default: model.frames).")
@click.option("--vision-dim", type=click.IntRange(min=1), default=None, help="Vision width (default: from the vision model's config).")
@click.option("--patches", type=click.IntRange(min=1), default=None, help="Patch tokens per frame (default: from the vision model's config).")
@click.option("--llm-dim", type=click.IntRange(min=1), default=None, help="LLM hidden size (default: from the LLM's config).")
def projectors(config_path: str | None, overrides: tuple[str, ...], frames: int | None,
               vision_dim: int | None, patches: int | None, llm_dim: int | None) -> None:
    """Compare the projectors for the configured vision encoder and LLM.

    Prints each projector's parameter count and how many visual tokens a clip becomes. Works
    offline: dimensions come from the models' config.json (local directory or Hugging Face
    cache), else from a built-in table of the default backbones, else from the flags. The
    projectors are built on the meta device, so nothing is allocated.
    """
    from rich.table import Table

    from kvcap.console import table_console
    from kvcap.model.dims import llm_hidden, vision_dims

    cfg = resolve_config(config_path, overrides)
    frames = frames or cfg.model.frames
    vision_source = "vision (given)"
    llm_source = "LLM (given)"
    if vision_dim is None or patches is None:
        found_dim, found_patches = vision_dims(cfg.model.vision)
        if patches is None:
            # The CLS token, when kept, is one more token per frame.
            patches = found_patches + (1 if cfg.model.vision_cls == "keep" else 0)
        vision_dim = vision_dim or found_dim
        vision_source = cfg.model.vision
    if llm_dim is None:
        llm_dim = llm_hidden(cfg.model.llm)
        llm_source = cfg.model.llm

    # Heavy imports (torch) only once the cheap checks have passed.
    from kvcap.model.projectors import PROJECTORS, count_projector, projector_kwargs

    table = Table(
        title=f"{vision_source} ({vision_dim}-d, {patches} tokens/frame) -> {llm_source} ({llm_dim}-d), {frames} frames",
        title_justify="left",
    )
    table.add_column("projector")
    table.add_column("parameters", justify="right")
    table.add_column("visual tokens", justify="right")
    table.add_column("settings")
    for name in PROJECTORS:
        args = projector_kwargs(cfg.projector, name)
        label = f"{name} *" if name == cfg.projector.name else name
        settings = " ".join(f"{k}={v}" for k, v in args.items()) or "-"
        try:
            params, tokens = count_projector(name, vision_dim, llm_dim, frames, patches, **args)
        except ValueError as exc:  # e.g. cabstractor on a non-square patch count
            table.add_row(label, "-", "-", f"[red]{exc}[/red]")
            continue
        table.add_row(label, f"{params:,} ({_human(params)})", f"{tokens:,}", settings)
    console = table_console()
    console.print(table)
    console.print("* = the configured projector (projector.name)")
