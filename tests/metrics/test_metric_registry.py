"""One table of metrics (kvcap.records.metrics): a metric registered there is accepted by the
config, offered by `kvcap score --help`, computed by the suite, judged against its target in
the score table and by `--check`, carried by a run's eval rows into `kvcap compare` and the TUI's
compare rows, and listed by the model card. And one pass rule: strictly above the target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kvcap.records.metrics import MetricSpec, metric_names, register_metric, unregister_metric

from metrics_helpers import captions

TEXTS = captions(4, seed=5, sentences=(1, 2))


def exact_share(ctx) -> None:
    """The fake metric: the share of clips whose prediction is one of its references."""
    for row, i in zip(ctx.per_clip, ctx.ids):
        row["exact"] = float(ctx.predictions[i] in ctx.references[i])
    ctx.summary["exact"] = sum(row["exact"] for row in ctx.per_clip) / len(ctx.per_clip)


@pytest.fixture
def exact_metric():
    """Register `exact` (label `Exact`, target 0.5) for one test, then remove it again."""
    spec = register_metric(MetricSpec("exact", "Exact", 0.5, exact_share, about="prediction equals a reference"))
    yield spec
    unregister_metric("exact")
    assert "exact" not in metric_names()


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _score(tmp_path: Path, right: int, *args: str):
    """`kvcap score` over 4 clips, the first `right` of them predicted exactly."""
    refs = _write(tmp_path / "refs.jsonl", [{"id": f"c{i}", "video": f"c{i}.mp4", "caption": t} for i, t in enumerate(TEXTS)])
    preds = _write(tmp_path / "preds.jsonl", [{"id": f"c{i}", "caption": t if i < right else "다른 문장이다."}
                                              for i, t in enumerate(TEXTS)])
    from kvcap.cli import main

    return CliRunner().invoke(main, ["score", str(preds), "--refs", str(refs), "--tokenizer", "whitespace", *args],
                              terminal_width=200)


def test_config_accepts_a_registered_metric_everywhere_a_metric_is_named(exact_metric):
    from kvcap.config import ConfigError, ScoreConfig, config_from_dict

    cfg = config_from_dict({"score": {"metrics": ["meteor", "exact"]}, "train": {"best_metric": "exact"}})
    assert cfg.score.metrics == ["meteor", "exact"] and cfg.train.best_metric == "exact"
    assert ScoreConfig().metrics == ["meteor", "siglip", "diversity", "exact"]  # the default suite is the table
    with pytest.raises(ConfigError, match="score.metrics: unknown item 'exactly'"):
        config_from_dict({"score": {"metrics": ["exactly"]}})


def test_an_unregistered_metric_is_refused():
    from kvcap.config import ConfigError, config_from_dict

    with pytest.raises(ConfigError, match="train.best_metric: must be one of meteor, siglip, diversity, loss, got 'exact'"):
        config_from_dict({"train": {"best_metric": "exact"}})


def test_score_help_lists_a_registered_metric(exact_metric):
    from kvcap.cli import main

    result = CliRunner().invoke(main, ["score", "--help"], terminal_width=400)
    assert "Comma-separated subset of meteor,siglip,diversity,exact" in result.output


def test_the_score_table_and_check_judge_a_registered_metric(exact_metric, tmp_path):
    passing = _score(tmp_path, 3, "--metrics", "meteor,exact", "--check")
    assert passing.exit_code == 0, passing.output
    row = next(line for line in passing.output.splitlines() if "Exact" in line)
    assert "0.7500" in row and "> 0.50" in row and "pass" in row
    # 2 of 4 is exactly the target: it fails (strictly above), in the table and for --check.
    failing = _score(tmp_path, 2, "--metrics", "meteor,exact", "--check")
    assert failing.exit_code == 1
    row = next(line for line in failing.output.splitlines() if "Exact" in line)
    assert "0.5000" in row and "fail" in row
    assert "--check: exact 0.500 is not above the target 0.50" in failing.output
    summary = json.loads(_score(tmp_path, 2, "--metrics", "exact", "--json").output)["summary"]
    assert (summary["exact"], summary["targets"]["exact"], summary["metrics"]) == (0.5, 0.5, ["exact"])


def _run_dir(path: Path, values: list[float]) -> Path:
    """A finished run whose evals scored `exact` as given (and picks its best by it)."""
    from kvcap.records import EvalRow, RunState

    path.mkdir(parents=True)
    rows = [EvalRow.from_summary({"meteor": 0.3, "exact": v, "n": 4}, stage=1, step=i + 1, epoch=float(i + 1)).to_dict()
            for i, v in enumerate(values)]
    _write(path / "metrics.jsonl", rows)
    state = RunState(name=path.name, status="finished", stage=1, projector="linear",
                     best={"metric": "exact", "value": max(values), "step": 1})
    (path / "state.json").write_text(json.dumps(state.to_dict()), encoding="utf-8")
    return path


def test_run_records_compare_and_the_tui_carry_a_registered_metric(exact_metric, tmp_path):
    from kvcap.records import EvalRow, read_jsonl
    from kvcap.trainer.compare import render_compare, run_rows
    from kvcap.tui.runfiles import RunReader, compare_row

    run = _run_dir(tmp_path / "run", [0.25, 0.75, 0.5])
    lines = read_jsonl(run / "metrics.jsonl")
    assert list(lines[0])[:12] == ["kind", "stage", "step", "epoch", "loss", "meteor", "siglip", "siglip_cosine",
                                   "diversity", "ref_diversity", "unique_ratio", "exact"]
    assert [EvalRow.from_dict(line).metric("exact") for line in lines] == [0.25, 0.75, 0.5]
    assert run_rows(run)[0]["exact"] == 0.75  # the best eval by the run's own best metric
    reader = RunReader(run)
    reader.poll()
    row = compare_row(reader)
    assert row.best["exact"] == 0.75 and row.targets.exact == 0.5
    assert [e.metric("exact") for e in reader.evals] == [0.25, 0.75, 0.5]  # the TUI's eval table rows

    from rich.console import Console

    console = Console(width=250, record=True)
    console.print(render_compare([run_rows(run)[0]]))
    text = console.export_text()
    header = next(line for line in text.splitlines() if "METEOR" in line)
    assert header.split("┃")[5:9] == [" METEOR ", " SigLIP2 ", " Diversity ", " Exact "] and "0.750" in text


def test_the_model_card_lists_a_registered_metric_and_its_target(exact_metric):
    import kvcap.demo
    from kvcap.config import Config
    from kvcap.model.card import build_card, run_facts
    from kvcap.model.checkpoint import CheckpointSpec

    facts = run_facts(Config(), 1, {"meteor": 0.3, "exact": 0.7, "step": 5}, "runs/x")
    assert facts["metrics"] == {"meteor": 0.3, "exact": 0.7}
    assert facts["targets"]["exact"] == 0.5
    card = str(build_card(CheckpointSpec.load(Path(kvcap.demo.__file__).parent / "checkpoint"), facts))
    assert "| Exact | 0.7000 |" in card and "| Exact | > 0.5 | pass |" in card
    assert "- type: exact\n      value: 0.7\n      name: Exact" in card  # the model-index front matter


def test_one_pass_rule_everywhere_a_target_is_judged():
    """At exactly its target a value fails: the score table, --check, grounding, compare, the card."""
    from kvcap.metrics.grounding import TARGET_ACCURACY, TARGET_DIVERSITY_SHARE, TARGET_GAP, passed
    from kvcap.records import Targets, passes_target

    assert not passes_target(0.40, 0.40) and passes_target(0.4000001, 0.40)
    seed = Targets()
    assert seed.passes("meteor", seed.meteor) is False
    summary = {"targets": {"meteor": seed.meteor, "meteor_gap": TARGET_GAP, "diversity_share": TARGET_DIVERSITY_SHARE,
                           "attribute_accuracy": TARGET_ACCURACY},
               "meteor": seed.meteor, "meteor_gap": TARGET_GAP, "diversity_share": TARGET_DIVERSITY_SHARE,
               "attributes": {"scene": {"accuracy": TARGET_ACCURACY, "n": 5, "unnamed": 0}}}
    verdicts = passed(summary)
    assert (verdicts["meteor"], verdicts["meteor_gap"], verdicts["diversity_share"], verdicts["attribute:scene"]) == (
        False, False, False, False)
