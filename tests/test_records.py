"""kvcap.records: each file contract has one definition, round-trips, reads old files, and the
rules over them (best eval, targets, liveness) give every reader the same answer."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kvcap.records import (
    SEED_TARGETS,
    CaptionRecord,
    EvalRow,
    JobState,
    RunState,
    RunSummary,
    SampleRow,
    Targets,
    TrainRow,
    iter_jsonl,
    latest_per_video,
    live_status,
    read_jsonl,
)

SRC = Path(__file__).resolve().parents[1] / "src" / "kvcap"
RECORDS = SRC / "records"

# Each contract and the one module that defines it.
CONTRACT_CLASSES = {
    "CaptionRecord": "caption.py", "JobState": "caption.py", "RunState": "run.py", "TrainRow": "run.py",
    "TrainPoint": None, "EvalRow": "run.py", "SampleRow": "run.py", "Sample": None, "RunSummary": "run.py",
    "Targets": "targets.py", "CompareFigures": "run.py",
}
CONTRACT_FUNCTIONS = {
    "read_jsonl": "jsonl.py", "iter_jsonl": "jsonl.py", "latest_per_video": "jsonl.py", "read_json_object": "jsonl.py",
    "read_json_file": None, "best_eval": "run.py", "select_best": "run.py", "is_better": "run.py",
    "compare_figures": "run.py", "pid_alive": "liveness.py", "live_status": "liveness.py", "parse_time": "_coerce.py",
    "utc_now": "_coerce.py",
}


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text(encoding="utf-8"))) for p in sorted(SRC.rglob("*.py"))]


def test_each_contract_is_defined_once_in_records() -> None:
    where: dict[str, list[str]] = {}
    for path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name in CONTRACT_CLASSES:
                where.setdefault(node.name, []).append(str(path.relative_to(SRC)))
            if isinstance(node, ast.FunctionDef) and node.name in CONTRACT_FUNCTIONS and node.col_offset == 0:
                where.setdefault(node.name, []).append(str(path.relative_to(SRC)))
    expected = {name: [f"records/{home}"] for name, home in {**CONTRACT_CLASSES, **CONTRACT_FUNCTIONS}.items() if home}
    assert where == expected


def _number(node: ast.AST | None) -> bool:
    """A numeric literal (`0.4`, `-1`), not a bool."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool)


_TARGET_WORDS = ("target", "seed", "mark")


def _target_tables(node: ast.AST) -> list[ast.Dict]:
    """Dict literals that `node` files under a name saying they hold targets: `TARGETS = {...}`,
    `f(targets={...})`, `{"targets": {...}}`, `return {...}` in `def seed_targets()`."""
    def says(text: str | None) -> bool:
        return bool(text) and any(word in text.lower() for word in _TARGET_WORDS)

    pairs: list[tuple[str | None, ast.AST | None]] = []
    if isinstance(node, ast.Assign):
        pairs = [(ast.unparse(t), node.value) for t in node.targets]
    elif isinstance(node, ast.AnnAssign):
        pairs = [(ast.unparse(node.target), node.value)]
    elif isinstance(node, ast.Call):
        pairs = [(kw.arg, kw.value) for kw in node.keywords]
    elif isinstance(node, ast.Dict):
        pairs = [(k.value if isinstance(k, ast.Constant) and isinstance(k.value, str) else None, v)
                 for k, v in zip(node.keys, node.values)]
    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        pairs = [(node.name, r.value) for r in ast.walk(node) if isinstance(r, ast.Return)]
    return [value for name, value in pairs if says(name) and isinstance(value, ast.Dict)]


