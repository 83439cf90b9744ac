"""What an AI-Hub label file says: its JSON (UTF-8, or CP949 for some older files), its caption
at the fields the user names (`annotation.description_kr` by default; never a silent fallback to
another field, only a hint naming it), and the split its folders name (Training/Validation/Test,
`1.Training`, TL_/TS_ and VL_/VS_ prefixes). kvcap.data.aihub pairs the labels with videos.
"""

from __future__ import annotations

import json
import re
from typing import Any

from kvcap.errors import KvcapError

# Where a caption may sit in a label file, most specific first. Each path is a tuple of dict
# keys and list indices.
CAPTION_PATHS: tuple[tuple[Any, ...], ...] = (
    ("annotation", "description_kr"),
    ("annotation", "description"),
    ("annotation", "caption"),
    ("annotations", 0, "description_kr"),
    ("annotations", 0, "description"),
    ("annotations", 0, "caption"),
    ("annotation", 0, "description_kr"),
    ("annotation", 0, "description"),
    ("description_kr",),
    ("description",),
    ("caption_kr",),
    ("caption",),
    ("captions",),
    ("text",),
)

# CAPTION_PATHS serves hints only: a skipped label with text at one of those places says so, and
# the user may name it with --caption-field. It is never a silent fallback.
DEFAULT_CAPTION_FIELD = "annotation.description_kr"

# Path components that name a split (lower-cased, a leading "1." dropped), and AI-Hub's prefixes.
_SPLIT_WORDS = {
    "training": "train", "train": "train",
    "validation": "val", "valid": "val", "val": "val",
    "test": "test", "testing": "test",
}
_SPLIT_PREFIX = re.compile(r"^(t[ls]|v[ls])_", re.IGNORECASE)
_NUMBERED = re.compile(r"^\d+[._\-\s]*")


class AIHubImportError(KvcapError, ValueError):
    """The source cannot be imported at all (one line, names the path)."""


def parse_field(spec: str) -> tuple[Any, ...]:
    """`annotations.0.description_kr` -> ("annotations", 0, "description_kr")."""
    steps = [s for s in spec.strip().split(".")]
    if not spec.strip() or any(not s for s in steps):
        raise AIHubImportError(f"--caption-field {spec!r}: expected dotted keys such as {DEFAULT_CAPTION_FIELD}")
    return tuple(int(s) if s.isdigit() else s for s in steps)


def _lookup(data: Any, path: tuple[Any, ...]) -> tuple[bool, Any]:
    node = data
    for step in path:
        if isinstance(step, int) and isinstance(node, list) and len(node) > step:
            node = node[step]
        elif isinstance(step, str) and isinstance(node, dict) and step in node:
            node = node[step]
        else:
            return False, None
    return True, node


def _text(node: Any) -> str | list[str] | None:
    if isinstance(node, str) and node.strip():
        return node.strip()
    if isinstance(node, list):
        refs = [s.strip() for s in node if isinstance(s, str) and s.strip()]
        if refs:
            return refs[0] if len(refs) == 1 else refs
    return None


def label_caption(data: Any, fields: tuple[str, ...] = (DEFAULT_CAPTION_FIELD,)) -> tuple[str | list[str] | None, str]:
    """(caption, "") from the first of `fields` holding text, else (None, why not).

    The reason names each field and what it held (missing, empty, not text) and, when the
    label has text at another well-known place, the `--caption-field` that would use it.
    """
    problems = []
    for spec in fields:
        found, node = _lookup(data, parse_field(spec))
        caption = _text(node) if found else None
        if caption is not None:
            return caption, ""
        if not found:
            problems.append(f"no {spec}")
        elif node is None or isinstance(node, str) or (isinstance(node, list) and all(isinstance(s, str) for s in node)):
            problems.append(f"{spec} is empty")
        else:
            problems.append(f"{spec} is a {type(node).__name__}, not text")
    reason = "; ".join(problems)
    for path in CAPTION_PATHS:
        name = ".".join(str(s) for s in path)
        if name in fields:
            continue
        found, node = _lookup(data, path)
        if found and _text(node) is not None:
            reason += f" (text at {name}: pass --caption-field {name} to use it)"
            break
    return None, reason


def split_from_parts(parts: tuple[str, ...]) -> str | None:
    """The split folders name: Training/Validation/Test (`1.Training` too) or TL_/VL_ prefixes."""
    for part in parts:
        word = _NUMBERED.sub("", part).lower()
        if word in _SPLIT_WORDS:
            return _SPLIT_WORDS[word]
        m = _SPLIT_PREFIX.match(part)
        if m:
            return "train" if m.group(1).lower().startswith("t") else "val"
    return None


def parse_label(raw: bytes) -> tuple[Any | None, str | None]:
    """(parsed JSON, None) or (None, reason)."""
    text = None
    for encoding in ("utf-8-sig", "cp949"):  # AI-Hub files are UTF-8, some older ones CP949
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    if text is None:
        return None, "not UTF-8 or CP949 text"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
