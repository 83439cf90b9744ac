"""The torch-free paths stay torch-free: `kvcap probe`, frame sampling on every codec the zoo
holds, and `kvcap score --metrics meteor,diversity` run in a fresh process that never imports
torch (or transformers). On the main job torch is installed, so an import would succeed there
silently; these tests catch it on every job, and `make test-compat` proves it without torch.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CODECS = ("h264", "hevc", "vp9", "av1", "mpeg4", "mjpeg")
HEAVY = ("torch", "transformers", "textual", "ray")

# Runs the CLI in-process (so sys.modules can be inspected after), then prints the heavy modules
# it loaded on the last line. argv[1]: a JSON list of CLI arguments.
RUN_CLI = """
import json, sys
from click.testing import CliRunner
from kvcap.cli import main
result = CliRunner().invoke(main, json.loads(sys.argv[1]))
sys.stdout.write(result.output)
print(result.exit_code)
print(json.dumps(sorted(m for m in %r if m in sys.modules)))
""" % (HEAVY,)

SAMPLE = """
import json, sys
from kvcap.video import sample_frames
out = {}
for path in json.loads(sys.argv[1]):
    s = sample_frames(path, num_frames=4, size=32)
    out[path] = [[int(f.mean()) for f in s.frames], [round(t, 3) for t in s.times], s.info.codec]
print(json.dumps(out))
print(json.dumps(sorted(m for m in %r if m in sys.modules)))
""" % (HEAVY,)


def _python(code: str, *args: str, cwd: Path | None = None) -> tuple[str, list[str]]:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=180, cwd=cwd)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    *body, loaded = proc.stdout.rstrip("\n").split("\n")
    return "\n".join(body), json.loads(loaded)


def _cli(*args: str, cwd: Path | None = None) -> tuple[int, str, list[str]]:
    output, loaded = _python(RUN_CLI, json.dumps(list(args)), cwd=cwd)
    *text, code = output.split("\n")
    return int(code), "\n".join(text), loaded


def test_probe_every_codec_without_torch(video_zoo):
    paths = [str(video_zoo.clips[c]) for c in CODECS]
    code, output, loaded = _cli("probe", "--json", *paths)
    assert code == 0, output
    records = {r["path"]: r for r in json.loads(output)}
    assert {records[p]["codec"] for p in paths} == set(CODECS)
    assert all(records[p]["status"] == "ok" and records[p]["duration"] > 1.5 for p in paths)
    assert loaded == []


def test_sampling_every_codec_without_torch(video_zoo):
    from fixtures.video import gray_for_time

    paths = [str(video_zoo.clips[c]) for c in CODECS]
    output, loaded = _python(SAMPLE, json.dumps(paths))
    sampled = json.loads(output)
    for codec, path in zip(CODECS, paths):
        means, times, seen = sampled[path]
        assert seen == codec
        assert times == sorted(times) and len(times) == 4 and times[0] > 0.1 and times[-1] < 2.0
        # each frame's brightness codes its time: the frame is the one shown at its reported time
        # (means over a 32x32 crop that excludes the red corner marker stay within a few levels)
        for mean, t in zip(means, times):
            assert abs(mean - gray_for_time(t)) <= 12, (codec, mean, t)
    assert loaded == []


def test_score_meteor_and_diversity_without_torch(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "metrics"))
    from metrics_helpers import captions

    texts = captions(6, seed=3, sentences=(2, 3))
    refs = tmp_path / "val.jsonl"
    refs.write_text("".join(json.dumps({"id": f"c{i}", "video": f"c{i}.mp4", "caption": t, "split": "val"},
                                       ensure_ascii=False) + "\n" for i, t in enumerate(texts)), encoding="utf-8")
    preds = tmp_path / "captions.jsonl"
    preds.write_text("".join(json.dumps({"video": f"c{i}.mp4", "status": "ok", "caption": texts[(i + 1) % 6]},
                                        ensure_ascii=False) + "\n" for i in range(6)), encoding="utf-8")
    code, output, loaded = _cli("score", str(preds), "--refs", str(refs), "--metrics", "meteor,diversity", "--json",
                                cwd=tmp_path)
    assert code == 0, output
    report = json.loads(output[output.index("{"):])
    text = json.dumps(report)
    assert "meteor" in text and "diversity" in text
    assert loaded == []


def test_caption_help_loads_no_heavy_module():
    code, output, loaded = _cli("caption", "--help")
    assert code == 0 and "--cluster" in output, output
    assert loaded == []


def test_review_with_refs_without_torch(video_zoo, tmp_path):
    """`kvcap review OUT --refs` (strips sampled again, METEOR) on a ledger written by hand."""
    import shutil

    videos, out = tmp_path / "videos", tmp_path / "out"
    videos.mkdir()
    out.mkdir()
    shutil.copyfile(video_zoo.clips["h264"], videos / "a.mp4")
    record = {"video": "a.mp4", "status": "ok", "caption": "바다 위로 해가 진다", "duration": 2.0,
              "segments": [{"start": 0.0, "end": 2.0, "text": "바다 위로 해가 진다"}],
              "frame_times": [0.267, 0.733, 1.267, 1.733]}
    (out / "captions.jsonl").write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "job.json").write_text(json.dumps({"status": "finished", "inputs": [str(videos)]}), encoding="utf-8")
    (videos / "val.jsonl").write_text(json.dumps({"id": "a", "video": "a.mp4", "caption": "바다 위로 해가 진다"},
                                                 ensure_ascii=False) + "\n", encoding="utf-8")
    code, output, loaded = _cli("review", str(out), "--refs", str(videos / "val.jsonl"), "--tokenizer", "whitespace")
    assert code == 0, output
    html = (out / "review.html").read_text(encoding="utf-8")
    from kvcap.metrics.meteor import meteor

    words = record["caption"].split()
    assert f'data-m="{meteor([words], words):.4g}"' in html and len(list((out / "review").glob("*.jpg"))) == 1
    assert loaded == []
