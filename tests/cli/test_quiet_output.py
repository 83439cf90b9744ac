"""A model-loading command prints kvcap's lines, not library chatter (bitsandbytes, transformers)."""

from __future__ import annotations

import shutil

from cli_helpers import kvcap


def test_caption_stderr_has_no_library_noise(tmp_path, video_zoo, tiny_checkpoint):
    folder = tmp_path / "v"
    folder.mkdir()
    shutil.copyfile(video_zoo.clips["h264"], folder / "a.mp4")
    proc = kvcap("caption", folder, "--checkpoint", tiny_checkpoint, "-o", tmp_path / "out", "--device", "cpu",
                 "--quantization", "4bit", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for noise in ("kernels-community", "[transformers]", "bos_token_id", "Token indices sequence length"):
        assert noise not in proc.stderr, proc.stderr
    assert "captioning 1 video " in proc.stderr
