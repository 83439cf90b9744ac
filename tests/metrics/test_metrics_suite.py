"""score_predictions: collapse alarm, unmatched ids, token cache, tokenizer choice."""

from __future__ import annotations

import json

import pytest

from kvcap.config import ScoreConfig
from kvcap.metrics import render_table, score_predictions
from kvcap.metrics.collapse import collapse_reasons
from kvcap.metrics.tokenize import TokenCache, TokenizeStats, get_tokenizer, tokenize_texts

from metrics_helpers import captions

CFG = ScoreConfig(metrics=["meteor", "diversity"])


@pytest.fixture(scope="module")
def refs():
    return {f"clip{i:03d}": [text] for i, text in enumerate(captions(60, seed=3, sentences=(3, 5)))}


def test_identical_predictions_trip_the_alarm_and_references_do_not(refs):
    same = next(iter(refs.values()))[0]
    collapsed = score_predictions({i: same for i in refs}, refs, CFG, token_cache=None)
    s = collapsed.summary
    assert s["diversity"] == pytest.approx(0.0, abs=1e-9)
    assert s["unique_ratio"] == pytest.approx(1 / len(refs))
    assert s["ref_diversity"] > 0.1  # small generated vocabulary, but far from 0
    assert s["collapse"] is True
    assert any("half the references" in r for r in s["collapse_reasons"])
    assert any("unique" in r for r in s["collapse_reasons"])

    # The references scored as predictions are their own ceiling: no alarm.
    honest = score_predictions({i: r[0] for i, r in refs.items()}, refs, CFG, token_cache=None).summary
    assert honest["collapse"] is False and honest["collapse_reasons"] == []
    assert honest["diversity"] == pytest.approx(honest["ref_diversity"])
    assert honest["meteor"] > 0.99  # each prediction equals its reference


def test_siglip_up_while_diversity_down_against_previous():
    before = {"summary": {"siglip": 0.10, "diversity": 0.60}}
    now = {"siglip": 0.14, "diversity": 0.40, "ref_diversity": 0.62, "unique_ratio": 1.0, "n": 10}
    reasons = collapse_reasons(now, before)
    assert reasons and "SigLIP2 rose" in reasons[0]
    assert collapse_reasons({**now, "diversity": 0.61}, before) == []  # both up is progress


def test_ids_on_one_side_are_counted_not_fatal(refs):
    ids = list(refs)
    predictions = {i: refs[i][0] for i in ids[:10]}
    predictions["stray-1"] = "바다가 보인다."
    report = score_predictions(predictions, refs, CFG, token_cache=None)
    s = report.summary
    assert s["n"] == 10
    assert s["unmatched_predictions"] == 1 and s["unmatched_prediction_examples"] == ["stray-1"]
    assert s["missing_predictions"] == len(refs) - 10
    assert len(report.per_clip) == 10 and all("meteor" in row for row in report.per_clip)
    json.dumps(report.to_dict(), allow_nan=False)  # machine-readable, no NaN


def test_no_overlap_gives_empty_scores_not_a_crash(refs):
    report = score_predictions({"x": "바다"}, refs, CFG, token_cache=None)
    assert report.summary["n"] == 0 and report.summary["meteor"] is None and report.summary["collapse"] is False


def test_reference_tokens_are_cached_across_runs(refs, _kvcap_home):
    predictions = {i: r[0] for i, r in list(refs.items())[:20]}
    first = score_predictions(predictions, refs, CFG)
    second = score_predictions(predictions, refs, CFG)
    assert first.summary["token_cache_hits"] == 0
    assert second.summary["token_cache_hits"] == 20  # every matched reference came from disk
    assert second.summary["meteor"] == first.summary["meteor"]
    assert list((_kvcap_home / "tokens").glob("kiwi-*/*.jsonl"))


def test_cache_is_keyed_by_tokenizer_version(tmp_path):
    cache = TokenCache(tmp_path / "tokens")
    tok = get_tokenizer("whitespace")
    tokenize_texts(["바다가 보인다"], tok, cache=cache)
    stats = TokenizeStats()
    tokenize_texts(["바다가 보인다"], tok, cache=cache, stats=stats)
    assert stats.cache_hits == 1
    tok.version = "2"  # a new tokenizer version must not read the old tokens
    stats = TokenizeStats()
    tokenize_texts(["바다가 보인다"], tok, cache=cache, stats=stats)
    assert stats.cache_hits == 0 and stats.tokenized == 1


def test_cache_shards_are_merged_when_they_pile_up(tmp_path):
    cache = TokenCache(tmp_path / "tokens", max_shards=3)
    tok = get_tokenizer("char")
    for k in range(6):
        tokenize_texts([f"문장 {k}"], tok, cache=cache)
    assert len(list((tmp_path / "tokens" / tok.key).glob("*.jsonl"))) <= 3
    assert len(cache.load(tok)) == 6


def test_tokenizer_is_named_and_changes_scores(refs):
    predictions = {i: r[0].replace("바다가", "바다를") for i, r in refs.items()}
    by_tok = {name: score_predictions(predictions, refs, ScoreConfig(metrics=["meteor"], tokenizer=name),
                                      token_cache=None).summary for name in ("kiwi", "whitespace", "char")}
    assert {s["tokenizer"] for s in by_tok.values()} == {"kiwi", "whitespace", "char"}
    assert len({round(s["meteor"], 6) for s in by_tok.values()}) == 3


def test_table_shows_targets_verdicts_tokenizer_and_alarm(refs):
    from rich.console import Console

    same = next(iter(refs.values()))[0]
    report = score_predictions({i: same for i in refs}, refs, CFG, token_cache=None)
    console = Console(record=True, width=160)
    console.print(render_table(report))
    text = console.export_text()
    assert "kiwi" in text and "> 0.40" in text and "> 0.50" in text
    assert "MODE COLLAPSE" in text and "fail" in text
    assert "SigLIP2" not in text  # not asked for: no row
