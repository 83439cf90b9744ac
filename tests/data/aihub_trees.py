"""Small AI-Hub trees from real tiny clips (imported as `aihub_trees` by tests/data).

    aihub_layout(root, clip, ...)   1.Training / 2.Validation, 라벨링데이터 / 원천데이터, TL_/TS_/VL_/VS_
                                    parts: one unpacked, one zipped STORED, one zipped DEFLATED
    flat_layout(root, clip, stems)  labels/ + videos/, videos in a stored zip, labels in a zip

Captions are Korean sentences: "<stem> 장면입니다."
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

TRAIN = "1.Training"
VAL = "2.Validation"
LABELS = "라벨링데이터"
SOURCES = "원천데이터"


def label_json(caption: str | None, **annotation) -> str:
    note = dict(annotation)
    if caption is not None:
        note["description_kr"] = caption
    return json.dumps({"info": {"fps": 15}, "annotation": note}, ensure_ascii=False)


def caption_of(stem: str) -> str:
    return f"{stem} 장면입니다."


class _CP949Name(zipfile.ZipInfo):
    """A member named as Korean Windows' zip tools name it: CP949 bytes, no UTF-8 flag (0x800)."""

    def _encodeFilenameFlags(self):  # zipfile would write UTF-8 and set the flag
        return self.filename.encode("cp949"), self.flag_bits & ~0x800


def write_part(folder: Path, name: str, files: dict[str, bytes | str | Path], zipped: str | None,
               names: str = "utf-8") -> Path:
    """Files into `folder/name/` (zipped None), or into `folder/name.zip` ("stored" / "deflated");
    `names="cp949"` writes the zip's member names as AI-Hub's parts have them (CP949, unflagged)."""
    folder.mkdir(parents=True, exist_ok=True)
    if zipped is None:
        for member, data in files.items():
            target = folder / name / member
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(data, Path):
                shutil.copyfile(data, target)
            else:
                target.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
        return folder / name
    mode = zipfile.ZIP_STORED if zipped == "stored" else zipfile.ZIP_DEFLATED
    archive = folder / f"{name}.zip"
    with zipfile.ZipFile(archive, "w", mode) as zf:
        for member, data in files.items():
            if names == "cp949":
                info = _CP949Name(member, date_time=(2024, 1, 1, 0, 0, 0))
                info.compress_type = mode
                zf.writestr(info, data.read_bytes() if isinstance(data, Path) else data)
            elif isinstance(data, Path):
                zf.write(data, member)
            else:
                zf.writestr(member, data)
    return archive


def aihub_layout(root: Path, clip: Path, parts: dict[str, tuple[str, list[str], str | None]]) -> dict[str, str]:
    """parts: {"01": ("train" | "val", stems, None | "stored" | "deflated")}. Returns {stem: split}.

    Part "01" of train is written as TL_01 (labels) + TS_01 (videos) under 1.Training, and so on.
    Labels of a zipped part are zipped too (always deflated: JSON compresses well).
    """
    splits = {}
    for number, (split, stems, zipped) in parts.items():
        top, l_prefix, s_prefix = (TRAIN, "TL", "TS") if split == "train" else (VAL, "VL", "VS")
        write_part(root / top / LABELS, f"{l_prefix}_{number}",
                   {f"{stem}.json": label_json(caption_of(stem)) for stem in stems},
                   None if zipped is None else "deflated")
        write_part(root / top / SOURCES, f"{s_prefix}_{number}", {f"{stem}.mp4": clip for stem in stems}, zipped)
        splits.update({stem: split for stem in stems})
    return splits


def flat_layout(root: Path, clip: Path, stems: list[str], zipped: str | None = "stored") -> None:
    """labels/<stem>.json + videos/<stem>.mp4 (the videos in videos/part.zip when `zipped`)."""
    write_part(root, "labels", {f"{stem}.json": label_json(caption_of(stem)) for stem in stems}, None)
    if zipped is None:
        write_part(root, "videos", {f"{stem}.mp4": clip for stem in stems}, None)
    else:
        write_part(root / "videos", "part", {f"clips/{stem}.mp4": clip for stem in stems}, zipped)
