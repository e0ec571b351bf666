"""Byte-level BPE (GPT-2, RoBERTa) in pure Python, token for token the same as Hugging Face's ``tokenizers``.

Three pieces make GPT-2's tokenizer (openai/gpt-2 ``src/encoder.py``; transformers ``tokenization_gpt2.py``):

- ``bytes_to_unicode()``: every byte gets a printable stand-in character, so BPE can work on text. Bytes
  33-126, 161-172 and 174-255 stand for themselves; the other 68 (space, control bytes, ...) map in increasing
  order to U+0100, U+0101, ... (space is ``"Ġ"``, newline ``"Ċ"``).
- the pre-tokenizer pattern ``'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+``
  (case-sensitive). Python's ``re`` has no ``\\p{..}``; :data:`GPT2_PATTERN` spells the letter, number and space
  classes out from the tables measured from ``tokenizers`` (its Oniguruma engine), so neither the ``regex``
  package nor the running Python's Unicode version changes a split.
- :class:`BPE`: within one pre-token, adjacent symbols are merged by rank (the line order of ``merges.txt``), the
  lowest-ranked pair first and, among equal ranks, the leftmost first, until no ranked pair is left.

``byte_level_bpe(vocab, merges)`` assembles the three into a :class:`~hubkit.zoo.text.tokenizer_json.Tokenizer`
equal to the one transformers builds from GPT-2's ``vocab.json`` + ``merges.txt``; a ``tokenizer.json`` is read by
``Tokenizer.from_file``. Only the standard library is used.
"""

from __future__ import annotations

import functools
import heapq
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hubkit.errors import ArgumentError, ArgumentTypeError, CheckpointError

__all__ = ["BPE", "GPT2_PATTERN", "byte_level_bpe", "bytes_to_unicode", "gpt2_pattern", "read_merges"]

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


