"""Small pieces of the trainer: data order, run paths, checkpoint rotation, compare."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kvcap.cli import main
from kvcap.trainer.compare import CompareError, compare_runs, render_compare
from kvcap.trainer.features import epoch_order
from kvcap.trainer.rundir import RunDir, resolve_run_path


def test_epoch_order_is_seeded_per_epoch_and_split_evenly_across_ranks():
    a = epoch_order(10, epoch=0, seed=1, batch_size=3)
    assert a == epoch_order(10, epoch=0, seed=1, batch_size=3)
    assert a != epoch_order(10, epoch=1, seed=1, batch_size=3)
    assert sorted(i for b in a for i in b) == list(range(10))
    assert [len(b) for b in a] == [3, 3, 3, 1]
    r0 = epoch_order(7, 0, 5, 2, rank=0, world=2)
    r1 = epoch_order(7, 0, 5, 2, rank=1, world=2)
    assert len(r0) == len(r1)  # ranks always step together
    flat0, flat1 = [i for b in r0 for i in b], [i for b in r1 for i in b]
    assert len(flat0) == len(flat1) == 4
    assert set(flat0) | set(flat1) == set(range(7))
    assert epoch_order(1, 0, 0, 4, rank=1, world=2) == [[0]]  # fewer clips than ranks still works


def test_run_paths():
    assert resolve_run_path(None, "runs", "mlp2x_gelu") == Path("runs/mlp2x_gelu")
    assert resolve_run_path("x", "runs", "linear") == Path("runs/x")
    assert resolve_run_path("out/x", "runs", "linear") == Path("out/x")
    assert resolve_run_path("./x", "runs", "linear") == Path("./x")


def test_checkpoint_rotation_and_atomicity(tmp_path):
    import torch
    from torch import nn
    from transformers import get_cosine_schedule_with_warmup

    from kvcap.trainer.resume import latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    sched = get_cosine_schedule_with_warmup(opt, 1, 10)
    for step in range(1, 6):
        model(torch.randn(4, 3)).sum().backward()
        opt.step(); sched.step(); opt.zero_grad()
        save_checkpoint(tmp_path, model=model, optimizer=opt, scheduler=sched,
                        position={"stage": 1, "step": step, "epoch": 0, "batch": step}, keep_last=2)
    assert [n for n, _ in list_checkpoints(tmp_path)] == [4, 5]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left
    expected_next = torch.rand(1)  # the RNG stream after the checkpoint...
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.weight.zero_()
    torch.manual_seed(123)
    position = load_checkpoint(latest_checkpoint(tmp_path), model=model, optimizer=opt, scheduler=sched)
    from kvcap.trainer.resume import set_rng_state

    set_rng_state(position["_rng"])
    assert torch.equal(torch.rand(1), expected_next)  # ...is restored exactly
    assert torch.equal(model.weight, weights["weight"])
    assert position["step"] == 5 and sched.last_epoch == 5


def _fake_run(root: Path, name: str, projector: str, meteor: float, collapse: bool, summary: bool = True) -> Path:
    run = RunDir(root / name)
    run.create()
    run.write_state({"name": name, "status": "finished" if summary else "running", "stage": 2, "projector": projector})
    for i, m in enumerate([meteor / 2, meteor]):
        run.log_metrics({"kind": "eval", "stage": 2, "step": i + 1, "epoch": i + 1, "loss": 1.0, "meteor": m,
                         "siglip": 0.12, "diversity": 0.6, "collapse": collapse and i == 1})
    if summary:
        run.write_summary({"projector": projector, "projector_params": 4_200_000, "visual_tokens": 4608, "stage": 2,
                           "train_time_s": 3725.0, "best_eval": {"meteor": meteor, "siglip": 0.12, "diversity": 0.6,
                                                                 "collapse": collapse}})
    run.close()
    return run.path


def test_compare_rows_table_and_cli(tmp_path):
    a = _fake_run(tmp_path, "linear", "linear", 0.41, False)
    b = _fake_run(tmp_path, "perceiver", "perceiver", 0.30, True, summary=False)  # still training
    rows = compare_runs([a, b])
    assert rows[0]["meteor"] == 0.41 and rows[0]["params"] == 4_200_000 and rows[0]["collapse"] is False
    assert rows[1]["meteor"] == 0.30 and rows[1]["collapse"] is True and rows[1]["status"] == "running"
    from rich.console import Console

    console = Console(record=True, width=160)
    console.print(render_compare(rows))
    text = console.export_text()
    assert "4.2M" in text and "4,608" in text and "1h02m" in text and "YES" in text
    runner = CliRunner()
    out = runner.invoke(main, ["compare", str(a), str(b), "--json"])
    assert out.exit_code == 0, out.output
    assert [r["run"] for r in json.loads(out.output)] == ["linear", "perceiver"]
    out = runner.invoke(main, ["compare", str(a)])
    assert out.exit_code == 0 and "projector comparison" in out.output
    missing = runner.invoke(main, ["compare", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no such run directory" in missing.output
    with pytest.raises(CompareError, match="not a run directory"):
        (tmp_path / "empty").mkdir()
        compare_runs([tmp_path / "empty"])
