"""Tiny random CLIP vision towers: 64 px, width 64, two layers.

`tiny:clip` cuts a frame into 16 px patches (4 x 4 = 16 tokens a frame): cheap, for tests.
`tiny:clip8` cuts it into 8 px patches (8 x 8 = 64 tokens a frame). A random tower keeps only
what a random 64-d projection of each patch keeps; smaller patches lose less of where things
are, which is what telling a pan from a still camera takes (the demo model uses it).
"""

from __future__ import annotations

from pathlib import Path

TINY_CLIP_IMAGE_SIZE = 64
TINY_CLIP_PATCH_SIZE = 16
TINY_CLIP_HIDDEN = 64
# CLIP's own normalisation constants, as in openai/clip-vit-large-patch14-336.
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def write_tiny_clip(out_dir: str | Path, seed: int = 0, patch_size: int = TINY_CLIP_PATCH_SIZE) -> Path:
    """Write a CLIPVisionModel + its CLIPImageProcessor config to `out_dir` (deterministic)."""
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModel
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = CLIPVisionConfig(
        image_size=TINY_CLIP_IMAGE_SIZE,
        patch_size=patch_size,
        hidden_size=TINY_CLIP_HIDDEN,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        projection_dim=64,
    )
    torch.manual_seed(seed)
    model = CLIPVisionModel(config)
    model.save_pretrained(out_dir, safe_serialization=True)
    processor = CLIPImageProcessorPil(
        size={"shortest_edge": TINY_CLIP_IMAGE_SIZE},
        crop_size={"height": TINY_CLIP_IMAGE_SIZE, "width": TINY_CLIP_IMAGE_SIZE},
        image_mean=CLIP_MEAN,
        image_std=CLIP_STD,
    )
    processor.save_pretrained(out_dir)
    return out_dir


def write_tiny_clip8(out_dir: str | Path, seed: int = 0) -> Path:
    """`tiny:clip8`: the same tower with 8 px patches (64 patch tokens a frame)."""
    return write_tiny_clip(out_dir, seed, patch_size=8)