def _target_spellings(tree: ast.Module, metrics: dict[str, str]) -> list[int]:
    """Lines where a module writes a metric's pass mark itself instead of reading the metric
    table (`metrics` = name -> label). Structural, whatever the number is:
    `target_meteor = 0.4` / `meteor: float = 0.4` (a name or attribute that is the metric, or
    `target_`/`_target` with it), `TARGETS = {"meteor": 0.4}` (a table under a name, key or
    keyword that says target, seed or mark), `f(meteor=0.4)` / `f(target_meteor=0.4)`,
    `MetricSpec(..., 0.4, ...)` / `Targets(0.4)`, and text such as `"METEOR > 0.40"`."""
    spellings = {form for m in metrics for form in (m, f"target_{m}", f"{m}_target", f"seed_{m}")}
    texts = [re.compile(rf"\b{re.escape(word)}\s*(>=?|≥)\s*\d") for m, label in metrics.items() for word in (m, label)]

    def named(target: ast.AST) -> bool:
        leaf = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        return leaf.lower() in spellings

    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and _number(node.value):
            if any(named(t) for t in ([node.target] if isinstance(node, ast.AnnAssign) else node.targets)):
                found.append(node.lineno)
        for value in _target_tables(node):  # {"meteor": 0.4} where a name says it holds targets
            if any(isinstance(k, ast.Constant) and k.value in metrics and _number(v) for k, v in zip(value.keys, value.values)):
                found.append(value.lineno)
        if isinstance(node, ast.Call):
            callee = ast.unparse(node.func).rsplit(".", 1)[-1]
            if any(kw.arg and kw.arg.lower() in spellings and _number(kw.value) for kw in node.keywords) or (
                    callee in ("MetricSpec", "Targets") and (any(_number(a) for a in node.args)
                                                              or any(_number(kw.value) for kw in node.keywords))):
                found.append(node.lineno)
        elif isinstance(node, (ast.Constant, ast.JoinedStr)):
            text = node.value if isinstance(node, ast.Constant) else ast.unparse(node)
            if isinstance(text, str) and any(t.search(text) for t in texts):
                found.append(node.lineno)
    return sorted(set(found))


def test_no_metric_target_is_written_outside_the_metric_table() -> None:
    """Only records/metrics.py (the metric table) spells a pass mark; config, compare, the TUI,
    the card and the docs strings read it. Checked for every registered metric."""
    from kvcap.records import labels

    metrics = labels()
    found = [f"{path.relative_to(SRC)}:{line}" for path, tree in _modules() if path != RECORDS / "metrics.py"
             for line in _target_spellings(tree, metrics)]
    assert found == []


def test_the_target_rule_finds_each_way_of_writing_a_target() -> None:
    """The structural check above fails on each planted spelling (and passes reading the table)."""
    planted = {
        "target_meteor: float = 0.45": 1, "class T:\n    siglip: float = 0.2": 2, "SEED = {'diversity': 0.6}": 1,
        "def seed_targets():\n    return {'meteor': 0.4}": 2, "s = {'targets': {'siglip': 0.1}}": 1,
        "x = Targets(meteor=0.3)": 1, "x = f(target_meteor=-1)": 1, "x = MetricSpec('m', 'M', 0.4, 'a:b')": 1,
        "HINT = 'METEOR > 0.40'": 1, "line = f'Diversity >= 0.5 of {n}'": 1, "Y = 'siglip > 0.1'": 1,
    }
    metrics = {"meteor": "METEOR", "siglip": "SigLIP2", "diversity": "Diversity"}
    for source, line in planted.items():
        assert _target_spellings(ast.parse(source), metrics) == [line], source
    reading = ("target_meteor: float = seed_target('meteor')\nx = {'meteor': cfg.target_meteor}\nTARGET_GAP = 0.15\n"
               "def stats():\n    return {'diversity': 0.0}")
    assert _target_spellings(ast.parse(reading), metrics) == []


_LINE_SPLITS = ("splitlines", "split(b'\\n')", "split('\\n')")


def _loops_parsing_lines(tree: ast.Module) -> list[int]:
    """Lines of loops that parse JSON lines themselves: any loop (`for`, or a comprehension) over
    text split into lines, or whose loop variable (or a name computed from it in the loop) is
    passed to `json.loads` — `for line in fh` as much as `for line in text.splitlines()`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.For):
            loops, targets, body = [node.iter], [node.target], node.body
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            loops, targets, body = [g.iter for g in node.generators], [g.target for g in node.generators], [node]
        else:
            continue
        names = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        for _ in range(3):  # follow `text = line.strip()` and the like, a few steps deep
            for stmt in (n for b in body for n in ast.walk(b) if isinstance(n, (ast.Assign, ast.AnnAssign, ast.NamedExpr))):
                if stmt.value is not None and any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(stmt.value)):
                    outs = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                    names |= {n.id for t in outs for n in ast.walk(t) if isinstance(n, ast.Name)}
        loads = [n for b in body for n in ast.walk(b)
                 if isinstance(n, ast.Call) and ast.unparse(n.func) in ("json.loads", "loads")]
        splits_lines = any(s in ast.unparse(it) for it in loops for s in _LINE_SPLITS)
        feeds_loop_variable = any(isinstance(n, ast.Name) and n.id in names for call in loads for a in call.args for n in ast.walk(a))
        if loads and (splits_lines or feeds_loop_variable):
            found.append(node.lineno)
    return found


def test_jsonl_lines_are_parsed_in_one_place() -> None:
    """Outside records/jsonl.py nobody loops over a file's lines calling json.loads."""
    found = [f"{path.relative_to(SRC)}:{line}" for path, tree in _modules() if path != RECORDS / "jsonl.py"
             for line in _loops_parsing_lines(tree)]
    assert found == []


