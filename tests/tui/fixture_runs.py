"""Deterministic run directories and a caption job, written as the trainer / captioner would.

Everything is timed relative to a fixed clock (NOW), and the app under test gets that clock,
so nothing on screen depends on when the test runs.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from kvcap.config import Config, config_to_toml

NOW = datetime(2026, 1, 15, 12, 0, 0, tzinfo=timezone.utc).timestamp()
HOST = socket.gethostname()

KOREAN_PREDICTIONS = [
    "맑은 하늘 아래 푸른 바다가 펼쳐져 있고, 파도가 해변으로 천천히 밀려온다. 멀리 작은 배 한 척이 수평선을 따라 움직인다.",
    "해 질 녘 도시의 고층 건물들 사이로 주황빛 노을이 번지고, 도로 위 차량들이 불빛을 켜고 지나간다.",
    "안개가 낀 산등성이 위로 구름이 천천히 흘러가며, 카메라가 오른쪽으로 부드럽게 이동한다.",
]
KOREAN_REFERENCES = [
    "화창한 낮, 넓은 바다 위로 잔잔한 파도가 일고 있으며 수평선 근처에 배 한 척이 떠 있다. 하늘에는 흰 구름이 드문드문 보인다.",
    "저녁 노을이 물든 도시 풍경으로, 빌딩 사이 도로를 따라 자동차들이 헤드라이트를 켠 채 이동하고 있다.",
    "짙은 안개에 싸인 산의 능선이 보이고, 구름이 느리게 움직이는 가운데 화면이 오른쪽으로 천천히 이동한다.",
]


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).replace(microsecond=0).isoformat()


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def write_jsonl(path: Path, records: list[dict], mode: str = "w") -> None:
    with open(path, mode, encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def train_rows(stage: int, steps: range, t0: float, sec_per_step: float, lr: float) -> list[dict]:
    rows = []
    total = max(steps.stop, 1)
    for step in steps:
        rows.append({
            "kind": "train", "stage": stage, "step": step, "epoch": round(step / total * 2, 3),
            "loss": round(3.0 * math.exp(-step / 80) + 0.8 + 0.05 * math.sin(step), 4),
            "lr": lr * min(1.0, step / 10) * (0.5 + 0.5 * math.cos(math.pi * step / total)),
            "grad_norm": 1.0, "samples_per_s": 12.5, "mem_mb": 2048, "time": iso(t0 + step * sec_per_step),
        })
    return rows


def eval_row(stage, step, epoch, meteor, siglip, diversity, collapse=False, reasons=(), t=NOW) -> dict:
    return {"kind": "eval", "stage": stage, "step": step, "epoch": epoch, "loss": 1.234, "meteor": meteor,
            "siglip": siglip, "siglip_cosine": 0.21, "diversity": diversity, "ref_diversity": 0.81,
            "unique_ratio": 0.9 if not collapse else 0.1, "collapse": collapse,
            "collapse_reasons": list(reasons), "time": iso(t)}


def samples(stage: int, epoch: int, step: int) -> list[dict]:
    return [{"stage": stage, "epoch": epoch, "step": step, "id": f"clip_{i:04d}", "video": f"val/clip_{i:04d}.mp4",
             "prediction": p, "reference": r} for i, (p, r) in enumerate(zip(KOREAN_PREDICTIONS, KOREAN_REFERENCES))]


def make_run(root: Path, name: str, *, status: str, projector: str, stage: int, step: int, total: int,
             pid: int, updated: float, train: list[dict], evals: list[dict], error: str | None = None,
             summary: dict | None = None, sample_rows: list[dict] | None = None) -> Path:
    run = root / name
    run.mkdir(parents=True)
    cfg = Config()
    cfg.projector.name = projector
    (run / "config.toml").write_text(config_to_toml(cfg, comments=False), encoding="utf-8")
    best = max((e for e in evals), key=lambda e: e["meteor"], default=None)
    state = {
        "name": name, "status": status, "pid": pid, "host": HOST, "stage": stage, "projector": projector,
        "step": step, "total_steps": total, "epoch": round(step / total * 2, 2), "epochs": 2,
        "started": iso(NOW - 3600), "updated": iso(updated), "error": error,
        "best": {"metric": "meteor", "value": best["meteor"], "step": best["step"]} if best else None,
    }
    (run / "state.json").write_text(json.dumps(state, ensure_ascii=False, indent=2), encoding="utf-8")
    write_jsonl(run / "metrics.jsonl", train + evals)
    write_jsonl(run / "samples.jsonl", sample_rows or [])
    if summary is not None:
        (run / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return run


def make_runs(root: Path) -> Path:
    """runs/ with one run per status: running, finished, failed, stale, collapsed."""
    root.mkdir(parents=True, exist_ok=True)
    # running: 120 of 400 steps, one step per 2 s -> ETA 280 steps * 2 s = 9m20s
    make_run(root, "mlp-running", status="running", projector="mlp2x_gelu", stage=1, step=120, total=400,
             pid=os.getpid(), updated=NOW - 5, train=train_rows(1, range(1, 121), NOW - 240, 2.0, 1e-3),
             evals=[eval_row(1, 100, 1, 0.312, 0.121, 0.642)], sample_rows=samples(1, 1, 100))
    make_run(root, "linear-done", status="finished", projector="linear", stage=2, step=300, total=300,
             pid=dead_pid(), updated=NOW - 7200, train=train_rows(2, range(1, 301), NOW - 9000, 5.0, 5e-5),
             evals=[eval_row(2, 150, 1, 0.385, 0.098, 0.55), eval_row(2, 300, 2, 0.423, 0.112, 0.581)],
             summary={"name": "linear-done", "stage": 2, "status": "finished", "projector": "linear",
                      "projector_params": 4198400, "visual_tokens": 4608, "train_time_s": 5400},
             sample_rows=samples(2, 2, 300))
    make_run(root, "perceiver-oom", status="failed", projector="perceiver", stage=1, step=40, total=400,
             pid=dead_pid(), updated=NOW - 600, train=train_rows(1, range(1, 41), NOW - 900, 3.0, 1e-3),
             evals=[], error="CUDA out of memory: tried to allocate 2.00 GiB")
    make_run(root, "cabs-stale", status="running", projector="cabstractor", stage=1, step=80, total=400,
             pid=dead_pid(), updated=NOW - 5400, train=train_rows(1, range(1, 81), NOW - 6000, 3.0, 1e-3),
             evals=[])
    make_run(root, "mlp-collapsed", status="finished", projector="mlp2x_gelu", stage=2, step=200, total=200,
             pid=dead_pid(), updated=NOW - 3000, train=train_rows(2, range(1, 201), NOW - 4000, 5.0, 5e-5),
             evals=[eval_row(2, 100, 1, 0.18, 0.31, 0.41),
                    eval_row(2, 200, 2, 0.22, 0.35, 0.08, collapse=True,
                             reasons=["diversity 0.08 < half the references' 0.81", "unique captions 10%"])],
             sample_rows=[dict(s, prediction=KOREAN_PREDICTIONS[0]) for s in samples(2, 2, 200)])
    return root


def make_job(out: Path) -> Path:
    """A running caption job: 40 of 100 done, 3 failures with reasons."""
    out.mkdir(parents=True, exist_ok=True)
    job = {"status": "running", "pid": os.getpid(), "host": HOST, "checkpoint": "runs/linear-done/best",
           "inputs": ["videos"], "output": str(out), "shard": None, "total": 100, "done": 40, "ok": 37,
           "failed": 3, "skipped": 0, "throughput": 0.5, "eta_s": 120.0, "started": iso(NOW - 80),
           "updated": iso(NOW - 1), "error": None}
    (out / "job.json").write_text(json.dumps(job), encoding="utf-8")
    records = []
    for i in range(40):
        if i in (5, 17, 33):
            records.append({"video": f"videos/bad_{i:03d}.mp4", "status": "error", "caption": None, "segments": [],
                            "duration": None, "frame_times": [], "checkpoint": "runs/linear-done/best",
                            "elapsed_s": 0.1, "error": {5: "not a video (no video stream)",
                                                        17: "corrupt: moov atom not found",
                                                        33: "empty file (0 bytes)"}[i]})
        else:
            text = KOREAN_PREDICTIONS[i % 3]
            records.append({"video": f"videos/clip_{i:03d}.mp4", "status": "ok", "caption": text,
                            "segments": [{"start": 0.0, "end": 4.0, "text": text}], "duration": 4.0,
                            "frame_times": [0.25], "checkpoint": "runs/linear-done/best", "elapsed_s": 2.0,
                            "error": None})
    write_jsonl(out / "captions.jsonl", records)
    return out


if __name__ == "__main__":  # build a fixture by hand: python tests/tui/fixture_runs.py /tmp/tuifix
    base = Path(sys.argv[1])
    make_runs(base / "runs")
    make_job(base / "out")
    print(base)
