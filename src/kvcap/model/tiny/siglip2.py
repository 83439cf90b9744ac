"""A tiny random SigLIP2 (text + vision towers, width 32) with its processor, for tests.

The model is a real `Siglip2Model` built from `Siglip2Config`; the tokenizer is a small byte-level
BPE trained here with the `tokenizers` library on Korean caption text and wrapped as transformers'
own `Siglip2Tokenizer`, and the image processor is the PIL `Siglip2ImageProcessor` (NaFlex: up to
`TINY_SIGLIP2_PATCHES` 16 px patches). `AutoModel/AutoProcessor.from_pretrained(dir)` load it
offline exactly like `google/siglip2-*`.
"""

from __future__ import annotations

from pathlib import Path

TINY_SIGLIP2_HIDDEN = 32
TINY_SIGLIP2_PATCH = 16
TINY_SIGLIP2_PATCHES = 16          # a 64x64 frame is 4x4 patches
TINY_SIGLIP2_TEXT_LENGTH = 64      # SigLIP2's text window, as in the real models
TINY_SIGLIP2_VOCAB = 600

_SPECIAL = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]

# Enough Korean caption text for the BPE to learn common syllables and particles.
_CORPUS = [
    "맑은 하늘 아래 푸른 바다가 펼쳐져 있다. 파도가 해변으로 천천히 밀려온다.",
    "저녁 노을이 산 위로 붉게 물들고 구름이 천천히 흘러간다.",
    "도시의 높은 빌딩 사이로 자동차들이 줄지어 달리고 있다.",
    "비가 내리는 거리에서 사람들이 우산을 쓰고 걸어간다.",
    "안개 낀 산등성이 너머로 해가 떠오르며 하늘이 밝아진다.",
    "카메라가 왼쪽에서 오른쪽으로 천천히 이동하며 바다를 비춘다.",
    "눈이 내리는 밤, 가로등 불빛이 조용한 골목을 비추고 있다.",
    "새들이 푸른 하늘을 가로질러 날아가고 나무가 바람에 흔들린다.",
]


def _train_tokenizer():
    """A byte-fallback BPE over Korean text -> transformers' Siglip2Tokenizer (vocab + merges)."""
    import json

    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers.models.siglip2.tokenization_siglip2 import Siglip2Tokenizer

    # Train with the same normalisation Siglip2Tokenizer applies (spaces become "▁" and stay
    # attached to the previous piece), so the learnt merges fit what it will see.
    bpe = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    bpe.normalizer = normalizers.Replace(" ", "▁")
    bpe.pre_tokenizer = pre_tokenizers.Split(pattern="▁", behavior="merged_with_previous")
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=TINY_SIGLIP2_VOCAB + len(byte_tokens),
                                  special_tokens=_SPECIAL + byte_tokens, show_progress=False)
    bpe.train_from_iterator(_CORPUS * 4, trainer=trainer)
    state = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    tokenizer = Siglip2Tokenizer(vocab=state["vocab"], merges=merges)
    tokenizer.model_max_length = TINY_SIGLIP2_TEXT_LENGTH
    return tokenizer


def write_tiny_siglip2(out_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny Siglip2Model + tokenizer + image processor to `out_dir` (deterministic)."""
    import torch
    from transformers import Siglip2Config, Siglip2Model, Siglip2Processor, Siglip2TextConfig, Siglip2VisionConfig
    from transformers.models.siglip2.image_processing_pil_siglip2 import Siglip2ImageProcessorPil

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer()
    # Whole sub-configs (not partial dicts), so no default 32k-vocab text config is ever built
    # and validated against our special-token ids.
    text_config = Siglip2TextConfig(
        vocab_size=len(tokenizer), hidden_size=TINY_SIGLIP2_HIDDEN, intermediate_size=64,
        num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=TINY_SIGLIP2_TEXT_LENGTH,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    vision_config = Siglip2VisionConfig(
        hidden_size=TINY_SIGLIP2_HIDDEN, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        patch_size=TINY_SIGLIP2_PATCH, num_patches=TINY_SIGLIP2_PATCHES,
    )
    config = Siglip2Config(text_config=text_config.to_dict(), vision_config=vision_config.to_dict())
    torch.manual_seed(seed)
    model = Siglip2Model(config).eval()
    with torch.no_grad():
        # Random init leaves these at zero/noise; the real model's are ~log(10) scale, -10 bias.
        model.logit_scale.fill_(2.3)
        model.logit_bias.fill_(-10.0)
    model.save_pretrained(out_dir, safe_serialization=True)
    image_processor = Siglip2ImageProcessorPil(patch_size=TINY_SIGLIP2_PATCH, max_num_patches=TINY_SIGLIP2_PATCHES)
    Siglip2Processor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out_dir)
    return out_dir
