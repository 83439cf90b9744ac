"""Opening a zip archive with its member names read right, and what a damaged member raises.

Zip names carry no encoding of their own: bit 11 of a member's flags (0x800) says "UTF-8", and
without it the format says CP437. Python's zipfile follows the format, so a part zipped on
Korean Windows (AI-Hub's are: their names are CP949 bytes with no UTF-8 flag) reads as
`¼­¿ï_001.mp4` instead of `서울_001.mp4`, in manifests, error lines and the import summary.

:func:`open_zip` re-reads each unflagged, non-ASCII name as CP949 when its bytes decode cleanly
that way, and leaves it as zipfile read it otherwise. zipfile's own `metadata_encoding`
(Python 3.11) is all or nothing: one name that is not CP949 and the whole archive fails to
open. zipfile decodes unflagged names with CP437, which maps every byte, so encoding the name
back to CP437 gives the stored bytes exactly. Only `filename` (and the name index) change:
`orig_filename` stays what the archive holds, which zipfile checks each local header against.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

UTF8_NAME_FLAG = 0x800
"""General purpose bit 11: the member's name is UTF-8."""
LEGACY_NAME_ENCODING = "cp949"
"""How an unflagged name is read when it decodes cleanly: Korean Windows' code page."""

DAMAGED_MEMBER_ERRORS = (zipfile.BadZipFile, zlib.error)
"""What reading a damaged member raises mid-stream (a bad CRC, broken deflate data); a truncated
member raises a plain EOFError, see :func:`is_damaged_member_error`."""


def legacy_name(info: zipfile.ZipInfo) -> str | None:
    """The CP949 reading of an unflagged, non-ASCII member name, or None (keep zipfile's)."""
    if info.flag_bits & UTF8_NAME_FLAG or info.orig_filename.isascii():
        return None
    try:
        return info.orig_filename.encode("cp437").decode(LEGACY_NAME_ENCODING)
    except (UnicodeEncodeError, UnicodeDecodeError):
        return None


def open_zip(path: str | Path) -> zipfile.ZipFile:
    """`zipfile.ZipFile(path)` for reading, with CP949 member names read as such (see above)."""
    zf = zipfile.ZipFile(path)
    for info in zf.infolist():
        name = legacy_name(info)
        if name is None:
            continue
        if zf.NameToInfo.get(info.filename) is info:
            del zf.NameToInfo[info.filename]
        info.filename = name
        zf.NameToInfo[name] = info
    return zf


def is_damaged_member_error(exc: BaseException) -> bool:
    """A zip member that broke while being read: zipfile's CRC error, zlib's, a cut-off member
    (zipfile's plain EOFError, not PyAV's end-of-stream error, which subclasses it)."""
    return isinstance(exc, DAMAGED_MEMBER_ERRORS) or type(exc) is EOFError
