"""Batched generation for the Captioner: the engine run (static loop or transformers' generate),
the token ids, and each caption's confidence (whisper's `avg_logprob`). The settings each engine
is given come from kvcap.model.generation.

    outs = generate_scored(captioner, features, gen)   # [Generated(ids, logprobs)], one per clip
    outs[0].avg_logprob                                # mean log-probability, stop token excluded

Both engines give every generated token's log-probability under the scores the token was chosen
from: the model's logits after the logits processors (repetition penalty, the min_new_tokens stop
ban), before any sampling warper (temperature, top-p), as whisper computes `avg_logprob` before
its temperature. For greedy decoding that is exactly what transformers'
`compute_transition_scores(normalize_logits=True)` gives for the same tokens (tested), without
keeping `output_scores`: those are (steps, B, V) fp32, ~12 GB at batch 48 x 400 steps for Qwen3.

- static loop (kvcap.model.decode): a fixed (B, max_new) buffer filled inside the decode step;
- transformers' generate: `TokenLogprobs`, a logits processor that keeps one step's
  log-normaliser and reads the chosen token at the next call (rows never reorder without beams);
- beam search: one teacher-forced pass over the chosen tokens (the raw model distribution; beams
  reorder rows between steps, so a processor cannot follow them).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Generated:
    """One clip's new tokens (cut before the first stop or pad token) and their log-probabilities."""

    ids: list[int]
    logprobs: list[float]
    text: str = ""
    """The clean caption (kvcap.model.prompt.clean_caption of the decoded ids)."""

    @property
    def avg_logprob(self) -> float | None:
        """Mean log-probability of the caption's tokens (stop token excluded); None for no token."""
        return sum(self.logprobs) / len(self.logprobs) if self.logprobs else None


class TokenLogprobs:
    """A transformers logits processor recording each chosen token's log-probability.

    Called once per step with the processed scores (B, V) before the token is chosen; the token
    chosen at step t is the last input id at step t+1, and the last one is read by `finish`.
    Only (B, V) of one step is held."""

    def __init__(self) -> None:
        self._scores: torch.Tensor | None = None  # (B, V) the last step's processed scores
        self._lse: torch.Tensor | None = None     # (B, 1) their log-normaliser
        self._steps: list[torch.Tensor] = []      # per step (B,) log-probabilities

    def _take(self, tokens: torch.Tensor) -> None:
        self._steps.append((self._scores.gather(1, tokens[:, None]) - self._lse)[:, 0].float())

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self._scores is not None:
            self._take(input_ids[:, -1])
        self._scores = scores.detach().clone()  # a later processor may write into `scores`
        self._lse = torch.logsumexp(self._scores, dim=-1, keepdim=True)
        return scores

    def finish(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, n) generated tokens -> (B, n) their log-probabilities (CPU fp32)."""
        if self._scores is not None and len(self._steps) < tokens.shape[1]:
            self._take(tokens[:, len(self._steps)].to(self._scores.device))
        self._scores = self._lse = None
        if not self._steps:
            return torch.zeros(tokens.shape, dtype=torch.float32)
        return torch.stack(self._steps, dim=1).cpu()


def teacher_forced_logprobs(llm: Any, embeds: torch.Tensor, mask: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """(B, L, D) prompt embeddings, (B, L) mask, (B, n) tokens -> (B, n) log-probabilities of the
    tokens under the model's own (unprocessed) distribution, in one forward pass."""
    tokens = tokens.to(embeds.device)
    new = llm.get_input_embeddings()(tokens).to(embeds.dtype)  # (B, n, D)
    full_mask = torch.cat([mask, torch.ones_like(tokens, dtype=mask.dtype)], dim=1)  # (B, L + n)
    keep = tokens.shape[1] + 1
    logits = llm(inputs_embeds=torch.cat([embeds, new], dim=1), attention_mask=full_mask, use_cache=False,
                 logits_to_keep=keep).logits[:, :-1].float()  # (B, n, V): position L-1+i predicts token i
    return torch.log_softmax(logits, dim=-1).gather(2, tokens[..., None])[..., 0].cpu()


def generate_scored(captioner: Any, features: torch.Tensor, gen: Any = None, **overrides: Any) -> list[Generated]:
    """(B, T, N, D) features -> one Generated per clip; sets `captioner.last_engine` (and
    `capture_error` after the static loop)."""
    was_training = captioner.training
    captioner.eval()
    try:
        with torch.no_grad():
            embeds, mask = captioner.prompt_batch(features)
            static = captioner._static_settings(gen, overrides)
            if static is not None:  # the fast loop (kvcap.model.decode); same greedy tokens
                decoder = captioner._static_decoder()
                output = decoder.generate(embeds, mask, static)
                logprobs = decoder.last_logprobs
                captioner.last_engine, captioner.capture_error = decoder.last_engine, decoder.capture_error
            else:
                output, logprobs = _hf_generate(captioner, embeds, mask, captioner.generation_config(gen, **overrides))
                captioner.last_engine = "hf"
    finally:
        captioner.train(was_training)
    from kvcap.model.prompt import clean_caption

    stops = set(captioner.prompt.stop_ids) | {captioner.tokenizer.pad_token_id}
    result = []
    for row, scores in zip(output.tolist(), logprobs.tolist()):
        cut = next((i for i, t in enumerate(row) if t in stops), len(row))
        text = clean_caption(captioner.tokenizer.decode(row[:cut], skip_special_tokens=True))
        result.append(Generated(ids=row[:cut], logprobs=scores[:cut], text=text))
    return result


def _hf_generate(captioner: Any, embeds: torch.Tensor, mask: torch.Tensor, config: Any):
    """transformers' generate -> ((B, n) new tokens, (B, n) their log-probabilities)."""
    from transformers import LogitsProcessorList

    beams = int(getattr(config, "num_beams", 1) or 1) > 1
    recorder = None if beams else TokenLogprobs()
    with warnings.catch_warnings():
        # Penalties and n-gram bans on the generated tokens only (not the instruction) are what we want.
        warnings.filterwarnings("ignore", message="Passing `.*` with `inputs_embeds`")
        # With only inputs_embeds given, generate returns just the new tokens.
        output = captioner.llm.generate(inputs_embeds=embeds, attention_mask=mask, generation_config=config,
                                        logits_processor=LogitsProcessorList([recorder] if recorder else []))
    if recorder is not None:
        return output, recorder.finish(output)
    return output, teacher_forced_logprobs(captioner.llm, embeds, mask, output)