@functools.cache
def bytes_to_unicode() -> dict[int, str]:
    """byte -> its stand-in character (GPT-2's table: 256 entries, all printable, none a space)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


@functools.cache
def unicode_to_bytes() -> dict[str, int]:
    """The inverse of :func:`bytes_to_unicode`."""
    return {ch: b for b, ch in bytes_to_unicode().items()}


@functools.cache
def gpt2_pattern() -> re.Pattern:
    """:data:`GPT2_PATTERN` compiled for Python's ``re``, with the classes of ``tokenizers``' Oniguruma."""
    from hubkit.zoo.text._charclass import class_body, regex_class

    letter, number = regex_class("RE_LETTER"), regex_class("RE_NUMBER")
    space, not_space = regex_class("RE_SPACE"), regex_class("RE_SPACE", negate=True)
    other = "[^" + "".join(class_body(n) for n in ("RE_SPACE", "RE_LETTER", "RE_NUMBER")) + "]"
    return re.compile(
        f"'s|'t|'re|'ve|'m|'ll|'d| ?{letter}+| ?{number}+| ?{other}+|{space}+(?!{not_space})|{space}+"
    )


def read_merges(path: str | os.PathLike) -> list[tuple[str, str]]:
    """The merges of a ``merges.txt`` (first line ``#version: ...`` skipped; rank = line order)."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except FileNotFoundError:
        raise CheckpointError(f"no merges file at {os.fspath(path)!r}; expected a BPE merges.txt") from None
    merges = []
    for number, line in enumerate(lines, 1):
        if not line or (number == 1 and line.startswith("#version")):
            continue
        parts = line.split(" ")
        if len(parts) != 2:
            raise CheckpointError(f"{os.fspath(path)}:{number}: expected 'left right', got {line!r}")
        merges.append((parts[0], parts[1]))
    return merges


class BPE:
    """The BPE model of ``tokenizer.json`` (``"type": "BPE"``), with ``tokenizers``' merge order.

    Args:
        vocab: token -> id.
        merges: ``(left, right)`` pairs (or ``"left right"`` strings) in rank order; ``left + right`` must be in
            ``vocab``.
        unk_token: the token for characters missing from ``vocab`` (None: such characters are dropped, as in
            ``tokenizers``).
        continuing_subword_prefix / end_of_word_suffix: added to every non-initial / the final character.
        fuse_unk: consecutive unknown characters become one ``unk_token``.
        byte_fallback: a missing character becomes its UTF-8 bytes as ``<0xXX>`` tokens when all are in ``vocab``.
        ignore_merges: a pre-token that is itself in ``vocab`` is taken whole.
        dropout: must be None or 0 (BPE dropout is random, for training only).
    """

    def __init__(
        self,
        vocab: Mapping[str, int],
        merges: Iterable[Sequence[str] | str],
        *,
        unk_token: str | None = None,
        continuing_subword_prefix: str | None = None,
        end_of_word_suffix: str | None = None,
        fuse_unk: bool = False,
        byte_fallback: bool = False,
        ignore_merges: bool = False,
        dropout: float | None = None,
    ) -> None:
        if dropout:
            raise ArgumentError(
                f"BPE dropout={dropout} samples random merges (a training-time augmentation); hubkit tokenizes "
                "deterministically: set dropout to null in tokenizer.json"
            )
        if not isinstance(vocab, Mapping):
            raise ArgumentTypeError(f"BPE vocab must map token strings to ids, got {type(vocab).__name__}")
        self.vocab = dict(vocab)
        self.vocab_r = {i: t for t, i in self.vocab.items()}
        self.unk_token = unk_token
        self.continuing_subword_prefix = continuing_subword_prefix
        self.end_of_word_suffix = end_of_word_suffix
        self.fuse_unk = fuse_unk
        self.byte_fallback = byte_fallback
        self.ignore_merges = ignore_merges
        self.merges: dict[tuple[int, int], tuple[int, int]] = {}
        for rank, merge in enumerate(merges):
            left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
            merged = left + (right.removeprefix(continuing_subword_prefix) if continuing_subword_prefix else right)
            missing = [t for t in (left, right, merged) if t not in self.vocab]
            if missing:
                raise CheckpointError(
                    f"BPE merge #{rank} ({left!r}, {right!r}): {missing[0]!r} is not in the vocabulary"
                )
            self.merges[(self.vocab[left], self.vocab[right])] = (rank, self.vocab[merged])
        if unk_token is not None and unk_token not in self.vocab:
            raise CheckpointError(f"BPE unk_token {unk_token!r} is not in the vocabulary")
        self._cache: dict[str, list[int]] = {}

    def tokenize(self, word: str) -> list[tuple[str, int]]:
        """(token, id) pairs of one pre-token."""
        if not word:
            return []
        ids = self._cache.get(word)
        if ids is None:
            ids = self._merge_word(word)
            if len(self._cache) > 1 << 16:
                self._cache.clear()
            self._cache[word] = ids
        return [(self.vocab_r[i], i) for i in ids]

    def _symbols(self, word: str) -> list[int]:
        """The word as initial symbol ids (tokenizers' ``merge_word`` up to the merges)."""
        vocab, symbols = self.vocab, []
        unk: int | None = None  # a pending (possibly fused) unknown symbol
        last = len(word) - 1
        for i, ch in enumerate(word):
            s = ch
            if i and self.continuing_subword_prefix:
                s = self.continuing_subword_prefix + s
            if i == last and self.end_of_word_suffix:
                s = s + self.end_of_word_suffix
            found = vocab.get(s)
            if found is not None:
                if unk is not None:
                    symbols.append(unk)
                    unk = None
                symbols.append(found)
                continue
            if self.byte_fallback:
                pieces = [vocab.get(f"<0x{b:02X}>") for b in s.encode("utf-8")]
                if all(p is not None for p in pieces):
                    symbols.extend(pieces)  # a pending unknown stays pending, as in tokenizers
                    continue
            if self.unk_token is not None:
                unk_id = vocab[self.unk_token]
                if unk is not None and not self.fuse_unk:
                    symbols.append(unk)
                unk = unk_id
        if unk is not None:
            symbols.append(unk)
        return symbols

    def _merge_word(self, word: str) -> list[int]:
        if self.ignore_merges and word in self.vocab:
            return [self.vocab[word]]
        symbols = self._symbols(word)
        n = len(symbols)
        if n < 2:
            return symbols
        merges = self.merges
        nxt = list(range(1, n + 1))
        prv = list(range(-1, n - 1))
        alive = [True] * n
        heap = []
        for pos in range(n - 1):
            m = merges.get((symbols[pos], symbols[pos + 1]))
            if m is not None:
                heap.append((m[0], pos, m[1]))
        heapq.heapify(heap)
        while heap:
            _, pos, new_id = heapq.heappop(heap)
            if not alive[pos]:
                continue
            right = nxt[pos]
            if right >= n:
                continue
            m = merges.get((symbols[pos], symbols[right]))
            if m is None or m[1] != new_id:  # an outdated entry: one of the two symbols has changed
                continue
            symbols[pos] = new_id
            alive[right] = False
            after = nxt[right]
            nxt[pos] = after
            if after < n:
                prv[after] = pos
            before = prv[pos]
            if before >= 0:
                m = merges.get((symbols[before], new_id))
                if m is not None:
                    heapq.heappush(heap, (m[0], before, m[1]))
            if after < n:
                m = merges.get((new_id, symbols[after]))
                if m is not None:
                    heapq.heappush(heap, (m[0], pos, m[1]))
        return [s for s, keep in zip(symbols, alive) if keep]

    def token_to_id(self, token: str) -> int | None:
        return self.vocab.get(token)

    def id_to_token(self, index: int) -> str | None:
        return self.vocab_r.get(index)


def byte_level_bpe(
    vocab: Mapping[str, int] | str | os.PathLike,
    merges: Iterable[Sequence[str] | str] | str | os.PathLike,
    *,
    add_prefix_space: bool = False,
    special_tokens: Sequence[str] = ("<|endoftext|>",),
    **tokenizer_kwargs: Any,
) -> Any:
    """GPT-2's tokenizer from its vocabulary and merges (``vocab.json`` / ``merges.txt`` paths, or the objects):
    ByteLevel pre-tokenizer (GPT-2 pattern), BPE, ByteLevel decoder, ``special_tokens`` as special added tokens.
    Returns a :class:`~hubkit.zoo.text.tokenizer_json.TokenizerFast` (``tokenizer_kwargs`` go to it)."""
    from hubkit.zoo.text.tokenizer_json import Tokenizer, TokenizerFast

    if isinstance(vocab, (str, os.PathLike)):
        with open(vocab, encoding="utf-8") as f:
            vocab = json.load(f)
    if isinstance(merges, (str, os.PathLike)):
        merges = read_merges(merges)
    spec = {
        "version": "1.0",
        "added_tokens": [{"id": vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": True, "special": True} for t in special_tokens if t in vocab],  # fmt: skip
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": True,
                          "use_regex": True},  # fmt: skip
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "vocab": dict(vocab),
                  "merges": [list(m) if not isinstance(m, str) else m.split(" ", 1) for m in merges]},  # fmt: skip
    }
    return TokenizerFast(Tokenizer.from_dict(spec, backend="python"), **tokenizer_kwargs)
