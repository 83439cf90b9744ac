"""Tokens for METEOR and diversity: Kiwi morphemes, whitespace words or characters.

Tokenizing Korean with Kiwi is the slow part of scoring (its default model manages roughly
50 caption-length texts a second per thread), so:

- every distinct text is tokenized once per call (`tokenize_texts` de-duplicates);
- Kiwi runs batched over all texts with its own worker threads (`Kiwi(num_workers=...)`);
- reference tokens can be kept on disk across runs in a :class:`TokenCache`, keyed by the
  text's hash and the tokenizer's name + version, so a changed tokenizer never serves stale
  tokens.

Tokenizers are registered under the names users type (`kiwi`, `whitespace`, `char`).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Sequence

from kvcap.errors import KvcapError
from kvcap.fsutil import atomic_write_text, kvcap_home
from kvcap.records.jsonl import read_jsonl


class TokenizerError(KvcapError, ValueError):
    """An unknown tokenizer name or a tokenizer that cannot start (one line)."""


@dataclass
class TextTokenizer:
    """A named tokenizer: `tokenize_many(texts) -> token lists`, plus a version for cache keys."""

    name: str
    version: str
    tokenize_many: Callable[[Sequence[str]], list[list[str]]]
    description: str = ""

    @property
    def key(self) -> str:
        """Identity used in cache keys: a new version never reads old tokens."""
        return f"{self.name}-{self.version}"


def _whitespace(texts: Sequence[str]) -> list[list[str]]:
    return [text.split() for text in texts]


def _chars(texts: Sequence[str]) -> list[list[str]]:
    # Characters without the spaces: spacing is not content in Korean captions.
    return [[c for c in text if not c.isspace()] for text in texts]


def _kiwi_workers() -> int:
    """Kiwi worker threads: all cores (Kiwi releases the GIL), at least 1."""
    return max(1, os.cpu_count() or 1)


@lru_cache(maxsize=1)
def _kiwi():
    """One Kiwi per process: loading its model takes ~1.5 s."""
    try:
        from kiwipiepy import Kiwi
    except ImportError as exc:  # pragma: no cover - kiwipiepy is a dependency
        raise TokenizerError(f"tokenizer 'kiwi' needs kiwipiepy ({exc}); use --tokenizer whitespace") from None
    return Kiwi(num_workers=_kiwi_workers())


def _kiwi_version() -> str:
    import kiwipiepy

    return f"{kiwipiepy.__version__}"


def _kiwi_tokenize(texts: Sequence[str]) -> list[list[str]]:
    if not texts:
        return []
    kiwi = _kiwi()
    # An iterable input makes Kiwi tokenize in its worker threads and yield results in order.
    return [[token.form for token in tokens] for tokens in kiwi.tokenize(list(texts))]


def _make_kiwi() -> TextTokenizer:
    return TextTokenizer("kiwi", _kiwi_version(), _kiwi_tokenize, "Kiwi morphemes (kiwipiepy)")


# name users type -> factory (factories, so `kiwi` is imported only when chosen)
TOKENIZERS: dict[str, Callable[[], TextTokenizer]] = {
    "kiwi": _make_kiwi,
    "whitespace": lambda: TextTokenizer("whitespace", "1", _whitespace, "whitespace-separated words"),
    "char": lambda: TextTokenizer("char", "1", _chars, "characters (spaces dropped)"),
}


def get_tokenizer(name: str) -> TextTokenizer:
    """The tokenizer registered as `name`; an unknown name lists the valid ones."""
    try:
        factory = TOKENIZERS[name]
    except KeyError:
        raise TokenizerError(f"unknown tokenizer {name!r}; choose one of {', '.join(TOKENIZERS)}") from None
    return factory()


# ---------------------------------------------------------------------------------------------
# The on-disk token cache.
# ---------------------------------------------------------------------------------------------


def text_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


@dataclass
class TokenCache:
    """Tokens of texts seen before, per tokenizer, stored as JSONL shards under `root/<key>/`.

    Each run that adds tokens writes one new shard atomically (temp file + rename), so
    concurrent runs never tear each other's files; reading loads every shard. When shards pile
    up they are merged into one (again atomically) and the merged ones removed.
    """

    root: Path = field(default_factory=lambda: kvcap_home() / "tokens")
    max_shards: int = 32

    def _dir(self, tokenizer: TextTokenizer) -> Path:
        return self.root / tokenizer.key

    def load(self, tokenizer: TextTokenizer) -> dict[str, list[str]]:
        """hash -> tokens for everything cached under this tokenizer (unreadable shards skipped)."""
        found: dict[str, list[str]] = {}
        folder = self._dir(tokenizer)
        if not folder.is_dir():
            return found
        for shard in sorted(folder.glob("*.jsonl")):
            try:
                records = read_jsonl(shard)  # a damaged line is skipped: just a cache miss
            except OSError:
                continue
            for record in records:
                if isinstance(record.get("h"), str) and isinstance(record.get("t"), list):
                    found[record["h"]] = record["t"]
        return found

    def store(self, tokenizer: TextTokenizer, entries: dict[str, list[str]]) -> None:
        """Add `hash -> tokens` entries as one new shard (best effort: a read-only home is fine)."""
        if not entries:
            return
        folder = self._dir(tokenizer)
        lines = "".join(json.dumps({"h": h, "t": t}, ensure_ascii=False) + "\n" for h, t in entries.items())
        try:
            atomic_write_text(folder / f"{uuid.uuid4().hex}.jsonl", lines)
            self._compact(tokenizer)
        except OSError:
            pass

    def _compact(self, tokenizer: TextTokenizer) -> None:
        folder = self._dir(tokenizer)
        shards = sorted(folder.glob("*.jsonl"))
        if len(shards) <= self.max_shards:
            return
        merged = self.load(tokenizer)
        lines = "".join(json.dumps({"h": h, "t": t}, ensure_ascii=False) + "\n" for h, t in merged.items())
        atomic_write_text(folder / f"merged-{uuid.uuid4().hex}.jsonl", lines)
        for shard in shards:  # everything in them is now in the merged shard
            shard.unlink(missing_ok=True)


@dataclass
class TokenizeStats:
    """What one `tokenize_texts` call did (for reports and the cache test)."""

    texts: int = 0
    distinct: int = 0
    cache_hits: int = 0
    tokenized: int = 0


def tokenize_texts(
    texts: Iterable[str],
    tokenizer: TextTokenizer,
    cache: TokenCache | None = None,
    stats: TokenizeStats | None = None,
    cacheable: Iterable[str] | None = None,
) -> dict[str, list[str]]:
    """text -> tokens for every distinct text, each tokenized at most once, in one batch.

    With `cache`, the `cacheable` texts (default: all) are looked up there first and the new
    ones written back; the rest (e.g. predictions, which change every eval) are tokenized in
    the same batch but never stored.
    """
    texts = list(texts)
    distinct = list(dict.fromkeys(texts))
    result: dict[str, list[str]] = {}
    todo = distinct
    hashes: dict[str, str] = {}
    if cache is not None:
        use_cache = set(distinct) if cacheable is None else set(cacheable)
        cached = cache.load(tokenizer)
        todo = []
        for text in distinct:
            if text in use_cache:
                h = hashes[text] = text_hash(text)
                if h in cached:
                    result[text] = cached[h]
                    continue
            todo.append(text)
    fresh = tokenizer.tokenize_many(todo)
    result.update(zip(todo, fresh))
    if cache is not None:
        cache.store(tokenizer, {hashes[text]: tokens for text, tokens in zip(todo, fresh) if text in hashes})
    if stats is not None:
        stats.texts += len(texts)
        stats.distinct += len(distinct)
        stats.cache_hits += len(distinct) - len(todo)
        stats.tokenized += len(todo)
    return result
