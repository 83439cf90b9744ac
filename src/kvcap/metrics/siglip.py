"""SigLIP2 image-text alignment of captions with their clips.

Per clip: `siglip_frames` frames sampled uniformly (kvcap.video.sample_frames), each embedded by
the image tower, averaged and L2-normalised -> one clip vector. Per caption: split into
sentences; a sentence longer than the 64-token text window is cut into consecutive windows;
each piece is embedded by the text tower and scored against the clip vector; the caption's
score is the mean over its pieces. We report both the raw cosine and the model's own sigmoid
probability, sigmoid(exp(logit_scale) * cos + logit_bias).

Models load through `AutoModel`/`AutoProcessor`, so hub ids, local directories and `tiny:siglip2`
(via kvcap.model.hub.loadable_source, which also says at once when the hub is needed and
absent) all take the same path, as do SigLIP2 NaFlex checkpoints
(`pixel_attention_mask`, `spatial_shapes`) and the fixed-resolution ones (`pixel_values` only):
whatever the image processor returns is passed on to `get_image_features`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from kvcap.errors import KvcapError, one_line

TEXT_WINDOW = 64  # SigLIP2's text length: the models were trained with max_length=64 padding

# A sentence ends at . ! ? 。 or … (possibly repeated, possibly followed by a closing quote or
# bracket) followed by whitespace, or at a line break.
_SENTENCE_END = re.compile(r"(?<=[.!?。…])[\"'”’)\]]*\s+|\n+")


class SiglipUnavailable(KvcapError, RuntimeError):
    """The SigLIP2 model cannot be loaded (one line, suggests skipping the metric)."""


def split_sentences(text: str) -> list[str]:
    """Korean (or any) caption -> its sentences, stripped, empty ones dropped."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


@dataclass
class ClipScore:
    siglip: float        # mean sigmoid probability over the caption's pieces
    cosine: float        # mean raw cosine
    pieces: int          # text windows scored


def _default_frames(path: Path, num_frames: int, size: int | None) -> np.ndarray:
    from kvcap.video import sample_frames

    return sample_frames(path, num_frames=num_frames, size=size).frames  # (T, S, S, 3) uint8


