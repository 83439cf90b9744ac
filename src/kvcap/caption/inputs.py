"""What a caption job reads and the names it writes: the videos under the inputs, each with a
stable output key, the subtitle file names, and the output formats."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from kvcap.records.formats import DEFAULT_FORMATS, LEDGER, format_names


@dataclass(frozen=True)
class VideoInput:
    """A video file and its name in the outputs (posix path relative to its input root)."""

    path: Path
    key: str


def resolve_inputs(paths: Iterable[str | Path], skipped: list[Path] | None = None) -> list[VideoInput]:
    """List the videos under `paths` and give each a stable, clash-free output key.

    One input root (a folder, or files from one folder): keys are paths relative to it. Several
    roots: keys are prefixed with the root folder's name (`a/x.mp4`, `b/x.mp4`), made unique
    with `-2`, `-3` when two roots share a name. A file reached twice is listed once.
    """
    from kvcap.data.inputs import expand_input, input_root  # zip parts and manifests too
    from kvcap.video import list_videos
    from kvcap.video.source import output_key

    roots: list[tuple[Path, list[Path]]] = []  # (root dir, files under it) in input order
    for raw in paths:
        given = Path(raw)
        root = input_root(given)
        files = expand_input(given)
        files = list_videos([given], skipped=skipped) if files is None else files
        for existing_root, existing_files in roots:
            if existing_root.resolve() == root.resolve():
                existing_files.extend(files)
                break
        else:
            roots.append((root, list(files)))

    labels: list[str] = []
    if len(roots) > 1:
        used: dict[str, int] = {}
        for root, _ in roots:
            base = root.resolve().name or "root"
            used[base] = used.get(base, 0) + 1
            labels.append(base if used[base] == 1 else f"{base}-{used[base]}")

    seen: set[Path] = set()
    inputs: list[VideoInput] = []
    for number, (root, files) in enumerate(roots):
        for file in files:
            real = file.resolve()
            if real in seen:
                continue
            seen.add(real)
            rel = file.relative_to(root).as_posix() if file.is_relative_to(root) else file.name
            rel = output_key(rel)  # a zip member `a.zip::b.mp4` is written as `a.zip/b`
            key = f"{labels[number]}/{rel}" if labels else rel
            inputs.append(VideoInput(path=file, key=key))
    return inputs


def subtitle_names(keys: Sequence[str]) -> dict[str, str]:
    """Output stem per key: `a/x.mp4` -> `a/x` (players pair `x.srt` with `x.mp4`).

    Where two videos share a stem (`x.mp4` and `x.mkv` in one folder) both keep their full
    name (`x.mp4`, `x.mkv`) so that neither overwrites the other.
    """
    def stem(key: str) -> str:
        head, _, name = key.rpartition("/")
        base = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
        return f"{head}/{base}" if head else base

    counts: dict[str, int] = {}
    for key in keys:
        counts[stem(key)] = counts.get(stem(key), 0) + 1
    return {key: stem(key) if counts[stem(key)] == 1 else key for key in keys}


def subtitle_path(out_dir: Path, name: str, fmt: str) -> Path:
    return out_dir / f"{name}.{fmt}"


def parse_formats(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """`"jsonl,srt"` / `"all"` / a list -> validated formats (jsonl always included: it is
    the job's ledger that resume reads)."""
    known = format_names()  # the table in kvcap.records.formats, read now: later registrations count
    if value is None:
        items: list[str] = list(DEFAULT_FORMATS)
    elif isinstance(value, str):
        items = [v.strip().lower() for v in value.split(",") if v.strip()]
    else:
        items = [str(v).strip().lower() for v in value]
    if "all" in items:
        items = list(known)
    bad = [v for v in items if v not in known]
    if bad:
        raise ValueError(f"--format {','.join(items)}: unknown format {bad[0]!r} (choose from {', '.join(known)}, or all)")
    return tuple(f for f in known if f in items or f == LEDGER)
