"""End-to-end captioning speed through the `kvcap caption` CLI (bench/gpu.py section `caption_e2e`, issue 17).

Everything a user would run, as subprocesses:

    kvcap data synth                         a few scenes to train on (their captions)
    kvcap train --stage 1 / --stage 2        a real-size checkpoint per projector, a few steps
                                             (mlp2x_gelu = 4,608 visual tokens; mixer = 64)
    kvcap caption CLIPS --checkpoint best    per row, with KVCAP_CAPTION_STATS=<json> so the
                                             command writes where its time went

on H.264 clips this module encodes (1080p and 720p, x264 default GOP: bench/frames.py's panning
texture), each a folder of hard links to one encoded clip (decoding costs the same per link).

Rows, most important first (each written to disk as measured, skipped when the budget is short):
(projector, quantization, batch) x engine, where engine `hf` is the "before" column
(transformers' generate) and `static` the "after" one (kvcap.model.decode). The auto-batch
`hf` run uses the batch the `static` run chose, so the columns compare like with like.

Per row: videos/s and new tokens/s from the pipeline's own wall time (model load excluded),
pipeline efficiency = model time (encode + generate, the GPU's busy time) / wall, and the
roofline fraction = (bytes read per decode step / device copy bandwidth) / measured step time,
where bytes = weights read per step + the KV cache the step attends to (batch x mean length x
bytes per token) and the bandwidth is measured in the same run (a device-to-device copy).
Every row forces the token count with generation.min_new_tokens = max_new_tokens (random
weights rarely stop).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
GIB = 2**30


# ---------------------------------------------------------------------------------------------
# Clips, bandwidth, the CLI
# ---------------------------------------------------------------------------------------------


def encode_clips(work: Path, tiny: bool) -> dict[str, Path]:
    """One H.264 clip per resolution (cached in `work`)."""
    sys.path.insert(0, str(BENCH))
    from frames import make_clip  # bench/frames.py

    sizes = {"1080p": (1920, 1080), "720p": (1280, 720)} if not tiny else {"1080p": (192, 108), "720p": (128, 72)}
    seconds = 2.0 if tiny else 8.0
    return {name: make_clip(work / f"e2e-{name}-{int(seconds)}s.mp4", w, h, seconds) for name, (w, h) in sizes.items()}


def clip_folder(source: Path, folder: Path, count: int) -> Path:
    """`count` hard links to `source` in `folder` (copies where links are not allowed)."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        target = folder / f"clip{i:03d}.mp4"
        if not target.exists():
            try:
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)
    return folder


def copy_bandwidth(device: str, gib: float = 1.0, reps: int = 10) -> float:
    """Bytes/s of a device-to-device copy (read + write counted), best of `reps`."""
    import torch

    n = int(gib * GIB) // 2
    src = torch.empty(n, dtype=torch.bfloat16, device=device)
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(reps + 1):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        dst.copy_(src)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    del src, dst
    return 2 * n * 2 / best