def test_the_jsonl_rule_finds_each_kind_of_line_loop() -> None:
    """The check above fails on each planted loop (files, split text, comprehensions, a stripped line)."""
    planted = [
        "for line in fh:\n    rows.append(json.loads(line))",
        "with open(p) as fh:\n    rows = [json.loads(raw) for raw in fh]",
        "for raw in open(p):\n    text = raw.strip()\n    if text:\n        out.append(json.loads(text))",
        "rows = [json.loads(x) for x in path.read_text().splitlines() if x]",
        "for i, line in enumerate(fh):\n    yield json.loads(line)",
        "for chunk in data.split('\\n'):\n    handle(json.loads(payload))",
    ]
    for source in planted:
        assert _loops_parsing_lines(ast.parse(source)), source
    assert _loops_parsing_lines(ast.parse("for row in rows:\n    print(row)\ndata = json.loads(text)")) == []


def test_records_import_neither_torch_nor_textual() -> None:
    code = "import sys, kvcap.records; print(sorted(m for m in ('torch', 'textual') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------
# The formats on disk


def test_a_caption_record_is_the_line_kvcap_always_wrote() -> None:
    from kvcap.caption.results import CaptionResult

    result = CaptionResult(video="a/b.mp4", path=Path("/x/a/b.mp4"), status="ok", caption="비가 온다.",
                           segments=[{"start": 0.0, "end": 2.0, "text": "비가 온다."}], duration=2.0, fps=25.0,
                           frame_times=[0.25, 1.75], checkpoint="runs/x/best", elapsed_s=0.12345,
                           avg_logprob=-0.25, compression_ratio=0.9, suspect="avg_logprob -1.20 < -1")
    line = json.dumps(result.record(), ensure_ascii=False)
    # (issue 26 added the last three keys: the confidence figures)
    assert line == ('{"video": "a/b.mp4", "status": "ok", "caption": "비가 온다.", "segments": [{"start": 0.0, '
                    '"end": 2.0, "text": "비가 온다."}], "duration": 2.0, "fps": 25.0, "frame_times": [0.25, 1.75], '
                    '"checkpoint": "runs/x/best", "elapsed_s": 0.123, "error": null, "avg_logprob": -0.25, '
                    '"compression_ratio": 0.9, "suspect": "avg_logprob -1.20 < -1"}')
    back = CaptionResult.from_record(json.loads(line), result.path)
    assert back.record() == result.record() and back.skipped


