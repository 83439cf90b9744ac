"""The base of every user-facing kvcap error, and the one way to print an exception in one line.

Torch-free and import-free on purpose: `kvcap.cli` catches `KvcapError` around every command.

Exit codes (one policy for every command, applied in `kvcap.cli`):
    0    ok
    1    it ran, but some work failed (a video, a clip, or a target under `--check`)
    2    usage, config or environment (bad option, unwritable output, missing checkpoint, ...)
    130  interrupted (Ctrl-C)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = "Exit status: 0 ok, 1 some work failed, 2 usage/config/environment error, 130 interrupted."

MAX_LINE = 400  # characters of one error line


class KvcapError(Exception):
    """A problem the user can fix; its text is one line naming the file, key or option."""


def one_line(exc: BaseException, limit: int | None = MAX_LINE, first_line: bool = False) -> str:
    """`exc` as one line: whitespace collapsed, the type name when it has no text, cut at `limit`.

    An OSError that names its file reads `<file>: <reason>` (not `[Errno 30] ...: '<file>'`).
    `first_line` keeps only the first non-empty line: for a library error whose later lines are a
    stack trace or advice meant for developers (decord's C++ frames, the hub's long OSErrors).
    """
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        text = f"{exc.filename}: {exc.strerror}"
    else:
        text = str(exc).strip()
        if first_line:
            text = text.splitlines()[0] if text else ""
        text = " ".join(text.split())
    text = text or type(exc).__name__
    if limit is not None and len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


class DeviceError(KvcapError, ValueError):
    """A device asked for that this machine does not have (e.g. `cuda` without CUDA)."""