def kvcap(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """`python -m kvcap.cli ARGS` from this tree (what `kvcap` runs), output captured."""
    src = str(ROOT / "src")
    env = {**os.environ, **env, "PYTHONPATH": src + os.pathsep + env.get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))}
    return subprocess.run([sys.executable, "-m", "kvcap.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def _check(proc: subprocess.CompletedProcess, what: str) -> None:
    if proc.returncode != 0:
        tail = (proc.stdout[-1500:] + proc.stderr[-1500:]).strip()
        raise RuntimeError(f"{what} exited {proc.returncode}: {tail}")


# ---------------------------------------------------------------------------------------------
# Training a checkpoint through the CLI
# ---------------------------------------------------------------------------------------------


def projector_sets(projector: str) -> list[str]:
    return ["projector.name=" + projector] + (["projector.num_tokens=64"] if projector == "mixer" else [])


def train_checkpoint(work: Path, projector: str, paths: dict[str, Path], *, tiny: bool, env: dict[str, str],
                     timeout: float) -> tuple[Path, dict[str, Any]]:
    """`kvcap data synth` (once) + `kvcap train --stage 1` and `--stage 2`, two steps each -> runs/<p>/best."""
    data = work / "e2e-synth"
    start = time.perf_counter()
    if not (data / "manifest.jsonl").is_file():
        _check(kvcap(["data", "synth", "--out", str(data), "--count", "8", "--size", "64", "--seconds", "1",
                      "--val-fraction", "0.25", "--quiet"], env, timeout), "kvcap data synth")
    sets = [
        f"model.vision={json.dumps(str(paths['clip']))}", f"model.llm={json.dumps(str(paths['qwen3']))}",
        f"model.quantization={'none' if tiny else '4bit'}", f"model.frames={4 if tiny else 8}",
        "model.gradient_checkpointing=true", *projector_sets(projector),
        f"train.runs_dir={json.dumps(str(work / 'e2e-runs'))}", f"data.cache_dir={json.dumps(str(work / 'e2e-cache'))}",
        "train.max_steps=2", "train.batch_size=1", "train.eval_max_clips=1", "train.max_caption_tokens=32",
        "train.stage2.llm=lora", "generation.max_new_tokens=4", "train.best_metric=loss",
        # no nltk or kiwipiepy model on a device machine: diversity on whitespace tokens only
        'score.metrics=["diversity"]', "score.tokenizer=whitespace", "lora.r=8", "lora.alpha=16",
    ]
    args = ["--data", str(data / "manifest.jsonl"), "--run", f"e2e-{projector}"]
    for item in sets:
        args += ["--set", item]
    for stage in (1, 2):
        _check(kvcap(["train", "--stage", str(stage), *args], env, timeout), f"kvcap train --stage {stage} ({projector})")
        dedupe_llm_copies(work / "e2e-runs", paths["qwen3"])
    best = work / "e2e-runs" / f"e2e-{projector}" / "best"
    if not (best / "kvcap.json").is_file():
        raise RuntimeError(f"kvcap train left no checkpoint at {best}")
    return best, {"projector": projector, "train_s": round(time.perf_counter() - start, 1), "checkpoint": str(best)}


def dedupe_llm_copies(runs: Path, source: Path) -> int:
    """Replace checkpoint copies of the (untrained) LLM's weight files with hard links to `source`.

    Each `best/` bundles the 15.3 GiB LLM folder it was trained on (until checkpoints reference
    backbones); four of them would fill a 64 GiB device disk. The copies are byte-identical
    (`_copy_model_dir`), checked here by size and the first and last MiB. Returns bytes freed.
    """
    originals = {p.name: p for p in source.glob("*.safetensors")}
    freed = 0
    for copy in runs.rglob("*.safetensors"):
        original = originals.get(copy.name)
        if original is None or copy.stat().st_size != original.stat().st_size or copy.samefile(original):
            continue
        size = copy.stat().st_size
        with open(copy, "rb") as a, open(original, "rb") as b:
            same = a.read(2**20) == b.read(2**20)
            a.seek(max(0, size - 2**20)), b.seek(max(0, size - 2**20))
            same = same and a.read() == b.read()
        if same:
            copy.unlink()
            os.link(original, copy)
            freed += size
    return freed


# ---------------------------------------------------------------------------------------------
# One row
# ---------------------------------------------------------------------------------------------


def weight_bytes_per_step(llm: dict[str, Any], quant: str) -> int:
    """Bytes of LLM weights one decode step reads: every layer's linears (nf4 ~4.5 bits with its
    scales), the bf16 lm_head and norms; the embedding table only for one row (negligible)."""
    hidden, layers, inter = llm["hidden_size"], llm["num_hidden_layers"], llm["intermediate_size"]
    heads, kv_heads = llm["num_attention_heads"], llm.get("num_key_value_heads") or llm["num_attention_heads"]
    head_dim = llm.get("head_dim") or hidden // heads
    linear = layers * (hidden * head_dim * (2 * heads + 2 * kv_heads) + 3 * hidden * inter)
    per_param = 4.5 / 8 if quant == "4bit" else 2
    return int(linear * per_param + llm["vocab_size"] * hidden * 2)


def roofline(row: dict[str, Any], llm: dict[str, Any], bandwidth: float, prompt_tokens: int) -> dict[str, Any]:
    """Roofline step time and the fraction achieved, from the decoder's measured step time."""
    from kvcap.caption.autotune import kv_bytes_per_token

    step_s = row.get("decode_step_ms")
    if not step_s:
        return {}
    mean_len = prompt_tokens + row["new_tokens_each"] / 2
    kv = row["batch"] * mean_len * kv_bytes_per_token(llm)
    weights = weight_bytes_per_step(llm, row["quant"])
    ideal_s = (weights + kv) / bandwidth
    return {"bytes_per_step_gib": round((weights + kv) / GIB, 3), "roofline_step_ms": round(1000 * ideal_s, 3),
            "roofline_fraction": round(ideal_s / (step_s / 1000), 4)}


def caption_row(*, checkpoint: Path, clips: list[Path], out: Path, quant: str, batch: str | int, engine: str,
                new_tokens: int, device: str, env: dict[str, str], timeout: float, prefill_s_hint: float | None = None
                ) -> dict[str, Any]:
    """Run `kvcap caption` once and read its stats JSON -> a row (without the roofline)."""
    stats_path = out / "stats.json"
    out.mkdir(parents=True, exist_ok=True)
    args = ["caption", *map(str, clips), "--checkpoint", str(checkpoint), "-o", str(out), "--format", "jsonl",
            "--overwrite", "--device", device, "--quantization", quant, "--batch-size", str(batch),
            "--set", f"generation.engine={engine}", "--set", f"generation.max_new_tokens={new_tokens}",
            "--set", f"generation.min_new_tokens={new_tokens}"]
    start = time.perf_counter()
    proc = kvcap(args, {**env, "KVCAP_CAPTION_STATS": str(stats_path)}, timeout)
    _check(proc, f"kvcap caption ({quant}, batch {batch}, {engine})")
    stats = json.loads(stats_path.read_text(encoding="utf-8"))
    pipe, dec = stats["pipeline"], stats.get("decoder") or {}
    videos = pipe["items"]
    row: dict[str, Any] = {
        "quant": "bf16" if quant == "none" else quant, "engine": engine, "engine_used": stats.get("engine"),
        "batch": int(stats["batch_size"]), "batch_asked": str(batch), "videos": videos, "new_tokens_each": new_tokens,
        # kvcap's first line (libraries may print warnings of their own while importing)
        "first_line": next((x for x in proc.stderr.splitlines() if x.startswith("quantization ")), ""), "status": "ok",
        "command_s": round(time.perf_counter() - start, 2), "wall_s": round(pipe["wall_s"], 3),
        "model_s": round(pipe["model_s"], 3), "wait_s": round(pipe["wait_s"], 3),
        "videos_per_s": round(videos / pipe["wall_s"], 3),
        "new_tokens_per_s": round(videos * new_tokens / pipe["wall_s"], 2),
        "pipeline_efficiency": round(pipe["model_s"] / pipe["wall_s"], 3), "workers": stats.get("workers"),
    }
    if dec.get("steps"):
        row["decode_step_ms"] = round(1000 * dec["decode_s"] / dec["steps"], 3)
        row["prefill_s_per_batch"] = round(dec["prefill_s"] / dec["calls"], 4)
    elif prefill_s_hint is not None and pipe["batches"]:
        # transformers' generate has no prefill/decode split: its steps get the model time less
        # the static run's prefill per batch (encode counted in the step: an upper bound).
        decode_s = pipe["model_s"] - prefill_s_hint * pipe["batches"]
        row["decode_step_ms"] = round(1000 * decode_s / (pipe["batches"] * (new_tokens - 1)), 3)
        row["decode_step_note"] = "(model time - static prefill) / steps"
    return row


# ---------------------------------------------------------------------------------------------
# The section
# ---------------------------------------------------------------------------------------------


def plan_rows(tiny: bool, auto_clips: int) -> list[dict[str, Any]]:
    """(projector, quantization, batch, clips, resolution) in the order they are measured."""
    rows = [
        {"projector": "mlp2x_gelu", "quant": "none", "batch": 1, "clips": 2, "res": "720p"},
        {"projector": "mlp2x_gelu", "quant": "none", "batch": "auto", "clips": auto_clips, "res": "1080p"},
        {"projector": "mixer", "quant": "none", "batch": "auto", "clips": auto_clips, "res": "1080p"},
        {"projector": "mixer", "quant": "none", "batch": 1, "clips": 2, "res": "720p"},
        {"projector": "mlp2x_gelu", "quant": "4bit", "batch": 1, "clips": 2, "res": "720p"},
        {"projector": "mlp2x_gelu", "quant": "4bit", "batch": "auto", "clips": auto_clips, "res": "1080p"},
        {"projector": "mixer", "quant": "4bit", "batch": "auto", "clips": auto_clips, "res": "1080p"},
    ]
    if tiny:  # every code path once (batch 1 / auto, both projectors, bf16 / 4-bit), few CLI starts
        keep = {("mlp2x_gelu", "none", 1), ("mixer", "none", "auto"), ("mlp2x_gelu", "4bit", "auto")}
        rows = [r for r in rows if (r["projector"], r["quant"], r["batch"]) in keep]
    return rows


def run_section(sec: dict[str, Any], *, work: Path, paths: dict[str, Path], llm: dict[str, Any], tiny: bool,
                device: str, new_tokens: int, auto_clips: int, save: Callable[[], None],
                time_left: Callable[[], float]) -> None:
    """Fill `sec` (rows appended and saved one by one)."""
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "KVCAP_HOME": os.environ.get("KVCAP_HOME", str(work / "e2e-home"))}
    sec["bandwidth_gbps"] = round(copy_bandwidth(device, gib=0.0625 if tiny else 1.0) / 1e9, 2)
    sec["new_tokens"] = new_tokens
    save()
    clips = encode_clips(work, tiny)
    checkpoints: dict[str, Path] = {}
    sec.setdefault("training", [])
    rows = sec.setdefault("rows", [])
    prefill_hint: dict[tuple, float] = {}
    for spec in plan_rows(tiny, auto_clips):
        key = (spec["projector"], spec["quant"], spec["batch"])
        if time_left() < (30 if tiny else 90):
            rows.append({**spec, "status": "skipped", "reason": f"budget: {time_left():.0f} s left"})
            save()
            continue
        projector = spec["projector"]
        if projector not in checkpoints:
            try:
                checkpoints[projector], info = train_checkpoint(work, projector, paths, tiny=tiny, env=env,
                                                                timeout=max(60.0, time_left()))
            except Exception as exc:  # noqa: BLE001 - the other projector may still train
                sec["training"].append({"projector": projector, "status": "error", "error": str(exc)[:500]})
                save()
                checkpoints[projector] = None  # type: ignore[assignment]
                continue
            sec["training"].append({**info, "status": "ok"})
            save()
        if checkpoints[projector] is None:
            rows.append({**spec, "status": "skipped", "reason": "no checkpoint"})
            continue
        folder = clip_folder(clips[spec["res"]], work / "e2e-clips" / f"{spec['res']}-{spec['clips']}", spec["clips"])
        files = sorted(folder.glob("*.mp4"))[: spec["clips"]]
        prompt_tokens = _prompt_tokens(checkpoints[projector])
        batch = spec["batch"]
        for engine in ("static", "hf"):  # static first: the hf run reuses its batch
            label = {"projector": projector, "visual_tokens": prompt_tokens[1], "resolution": spec["res"],
                     "batch_asked": str(spec["batch"])}
            try:
                row = caption_row(checkpoint=checkpoints[projector], clips=files,
                                  out=work / "e2e-out" / f"{projector}-{spec['quant']}-{batch}-{engine}",
                                  quant=spec["quant"], batch=batch, engine=engine, new_tokens=new_tokens,
                                  device=device, env=env, timeout=max(60.0, time_left()),
                                  prefill_s_hint=prefill_hint.get(key))
            except Exception as exc:  # noqa: BLE001 - one failed row must not cost the others
                rows.append({**spec, **label, "engine": engine, "status": "error", "error": str(exc)[:800]})
                save()
                continue
            row.update(label)
            row.update(roofline(row, llm, sec["bandwidth_gbps"] * 1e9, prompt_tokens[0]))
            rows.append(row)
            save()
            print(f"  e2e {projector} {row['quant']} batch {row['batch']} ({batch}) {engine}: "
                  f"{row['videos_per_s']} videos/s, {row['new_tokens_per_s']} tok/s, "
                  f"efficiency {row['pipeline_efficiency']}, roofline {row.get('roofline_fraction')}", flush=True)
            if engine == "static":
                batch = row["batch"]  # the before column runs the batch auto chose
                if row.get("prefill_s_per_batch") is not None:
                    prefill_hint[key] = row["prefill_s_per_batch"]
    sec["summary"] = summarize(rows)


def _prompt_tokens(checkpoint: Path) -> tuple[int, int]:
    """(prompt length incl. the template ~ visual tokens + 40, visual tokens) of a checkpoint."""
    spec = json.loads((checkpoint / "kvcap.json").read_text(encoding="utf-8"))
    visual = int(spec["projector"]["num_visual_tokens"])
    return visual + 40, visual


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """after / before per (projector, quant, batch asked): videos/s ratio and both roofline fractions."""
    out: dict[str, Any] = {}
    by = {(r.get("projector"), r.get("quant"), r.get("batch_asked"), r.get("engine")): r
          for r in rows if r.get("status") == "ok"}
    for (projector, quant, asked, engine), row in by.items():
        if engine != "static" or (projector, quant, asked, "hf") not in by:
            continue
        before = by[(projector, quant, asked, "hf")]
        out[f"{projector} {quant} batch {asked}"] = {
            "videos_per_s_before": before["videos_per_s"], "videos_per_s_after": row["videos_per_s"],
            "speedup": round(row["videos_per_s"] / before["videos_per_s"], 3) if before["videos_per_s"] else None,
            "roofline_before": before.get("roofline_fraction"), "roofline_after": row.get("roofline_fraction"),
        }
    return out


def table(sec: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    headers = ["projector", "quant", "batch", "res", "videos", "engine", "videos/s", "new tok/s", "efficiency",
               "step ms", "roofline ms", "roofline"]
    body = []
    for r in sec.get("rows", []):
        if r.get("status") != "ok":
            body.append([r.get("projector"), r.get("quant"), r.get("batch"), r.get("res") or r.get("resolution"),
                         r.get("clips"), r.get("engine", "-"), r["status"], r.get("reason") or r.get("error", "")[:60],
                         "", "", "", ""])
            continue
        body.append([r["projector"], r["quant"], f"{r['batch']} ({r['batch_asked']})", r["resolution"], r["videos"],
                     r["engine"], r["videos_per_s"], r["new_tokens_per_s"], r["pipeline_efficiency"],
                     r.get("decode_step_ms"), r.get("roofline_step_ms"), r.get("roofline_fraction")])
    return headers, body
