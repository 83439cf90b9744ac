"""A tiny random CLIP vision tower (64 px, 16 px patches -> 16 patches a frame, width 64)."""

from __future__ import annotations

from pathlib import Path

TINY_CLIP_IMAGE_SIZE = 64
TINY_CLIP_PATCH_SIZE = 16
TINY_CLIP_HIDDEN = 64
# CLIP's own normalisation constants, as in openai/clip-vit-large-patch14-336.
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def write_tiny_clip(out_dir: str | Path, seed: int = 0) -> Path:
    """Write a CLIPVisionModel + its CLIPImageProcessor config to `out_dir` (deterministic)."""
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModel
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = CLIPVisionConfig(
        image_size=TINY_CLIP_IMAGE_SIZE,
        patch_size=TINY_CLIP_PATCH_SIZE,
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