def test_records_round_trip_and_keep_unknown_keys() -> None:
    state = {"name": "r", "status": "running", "pid": 7, "host": "h", "stage": 2, "projector": "mlp2x_gelu",
             "step": 3, "total_steps": 9, "epoch": 0.5, "epochs": 2, "started": "2026-01-15T12:00:00+00:00",
             "updated": "2026-01-15T12:00:05+00:00", "error": None, "best": {"metric": "meteor", "value": 0.3, "step": 3},
             "resumed": "2026-01-15T12:00:01+00:00", "world_size": 1, "stage1_best": "runs/r/stage1/best"}
    assert RunState.from_dict(state).to_dict() == state
    assert list(RunState.from_dict(state).to_dict()) == list(state)  # key order too
    train = {"kind": "train", "stage": 1, "step": 10, "epoch": 0.25, "loss": 2.5, "lr": 1e-4, "grad_norm": 1.0,
             "samples_per_s": 3.5, "mem_mb": 100.0, "time": "2026-01-15T12:00:00+00:00"}
    assert TrainRow.from_dict(train).to_dict() == train and list(TrainRow.from_dict(train).to_dict()) == list(train)
    evaluation = {"kind": "eval", "stage": 2, "step": 10, "epoch": 1, "loss": 2.0, "meteor": 0.41, "siglip": 0.11,
                  "siglip_cosine": 0.2, "diversity": 0.6, "ref_diversity": 0.7, "unique_ratio": 1.0, "collapse": False,
                  "collapse_reasons": [], "n": 8, "eval_s": 1.5, "time": "2026-01-15T12:00:00+00:00"}
    assert list(EvalRow.from_dict(evaluation).to_dict().items()) == list(evaluation.items())
    sample = {"stage": 1, "epoch": 1, "step": 4, "id": "c1", "video": "v.mp4", "prediction": "p", "reference": "r"}
    assert list(SampleRow.from_dict(sample).to_dict().items()) == list(sample.items())
    job = JobState(status="running", pid=1, inputs=["in"], total=3, started="2026-01-15T12:00:00+00:00").to_dict()
    assert JobState.from_dict(job).to_dict() == job
    on_ray = JobState(status="finished", cluster="ray", ray={"address": "10.0.0.1:6379", "gpus": 8.0},
                      workers=[{"worker": "n1:42", "device": "cuda:0", "quantization": "none", "batch_size": 32}]).to_dict()
    assert JobState.from_dict(on_ray).to_dict() == on_ray  # the Ray fields survive a read (issue 24)
    summary = {"name": "r", "stage": 2, "status": "finished", "projector": "linear", "projector_params": 10,
               "best_eval": evaluation, "future_key": [1, 2]}
    assert RunSummary.from_dict(summary).to_dict()["future_key"] == [1, 2]
    assert RunSummary.from_dict(summary).best_eval == evaluation


def test_from_dict_never_raises_on_odd_types() -> None:
    odd = {"status": 3, "pid": "x", "step": None, "stage": True, "best": "nope", "epoch": float("nan"), "started": 5}
    state = RunState.from_dict(odd, "fallback")
    assert (state.name, state.status, state.pid, state.step, state.stage, state.best, state.epoch) == (
        "fallback", "unknown", 0, 0, "", None, 0)
    assert TrainRow.from_dict({"kind": "train"}) is None  # no step: not a train row
    assert EvalRow.from_dict({"kind": "train", "step": 1}) is None
    assert JobState.from_dict({"total": "many", "inputs": "a"}).total == 0
    with pytest.raises(ValueError, match="status"):
        CaptionRecord.from_dict({"video": "v.mp4", "status": "done"})


def test_writers_produce_the_models_keys(tmp_path: Path) -> None:
    """job.json and state.json as the writers write them are exactly the model's keys, in order."""
    from kvcap.caption.job import JobFile, JobProgress
    from kvcap.trainer.rundir import RunDir

    job = JobFile(tmp_path / "job.json", JobProgress(total=2), checkpoint=None, inputs=["in"], output="out")
    job.update(force=True)
    written = json.loads((tmp_path / "job.json").read_text())
    assert list(written) == list(JobState().to_dict())
    assert JobState.from_dict(written).to_dict() == written
    run = RunDir(tmp_path / "run")
    state = run.new_state(stage=1, projector="linear", total_steps=5, epochs=1, previous=None)
    run.write_state(state)
    written = json.loads(run.state_path.read_text())
    assert list(written) == list(RunState().to_dict()) and run.run_state().pid == state.pid


# ---------------------------------------------------------------------------------------------
# JSONL


def test_iter_jsonl_lines_and_torn_tail(tmp_path: Path) -> None:
    data = b'{"a": 1}\n\n  \nnot json\n[1]\n{"a": 2}\n{"a": 3}'
    out = list(iter_jsonl(data, complete_only=True))
    assert [n for n, _ in out] == [1, 4, 5, 6]
    assert out[0][1] == {"a": 1} and isinstance(out[1][1], ValueError) and out[2][1] == [1]
    assert list(iter_jsonl(data))[-1] == (7, {"a": 3})  # a manifest's last line needs no newline
    path = tmp_path / "x.jsonl"
    path.write_bytes(data)
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]
    with pytest.raises(ValueError, match=r"x.jsonl:4: not valid JSON"):
        read_jsonl(path, strict=True)


