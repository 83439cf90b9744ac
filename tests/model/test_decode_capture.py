"""The capturability guard of the static decode step (issue 25), on CPU.

On a GPU, kvcap.model.decode captures one decode step per (batch, length bucket) as a CUDA graph
and replays it. A step that reads a host value (a Python int that changes per step, a `.item()`,
a data-dependent shape) either fails to capture or, worse, bakes the value in and replays wrong
tokens. No GPU runs in CI, so the same property is checked with dynamo: the step compiled with
`fullgraph=True` (a `.item()` or any other graph break raises), `dynamic=False` (every Python
int is a constant guarded on) and `error_on_recompile` (a changed constant raises instead of
recompiling; without it dynamo recompiles up to `recompile_limit`, 8 by default, then silently
falls back to eager). Exactly one compile per (batch, length bucket) over two calls of 40+ steps
means the step is one fixed graph, as a CUDA graph must be.

What this cannot see (docs/internals.md): pageable host copies, bitsandbytes' CUDA kernels, the
SDPA backend chosen on CUDA, allocations during capture.
"""

from __future__ import annotations

import pytest
import torch
from fixtures.model import make_tiny_config, random_features

from kvcap.model.decode import GreedySettings, StaticDecoder, bucket_length


def _build(kind: str):
    """The tiny captioner plain, with unmerged LoRA, or 4-bit + LoRA (as `kvcap caption` loads a
    4-bit stage-2 checkpoint); LoRA B is randomised so the adapters change the tokens."""
    from kvcap.config import TrainConfig
    from kvcap.model.captioner import Captioner
    from kvcap.model.trainable import is_peft_model, plan_for_stage

    if kind == "4bit+lora":
        pytest.importorskip("bitsandbytes")
    torch.manual_seed(0)
    cfg = make_tiny_config({"model.quantization": "4bit"} if kind == "4bit+lora" else {})
    captioner = Captioner.from_config(cfg, device="cpu")  # load_llm turns bnb's CPU bf16 repack off
    if kind != "plain":
        captioner.apply_plan(plan_for_stage(TrainConfig().stage2), cfg.lora)
        with torch.no_grad():
            for name, param in captioner.llm.named_parameters():
                if "lora_B" in name:
                    param.normal_(0, 0.5)
        assert is_peft_model(captioner.llm)
    return captioner.eval()


@pytest.fixture(scope="module")
def captioners(tiny_models):
    built: dict[str, object] = {}

    def get(kind: str):
        if kind not in built:
            built[kind] = _build(kind)
        return built[kind]

    return get


