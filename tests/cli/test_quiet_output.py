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


def test_quiet_libraries_silences_the_kernels_offline_trust_notice():
    """The notice comes from `kernels._internals.hf_hub`'s logger at WARNING (kernels 0.19)."""
    import logging

    from kvcap.cli import quiet_libraries

    notice_logger = logging.getLogger("kernels._internals.hf_hub")
    kernels_logger = logging.getLogger("kernels")
    before = kernels_logger.level
    try:
        quiet_libraries()
        assert not notice_logger.isEnabledFor(logging.WARNING)
        assert notice_logger.isEnabledFor(logging.ERROR)
    finally:
        kernels_logger.setLevel(before)
