"""The textual-free reader: tail-reading, torn lines, deleted dirs, status, ETA, compare rows."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from fixture_runs import NOW, iso, train_rows

from kvcap.records import parse_time
from kvcap.tui.follow import JsonlTail
from kvcap.tui.jobfiles import JobReader, is_job_dir, job_parts
from kvcap.tui.runfiles import RunReader, compare_row, discover, downsample, is_run_dir


def test_tail_skips_a_torn_last_line_until_it_is_complete(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"kind": "train", "step": 1}\n{"kind": "train", "st', encoding="utf-8")
    tail = JsonlTail(path)
    records, _ = tail.poll()
    assert [r["step"] for r in records] == [1]
    assert tail.bad_lines == 0  # the torn line is pending, not bad
    assert tail.poll() == ([], False)  # nothing new yet
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('ep": 2}\n{"kind": "train", "step": 3}\n')
    records, restarted = tail.poll()
    assert [r["step"] for r in records] == [2, 3] and not restarted


def test_tail_reads_only_new_bytes_and_restarts_on_replacement(tmp_path: Path) -> None:
    path = tmp_path / "captions.jsonl"
    path.write_text("".join(json.dumps({"n": i}) + "\n" for i in range(1000)))
    tail = JsonlTail(path)
    assert len(tail.poll()[0]) == 1000
    offset = tail.offset
    assert offset == path.stat().st_size
    with open(path, "a") as handle:
        handle.write('{"n": 1000}\nnot json\n')
    records, _ = tail.poll()
    assert records == [{"n": 1000}] and tail.bad_lines == 1
    # a compaction writes a new, shorter file and renames it over the old one
    new = tmp_path / "tmp.jsonl"
    new.write_text('{"n": "a"}\n')
    os.replace(new, path)
    records, restarted = tail.poll()
    assert restarted and records == [{"n": "a"}]


def test_tail_of_missing_file_is_empty(tmp_path: Path) -> None:
    assert JsonlTail(tmp_path / "nope.jsonl").poll() == ([], False)


def test_run_reader_over_fixture_runs(fixture_dirs) -> None:
    runs, _ = fixture_dirs
    readers = {p.name: RunReader(p) for p in discover([runs], is_run_dir)}
    assert sorted(readers) == ["cabs-stale", "linear-done", "mlp-collapsed", "mlp-running", "perceiver-oom"]
    for reader in readers.values():
        assert reader.poll()
    status = {name: r.status(NOW) for name, r in readers.items()}
    assert status == {"cabs-stale": "stale", "linear-done": "finished", "mlp-collapsed": "finished",
                      "mlp-running": "running", "perceiver-oom": "failed"}
    running = readers["mlp-running"]
    assert running.step_rate() == 0.5  # one step every 2 s
    assert running.eta_s() == 560.0  # (400 - 120) / 0.5
    assert running.best_meteor() == 0.312
    assert readers["mlp-collapsed"].collapsed() and not running.collapsed()
    assert readers["perceiver-oom"].state.error.startswith("CUDA out of memory")
    assert running.config()["projector"]["name"] == "mlp2x_gelu"
    assert len(running.samples) == 3 and "바다" in running.samples[0].prediction
    assert not running.poll()  # nothing changed: nothing re-read


def test_stale_by_dead_pid_and_by_silence(tmp_path: Path) -> None:
    run = tmp_path / "r"
    run.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    state = {"name": "r", "status": "running", "pid": proc.pid, "host": "", "updated": iso(NOW - 1)}
    (run / "state.json").write_text(json.dumps(state))
    reader = RunReader(run)
    reader.poll()
    assert reader.status(NOW) == "stale"  # its process is gone
    state.update(pid=os.getpid(), updated=iso(NOW - 3600))
    (run / "state.json").write_text(json.dumps(state))
    os.utime(run / "state.json", ns=(1, 1))  # force a different mtime than the first write
    reader.poll()
    assert reader.status(NOW) == "stale"  # alive but silent for an hour
    assert reader.status(NOW - 3590) == "running"
    # another host's pid cannot be checked here: only the update time counts
    state.update(pid=proc.pid, host="elsewhere", updated=iso(NOW - 1))
    (run / "state.json").write_text(json.dumps(state))
    os.utime(run / "state.json", ns=(2, 2))
    reader.poll()
    assert reader.status(NOW) == "running"


def test_deleted_run_dir_is_gone_not_an_error(fixture_dirs) -> None:
    runs, _ = fixture_dirs
    reader = RunReader(runs / "linear-done")
    reader.poll()
    shutil.rmtree(runs / "linear-done")
    assert reader.poll() is True
    assert reader.gone and reader.status(NOW) == "gone"
    assert len(reader.evals) == 2  # what was read stays visible
    assert reader.poll() is False


def test_missing_and_broken_files(tmp_path: Path) -> None:
    run = tmp_path / "empty-run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("")
    (run / "state.json").write_text('{"status": "runn')  # being written
    reader = RunReader(run)
    reader.poll()
    assert reader.status(NOW) == "unknown"
    row = reader.row(NOW)
    assert row.step == 0 and row.last_loss is None and row.eta_s is None


def test_thousands_of_rows_are_downsampled(tmp_path: Path) -> None:
    run = tmp_path / "big"
    run.mkdir()
    rows = train_rows(1, range(1, 5001), NOW, 1.0, 1e-3)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    reader = RunReader(run)
    reader.poll()
    xs, ys = reader.curve("loss", limit=300)
    assert len(reader.train) == 5000 and len(xs) == len(ys) == 300
    assert xs[0] < 20 and xs[-1] > 4980
    assert downsample([1.0, 2.0], [3.0, 4.0], 10) == ([1.0, 2.0], [3.0, 4.0])


def test_compare_row_uses_summary_when_present(fixture_dirs) -> None:
    runs, _ = fixture_dirs
    done, collapsed = RunReader(runs / "linear-done"), RunReader(runs / "mlp-collapsed")
    done.poll()
    collapsed.poll()
    row = compare_row(done)
    assert (row.params, row.visual_tokens, row.train_time_s) == (4198400, 4608, 5400)
    assert (row.best["meteor"], row.best["siglip"], row.best["diversity"]) == (0.423, 0.112, 0.581)
    assert not row.collapse
    row = compare_row(collapsed)
    assert (row.params, row.visual_tokens, row.train_time_s) == (None, None, None)
    assert row.collapse and row.projector == "mlp2x_gelu"


def test_job_reader(fixture_dirs) -> None:
    _, out = fixture_dirs
    job = JobReader(out)
    job.poll()
    assert job.status(NOW) == "running"
    assert (job.state.total, job.state.done, job.state.failed) == (100, 40, 3)
    assert job.failures["videos/bad_017.mp4"].error == "corrupt: moov atom not found"
    assert len(job.latest) == 37
    # a rerun that captions a failed video clears its failure
    with open(out / "captions.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"video": "videos/bad_017.mp4", "status": "ok", "caption": "고쳤다"}) + "\n")
    job.poll()
    assert "videos/bad_017.mp4" not in job.failures and job.latest[-1].caption == "고쳤다"


def test_parse_time() -> None:
    assert parse_time("2026-01-15T12:00:00+00:00") == NOW
    assert parse_time("2026-01-15T12:00:00Z") == NOW
    assert parse_time("2026-01-15T12:00:00") == NOW  # naive = UTC
    assert parse_time(NOW) == NOW
    assert parse_time("yesterday") is None and parse_time(None) is None


def test_imports_stay_light() -> None:
    """`kvcap.commands.tui` and the reader load neither textual nor torch."""
    code = ("import sys, kvcap.commands.tui, kvcap.tui.runfiles, kvcap.tui.jobfiles, kvcap.tui.follow, kvcap.tui.format; "
            "print(sorted(m for m in ('textual', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_curves_and_eta_follow_the_current_stage(tmp_path: Path) -> None:
    run = tmp_path / "two-stages"
    run.mkdir()
    rows = train_rows(1, range(1, 51), NOW - 1000, 1.0, 1e-3) + train_rows(2, range(1, 31), NOW - 100, 2.0, 5e-5)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "state.json").write_text(json.dumps({"status": "running", "stage": 2, "step": 30, "total_steps": 130}))
    reader = RunReader(run)
    reader.poll()
    xs, _ = reader.curve("loss")
    assert xs == [float(s) for s in range(1, 31)]  # stage 2 only: its steps start again at 1
    assert reader.step_rate() == 0.5 and reader.eta_s() == 200.0


def test_targets_come_from_the_runs_config(fixture_dirs) -> None:
    runs, _ = fixture_dirs
    reader = RunReader(runs / "linear-done")
    reader.poll()
    assert reader.targets().to_dict() == {"meteor": 0.40, "siglip": 0.10, "diversity": 0.50}
    config = (runs / "linear-done" / "config.toml").read_text().replace("target_meteor = 0.4", "target_meteor = 0.45")
    (runs / "linear-done" / "config.toml").write_text(config)
    reader.poll()
    assert reader.targets().meteor == 0.45
    assert not reader.targets().passes("meteor", reader.evals[-1].meteor)
    assert compare_row(reader).targets.meteor == 0.45  # the compare screen marks by the run's own targets


def test_sharded_job_folder_gives_one_reader_per_shard(tmp_path) -> None:
    """`kvcap caption --shard i/n` writes job.shard-i-of-n.json + captions.shard-i-of-n.jsonl."""
    out = tmp_path / "out"
    out.mkdir()
    for i, done in ((0, 3), (1, 5)):
        state = {"status": "running", "total": 10, "done": done, "ok": done, "failed": 0, "pid": 0}
        (out / f"job.shard-{i}-of-2.json").write_text(json.dumps(state))
        (out / f"captions.shard-{i}-of-2.jsonl").write_text(
            json.dumps({"video": f"v{i}.mp4", "status": "ok", "caption": f"샤드 {i}"}) + "\n"
        )
    assert is_job_dir(out)
    assert job_parts(out) == ["shard-0-of-2", "shard-1-of-2"]
    readers = [JobReader(out, part) for part in job_parts(out)]
    for reader in readers:
        reader.poll()
    assert [r.state.done for r in readers] == [3, 5]
    assert [r.latest[-1].caption for r in readers] == ["샤드 0", "샤드 1"]
    assert readers[1].name == "out [shard-1-of-2]"
