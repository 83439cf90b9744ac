"""The captioner: frozen vision tower -> projector -> LLM, with training loss and batched generation.

    features = captioner.encode(frames)                    # (B, T, S, S, 3) uint8 -> (B, T, N, D)
    loss = captioner.loss(features, captions)              # assistant tokens only
    texts = captioner.generate(features, cfg.generation)   # batched, left padded, KV cache

The LLM input for one clip is the chat prompt with its single video placeholder token replaced
by the projector's V embeddings:  [prefix tokens] [V visual embeds] [suffix tokens] [caption + <|im_end|>]
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kvcap.model import checkpoint as ckpt
from kvcap.model import generation
from kvcap.model.llm import load_llm
from kvcap.model.prompt import PromptFormat, build_prompt_format
from kvcap.model.trainable import (
    Mode,
    apply_plan,
    count_trainable,
    format_summary,
    is_peft_model,
)
from kvcap.model.vision import VisionEncoder, resolve_device, resolve_dtype

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100  # label value the LM loss skips


class Captioner(nn.Module):
    """A LLaVA-style video captioner. Build with `from_config` or `from_checkpoint`."""

    def __init__(
        self,
        vision: VisionEncoder,
        projector: nn.Module,
        llm: nn.Module,
        tokenizer: Any,
        spec: "ckpt.CheckpointSpec | dict[str, Any]",
    ):
        super().__init__()
        self.vision = vision
        self.projector = projector
        self.llm = llm
        self.tokenizer = tokenizer
        if isinstance(spec, dict):
            spec = ckpt.CheckpointSpec.from_dict(spec)
        self.spec: ckpt.CheckpointSpec = spec
        # The local folder the LLM was loaded from (for bundling or referencing); hub ids stay ids.
        self.llm_path = str(getattr(llm, "name_or_path", "") or spec.llm.id)
        self.prompt: PromptFormat = build_prompt_format(tokenizer, spec.prompt)
        if self.prompt.added_placeholder:
            spec.tokenizer_bundled = True
        self.max_caption_tokens: int = int(spec.max_caption_tokens or 512)
        self.compute_dtype = resolve_dtype(spec.llm.dtype or "auto", self.device)
        self._check_dims()

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_config(cls, cfg: Any, device: str | torch.device = "auto") -> "Captioner":
        """Fresh projector on the configured backbones (nothing trainable yet: see apply_plan)."""
        return cls.from_sections(cfg.model, cfg.projector, cfg.generation, cfg.train.max_caption_tokens, device)

    @classmethod
    def from_sections(cls, model: Any, projector_cfg: Any, gen: Any, max_caption_tokens: int,
                      device: str | torch.device = "auto", *, seed: int | None = None, plan: dict | None = None,
                      lora: Any = None, init_projector: str | Path | None = None) -> "Captioner":
        """`from_config` from the sections it reads: [model], [projector], [generation] and
        train.max_caption_tokens. For training: `seed` seeds every RNG once the backbones are
        loaded (a `tiny:` backbone is written on first use with its own seed), so the projector's
        init depends on the seed alone; `init_projector` (a checkpoint) gives the projector its
        starting weights; `plan` (component -> Mode, with `lora`) says what trains. Without a plan
        everything is frozen."""
        from kvcap.model.projectors import build_projector, projector_kwargs

        device = resolve_device(device)
        dtype = resolve_dtype(model.dtype, device)
        vision = VisionEncoder(model.vision, model.vision_layer, model.vision_cls, device, dtype)
        llm, tokenizer = load_llm(model.llm, model.quantization, dtype, device, model.gradient_checkpointing)
        if seed is not None:
            from transformers import set_seed

            set_seed(seed)
        projector = build_projector(
            projector_cfg.name,
            vision.hidden_size,
            llm.config.hidden_size,
            frames=model.frames,
            patches=vision.tokens_per_frame,
            **projector_kwargs(projector_cfg),
        )
        spec = ckpt.CheckpointSpec(
            vision=ckpt.VisionSpec(id=model.vision, layer=model.vision_layer, cls=model.vision_cls),
            projector=ckpt.ProjectorSpec(name=projector_cfg.name),
            llm=ckpt.LlmSpec(id=model.llm, quantization=model.quantization, dtype=model.dtype,
                             gradient_checkpointing=model.gradient_checkpointing),
            prompt=model.prompt,
            frames=model.frames,
            generation=generation.as_dict(gen),
            max_caption_tokens=max_caption_tokens,
        )
        if init_projector is not None:
            from kvcap.model.loading import load_projector_weights

            load_projector_weights(projector, init_projector)
        captioner = cls(vision, projector.to(device), llm, tokenizer, spec)
        captioner.apply_plan(plan or {"vision": Mode.FROZEN, "projector": Mode.FROZEN, "llm": Mode.FROZEN}, lora)
        return captioner

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        device: str | torch.device = "auto",
        quantization: str | None = None,
        gradient_checkpointing: bool = False,
        merge_adapters: bool = True,
    ) -> "Captioner":
        """Rebuild exactly the saved model (safetensors only), frozen and in eval mode.

        `quantization` overrides the saved one (e.g. `none` on a machine without bitsandbytes);
        `gradient_checkpointing` for continuing training (stage 2 from stage 1's best).
        `merge_adapters` folds a LoRA adapter into unquantized weights (faster generation, see
        `merge_for_inference`); pass False to keep it separate, to train it further.
        """
        from kvcap.model.loading import load_parts

        parts = load_parts(path, device, quantization, gradient_checkpointing, merge_adapters)
        captioner = cls(parts.vision, parts.projector, parts.llm, parts.tokenizer, parts.spec)
        captioner.apply_plan({"vision": Mode.FROZEN, "projector": Mode.FROZEN, "llm": Mode.FROZEN})
        if parts.merged_lora:
            # The LLM's own weights now hold the adapter: saved again, it is saved whole.
            captioner.spec.llm.merged_lora = parts.merged_lora
            captioner.spec.llm.trained_full = True
        captioner.eval()
        return captioner

    def _check_dims(self) -> None:
        llm_dim = self.llm.config.hidden_size
        if getattr(self.projector, "llm_dim", llm_dim) != llm_dim:
            raise ValueError(f"projector outputs width {self.projector.llm_dim}, the LLM takes {llm_dim}")
        if getattr(self.projector, "vision_dim", self.vision.hidden_size) != self.vision.hidden_size:
            raise ValueError(
                f"projector takes width {self.projector.vision_dim}, the vision tower gives {self.vision.hidden_size}"
            )

    # ------------------------------------------------------------------ properties

    @property
    def device(self) -> torch.device:
        return self.vision.device

    @property
    def image_size(self) -> int:
        return self.vision.image_size

    @property
    def frames(self) -> int:
        return int(self.spec.frames)

    @property
    def num_visual_tokens(self) -> int:
        return int(self.projector.num_visual_tokens)

    @property
    def generation_defaults(self) -> dict[str, Any]:
        return dict(self.spec.generation or {})

    def checkpoint_settings(self) -> dict[str, Any]:
        """This model's layer of settings (frames, prompt, generation) for `kvcap.config.with_checkpoint`."""
        return self.spec.settings()

    # ------------------------------------------------------------------ training plan

    def apply_plan(self, plan: dict, lora: Any = None) -> None:
        """Make the components trainable as declared; log trainable parameter counts."""
        self.llm = apply_plan(self.vision, self.projector, self.llm, plan, lora)
        if is_peft_model(self.llm) and lora is not None:
            self.spec.lora = {
                "r": lora.r, "alpha": lora.alpha, "dropout": lora.dropout, "target_modules": list(lora.target_modules),
            }
        elif is_peft_model(self.llm) and not self.spec.lora:
            config = self.llm.peft_config["default"]
            self.spec.lora = {"r": config.r, "alpha": config.lora_alpha, "dropout": config.lora_dropout,
                                 "target_modules": sorted(config.target_modules)}
        if not is_peft_model(self.llm):
            self.spec.lora = None
        self.spec.llm.trained_full = bool(self.spec.llm.trained_full) or Mode(plan["llm"]) is Mode.FULL
        if any(Mode(m) is not Mode.FROZEN for m in plan.values()):
            logger.info(format_summary(self.trainable_summary()))

    def trainable_summary(self) -> dict[str, int]:
        return {
            "vision": count_trainable(self.vision),
            "projector": count_trainable(self.projector),
            "llm": count_trainable(self.llm),
        }

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters the current plan trains (what the optimizer gets)."""
        return [p for p in self.parameters() if p.requires_grad]

    def train(self, mode: bool = True) -> "Captioner":
        super().train(mode)
        self.vision.train(False)  # always frozen (VisionEncoder ignores it too)
        return self

    # ------------------------------------------------------------------ building inputs

    def encode(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(B, T, S, S, 3) uint8 -> (B, T, N, D) frozen features."""
        return self.vision.encode(frames)

    def _embedding(self) -> nn.Embedding:
        return self.llm.get_input_embeddings()

    def _project(self, features: torch.Tensor) -> torch.Tensor:
        """(B, T, N, D) -> (B, V, Dl) in the LLM's embedding dtype."""
        features = features.to(self.device)
        if self.device.type == "cuda" and self.compute_dtype != torch.float32:
            # fp32 master weights, matmuls in the compute dtype.
            with torch.autocast("cuda", dtype=self.compute_dtype):
                visual = self.projector(features)
        else:
            visual = self.projector(features)
        return visual.to(self._embedding().weight.dtype)

    def _embed_ids(self, ids: list[int] | torch.Tensor) -> torch.Tensor:
        ids = torch.as_tensor(ids, dtype=torch.long, device=self.device)
        return self._embedding()(ids)

    def tokenize_caption(self, caption: str) -> list[int]:
        """Caption tokens + end-of-turn tokens; a cut caption ends at a sentence or has no end token."""
        from kvcap.model.prompt import caption_target_ids

        return caption_target_ids(self.tokenizer, caption, self.max_caption_tokens, self.prompt.end_ids)

    def training_batch(self, features: torch.Tensor, captions: list[str]) -> dict[str, torch.Tensor]:
        """Right-padded inputs_embeds, attention_mask and labels (-100 off the assistant tokens)."""
        if features.shape[0] != len(captions):
            raise ValueError(f"{features.shape[0]} clips but {len(captions)} captions")
        visual = self._project(features)  # (B, V, Dl)
        batch, num_visual = visual.shape[:2]
        targets = [self.tokenize_caption(c) for c in captions]
        suffix = self.prompt.suffix_ids
        tail_len = len(suffix) + max(len(t) for t in targets)
        pad_id = self.tokenizer.pad_token_id
        tail_ids = torch.full((batch, tail_len), pad_id, dtype=torch.long)
        tail_labels = torch.full((batch, tail_len), IGNORE_INDEX, dtype=torch.long)
        tail_mask = torch.zeros((batch, tail_len), dtype=torch.long)
        for i, target in enumerate(targets):
            n = len(suffix) + len(target)
            tail_ids[i, :n] = torch.tensor(suffix + target)
            tail_labels[i, len(suffix) : n] = torch.tensor(target)
            tail_mask[i, :n] = 1
        prefix = self._embed_ids(self.prompt.prefix_ids).unsqueeze(0).expand(batch, -1, -1)
        embeds = torch.cat([prefix, visual, self._embed_ids(tail_ids)], dim=1)  # (B, L, Dl)
        head = len(self.prompt.prefix_ids) + num_visual
        ignore = torch.full((batch, head), IGNORE_INDEX, dtype=torch.long)
        labels = torch.cat([ignore, tail_labels], dim=1).to(self.device)
        mask = torch.cat([torch.ones((batch, head), dtype=torch.long), tail_mask], dim=1).to(self.device)
        return {"inputs_embeds": embeds, "attention_mask": mask, "labels": labels}

    def loss(self, features: torch.Tensor, captions: list[str]) -> torch.Tensor:
        """Mean cross-entropy over the caption + end-of-turn tokens.

        Logits are computed only from the first labelled position on (the caption tail,
        ~400 positions), not over the ~4,600 visual ones: with Qwen3's 151,936-token vocabulary
        the full (B, L, V) logits, their fp32 copy and its gradient cost ~9 GB a sample. The value
        equals the LLM's own full-logits loss (tested).
        """
        batch = self.training_batch(features, captions)
        labels = batch.pop("labels")  # (B, L)
        first = int((labels != IGNORE_INDEX).any(dim=0).nonzero()[0])  # earliest labelled position
        keep = labels.shape[1] - first + 1  # logits at first-1 .. L-1 predict labels first .. L-1
        logits = self.llm(**batch, use_cache=False, logits_to_keep=keep).logits[:, :-1]  # (B, keep-1, V)
        return F.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]), labels[:, first:].reshape(-1), ignore_index=IGNORE_INDEX
        )

    def prompt_batch(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded prompt embeddings (B, L, Dl) and attention mask (B, L) for generation."""
        visual = self._project(features)  # (B, V, Dl)
        prefix = self._embed_ids(self.prompt.prefix_ids)
        suffix = self._embed_ids(self.prompt.suffix_ids)
        rows = [torch.cat([prefix, visual[i], suffix]) for i in range(visual.shape[0])]
        # Every prompt is the same length today (one template, V fixed per projector); pad
        # left anyway so the newest token of every row sits at the last position.
        length = max(r.shape[0] for r in rows)
        pad = self._embed_ids([self.tokenizer.pad_token_id])[0]
        embeds, masks = [], []
        for row in rows:
            missing = length - row.shape[0]
            embeds.append(torch.cat([pad.expand(missing, -1), row]))
            masks.append(torch.cat([torch.zeros(missing, dtype=torch.long), torch.ones(row.shape[0], dtype=torch.long)]))
        return torch.stack(embeds), torch.stack(masks).to(self.device)

    # ------------------------------------------------------------------ generation

    def generation_config(self, gen: Any = None, **overrides: Any):
        """A transformers GenerationConfig from kvcap's GenerationConfig (or dict) + overrides."""
        settings = self.generation_settings(gen, **overrides)
        return generation.hf_config(settings, self.prompt.stop_ids, self.tokenizer.pad_token_id)

    def generation_settings(self, gen: Any = None, **overrides: Any) -> dict[str, Any]:
        """What a generate call runs with (kvcap.model.generation.resolve: the typed config defaults
        < the checkpoint's < `gen` < `overrides`)."""
        return generation.resolve(self.generation_defaults, gen, **overrides)

    def generate_ids(self, features: torch.Tensor, gen: Any = None, **overrides: Any) -> list[list[int]]:
        """New token ids per clip, cut before the first stop token."""
        return [out.ids for out in self.generate_scored(features, gen, **overrides)]

    def generate_scored(self, features: torch.Tensor, gen: Any = None, **overrides: Any):
        """(B, T, N, D) features -> one kvcap.model.batch_generate.Generated per clip: its ids and each
        token's log-probability (`avg_logprob`); sets `last_engine` (and `capture_error`)."""
        from kvcap.model.batch_generate import generate_scored

        return generate_scored(self, features, gen, **overrides)

    def _static_settings(self, gen: Any, overrides: dict[str, Any]):
        """GreedySettings when `generation.engine` and the options allow the static loop, else None (HF)."""
        from kvcap.model.decode import unsupported_reason

        settings = self.generation_settings(gen, **overrides)
        engine = str(settings["engine"] or "auto")
        if engine == "hf":
            return None
        reason = unsupported_reason(settings, self.llm)
        if reason is not None:
            if engine == "static":
                logger.info("generation.engine=static: %s needs transformers' generate; using it", reason)
            return None
        return generation.greedy_settings(settings, self.prompt.stop_ids, self.tokenizer.pad_token_id)

    def _static_decoder(self):
        from kvcap.model.decode import StaticDecoder

        decoder = getattr(self, "_decoder", None)
        if decoder is None or decoder.llm is not self.llm:
            decoder = StaticDecoder(self.llm)
            object.__setattr__(self, "_decoder", decoder)  # not a submodule: never saved or moved
        return decoder

    def generate(self, features: torch.Tensor, gen: Any = None, **overrides: Any) -> list[str]:
        """(B, T, N, D) features -> B clean caption strings (greedy unless `gen` says otherwise)."""
        return [out.text for out in self.generate_scored(features, gen, **overrides)]

    # ------------------------------------------------------------------ saving

    def describe(self) -> "ckpt.CheckpointSpec":
        """The CheckpointSpec (kvcap.json) of the current state; `Captioner.spec` is left as it is."""
        spec = self.spec.copy()
        spec.vision.image_size = self.vision.image_size
        spec.vision.hidden_size = self.vision.hidden_size
        spec.vision.tokens_per_frame = self.vision.tokens_per_frame
        spec.projector = ckpt.ProjectorSpec(name=self.projector.config()["name"], config=self.projector.config(),
                                            num_visual_tokens=self.num_visual_tokens)
        spec.llm.hidden_size = int(self.llm.config.hidden_size)
        return spec

    def save(self, out_dir: str | Path, bundle_backbones: bool | None = None, card: dict[str, Any] | None = None) -> Path:
        """Write a checkpoint directory atomically (temp dir, then rename), with a model card.

        `tiny:` backbones are bundled; a local backbone folder is referenced by resolved path and
        fingerprint (kvcap.model.backbone), not copied; hub ids stay ids. `bundle_backbones=True`
        copies local folders in too (`kvcap export --bundle`). A FULL-trained LLM is always
        saved. `card` adds run facts (data, recipe, eval metrics) to README.md (kvcap.model.card).
        """
        from kvcap.model.saving import save_parts

        return save_parts(out_dir, self.describe(), vision_path=self.vision.path, projector=self.projector,
                          llm=self.llm, llm_path=self.llm_path, tokenizer=self.tokenizer,
                          bundle_backbones=bundle_backbones, card=card)