def test_a_line_separator_inside_a_caption_does_not_split_the_line(tmp_path: Path) -> None:
    """U+2028 is legal inside a JSON string (ensure_ascii=False writes it raw); str.splitlines
    would cut the record there."""
    from kvcap.data.manifest import read_manifest

    line = json.dumps({"id": "c1", "video": "v.mp4", "caption": "첫 줄\u2028둘째 줄", "split": "train"}, ensure_ascii=False)
    (tmp_path / "m.jsonl").write_text(line + "\n", encoding="utf-8")
    assert read_manifest(tmp_path / "m.jsonl")[0].caption == "첫 줄\u2028둘째 줄"


def test_latest_record_per_video_wins_in_file_order() -> None:
    records = [{"video": "a", "n": 1}, {"video": "b", "n": 2}, {"n": 3}, {"video": "a", "n": 4}]
    latest = latest_per_video(records)
    assert list(latest) == ["b", "a"] and latest["a"]["n"] == 4


# ---------------------------------------------------------------------------------------------
# Best eval: one answer for the TUI run list, its compare screen and `kvcap compare`


def _write_run(path: Path, evals: list[tuple[int, float]], *, summary_stage: int | None, state_stage: int) -> None:
    path.mkdir(parents=True)
    rows = [EvalRow(stage=stage, step=i + 1, meteor=meteor, siglip=0.2, diversity=0.6).to_dict()
            for i, (stage, meteor) in enumerate(evals)]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    state = RunState(name=path.name, status="finished", stage=state_stage, projector="linear",
                     best={"metric": "meteor", "value": 0.0, "step": 1})
    (path / "state.json").write_text(json.dumps(state.to_dict()))
    if summary_stage is not None:
        best = max((r for r in rows if r["stage"] == summary_stage), key=lambda r: r["meteor"])
        (path / "summary.json").write_text(json.dumps(RunSummary(name=path.name, stage=summary_stage, best_eval=best).to_dict()))


@pytest.mark.parametrize("summary_stage", [2, 1, None], ids=["stage-2-finished", "stage-2-training", "no-summary"])
def test_after_stage_2_every_reader_shows_stage_2s_best(tmp_path: Path, summary_stage) -> None:
    from kvcap.trainer.compare import run_rows
    from kvcap.tui.runfiles import RunReader, compare_row

    run = tmp_path / "run"
    # stage 1 reached 0.50; stage 2 (a new LoRA stage) is at 0.35 and 0.38
    _write_run(run, [(1, 0.45), (1, 0.50), (2, 0.35), (2, 0.38)], summary_stage=summary_stage, state_stage=2)
    reader = RunReader(run)
    reader.poll()
    assert reader.best_meteor() == 0.38  # the run list (it showed stage 1's 0.50)
    assert compare_row(reader).best["meteor"] == 0.38  # the TUI compare screen
    assert run_rows(run)[0]["meteor"] == 0.38  # kvcap compare


def test_targets_from_a_config_section() -> None:
    assert Targets.from_score_config({"target_meteor": 0.45}) == Targets(meteor=0.45)
    assert Targets.from_score_config({"target_meteor": "high"}) == SEED_TARGETS
    assert SEED_TARGETS.passes("meteor", 0.41) and not SEED_TARGETS.passes("meteor", 0.40)
    assert SEED_TARGETS.passes("siglip", None) is None
    from kvcap.config import ScoreConfig

    assert Targets.from_score_config(ScoreConfig()) == SEED_TARGETS


# ---------------------------------------------------------------------------------------------
# Liveness


def test_a_running_state_of_a_killed_process_is_stale() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert live_status("running", proc.pid, "here", 100.0, 100.0, this_host="here") == "running"
    finally:
        proc.kill()
        proc.wait()
    assert live_status("running", proc.pid, "here", 100.0, 100.0, this_host="here") == "stale"
    assert live_status("running", proc.pid, "", 100.0, 100.0, this_host="here") == "stale"  # no host: this one
    assert live_status("running", proc.pid, "elsewhere", 100.0, 100.0, this_host="here") == "running"  # can't check
    assert live_status("running", 0, "", 100.0, 100.0 + 601) == "stale"  # silent for over ten minutes
    assert live_status("finished", proc.pid, "here", None, 0.0, this_host="here") == "finished"