class SiglipScorer:
    """A loaded SigLIP2 model that scores (caption, clip) pairs in batches."""

    def __init__(self, model_id: str, device: str = "cpu", batch_size: int = 32,
                 frame_size: int | None = 256,
                 frame_loader: Callable[[Path, int, int | None], np.ndarray] | None = None):
        import torch

        self.model_id = model_id
        self.device = device
        self.batch_size = batch_size
        self.frame_size = frame_size
        self.frame_loader = frame_loader or _default_frames
        from kvcap.model.hub import HubUnavailable, loadable_source

        try:
            self.model, self.processor = _load(loadable_source(model_id, "score.siglip"))
        except HubUnavailable as exc:  # no hub: said now, before any retries
            raise SiglipUnavailable(f"SigLIP2 model: {exc}; skip with --metrics meteor,diversity") from None
        except Exception as exc:  # noqa: BLE001 - any load failure becomes one line for the user
            reason = one_line(exc, limit=160, first_line=True)
            raise SiglipUnavailable(
                f"SigLIP2 model {model_id!r} not available offline ({reason}); "
                "skip with --metrics meteor,diversity"
            ) from None
        self.model = self.model.to(device).eval()
        self.tokenizer = self.processor.tokenizer
        text_config = getattr(self.model.config, "text_config", None)
        self.text_window = min(TEXT_WINDOW, getattr(text_config, "max_position_embeddings", TEXT_WINDOW))
        self._torch = torch
        self._layout: tuple[list[int], list[int]] | None = None

    # ---- text -----------------------------------------------------------------------------

    def _special_layout(self) -> tuple[list[int], list[int]]:
        """Special ids the tokenizer puts before and after a text (e.g. [bos], [eos])."""
        if self._layout is None:
            self._layout = self._find_special_layout()
        return self._layout

    def _find_special_layout(self) -> tuple[list[int], list[int]]:
        probe = "a"
        bare = self.tokenizer(probe, add_special_tokens=False)["input_ids"]
        full = self.tokenizer(probe)["input_ids"]
        for start in range(len(full) - len(bare) + 1):
            if full[start:start + len(bare)] == bare:
                return full[:start], full[start + len(bare):]
        return [], []  # pragma: no cover - a tokenizer that rewrites the probe

    def text_windows(self, caption: str) -> list[list[int]]:
        """Token ids (no special tokens) per sentence; a long sentence cut into windows.

        Windows are cut on ids, not re-tokenized text, so nothing is lost or re-split and each
        window plus the special tokens fits the 64-token text window exactly.
        """
        prefix, suffix = self._special_layout()
        room = self.text_window - len(prefix) - len(suffix)
        windows: list[list[int]] = []
        for sentence in split_sentences(caption) or [caption.strip() or " "]:
            ids = self.tokenizer(sentence, add_special_tokens=False)["input_ids"]
            windows.extend(ids[start:start + room] for start in range(0, max(len(ids), 1), room))
        return windows

    def encode_windows(self, windows: Sequence[list[int]]):
        """(N, D) L2-normalised text embeddings of id windows, padded to the full window.

        SigLIP was trained with `padding="max_length"` to 64 and pools the last position, so
        every window is padded to exactly `text_window` on the tokenizer's padding side.
        """
        torch = self._torch
        prefix, suffix = self._special_layout()
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        left = getattr(self.tokenizer, "padding_side", "right") == "left"
        wants_mask = "attention_mask" in getattr(self.tokenizer, "model_input_names", ["input_ids"])
        out = []
        for start in range(0, len(windows), self.batch_size):
            ids_rows, mask_rows = [], []
            for window in windows[start:start + self.batch_size]:
                ids = prefix + list(window) + suffix
                fill = self.text_window - len(ids)
                ids_rows.append([pad] * fill + ids if left else ids + [pad] * fill)
                mask = [1] * len(ids)
                mask_rows.append([0] * fill + mask if left else mask + [0] * fill)
            inputs = {"input_ids": torch.tensor(ids_rows, device=self.device)}  # (B, 64)
            if wants_mask:
                inputs["attention_mask"] = torch.tensor(mask_rows, device=self.device)  # (B, 64)
            with torch.no_grad():
                emb = _pooled(self.model.get_text_features(**inputs))  # (B, D)
            out.append(torch.nn.functional.normalize(emb.float(), dim=-1))
        return torch.cat(out)

    # ---- video ----------------------------------------------------------------------------

    def _embed_images(self, images: list[np.ndarray]):
        """(N, D) L2-normalised image embeddings of HWC uint8 frames, in batches."""
        torch = self._torch
        embs = []
        for start in range(0, len(images), self.batch_size):
            inputs = self.processor.image_processor(images=images[start:start + self.batch_size], return_tensors="pt")
            inputs = {k: v.to(self.device) for k, v in inputs.items()}
            with torch.no_grad():
                embs.append(_pooled(self.model.get_image_features(**inputs)).float())  # (b, D)
        return torch.nn.functional.normalize(torch.cat(embs), dim=-1)  # (N, D)

    def encode_frames(self, frames: np.ndarray):
        """(T, H, W, 3) uint8 frames -> (D,) mean of per-frame image embeddings, L2-normalised."""
        per_frame = self._embed_images(list(frames))  # (T, D)
        return self._torch.nn.functional.normalize(per_frame.mean(dim=0), dim=-1).cpu()  # (D,)

    def encode_video(self, path: Path, num_frames: int):
        return self.encode_frames(self.frame_loader(Path(path), num_frames, self.frame_size))

    def encode_videos(self, videos: Sequence[tuple[str, Path]], num_frames: int):
        """{key: (D,) clip vector} for (key, path) pairs, frames of several clips per batch.

        A clip that cannot be decoded is skipped and named in the returned failure list
        (one line each); it never stops the others.
        """
        torch = self._torch
        vectors: dict[str, object] = {}
        failures: list[str] = []
        pending: list[tuple[str, np.ndarray]] = []

        def flush():
            if not pending:
                return
            frames = [f for _, clip in pending for f in clip]
            per_frame = self._embed_images(frames)  # (sum T, D)
            offset = 0
            for key, clip in pending:
                mean = per_frame[offset:offset + len(clip)].mean(dim=0)
                vectors[key] = torch.nn.functional.normalize(mean, dim=-1).cpu()  # (D,)
                offset += len(clip)
            pending.clear()

        for key, path in videos:
            try:
                pending.append((key, self.frame_loader(Path(path), num_frames, self.frame_size)))
            except Exception as exc:  # noqa: BLE001 - one bad clip must not stop the suite
                failures.append(one_line(exc, first_line=True) if str(exc).strip() else f"{path}: {type(exc).__name__}")
            if sum(len(clip) for _, clip in pending) >= self.batch_size:
                flush()
        flush()
        return vectors, failures

    # ---- scoring --------------------------------------------------------------------------

    def score_pairs(self, captions: Sequence[str], clip_vectors) -> list[ClipScore]:
        """Score caption i against clip vector i (all pieces of all captions in shared batches)."""
        torch = self._torch
        pieces: list[list[int]] = []
        owner: list[int] = []
        for index, caption in enumerate(captions):
            for window in self.text_windows(caption):
                pieces.append(window)
                owner.append(index)
        if not pieces:
            return []
        text = self.encode_windows(pieces)                      # (P, D)
        clips = torch.stack([clip_vectors[i] for i in owner]).to(text.device)  # (P, D)
        cosine = (text * clips).sum(dim=-1).cpu()               # (P,)
        scale = self.model.logit_scale.detach().float().exp().cpu()
        bias = self.model.logit_bias.detach().float().cpu()
        prob = torch.sigmoid(cosine * scale + bias)             # (P,)
        results = []
        owner_t = torch.tensor(owner)
        for index in range(len(captions)):
            mask = owner_t == index
            count = int(mask.sum())
            results.append(ClipScore(float(prob[mask].mean()) if count else math.nan,
                                     float(cosine[mask].mean()) if count else math.nan, count))
        return results


