"""docs/internals.md lists every job.json field (kvcap.records.JobState), so the docs and the
file contract cannot drift apart (issue 22: host, output, shard and error were missing)."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from kvcap.records import JobState

REPO = Path(__file__).resolve().parents[1]


def test_internals_lists_every_job_json_field():
    text = (REPO / "docs" / "internals.md").read_text(encoding="utf-8")
    start = text.index("`OUT/job.json`")
    table = text[start:text.index("\n\n", text.index("| field |", start))]
    documented = {name for row in table.splitlines() if row.startswith("| `")
                  for name in re.findall(r"`([a-z_]+)`", row.split("|")[1])}
    assert documented == {f.name for f in fields(JobState)}
