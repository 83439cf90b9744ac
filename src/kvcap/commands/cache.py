"""`kvcap cache build MANIFEST` / `kvcap cache info`: the frozen encoder's feature cache."""

from __future__ import annotations

import json

import click

from kvcap.commands.options import click_type, config_options, resolve_config


@click.group()
def cache() -> None:
    """The feature cache training reads (encoder outputs per clip, under data.cache_dir)."""


@cache.command("build")
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.option("--split", "splits", multiple=True, type=click.Choice(["train", "val", "test"]), help="Only these splits (default: all).")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(1), help="Clips per encoder batch.")
@click.option("--device", default="auto", show_default=True, type=click_type("caption.device"))
@config_options
def build(manifest: str, splits: tuple[str, ...], batch_size: int, device: str, config_path: str | None, overrides: tuple[str, ...]) -> None:
    """Encode every clip of MANIFEST that the cache lacks (model.vision / vision_layer / frames)."""
    from kvcap.data.cache import FeatureCache, fill_cache
    from kvcap.data.manifest import read_manifest
    from kvcap.model.vision import VisionEncoder

    cfg = resolve_config(config_path, overrides)
    items = read_manifest(manifest)
    if splits:
        items = [it for it in items if it.split in splits]
    m = cfg.model
    encoder = VisionEncoder(m.vision, m.vision_layer, m.vision_cls, device, m.dtype)
    store = FeatureCache(cfg.data.cache_dir, encoder.key)
    from tqdm import tqdm

    bar = tqdm(total=len(items), desc="encoding", unit="clip", file=click.get_text_stream("stderr"),
               disable=None)  # None: no bar when stderr is not a terminal
    seen = [0]

    def progress(done: int, total: int) -> None:
        bar.update(done - seen[0])
        seen[0] = done

    report = fill_cache(items, encoder.encode, store, frames=m.frames, size=encoder.image_size, backend=cfg.video.backend,
                        batch_size=batch_size, workers=cfg.data.num_workers, progress=progress)
    bar.close()
    store.flush_stats()
    from kvcap.console import first_of

    for line in first_of([f"skipped {bad.item.id}: {bad.reason}" for bad in report.bad], 20, " skipped"):
        click.echo(line, err=True)
    click.echo(f"{cfg.data.cache_dir}: {report.encoded} encoded, {report.cached_before} already cached, "
               f"{len(report.bad)} bad ({report.seconds:.1f}s)")


@cache.command("info")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_options
def info(as_json: bool, config_path: str | None, overrides: tuple[str, ...]) -> None:
    """Entries, size on disk and hit rate of the cache at data.cache_dir."""
    from kvcap.data.cache import cache_info

    cfg = resolve_config(config_path, overrides)
    report = cache_info(cfg.data.cache_dir)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
        return
    rate = "-" if report.hit_rate is None else f"{report.hit_rate:.1%}"
    click.echo(f"cache:    {report.cache_dir}")
    click.echo(f"entries:  {report.entries}")
    click.echo(f"size:     {report.bytes / 2**20:.1f} MiB")
    click.echo(f"hits:     {report.hits}  misses: {report.misses}  writes: {report.writes}  hit rate: {rate}")
    for encoder, count in sorted(report.by_encoder.items()):
        click.echo(f"  {count:6d}  {encoder}")
