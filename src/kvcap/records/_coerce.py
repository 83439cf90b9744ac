"""Lenient field readers shared by every `from_dict`: a wrong type or a missing key gives the
neutral default, never an exception, so a half-written or older file still reads."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any


def utc_now() -> str:
    """ISO-8601 UTC, seconds precision: the `started` / `updated` / `time` stamps on disk."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def parse_time(value: Any) -> float | None:
    """Epoch seconds from an ISO-8601 string (naive = UTC) or a number; None when absent/bad."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    return None


def num(value: Any) -> float | None:
    """A finite number (bools excluded) as float, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def opt_num(value: Any) -> float | int | None:
    """A finite number kept as written (int stays int), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def integer(value: Any, default: int = 0) -> int:
    number = num(value)
    return int(number) if number is not None else default


def text(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def opt_text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def stage(value: Any) -> int | str:
    """A row's `stage` (1, 2; a string from older files); "" when absent."""
    return value if isinstance(value, (int, str)) and not isinstance(value, bool) else ""


def stage_number(value: Any) -> int:
    """`stage` as an int for comparisons; rows without one count as stage 1."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return 1


def str_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
