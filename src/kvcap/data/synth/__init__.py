"""Synthetic scenes: procedurally drawn clips with Korean captions written from the same truth.

    synthesize(out_dir, count, seed) -> list[ManifestItem]   # clips/*.mp4 + manifest.jsonl

Each clip is a random `SceneSpec` (time of day, scene, weather, camera motion, moving objects
and their direction) drawn by `renderer.render_frames` and encoded as H.264 (yuv420p) with
PyAV; its caption is composed by `captions.compose_caption` from the same spec, and the spec
is stored as the manifest's `attributes`. Everything is a function of (seed, clip index), so a
seed gives the same manifest bytes and the same frames on every run.

This package imports no video library at module level: `caption_corpus` (used to train the
tiny tokenizer) and `parse_attributes` stay cheap to import.
"""

from __future__ import annotations

from kvcap.data.synth.captions import attribute_words, caption_corpus, compose_caption, parse_attributes
from kvcap.data.synth.scenes import ATTRIBUTE_VALUES, SceneSpec, sample_scene
from kvcap.data.synth.synthesize import clip_spec, encode_mp4, synthesize, val_indices

__all__ = [
    "ATTRIBUTE_VALUES",
    "SceneSpec",
    "attribute_words",
    "caption_corpus",
    "clip_spec",
    "compose_caption",
    "encode_mp4",
    "parse_attributes",
    "sample_scene",
    "synthesize",
    "val_indices",
]
