"""bench/gpu.py: the CPU `--tiny` run goes through every section of the GPU benchmark.

The real run needs an H100-class GPU; here the same code paths run on kvcap's tiny backbones
(with an OOM simulated at stage-2 batch 4 so the batch sweep's out-of-memory path runs too).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu.py"
HEADLINE = re.compile(r"^headline: stage2_peak_gib_batch1 = (\S+) \(target <= 24\)$")
OTHER_SECTION = "## score\n\n| date | x |\n|---|---|\n| 2026-01-01 | 1 |\n"


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _run(tmp: Path, work: Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict, str]:
    env = {**os.environ, "KVCAP_HOME": str(work / "home"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    out, results = tmp / "gpu.json", tmp / "RESULTS.md"
    results.write_text("# Benchmark results\n\n" + OTHER_SECTION, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiny", "--out", str(out), "--results", str(results),
         "--work-dir", str(work), *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    data = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    return proc, data, results.read_text(encoding="utf-8")


def _numbers(obj, path="$"):
    if isinstance(obj, bool):
        return
    if isinstance(obj, (int, float)):
        yield path, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _numbers(value, f"{path}.{key}")
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from _numbers(value, f"{path}[{i}]")


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory) -> Path:
    """Where the tiny backbones are written once and reused by the second run."""
    return tmp_path_factory.mktemp("gpu-bench-work")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, work_dir):
    return _run(tmp_path_factory.mktemp("gpu-bench-full"), work_dir)


@pytest.mark.slow
def test_tiny_run_passes_every_section(tiny_run):
    proc, data, _ = tiny_run
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    bench = _bench_module()
    statuses = {name: data["sections"][name]["status"] for name in bench.SECTIONS}
    assert statuses == {name: "ok" for name in bench.SECTIONS}, statuses
    assert data["meta"]["mode"] == "cpu-tiny"
    bad = [(p, v) for p, v in _numbers(data) if not math.isfinite(v)]
    assert not bad, bad


@pytest.mark.slow
def test_tiny_run_prints_a_table_per_section_and_the_headline_last(tiny_run):
    proc, data, _ = tiny_run
    for title in ("(a) LLM weight memory", "(b) stage 2", "(b') before: stage 2 with the LLM's full-logits loss", "(e) what fits",
                  "(c) stage 1", "(d) captioning", "(f) stage 2, bf16"):
        assert title in proc.stdout, title
    last = proc.stdout.strip().splitlines()[-1]
    match = HEADLINE.match(last)
    assert match, last
    assert math.isfinite(float(match.group(1)))
    assert float(match.group(1)) == pytest.approx(data["summary"]["stage2_peak_gib_batch1"], abs=0.006)


@pytest.mark.slow
def test_tiny_run_measures_what_the_issue_asks(tiny_run):
    _, data, _ = tiny_run
    s = data["sections"]
    # (a) 4-bit holds fewer bytes than full precision, measured on the loaded models.
    assert 0 < s["weights_nf4"]["llm_bytes"] < s["weights_bf16"]["llm_bytes"]
    assert data["summary"]["nf4_cut_pct"] > 0
    # (b) the sweep stops at the (simulated) OOM and keeps the largest batch that ran.
    rows = {r["batch"]: r for r in s["stage2"]["rows"]}
    assert [rows[b]["status"] for b in (1, 2, 4)] == ["ok", "ok", "oom"]
    assert "simulated OOM" in rows[4]["error"]
    assert s["stage2"]["largest_batch"] == 2 and s["stage2"]["limit_found"] is True
    assert rows[1]["samples_per_s"] > 0 and rows[1]["peak_gib"] > 0
    assert s["stage2"]["visual_tokens"] == 8 * 16  # 8 frames x 16 patches of the tiny CLIP
    # (b') the caption-only loss head gives the same loss as the captioner's.
    assert s["stage2_full_logits"]["loss_abs_diff"] <= 1e-3
    # (e) the batch that ran out of memory bounds the answer ("2", not ">=2").
    fit_rows = {r["what"]: r for r in s["fits"]["table"]}
    assert fit_rows["stage 2, 4-bit, LoRA r64, GC (max batch)"]["24GB"] == "2"
    assert isinstance(s["fits"]["fits_24gb"], bool)
    # (c) both stage-1 modes timed, the ratio derived from them.
    modes = {r["mode"]: r for r in s["stage1"]["rows"]}
    assert modes["cached"]["status"] == modes["uncached"]["status"] == "ok"
    assert s["stage1"]["cache_speedup"] == pytest.approx(modes["uncached"]["step_s"] / modes["cached"]["step_s"], rel=0.01)
    # (d) every captioning run produced exactly the forced number of new tokens.
    caption = s["caption_nf4"]["rows"] + s["caption_bf16"]["rows"]
    seen = {(r["quant"], r["projector"], r["batch"]) for r in caption if r["status"] == "ok"}
    assert seen == {(q, p, b) for q in ("nf4", "bf16") for p in ("linear", "perceiver") for b in (1, 4)}
    assert {r["new_tokens"] for r in caption} == {data["meta"]["new_tokens"]}
    perceiver = next(r for r in caption if r["projector"] == "perceiver")
    linear = next(r for r in caption if r["projector"] == "linear")
    assert perceiver["visual_tokens"] == 64 < linear["visual_tokens"]
    # (f) bf16 stage 2 ran without quantization.
    assert s["stage2_bf16"]["quantization"] == "none"
    assert s["stage2_bf16"]["rows"][0]["status"] == "ok"


@pytest.mark.slow
def test_tiny_run_appends_its_row_under_the_gpu_heading(tiny_run):
    _, data, text = tiny_run
    assert text.startswith("# Benchmark results\n\n" + OTHER_SECTION)  # other benches' sections untouched
    gpu = text.split("## gpu", 1)[1]
    rows = [line for line in gpu.splitlines() if line.startswith(f"| {data['meta']['date']}")]
    assert len(rows) == 1
    assert "CPU tiny code-path check (not GPU numbers)" in rows[0]


def test_a_spent_budget_skips_every_section_but_still_writes_results(tmp_path):
    proc, data, text = _run(tmp_path, tmp_path / "work", "--budget-s", "0")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not (tmp_path / "work" / "qwen3-tiny-random").exists()  # nothing written, nothing loaded
    sections = data["sections"]
    assert {x["status"] for x in sections.values()} == {"skipped"}
    assert sections["setup"]["reason"].startswith("budget:")
    assert sections["weights_bf16"]["reason"] == "no backbones (setup skipped)"
    assert proc.stdout.strip().splitlines()[-1] == "headline: stage2_peak_gib_batch1 = nan (target <= 24)"
    assert "not ok: setup, weights_nf4" in text


def test_largest_fitting_batch_per_card():
    bench = _bench_module()
    rows = [{"batch": 1, "status": "ok", "peak_reserved_gib": 18.0}, {"batch": 2, "status": "ok", "peak_reserved_gib": 30.0},
            {"batch": 4, "status": "oom"}]
    assert [bench.largest_fitting(rows, card) for card in (24, 48, 80)] == ["1", "2", "2"]
    # Nothing larger tried: the limit is not known.
    assert bench.largest_fitting(rows[:2], 80) == ">=2"
    # A gap in the sweep (1 ran, 4 ran out of memory, 2 never tried): only bounds are known.
    assert bench.largest_fitting([rows[0], rows[2]], 80) == ">=1, <4"
    # The context allowance counts: 23.5 GiB reserved does not fit a 24 GB card.
    assert bench.largest_fitting([{"batch": 1, "status": "ok", "peak_reserved_gib": 23.5}], 24) == "-"
    assert bench.largest_fitting([{"batch": 1, "status": "skipped"}], 24) == "?"


def test_results_row_goes_under_its_own_heading(tmp_path):
    bench = _bench_module()
    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n\n## gpu\n\n| h |\n|---|\n| old |\n\n" + OTHER_SECTION, encoding="utf-8")
    bench.append_results(path, "| new |")
    text = path.read_text(encoding="utf-8")
    assert "| old |\n| new |\n\n## score" in text
    assert text.endswith(OTHER_SECTION)


@pytest.mark.slow
def test_tiny_run_captions_end_to_end_through_the_cli(tiny_run):
    """(h) caption_e2e: checkpoints from `kvcap train`, `kvcap caption` subprocesses, both engines."""
    _, data, _ = tiny_run
    sec = data["sections"]["caption_e2e"]
    assert sec["status"] == "ok" and sec["bandwidth_gbps"] > 0
    assert {t["projector"] for t in sec["training"] if t["status"] == "ok"} == {"mlp2x_gelu", "mixer"}
    rows = [r for r in sec["rows"] if r["status"] == "ok"]
    # every row ran through both engines, the static one really used the static loop
    kinds = {(r["projector"], r["quant"], r["batch_asked"], r["engine"]) for r in rows}
    assert kinds == {(p, q, b, e) for p, q, b in (("mlp2x_gelu", "bf16", "1"), ("mixer", "bf16", "auto"),
                                                   ("mlp2x_gelu", "4bit", "auto")) for e in ("hf", "static")}
    assert {r["engine_used"] for r in rows if r["engine"] == "static"} == {"static"}
    assert {r["engine_used"] for r in rows if r["engine"] == "hf"} == {"hf"}
    # auto batch on a CPU is 4, and the before column ran the batch the after one chose
    assert {r["batch"] for r in rows if r["batch_asked"] == "auto"} == {4}
    assert "batch 4 (on cpu: 4)" in next(r for r in rows if r["batch_asked"] == "auto")["first_line"]
    mixer = next(r for r in rows if r["projector"] == "mixer")
    assert mixer["visual_tokens"] == 64
    for r in rows:
        assert r["videos"] == (2 if r["batch_asked"] == "1" else 6)
        assert r["videos_per_s"] > 0 and r["new_tokens_per_s"] == pytest.approx(r["videos_per_s"] * 8, rel=0.01)
        assert 0 < r["pipeline_efficiency"] <= 1.0
        assert r["decode_step_ms"] > 0 and 0 < r["roofline_fraction"]
    assert set(sec["summary"]) == {"mlp2x_gelu bf16 batch 1", "mixer bf16 batch auto", "mlp2x_gelu 4bit batch auto"}


def test_roofline_counts_weights_and_the_kv_cache_read_per_step():
    sys.path.insert(0, str(ROOT / "bench"))
    import caption_e2e

    llm = {"hidden_size": 4096, "intermediate_size": 12288, "num_hidden_layers": 36, "num_attention_heads": 32,
           "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 151936}
    bf16 = caption_e2e.weight_bytes_per_step(llm, "none")
    assert 15.0e9 < bf16 < 16.6e9  # Qwen3-8B's linears + lm_head in bf16 (embedding not read per step)
    assert caption_e2e.weight_bytes_per_step(llm, "4bit") < 0.35 * bf16
    row = {"decode_step_ms": 10.0, "new_tokens_each": 400, "batch": 1, "quant": "none"}
    # batch 1, 4,648 + 200 tokens of KV at 144 KiB each, 3.2 TB/s: ~5.3 ms ideal of the 10 measured
    out = caption_e2e.roofline(row, llm, 3.2e12, 4648)
    assert out["roofline_step_ms"] == pytest.approx(1000 * (bf16 + 4848 * 147456) / 3.2e12, rel=1e-3)
    assert out["roofline_fraction"] == pytest.approx(out["roofline_step_ms"] / 10.0, rel=1e-3)


def test_checkpoint_copies_of_the_llm_become_hard_links(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    import caption_e2e

    source = tmp_path / "qwen3"
    source.mkdir()
    (source / "model.safetensors").write_bytes(b"w" * 3_000_000)
    best = tmp_path / "runs" / "x" / "best" / "llm"
    best.mkdir(parents=True)
    (best / "model.safetensors").write_bytes(b"w" * 3_000_000)  # the bundled copy
    trained = tmp_path / "runs" / "y" / "best" / "llm"
    trained.mkdir(parents=True)
    (trained / "model.safetensors").write_bytes(b"w" * 2_999_999 + b"t")  # trained weights: kept
    assert caption_e2e.dedupe_llm_copies(tmp_path / "runs", source) == 3_000_000
    assert (best / "model.safetensors").samefile(source / "model.safetensors")
    assert not (trained / "model.safetensors").samefile(source / "model.safetensors")
    assert caption_e2e.dedupe_llm_copies(tmp_path / "runs", source) == 0  # already linked
