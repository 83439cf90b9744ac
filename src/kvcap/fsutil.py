"""Small file-system primitives that never leave a torn file behind.

Everything kvcap writes that someone else reads while it is being written (subtitles, JSON
state, checkpoints, JSONL logs) goes through here.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator

from kvcap.errors import KvcapError, one_line
from kvcap.records.liveness import process_alive


class OutputError(KvcapError):
    """An output location that can't be created or written (one line naming it)."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates 0600 files; a renamed result should have the usual 0666 & ~umask mode.
_FILE_MODE = 0o666 & ~_umask()


def kvcap_home() -> Path:
    """kvcap's per-user cache root (tiny backbones, token cache): `$KVCAP_HOME`, else `~/.cache/kvcap`."""
    env = os.environ.get("KVCAP_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "kvcap"


# Temp files are named `.<target>.kvcap-<host>-<pid>.<random>.tmp`, so a later run can tell a
# file left by a killed writer (same host, process gone) from one still being written.
_TEMP_TAG = "kvcap-"
_TEMP_RE = re.compile(r"^\..+\.kvcap-(?P<host>[^/]+)-(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp$")


def _owner() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete temp files under `folder` (recursively) whose writer on this host is gone.

    Only files named by `atomic_write_bytes` are considered; ones of live processes (another
    shard writing into the same folder) and of other hosts are left alone. Returns the removed.
    """
    removed: list[Path] = []
    for root, _dirs, files in os.walk(folder):
        for name in files:
            match = _TEMP_RE.match(name)
            if match and not process_alive(int(match["pid"]), match["host"]):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(root, name))
                    removed.append(Path(root, name))
    return removed


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to a temp file beside `path`, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_TEMP_TAG}{_owner()}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a temp directory beside `target`; on success it replaces `target` in one rename.

    On error the temp directory is removed and `target` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
    try:
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def sigint_held() -> Iterator[None]:
    """Hold Ctrl-C until the block is done, then deliver it to whoever handled it before.

    For closing writes (the ledger's compaction, job.json's final status): a second Ctrl-C that
    lands while they run would otherwise leave job.json saying "running" for a job that stopped.
    Off the main thread (where no signal handler can be set) the block just runs.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pressed: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pressed.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pressed:
        if callable(previous):
            previous(signal.SIGINT, None)  # kvcap caption's handler: stop flag, or abort on a second press
        elif previous == signal.SIG_DFL:
            raise KeyboardInterrupt


def append_jsonl(handle, record: dict[str, Any]) -> None:
    """Append one record as a single write of one whole line, then flush to the OS."""
    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    handle.flush()


def repair_jsonl_tail(path: str | Path) -> None:
    """Cut a torn last line (no trailing newline) so appends start on a fresh line."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb+") as handle:
        data = handle.read()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            handle.truncate(cut)


def check_writable_dir(folder: str | Path, what: str = "output", *, keep: bool = False) -> Path:
    """Prove a file can be written in `folder` (creating it to try), or raise `OutputError`.

    Run before any expensive work, so a read-only file system, an immutable folder, a file
    where a folder should be or a parent that can't be created is one line in a second.
    Folders it had to create for the test are removed again (nothing is left behind) unless
    `keep` (several processes checking the same folder at once, as DDP ranks do).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{what} {folder}: exists and is not a folder")
    for attempt in range(3):
        try:
            _probe_write(folder, what, keep)
            return folder
        except FileNotFoundError:  # another process (a shard) removed its own test folder meanwhile
            if attempt == 2:
                raise OutputError(f"{what} {folder}: cannot write there (it keeps disappearing)") from None
    return folder


def _probe_write(folder: Path, what: str, keep: bool) -> None:
    created: list[Path] = []
    try:
        for parent in reversed([folder, *folder.parents]):
            if not parent.exists():
                if parent.is_symlink() or (parent.parent.exists() and not parent.parent.is_dir()):
                    raise OutputError(f"{what} {folder}: {parent.parent} is not a folder")
                parent.mkdir(exist_ok=True)
                if not keep:
                    created.append(parent)
        fd, probe = tempfile.mkstemp(prefix=".kvcap-write-check.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise OutputError(f"{what} {folder}: cannot write there ({exc.strerror or one_line(exc)})") from None
    finally:
        for made in reversed(created):
            with contextlib.suppress(OSError):
                made.rmdir()
