"""The frozen vision encoder: shapes, CLS handling, preprocessing equal to CLIP's own processor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kvcap.model.vision import VisionEncoder


@pytest.fixture(scope="module")
def encoder(tiny_models):
    return VisionEncoder("tiny:clip", layer=-2, cls="drop", device="cpu")


def _frames(batch=2, steps=3, size=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (batch, steps, size, size, 3), dtype=np.uint8)


def test_shapes_and_identity(encoder):
    assert (encoder.image_size, encoder.hidden_size, encoder.tokens_per_frame) == (64, 64, 16)
    features = encoder.encode(_frames())
    assert features.shape == (2, 3, 16, 64) and features.dtype == torch.float32
    assert encoder.key == "tiny:clip|layer=-2|cls=drop|size=64"


def test_cls_keep_adds_one_token_and_layer_changes_features(tiny_models, encoder):
    keep = VisionEncoder("tiny:clip", layer=-2, cls="keep", device="cpu")
    frames = _frames()
    kept = keep.encode(frames)
    assert keep.tokens_per_frame == 17 and kept.shape == (2, 3, 17, 64)
    assert torch.equal(kept[:, :, 1:], encoder.encode(frames))  # dropping CLS = token 0
    last = VisionEncoder("tiny:clip", layer=-1, device="cpu")
    assert last.key != encoder.key
    assert not torch.allclose(last.encode(frames), encoder.encode(frames))


def test_everything_lives_on_the_device_asked_for(tiny_models):
    # The GPU bench found the mean/std buffers left on the CPU while CLIP went to CUDA, so
    # `encoder.device` (and with it the captioner's device and compute dtype) said "cpu". The
    # meta device stands in for a GPU here: any tensor left behind would show up as "cpu".
    meta = VisionEncoder("tiny:clip", layer=-2, device="meta")
    assert meta.device.type == "meta"
    assert {t.device.type for t in [*meta.parameters(), *meta.buffers()]} == {"meta"}


def test_frozen_no_grad_and_stays_eval(encoder):
    assert not any(p.requires_grad for p in encoder.parameters())
    encoder.train()
    assert not encoder.model.training
    features = encoder.encode(_frames(1, 1))
    assert not features.requires_grad


def test_preprocessing_matches_clip_image_processor(tiny_models, encoder):
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    frames = _frames(1, 2)
    processor = CLIPImageProcessorPil.from_pretrained(tiny_models["clip"])
    expected = processor(images=list(frames[0]), return_tensors="pt")["pixel_values"]
    ours = encoder.preprocess(torch.from_numpy(frames[0]))
    assert ours.shape == expected.shape
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


def test_numpy_and_tensor_inputs_agree_and_other_sizes_are_resized(encoder):
    frames = _frames(1, 2)
    torch.testing.assert_close(encoder.encode(frames), encoder.encode(torch.from_numpy(frames)))
    big = _frames(1, 2, size=112)
    assert encoder.encode(big).shape == (1, 2, 16, 64)


def test_bad_input_and_settings_are_refused(tiny_models, encoder):
    with pytest.raises(ValueError, match=r"\(B, T, S, S, 3\)"):
        encoder.encode(np.zeros((2, 64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="drop, keep"):
        VisionEncoder("tiny:clip", cls="mean", device="cpu")
    with pytest.raises(ValueError, match="layer 7 out of range"):
        VisionEncoder("tiny:clip", layer=7, device="cpu")
