"""The one JSONL line parser, and the readers built on it.

Every JSONL file kvcap reads (manifests, captions.jsonl, metrics.jsonl, samples.jsonl,
predictions) goes through :func:`iter_jsonl`; readers differ only in what they do with a bad
line (skip it, count it, or raise their own one-line error naming file and line).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Iterator, Union

Decoded = Union[Any, ValueError]
"""A decoded JSON value, or the error that decoding the line raised."""


def iter_jsonl(data: bytes | str, *, complete_only: bool = False, first_line: int = 1) -> Iterator[tuple[int, Decoded]]:
    """(line number, value or decode error) for each non-blank line of `data`.

    `complete_only`: a last line without its newline is a write in progress (or a killed
    writer's torn line) and is not yielded. Values may be any JSON type: callers check for the
    object they expect.
    """
    newline = b"\n" if isinstance(data, bytes) else "\n"
    lines = data.split(newline)  # type: ignore[arg-type]
    if complete_only or not lines[-1]:
        lines = lines[:-1]
    for number, raw in enumerate(lines, start=first_line):
        if not raw.strip():
            continue
        try:
            yield number, json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            yield number, exc


def read_jsonl(path: str | Path, *, strict: bool = False) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file written by `fsutil.append_jsonl`.

    A last line without its newline is a write in progress (or a killed writer) and is skipped.
    Other undecodable lines raise ValueError naming the file and line when `strict`, else are
    skipped.
    """
    path = Path(path)
    with open(path, "rb") as handle:
        data = handle.read()
    records: list[dict[str, Any]] = []
    for number, value in iter_jsonl(data, complete_only=True):
        if isinstance(value, ValueError):
            if strict:
                raise ValueError(f"{path}:{number}: not valid JSON ({value})") from None
        elif isinstance(value, dict):
            records.append(value)
        elif strict:
            raise ValueError(f"{path}:{number}: expected a JSON object")
    return records


def latest_per_video(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{video: its last record}, in the file order of each video's last record.

    The rule for captions.jsonl and its shard parts: a rerun appends, and the newest line for a
    video wins. Lines without `video` are ignored.
    """
    latest: dict[str, dict[str, Any]] = {}
    for record in records:
        if "video" in record:
            key = str(record["video"])
            latest.pop(key, None)  # keep the file order of the latest record
            latest[key] = record
    return latest


def dumps_jsonl(records: Iterable[dict[str, Any]]) -> str:
    """The text of a JSONL file holding `records` (UTF-8 kept readable, one line each)."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def read_json_object(path: str | Path) -> dict[str, Any] | None:
    """The JSON object in `path` (state.json, job.json, summary.json), or None when missing,
    unreadable, half-written or not an object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
