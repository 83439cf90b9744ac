"""Fast greedy decoding: a static KV cache, a fixed-shape decode step, CUDA graphs on a GPU.

    decoder = StaticDecoder(llm)
    tokens = decoder.generate(embeds, mask, GreedySettings(...))   # (B, L, D), (B, L) -> (B, n) ids

Why not `llm.generate`: per step it rebuilds masks, processors and stopping criteria in Python
and syncs with the host to test "all finished"; on a GPU that overhead, not the weights, set
the step time (issue 17: 12 tok/s for a model whose weights stream in ~4 ms). Here:

- prefill: one forward over the left-padded prompt embeddings into a transformers
  `StaticCache` sized prompt + max_new_tokens (rounded up to a bucket);
- decode: a step whose tensors never change address or shape (token, position, 4D mask,
  the cache, counters), so on CUDA it is captured once per (batch, length bucket) as a CUDA
  graph and replayed (the gpt-fast recipe); elsewhere it runs eagerly;
- selection on the device: repetition penalty over the generated tokens, min_new_tokens (stop
  tokens banned until then), argmax, finished rows emit the pad token; the host reads the
  "all finished" flag only every `check_every` steps.

Greedy output is token-identical to `llm.generate(inputs_embeds=..., do_sample=False)` with the
same repetition penalty / min_new_tokens (tests/model/test_decode.py). Sampling, beams and
n-gram bans are not implemented here: `unsupported_reason` names why, and the caller falls
back to `llm.generate`.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from typing import Any

import torch
from torch import nn

from kvcap.errors import one_line

logger = logging.getLogger(__name__)

ENGINES = ("auto", "hf", "static")
LENGTH_BUCKET = 64  # cache lengths are rounded up to this, so a graph serves many prompt lengths
SUPPORTED_ATTENTION = ("sdpa", "eager")


@dataclasses.dataclass(frozen=True)
class GreedySettings:
    max_new_tokens: int
    stop_ids: tuple[int, ...]
    pad_id: int
    min_new_tokens: int = 0
    repetition_penalty: float = 1.0


def unsupported_reason(settings: dict[str, Any], llm: nn.Module) -> str | None:
    """Why the static loop cannot run these generation settings on this model (None = it can)."""
    if bool(settings.get("do_sample", False)):
        return "sampling (do_sample)"
    if int(settings.get("num_beams", 1)) != 1:
        return "beam search (num_beams > 1)"
    if int(settings.get("no_repeat_ngram_size", 0)) != 0:
        return "no_repeat_ngram_size"
    base = _base_model(llm)
    attn = getattr(base.config, "_attn_implementation", "eager")
    if attn not in SUPPORTED_ATTENTION:
        return f"attention implementation {attn!r}"
    if getattr(base.config, "sliding_window", None) and getattr(base.config, "use_sliding_window", False):
        return "sliding-window attention"
    return None


def _base_model(llm: nn.Module) -> nn.Module:
    """The transformers model under a peft wrapper (LoRA layers are injected into it)."""
    get_base = getattr(llm, "get_base_model", None)
    return get_base() if callable(get_base) else llm


def bucket_length(length: int) -> int:
    return -(-length // LENGTH_BUCKET) * LENGTH_BUCKET


class _State:
    """Every tensor the decode step reads or writes, at fixed addresses (one batch x length bucket)."""

    def __init__(self, model: nn.Module, batch: int, max_len: int, max_new: int, device: torch.device,
                 dtype: torch.dtype, mask_dtype: torch.dtype | None):
        from transformers import StaticCache

        # Older transformers want batch/device/dtype up front; newer ones allocate lazily and
        # ignore the extra keywords.
        self.cache = StaticCache(config=model.config, max_batch_size=batch, max_cache_len=max_len,
                                 device=device, dtype=dtype)
        self.batch, self.max_len, self.max_new = batch, max_len, max_new
        self.mask_dtype = mask_dtype  # None = boolean mask (sdpa), else additive float (eager)
        vocab = model.config.get_text_config().vocab_size if hasattr(model.config, "get_text_config") else model.config.vocab_size
        self.token = torch.zeros((batch, 1), dtype=torch.long, device=device)       # (B, 1) last token
        self.position = torch.zeros((batch, 1), dtype=torch.long, device=device)    # (B, 1) its rotary position
        self.column = torch.zeros((1,), dtype=torch.long, device=device)            # cache slot of the token
        self.count = torch.zeros((1,), dtype=torch.long, device=device)             # new tokens so far
        self.attend = torch.zeros((batch, 1, 1, max_len), dtype=torch.bool, device=device)  # (B, 1, 1, Lmax)
        self.mask = (self.attend if mask_dtype is None
                     else torch.zeros((batch, 1, 1, max_len), dtype=mask_dtype, device=device))
        self.unfinished = torch.ones((batch,), dtype=torch.bool, device=device)
        self.seen = torch.zeros((batch, vocab), dtype=torch.bool, device=device)   # generated tokens per row
        self.out = torch.zeros((batch, max_new), dtype=torch.long, device=device)  # (B, max_new) new tokens
        # (B, max_new) log-probability of each new token under the processed scores (penalty,
        # stop ban): fixed like `out`, so the step stays one graph (avg_logprob, issue 26).
        self.logprob = torch.zeros((batch, max_new), dtype=torch.float32, device=device)
        self.stops = torch.zeros((0,), dtype=torch.long, device=device)  # the stop ids (set per call)
        self.graph: Any = None


class StaticDecoder:
    """Greedy decoding over a static cache; one instance per model (it keeps the last buffers)."""

    def __init__(self, llm: nn.Module, *, cuda_graphs: bool | None = None, check_every: int = 16,
                 wrap_step: Any = None):
        self.llm = llm
        self.model = _base_model(llm)
        params = inspect.signature(self.model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._takes_cache_position = "cache_position" in params
        self._takes_logits_to_keep = "logits_to_keep" in params
        self.cuda_graphs = cuda_graphs
        self.check_every = max(1, int(check_every))
        self._state: _State | None = None
        # Summed over calls, for benchmarks: prefill (incl. the first token) and decode-loop seconds, decode steps.
        self.timings = {"calls": 0, "prefill_s": 0.0, "decode_s": 0.0, "steps": 0, "batch_steps": 0}
        self.last_engine = ""  # "static" or "static+cudagraph" after a call (bench, tests)
        # Why CUDA graph capture failed (one line), once for this decoder: no bucket tries again.
        self.capture_error: str | None = None
        self.last_logprobs: torch.Tensor | None = None  # (B, n) fp32 after a call: each token's log-probability
        # The step the loop runs outside a CUDA graph. `wrap_step` (the capturability guard,
        # tests/model/test_decode_capture.py) wraps it, e.g. in torch.compile(fullgraph=True).
        self._run_step = wrap_step(self._step) if wrap_step is not None else self._step

    # ------------------------------------------------------------------ the model call

    def _forward(self, state: _State, *, mask: torch.Tensor, positions: torch.Tensor,
                 input_ids: torch.Tensor | None = None, inputs_embeds: torch.Tensor | None = None,
                 first_column: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, V) of the last position; the cache grows by the query length."""
        kwargs: dict[str, Any] = {
            "attention_mask": mask, "position_ids": positions, self._cache_kw: state.cache, "use_cache": True,
        }
        if input_ids is not None:
            kwargs["input_ids"] = input_ids
        else:
            kwargs["inputs_embeds"] = inputs_embeds
        if self._takes_logits_to_keep:
            kwargs["logits_to_keep"] = 1
        if self._takes_cache_position:  # transformers before the cache kept its own write position
            length = (input_ids if input_ids is not None else inputs_embeds).shape[1]
            start = first_column if first_column is not None else torch.zeros(1, dtype=torch.long, device=mask.device)
            kwargs["cache_position"] = torch.arange(length, device=mask.device) + start
        logits = self.model(**kwargs).logits  # (B, q, V)
        # As transformers' generate: the last position's logits, copied to fp32.
        return logits[:, -1, :].to(copy=True, dtype=torch.float32)

    def _select(self, state: _State, scores: torch.Tensor, settings: GreedySettings) -> None:
        """scores (B, V) fp32 -> the next token of every row, written into the state (device only)."""
        if settings.repetition_penalty != 1.0:
            p = settings.repetition_penalty
            penalized = torch.where(scores < 0, scores * p, scores / p)
            scores = torch.where(state.seen, penalized, scores)
        stops = state.stops
        if settings.min_new_tokens > 0:
            banned = state.count < settings.min_new_tokens  # (1,)
            ninf = torch.full_like(scores[:, stops], float("-inf"))
            scores = scores.index_copy(1, stops, torch.where(banned, ninf, scores[:, stops]))
        nxt = torch.argmax(scores, dim=-1)  # (B,)
        # log_softmax at the chosen token, without materialising (B, V) log-probabilities
        chosen = scores.gather(1, nxt[:, None]) - torch.logsumexp(scores, dim=-1, keepdim=True)  # (B, 1)
        state.logprob.index_copy_(1, state.count, chosen)
        nxt = torch.where(state.unfinished, nxt, torch.full_like(nxt, settings.pad_id))
        state.unfinished &= ~torch.isin(nxt, stops)
        state.out.index_copy_(1, state.count, nxt[:, None])
        state.seen.scatter_(1, nxt[:, None], True)
        state.token.copy_(nxt[:, None])
        state.count += 1

    def _step(self, state: _State, settings: GreedySettings) -> None:
        """One decode step at fixed addresses (what the CUDA graph holds)."""
        state.attend.index_fill_(3, state.column, True)
        if state.mask_dtype is not None:
            state.mask.copy_(_additive(state.attend, state.mask_dtype))
        scores = self._forward(state, mask=state.mask, positions=state.position, input_ids=state.token,
                               first_column=state.column)
        state.position += 1
        state.column += 1
        self._select(state, scores, settings)

    # ------------------------------------------------------------------ buffers and graphs

    def _state_for(self, batch: int, max_len: int, max_new: int, device: torch.device, dtype: torch.dtype,
                   mask_dtype: torch.dtype | None) -> _State:
        state = self._state
        if (state is None or state.batch != batch or state.max_len != max_len or state.max_new != max_new
                or state.mask_dtype != mask_dtype or state.out.device != device):
            self._state = None  # free the old cache before allocating the new one
            state = self._state = _State(self.model, batch, max_len, max_new, device, dtype, mask_dtype)
        else:
            state.cache.reset()
        return state

    def _use_graphs(self, device: torch.device) -> bool:
        if device.type != "cuda":
            return False
        return True if self.cuda_graphs is None else bool(self.cuda_graphs)

    def _capture(self, state: _State, settings: GreedySettings) -> None:
        """Record one decode step as a CUDA graph (the caller already ran real steps as warm-up)."""
        graph = torch.cuda.CUDAGraph()
        # Capture does not execute kernels, so the state is unchanged by recording.
        with torch.cuda.graph(graph):
            self._step(state, settings)
        state.graph = (graph, settings)

    def _prefill(self, state: _State, embeds: torch.Tensor, mask: torch.Tensor, settings: GreedySettings) -> None:
        """The prompt into the cache and the first new token (eager: its shape is the prompt's)."""
        batch, length = mask.shape
        device, mask_dtype = embeds.device, state.mask_dtype
        mask = mask.to(device=device, dtype=torch.bool)  # (B, L)
        # Prefill: causal within the prompt, padding columns masked; a padded query row also sees
        # itself (a fully masked row would be NaN; its output is never attended to).
        causal = torch.ones((length, length), dtype=torch.bool, device=device).tril()
        prefill = causal[None] & mask[:, None, :]
        prefill |= torch.eye(length, dtype=torch.bool, device=device)[None]
        prefill4 = torch.zeros((batch, 1, length, state.max_len), dtype=torch.bool, device=device)
        prefill4[:, 0, :, :length] = prefill
        positions = (mask.long().cumsum(-1) - 1).masked_fill(~mask, 0)  # (B, L) as generate computes them
        scores = self._forward(state, mask=prefill4 if mask_dtype is None else _additive(prefill4, mask_dtype),
                               positions=positions, inputs_embeds=embeds)
        state.attend.zero_()
        state.attend[:, 0, 0, :length] = mask
        state.position.copy_(positions[:, -1:] + 1)
        state.column.fill_(length)
        self._select(state, scores, settings)

    def _decode(self, state: _State, settings: GreedySettings, limit: int, device: torch.device) -> tuple[int, bool]:
        """Decode steps until every row stopped (checked every `check_every`) or `limit` tokens
        -> (tokens now in `state.out`, whether CUDA graphs ran)."""
        graphs = self._use_graphs(device) and self.capture_error is None
        warmup = 2 if graphs else 0
        steps = 1
        while steps < limit:
            if steps % self.check_every == 0 and not bool(state.unfinished.any()):
                break  # one host sync every check_every steps
            if graphs and steps > warmup:
                if state.graph is None or state.graph[1] != settings:
                    try:
                        self._capture(state, settings)
                    except Exception as exc:  # noqa: BLE001 - e.g. a kernel that cannot be captured
                        # Once per decoder, not per bucket: the caller says it once (caption/batching.py).
                        self.capture_error = f"{type(exc).__name__}: {one_line(exc, first_line=True)}"
                        logger.debug("CUDA graph capture failed: %s", self.capture_error)
                        graphs = False
                        continue
                state.graph[0].replay()
            elif graphs:
                # Warm-up steps on a side stream, as capture requires.
                stream = torch.cuda.Stream(device)
                stream.wait_stream(torch.cuda.current_stream(device))
                with torch.cuda.stream(stream):
                    self._run_step(state, settings)
                torch.cuda.current_stream(device).wait_stream(stream)
            else:
                self._run_step(state, settings)
            steps += 1
        return steps, graphs

    # ------------------------------------------------------------------ generate

    @torch.inference_mode()  # always: the reused buffers are inference tensors, updated only in this mode
    def generate(self, embeds: torch.Tensor, mask: torch.Tensor, settings: GreedySettings,
                 run_steps: int | None = None) -> torch.Tensor:
        """(B, L, D) left-padded prompt embeddings + (B, L) mask -> (B, n <= max_new_tokens) new ids (CPU).

        Rows that finished early hold the pad id after their stop token, as `llm.generate`'s do.
        `run_steps` stops after that many tokens while sizing everything for max_new_tokens (the
        memory probe of `--batch-size auto`).
        """
        import time

        batch, length = mask.shape
        device = embeds.device
        started = time.perf_counter()
        attn = getattr(self.model.config, "_attn_implementation", "sdpa")
        mask_dtype = None if attn != "eager" else embeds.dtype
        max_new = int(settings.max_new_tokens)
        state = self._state_for(batch, bucket_length(length + max_new), max_new, device, embeds.dtype, mask_dtype)
        state.out.zero_()
        state.logprob.zero_()
        state.seen.zero_()
        state.unfinished.fill_(True)
        state.count.zero_()
        if state.stops.tolist() != list(settings.stop_ids):  # (new stop ids = new settings: the graph is recaptured)
            state.stops = torch.tensor(settings.stop_ids, dtype=torch.long, device=device)

        self._prefill(state, embeds, mask, settings)

        if device.type == "cuda":
            torch.cuda.synchronize(device)  # once a batch: splits prefill from decode time
        prefilled = time.perf_counter()
        steps, graphs = self._decode(state, settings, min(max_new, run_steps or max_new), device)
        self.last_engine = "static+cudagraph" if graphs and state.graph is not None else "static"
        out = state.out[:, :steps].to("cpu", copy=True)  # the buffer is reused by the next call
        self.last_logprobs = state.logprob[:, :steps].to("cpu", copy=True)  # (B, n) matching `out`
        t = self.timings
        t["calls"] += 1
        t["prefill_s"] += prefilled - started
        t["decode_s"] += time.perf_counter() - prefilled
        t["steps"] += steps - 1
        t["batch_steps"] += (steps - 1) * batch
        return out


def _additive(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Boolean attend mask -> the additive float mask eager attention adds to its scores."""
    zero = torch.zeros((), dtype=dtype, device=allowed.device)
    return torch.where(allowed, zero, torch.finfo(dtype).min)