def _load(path: str):
    """(model, processor) from a local dir or the HF cache (`path` has passed loadable_source); the
    hub only when it answers.

    Without the quick reachability check an offline machine spends a minute in the hub
    client's retries before saying what we already know.
    """
    import os

    from transformers import AutoModel, AutoProcessor
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # kvcap reports its own progress
    offline = {"local_files_only": True, "adapter_kwargs": {"local_files_only": True}}
    try:
        return AutoModel.from_pretrained(path, **offline), AutoProcessor.from_pretrained(path, local_files_only=True)
    except Exception:  # noqa: BLE001 - not on disk: maybe downloadable
        if Path(path).exists() or os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "True"):
            raise
    from huggingface_hub import constants

    from kvcap.model.hub import reachable

    if not reachable(constants.ENDPOINT):
        raise OSError("not on disk and the hub is unreachable")
    return AutoModel.from_pretrained(path), AutoProcessor.from_pretrained(path)


def _pooled(output):
    """transformers 5 returns a ModelOutput from get_*_features; older versions a tensor."""
    return output if hasattr(output, "dim") else output.pooler_output


def load_siglip(model_id: str, device: str = "cpu", **kwargs) -> SiglipScorer:
    """A :class:`SiglipScorer`, or :class:`SiglipUnavailable` with a one-line reason."""
    from kvcap.model.vision import resolve_device

    return SiglipScorer(model_id, device=str(resolve_device(device)), **kwargs)
