"""bench/benchlib.py: each bench's rows go to the end of its own table; other sections stay."""

import importlib.util
from pathlib import Path

BENCHLIB = Path(__file__).resolve().parents[1] / "bench" / "benchlib.py"


def _load():
    spec = importlib.util.spec_from_file_location("benchlib", BENCHLIB)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rows_land_at_the_end_of_their_own_section(tmp_path):
    benchlib = _load()
    path = tmp_path / "RESULTS.md"
    benchlib.append_row("## frames", "| a |\n|---|", "| f1 |", path)
    benchlib.append_row("## score", "| b |\n|---|", "| s1 |", path)
    benchlib.append_row("## frames", "| a |\n|---|", "| f2 |", path)
    text = path.read_text()
    assert text.count("## frames") == 1 and text.count("## score") == 1
    assert text.index("| f2 |") < text.index("## score")  # not appended after another section
    assert text.splitlines()[:7] == ["# Benchmark results", "", "## frames", "", "| a |", "|---|", "| f1 |"]
    assert text.rstrip().endswith("| s1 |")
    path.write_text(text.replace("| f2 |", "| f2 |\n\nNotes on f1 and f2.\n"))
    benchlib.append_row("## frames", "| a |\n|---|", "| f3 |", path)
    lines = path.read_text().splitlines()
    assert lines[lines.index("| f2 |") + 1] == "| f3 |"  # under the table, above the notes written below it
    assert benchlib.git_commit() != ""