@pytest.fixture
def fresh_dynamo():
    """Each (batch, bucket) is its own graph, as each gets its own CUDA graph: start from no
    compiled code and no counts, and leave none behind."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    yield counters
    torch._dynamo.reset()
    counters.clear()


class GuardBackend:
    """dynamo's "eager" backend, counting compiles and refusing a graph that reads a device value
    on the host. torch 2.13's dynamo does not always break the graph at `.item()`: it may trace
    it (and `nonzero`-like data-dependent shapes) as an unbacked symbol, so fullgraph alone lets
    `torch.tensor(count.item() < n)` through, while on CUDA that is a sync capture refuses."""

    def __init__(self):
        self.graphs: list = []

    def __call__(self, gm, example_inputs):
        from torch._dynamo.backends.registry import lookup_backend
        from torch.fx.experimental.symbolic_shapes import free_unbacked_symbols

        self.graphs.append(gm)
        host = [n for n in gm.graph.nodes if free_unbacked_symbols(n.meta.get("example_value"))]
        if host:
            where = "; ".join(f"{n.format_node()} at {_user_line(n)}" for n in host[:3])
            raise AssertionError(f"the decode step reads a device value on the host: {where}")
        return lookup_backend("eager")(gm, example_inputs)


def _user_line(node) -> str:
    lines = [ln.strip() for ln in (node.meta.get("stack_trace") or "").splitlines()]
    lines = [ln for ln in lines if ln and set(ln) - set("^~ ")]  # drop the caret underlines
    return " ".join(lines[-2:]) if lines else "?"


def _compiler(backend: GuardBackend):
    return lambda step: torch.compile(step, fullgraph=True, dynamic=False, backend=backend)


def _settings(captioner, max_new: int, **kwargs) -> GreedySettings:
    return GreedySettings(max_new_tokens=max_new, stop_ids=tuple(captioner.prompt.stop_ids),
                          pad_id=captioner.tokenizer.pad_token_id, **kwargs)


def _cut(captioner, rows):
    stops = set(captioner.prompt.stop_ids) | {captioner.tokenizer.pad_token_id}
    return [row[: next((i for i, t in enumerate(row) if t in stops), len(row))] for row in rows]


def _hf_greedy(captioner, embeds, mask, settings: GreedySettings):
    config = captioner.generation_config(None, max_new_tokens=settings.max_new_tokens,
                                         min_new_tokens=settings.min_new_tokens,
                                         repetition_penalty=settings.repetition_penalty)
    with torch.no_grad():
        return captioner.llm.generate(inputs_embeds=embeds, attention_mask=mask, generation_config=config)


# (batch, max_new_tokens): the tiny prompt is 85 positions, so 40 new tokens fit the 128 bucket
# and 100 the 192 one; two batch sizes and two buckets.
CASES = [(1, 40), (3, 40), (3, 100)]
KINDS = ["plain", "lora", "4bit+lora"]


@pytest.mark.parametrize("batch,max_new", CASES, ids=[f"batch{b}-new{n}" for b, n in CASES])
@pytest.mark.parametrize("kind", KINDS)
def test_one_compile_per_batch_and_bucket_and_the_same_tokens(captioners, fresh_dynamo, kind, batch, max_new):
    captioner = captioners(kind)
    embeds, mask = captioner.prompt_batch(random_features(captioner, batch, seed=batch + max_new))
    # min_new_tokens keeps every row going (the stop ban runs in the step too); the penalty
    # reads the per-row `seen` buffer.
    settings = _settings(captioner, max_new, min_new_tokens=max_new - 2, repetition_penalty=1.1)
    backend = GuardBackend()
    guarded = StaticDecoder(captioner.llm, wrap_step=_compiler(backend))
    eager = StaticDecoder(captioner.llm)
    bucket = bucket_length(mask.shape[1] + max_new)
    calls = []
    with torch._dynamo.config.patch(error_on_recompile=True, capture_scalar_outputs=False):
        # Two prompts of different lengths in the same bucket: the write column, positions and
        # mask start elsewhere, and must not be baked into the graph.
        for cut in (0, 5):
            e, m = embeds[:, cut:], mask[:, cut:]
            assert bucket_length(m.shape[1] + max_new) == bucket
            calls.append((guarded.generate(e, m, settings), eager.generate(e, m, settings),
                          _hf_greedy(captioner, e, m, settings)))
            # the (B, max_new) log-probability buffer (avg_logprob) is filled inside the step too
            assert torch.allclose(guarded.last_logprobs, eager.last_logprobs, atol=1e-5)
    assert guarded.timings["steps"] >= 2 * (max_new - 1) >= 40  # steps run by the compiled step
    assert len(backend.graphs) == 1 and fresh_dynamo["stats"]["unique_graphs"] == 1, dict(fresh_dynamo["stats"])
    for compiled_out, eager_out, hf_out in calls:
        assert compiled_out.tolist() == eager_out.tolist()
        assert _cut(captioner, compiled_out.tolist()) == _cut(captioner, hf_out.tolist())


class _HostColumn(StaticDecoder):
    """The bug the guard exists for: the write column kept as a Python int that changes per step."""

    def _step(self, state, settings):
        state.attend[:, :, :, state.host_column] = True
        state.host_column += 1
        super()._step(state, settings)


class _ItemBranch(StaticDecoder):
    """A device value read on the host inside the step, to branch on (a sync capture refuses)."""

    def _select(self, state, scores, settings):
        if state.count.item() < 0:  # never true: the read itself is the fault
            scores = scores * 2
        super()._select(state, scores, settings)


class _ItemValue(StaticDecoder):
    """The same read folded back into a tensor: dynamo traces it without a graph break, so only
    GuardBackend's unbacked-symbol check sees it."""

    def _select(self, state, scores, settings):
        scores = scores * torch.tensor(state.count.item() >= 0)
        super()._select(state, scores, settings)


@pytest.mark.parametrize("decoder_class,error", [
    (_HostColumn, "Recompiling function _step"),
    (_ItemBranch, "data-dependent expression"),
    (_ItemValue, "reads a device value on the host"),
], ids=["per-step-python-int", "item-branch", "item-value"])
def test_the_guard_fails_on_a_host_value_in_the_step(captioners, fresh_dynamo, decoder_class, error):
    captioner = captioners("plain")
    embeds, mask = captioner.prompt_batch(random_features(captioner, 1, seed=3))
    decoder = decoder_class(captioner.llm, wrap_step=_compiler(GuardBackend()))
    with torch._dynamo.config.patch(error_on_recompile=True, capture_scalar_outputs=False):
        with pytest.raises(Exception, match=error):
            _run_with_host_column(decoder, embeds, mask, _settings(captioner, 8))
    # the same decoder without the guard runs (the faults are invisible on CPU otherwise)
    plain = decoder_class(captioner.llm)
    _run_with_host_column(plain, embeds, mask, _settings(captioner, 8))


def _run_with_host_column(decoder, embeds, mask, settings):
    """generate, with `state.host_column` started at the prompt length for _HostColumn."""
    original = decoder._state_for

    def state_for(*args, **kwargs):
        state = original(*args, **kwargs)
        state.host_column = mask.shape[1]
        return state

    decoder._state_for = state_for
    return decoder.generate(embeds, mask, settings)
