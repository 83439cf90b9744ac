r"""The prompt around the video: the tokenizer's chat template, split at the video placeholder.

    <|im_start|>user\n<|video_pad|>\n{instruction}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n
    \_______ prefix _______/\_ V visual embeds _/\____________________ suffix ____________________/

Qwen3's template with `enable_thinking=False` inserts the empty think block, exactly as at
inference. The assistant target is the caption followed by what the template closes the turn
with up to the end-of-turn token (`<|im_end|>`), so the model learns to stop. Tokenizers
without a chat template get a plain `User:/Assistant:` format ending in EOS. A caption over
`train.max_caption_tokens` is cut at a sentence end, or else carries no end token
(`caption_target_ids`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kvcap.errors import KvcapError

# Placeholder tokens a base tokenizer may already have (Qwen's own); else we add FALLBACK.
KNOWN_PLACEHOLDERS = ("<|video_pad|>",)
FALLBACK_PLACEHOLDER = "<video>"
PLAIN_FORMAT = "User: {user}\nAssistant: "
_SENTINEL = "\u2063KVCAP_CAPTION\u2063"  # stands in for the caption while reading the template
_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL)


class PromptError(KvcapError, ValueError):
    """The tokenizer cannot express the kvcap prompt (one line)."""


@dataclass
class PromptFormat:
    """Token ids of the fixed parts of every example."""

    placeholder: str
    prefix_ids: list[int]  # before the visual embeddings
    suffix_ids: list[int]  # after them, up to where the assistant's caption starts
    end_ids: list[int]  # closes the assistant turn after the caption (trained on)
    stop_ids: list[int] = field(default_factory=list)  # token ids that end generation
    added_placeholder: bool = False  # True when the placeholder was added to the tokenizer

    @property
    def prompt_length(self) -> int:
        """Prompt tokens without the visual embeddings."""
        return len(self.prefix_ids) + len(self.suffix_ids)


def _single_token_id(tokenizer, text: str) -> int | None:
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) == 1 and ids[0] != tokenizer.unk_token_id:
        return ids[0]
    return None


def ensure_placeholder(tokenizer) -> tuple[str, bool]:
    """The video placeholder token (adding `<video>` to the tokenizer if it has none)."""
    for candidate in KNOWN_PLACEHOLDERS + (FALLBACK_PLACEHOLDER,):
        if _single_token_id(tokenizer, candidate) is not None:
            return candidate, False
    tokenizer.add_special_tokens({"additional_special_tokens": [FALLBACK_PLACEHOLDER]})
    return FALLBACK_PLACEHOLDER, True


def user_text(placeholder: str, instruction: str) -> str:
    return f"{placeholder}\n{instruction}"


def render(tokenizer, instruction: str, placeholder: str, caption: str | None = None) -> str:
    """The prompt text (caption None) or the whole conversation text."""
    user = user_text(placeholder, instruction)
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": user}]
        if caption is None:
            return tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
            )
        messages.append({"role": "assistant", "content": caption})
        return tokenizer.apply_chat_template(messages, tokenize=False, enable_thinking=False)
    prompt = PLAIN_FORMAT.format(user=user)
    return prompt if caption is None else prompt + caption + (tokenizer.eos_token or "")


def build_prompt_format(tokenizer, instruction: str) -> PromptFormat:
    """Tokenize the template once and split it at the placeholder and the caption."""
    placeholder, added = ensure_placeholder(tokenizer)
    placeholder_id = _single_token_id(tokenizer, placeholder)
    prompt = render(tokenizer, instruction, placeholder)
    ids = tokenizer.encode(prompt, add_special_tokens=False)
    where = [i for i, token in enumerate(ids) if token == placeholder_id]
    if len(where) != 1:
        raise PromptError(f"the prompt must hold the video placeholder {placeholder} exactly once, found {len(where)}")
    prefix_ids, suffix_ids = ids[: where[0]], ids[where[0] + 1 :]

    # What the template writes after the caption: render with a sentinel caption and read
    # the text between the sentinel and the end-of-turn token.
    full = render(tokenizer, instruction, placeholder, caption=_SENTINEL)
    if not full.startswith(prompt) or _SENTINEL not in full:
        raise PromptError("the chat template does not extend the generation prompt with the assistant turn")
    tail = full[full.index(_SENTINEL) + len(_SENTINEL) :]
    tail_ids = tokenizer.encode(tail, add_special_tokens=False)
    stop_ids = _stop_ids(tokenizer)
    cut = next((i + 1 for i, token in enumerate(tail_ids) if token in stop_ids), None)
    if cut is None:
        if tokenizer.eos_token_id is None:
            raise PromptError("the tokenizer has no end-of-turn or EOS token to stop generation")
        end_ids = [tokenizer.eos_token_id]
    else:
        end_ids = tail_ids[:cut]  # e.g. [<|im_end|>]; the newline after it is not trained
    return PromptFormat(placeholder, prefix_ids, suffix_ids, end_ids, sorted(stop_ids), added)


def _stop_ids(tokenizer) -> set[int]:
    """EOS plus the chat end-of-turn token where the vocabulary has one."""
    ids = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    end_of_turn = _single_token_id(tokenizer, "<|im_end|>")
    if end_of_turn is not None:
        ids.add(end_of_turn)
    return ids


# Control characters and U+FFFD (a byte-level BPE token that ends mid-character) are decoding
# debris, never caption text; they would also corrupt subtitle files.
_DEBRIS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ufffd]")


def clean_caption(text: str) -> str:
    """Decoded model output -> the caption: no think block, no decoding debris, and one line
    (every whitespace run one space), because subtitle players, ffmpeg and line-based JSONL
    readers all choke on anything else."""
    text = _THINK_BLOCK.sub("", text)
    text = text.replace("<think>", "").replace("</think>", "")
    text = _DEBRIS.sub("", text)
    return " ".join(text.split())


# A sentence ends at . ! ? (or their full-width forms) followed by whitespace, a closing quote
# or bracket, or the end of the text; "3.5" is not a sentence end.
_SENTENCE_END = re.compile(r"[.!?\u3002\uff01\uff1f\u2026](?=\s|$|[\"'\u201d\u2019)\]])")


def caption_target_ids(tokenizer, caption: str, limit: int, end_ids: list[int]) -> list[int]:
    """The trained assistant tokens: the caption, cut to `limit` tokens, then `end_ids`.

    A caption within the limit ends the turn as usual. A longer one is cut at its last sentence
    end that fits and still ends the turn; with no sentence end within the limit it is cut at
    the limit and carries NO end token, so the model is never taught to stop mid-sentence.
    """
    ids = tokenizer.encode(caption, add_special_tokens=False)
    if len(ids) <= limit:
        return ids + list(end_ids)
    ends = [m.end() for m in _SENTENCE_END.finditer(caption)]
    lo, hi, best = 0, len(ends) - 1, None  # the last sentence end whose text fits (binary search)
    while lo <= hi:
        mid = (lo + hi) // 2
        head = tokenizer.encode(caption[: ends[mid]].rstrip(), add_special_tokens=False)
        if len(head) <= limit:
            best, lo = head, mid + 1
        else:
            hi = mid - 1
    if best:
        return best + list(end_ids)
    return ids[:limit]
