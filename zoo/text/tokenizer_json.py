"""Hugging Face fast tokenizers (``tokenizer.json``), in pure Python and through the ``tokenizers`` package.

    from hubkit.zoo.text.tokenizer_json import Tokenizer, TokenizerFast
    tok = Tokenizer.from_file("tokenizer.json")                  # tokenizers.Tokenizer's API
    tok.encode("Hello world").ids
    fast = TokenizerFast.from_file("tokenizer.json", model_max_length=512)   # transformers' call convention
    fast(["A sentence.", "Another"], padding=True, truncation=True, return_tensors="np")["input_ids"]

A ``tokenizer.json`` describes a pipeline: added tokens are cut out of the text first; the rest is normalized,
pre-tokenized into words, split into tokens by the model, post-processed (special tokens, token types),
truncated and padded. :class:`Tokenizer` runs it with the ``tokenizers`` package when that is installed
(``backend="auto"``) and otherwise with the pure-Python implementation below (``backend="python"``); the two give
the same ids, tokens, type ids, masks and decoded text (fuzzed against each other on random Unicode in
tests/zoo/test_tokenizer_json_parity.py). Character classes come from tables measured from ``tokenizers``
(``_unicode_tables``), so the Python path does not depend on the running Python's Unicode version.

Supported, by ``"type"``:

- normalizers: BertNormalizer (clean_text, handle_chinese_chars, strip_accents, lowercase), NFC, NFD, NFKC, NFKD,
  Lowercase, Strip, StripAccents, Replace (string or regex), Prepend, ByteLevel, Sequence;
- pre-tokenizers: BertPreTokenizer, ByteLevel (GPT-2's pattern), Whitespace, WhitespaceSplit, Split (string or
  regex, every split behaviour, invert), Punctuation, Digits, Metaspace, CharDelimiterSplit, Sequence;
- models: WordPiece, BPE (byte_fallback, fuse_unk, continuing_subword_prefix, end_of_word_suffix, ignore_merges;
  no dropout), WordLevel;
- post-processors: BertProcessing, RobertaProcessing, TemplateProcessing, ByteLevel, Sequence;
- decoders: WordPiece, ByteLevel, BPEDecoder, Metaspace, ByteFallback, Fuse, Strip, Replace, Sequence;
- truncation (longest_first / only_first / only_second, left or right) and padding (longest or fixed, left or
  right, pad_to_multiple_of).

Other types (Unigram, Precompiled, ...) raise :class:`TokenizerFormatError` on the Python path; character offsets
and overflowing windows (``stride``) are not computed. The components live in ``_components``; this module has the
added-token matching, the pipeline, truncation, padding and the two fronts. ``import hubkit`` does not import it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hubkit.errors import ArgumentError, ArgumentTypeError, CheckpointError
from hubkit.zoo.text._charclass import char_set
from hubkit.zoo.text._components import (
    Encoding,
    Normalizer,
    TokenizerFormatError,
    build_decoder,
    build_model,
    build_normalizer,
    build_post_processor,
    build_pre_tokenizer,
)

__all__ = ["Encoding", "Tokenizer", "TokenizerFast", "TokenizerFormatError", "load_tokenizer", "load_tokenizer_from",
           "tokenizers_available", "wordpiece_tokenizer"]


def tokenizers_available() -> bool:
    """Whether the ``tokenizers`` package (the ``text`` extra) can be imported. A folder named ``tokenizers`` on
    ``sys.path`` imports as an empty namespace package: that is not the package, so it has to have ``Tokenizer``."""
    try:
        import tokenizers
    except ImportError:
        return False
    return hasattr(tokenizers, "Tokenizer")


# ---------------------------------------------------------------- added tokens


@dataclass(frozen=True)
class AddedToken:
    content: str
    id: int
    special: bool = False
    single_word: bool = False
    lstrip: bool = False
    rstrip: bool = False
    normalized: bool = True


class _AddedVocabulary:
    """Finds added tokens in text (leftmost-longest, as tokenizers' Aho-Corasick) before the model sees it: first
    the non-normalized ones in the raw text, then the normalized ones in each normalized remainder."""

    def __init__(self, tokens: list[AddedToken], normalizer: Normalizer | None) -> None:
        self.tokens = tokens
        self.by_id = {t.id: t for t in tokens}
        self.by_content = {t.content: t.id for t in tokens}
        self.special = {t.content for t in tokens if t.special}
        raw = [t for t in tokens if not t.normalized and t.content]
        norm = [t for t in tokens if t.normalized and t.content]
        self._raw = self._matcher([(t.content, t) for t in raw])
        normalize = normalizer.normalize if normalizer else (lambda s: s)
        self._norm = self._matcher([(normalize(t.content), t) for t in norm])

    @staticmethod
    def _matcher(entries: list[tuple[str, AddedToken]]) -> tuple[re.Pattern, dict[str, AddedToken]] | None:
        table: dict[str, AddedToken] = {}
        for text, token in entries:
            if text:
                table.setdefault(text, token)
        if not table:
            return None
        # Longest alternative first: re's leftmost-first then equals Aho-Corasick's leftmost-longest.
        alternatives = sorted(table, key=len, reverse=True)
        return re.compile("|".join(map(re.escape, alternatives))), table

    @staticmethod
    def _split(text: str, matcher: Any) -> list[tuple[str, AddedToken | None]]:
        if matcher is None or not text:
            return [(text, None)]
        pattern, table = matcher
        word, space = char_set("WS_WORD"), char_set("WS_SPACE")  # tokenizers uses the regex crate's \w and \s here
        out: list[tuple[str, AddedToken | None]] = []
        offset = 0
        for m in pattern.finditer(text):
            start, stop = m.span()
            token = table[m.group()]
            inside_word = (start > 0 and text[start - 1] in word) or (stop < len(text) and text[stop] in word)
            if token.single_word and inside_word:
                continue
            if token.lstrip:
                new_start = start
                while new_start > 0 and text[new_start - 1] in space:
                    new_start -= 1
                start = max(new_start, offset)
            if token.rstrip:
                while stop < len(text) and text[stop] in space:
                    stop += 1
            if offset < start:
                out.append((text[offset:start], None))
            out.append((text[start:stop], token))
            offset = stop
        if offset != len(text):
            out.append((text[offset:], None))
        return out

    def extract(self, text: str, normalizer: Normalizer | None) -> list[tuple[str, AddedToken | None]]:
        """The text as (piece, added token or None) with the plain pieces normalized; empty pieces dropped."""
        out = []
        for piece, token in self._split(text, self._raw):
            if token is not None:
                out.append((piece, token))
                continue
            if normalizer is not None:
                piece = normalizer.normalize(piece)
            out.extend(p for p in self._split(piece, self._norm) if p[0])
        return [p for p in out if p[0]]


# ---------------------------------------------------------------- the pipeline


@dataclass
class _Truncation:
    max_length: int
    stride: int = 0
    strategy: str = "longest_first"
    direction: str = "right"

    def as_dict(self) -> dict[str, Any]:
        return {"max_length": self.max_length, "stride": self.stride, "strategy": self.strategy,
                "direction": self.direction}  # fmt: skip


@dataclass
class _Padding:
    length: int | None = None
    direction: str = "right"
    pad_id: int = 0
    pad_type_id: int = 0
    pad_token: str = "[PAD]"
    pad_to_multiple_of: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"length": self.length, "direction": self.direction, "pad_id": self.pad_id,
                "pad_type_id": self.pad_type_id, "pad_token": self.pad_token,
                "pad_to_multiple_of": self.pad_to_multiple_of}  # fmt: skip


def _truncate_pair(first: Encoding, second: Encoding | None, t: _Truncation, max_length: int) -> None:
    """tokenizers' ``truncate_encodings``."""
    if max_length == 0:
        first.truncate(0, t.direction)
        if second is not None:
            second.truncate(0, t.direction)
        return
    total = len(first) + (len(second) if second is not None else 0)
    if total <= max_length:
        return
    remove = total - max_length
    if t.strategy == "longest_first":
        if second is None:
            first.truncate(total - remove, t.direction)
            return
        n1, n2 = len(first), len(second)
        swap = n1 > n2
        if swap:
            n1, n2 = n2, n1
        n2 = n1 if n1 > max_length else max(n1, max_length - n1)
        if n1 + n2 > max_length:
            n1 = max_length // 2
            n2 = n1 + max_length % 2
        if swap:
            n1, n2 = n2, n1
        first.truncate(n1, t.direction)
        second.truncate(n2, t.direction)
        return
    target = first if t.strategy == "only_first" else second
    if target is None:
        raise ArgumentError("truncation strategy 'only_second' needs a pair of sequences")
    if len(target) <= remove:
        raise ArgumentError(
            f"truncation {t.strategy!r} to max_length {max_length}: the sequence to truncate has only {len(target)} "
            f"tokens but {remove} must go; use 'longest_first' or a larger max_length"
        )
    target.truncate(len(target) - remove, t.direction)


class _PythonPipeline:
    """The ``tokenizer.json`` pipeline in Python (see the module docstring)."""

    backend = "python"

    def __init__(self, spec: Mapping[str, Any]) -> None:
        if not isinstance(spec.get("model"), Mapping):
            raise TokenizerFormatError("tokenizer.json has no 'model' object; is it a Hugging Face tokenizer.json?")
        self.normalizer = build_normalizer(spec.get("normalizer"))
        self.pre_tokenizer = build_pre_tokenizer(spec.get("pre_tokenizer"))
        self.model = build_model(spec["model"])
        self.post_processor = build_post_processor(spec.get("post_processor"))
        self.decoder = build_decoder(spec.get("decoder"))
        tokens = []
        for entry in spec.get("added_tokens") or []:
            flags = [bool(entry.get(k, False)) for k in ("special", "single_word", "lstrip", "rstrip")]
            tokens.append(AddedToken(entry["content"], int(entry["id"]), *flags, bool(entry.get("normalized", True))))
        self.added = _AddedVocabulary(tokens, self.normalizer)

    def normalize(self, text: str) -> str:
        return self.normalizer.normalize(text) if self.normalizer else text

    def pre_tokenize(self, text: str) -> list[str]:
        pieces = [text] if text else []
        return self.pre_tokenizer.split(pieces, True) if self.pre_tokenizer else pieces

    def _encode_one(self, text: str, type_id: int) -> Encoding:
        out = Encoding()
        for i, (piece, token) in enumerate(self.added.extract(text, self.normalizer)):
            if token is not None:
                out.extend(Encoding.of([(piece, token.id)], type_id))
                continue
            words = self.pre_tokenizer.split([piece], i == 0) if self.pre_tokenizer else [piece]
            for word in words:
                out.extend(Encoding.of(self.model.tokenize(word), type_id))
        return out

    def encode(self, text: str, pair: str | None, add_special_tokens: bool, truncation: _Truncation | None) -> Encoding:
        first = self._encode_one(text, 0)
        second = self._encode_one(pair, 1) if pair is not None else None
        if truncation is not None:
            added = self.post_processor.added_tokens(second is not None) if self.post_processor else 0
            if add_special_tokens and added > 0:
                if truncation.max_length >= added:  # tokenizers truncates nothing when the specials alone overflow
                    _truncate_pair(first, second, truncation, truncation.max_length - added)
            else:
                _truncate_pair(first, second, truncation, truncation.max_length)
        encodings = [first] if second is None else [first, second]
        if self.post_processor is not None:
            encodings = self.post_processor.process(encodings, add_special_tokens)
        out = encodings[0]
        for e in encodings[1:]:
            out.extend(e)
        return out

    def decode(self, ids: Sequence[int], skip_special_tokens: bool) -> str:
        tokens = []
        for i in ids:
            added = self.added.by_id.get(i)
            token = added.content if added is not None else self.model.id_to_token(i)
            if token is None or (skip_special_tokens and token in self.added.special):
                continue
            tokens.append(token)
        if self.decoder is None:
            return " ".join(tokens)
        return "".join(self.decoder(tokens))

    def token_to_id(self, token: str) -> int | None:
        found = self.added.by_content.get(token)
        return found if found is not None else self.model.token_to_id(token)

    def id_to_token(self, index: int) -> str | None:
        added = self.added.by_id.get(index)
        return added.content if added is not None else self.model.id_to_token(index)

    def get_vocab(self, with_added_tokens: bool) -> dict[str, int]:
        vocab = dict(self.model.vocab)
        if with_added_tokens:
            vocab.update(self.added.by_content)
        return vocab

    def special_tokens(self) -> set[str]:
        return set(self.added.special)


def _round_up(length: int, multiple: int | None) -> int:
    if multiple and length % multiple:
        length += multiple - length % multiple
    return length


class _RustPipeline:
    """The same interface over a ``tokenizers.Tokenizer``."""

    backend = "tokenizers"

    def __init__(self, spec: Mapping[str, Any]) -> None:
        import tokenizers

        try:
            self.rust = tokenizers.Tokenizer.from_str(json.dumps(spec))
        except Exception as e:  # tokenizers raises plain Exceptions for malformed files
            raise TokenizerFormatError(f"the tokenizers package cannot read this tokenizer.json: {e}") from None
        self.rust.no_truncation()
        self.rust.no_padding()
        self._special = {t.content for t in self.rust.get_added_tokens_decoder().values() if t.special}

    def _configure(self, truncation: _Truncation | None, padding: _Padding | None) -> None:
        if truncation is None:
            self.rust.no_truncation()
        else:
            try:
                self.rust.enable_truncation(truncation.max_length, stride=truncation.stride,
                                            strategy=truncation.strategy, direction=truncation.direction)  # fmt: skip
            except Exception as e:
                raise ArgumentError(f"tokenizers refused the truncation settings {truncation.as_dict()}: {e}") from None
        if padding is None:
            self.rust.no_padding()
        else:
            self.rust.enable_padding(direction=padding.direction, pad_id=padding.pad_id,
                                     pad_type_id=padding.pad_type_id, pad_token=padding.pad_token,
                                     length=padding.length, pad_to_multiple_of=padding.pad_to_multiple_of)  # fmt: skip

    @staticmethod
    def _convert(e: Any) -> Encoding:
        return Encoding(list(e.ids), list(e.type_ids), list(e.tokens), list(e.attention_mask),
                        list(e.special_tokens_mask))  # fmt: skip

    def encode_batch(self, inputs: list[tuple[str, str | None]], add_special_tokens: bool,
                     truncation: _Truncation | None, padding: _Padding | None) -> list[Encoding]:  # fmt: skip
        self._configure(truncation, padding)
        batch = [a if b is None else (a, b) for a, b in inputs]
        try:
            encoded = self.rust.encode_batch(batch, add_special_tokens=add_special_tokens)
        except Exception as e:
            raise ArgumentError(f"tokenizers could not encode the batch: {e}") from None
        return [self._convert(e) for e in encoded]

    def normalize(self, text: str) -> str:
        n = self.rust.normalizer
        return n.normalize_str(text) if n is not None else text

    def pre_tokenize(self, text: str) -> list[str]:
        p = self.rust.pre_tokenizer
        return [w for w, _ in p.pre_tokenize_str(text)] if p is not None else ([text] if text else [])

    def decode(self, ids: Sequence[int], skip_special_tokens: bool) -> str:
        return self.rust.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def token_to_id(self, token: str) -> int | None:
        return self.rust.token_to_id(token)

    def id_to_token(self, index: int) -> str | None:
        return self.rust.id_to_token(index)

    def get_vocab(self, with_added_tokens: bool) -> dict[str, int]:
        return self.rust.get_vocab(with_added_tokens=with_added_tokens)

    def special_tokens(self) -> set[str]:
        return set(self._special)


_STRATEGIES = {"LongestFirst": "longest_first", "OnlyFirst": "only_first", "OnlySecond": "only_second"}


class Tokenizer:
    """A ``tokenizer.json`` tokenizer with ``tokenizers.Tokenizer``'s methods (encode, encode_batch, decode,
    enable_truncation, enable_padding, ...), run by the ``tokenizers`` package or in pure Python.

    Build it with :meth:`from_file`, :meth:`from_str` or :meth:`from_dict`; ``backend`` is ``"auto"`` (the package
    when installed), ``"tokenizers"`` or ``"python"``. The file's own truncation and padding settings apply until
    changed, as in ``tokenizers``.
    """

    def __init__(self, spec: Mapping[str, Any], backend: str = "auto") -> None:
        if backend not in ("auto", "python", "tokenizers"):
            raise ArgumentError(f"Tokenizer backend must be 'auto', 'python' or 'tokenizers', got {backend!r}")
        if backend == "tokenizers" and not tokenizers_available():
            raise ArgumentError("backend='tokenizers' needs the tokenizers package: pip install 'hubkit[text]'")
        if not isinstance(spec, Mapping):
            raise TokenizerFormatError(f"a tokenizer.json holds a JSON object, got {type(spec).__name__}")
        self.spec = dict(spec)
        use_rust = backend == "tokenizers" or (backend == "auto" and tokenizers_available())
        self._impl: Any = _RustPipeline(self.spec) if use_rust else _PythonPipeline(self.spec)
        self._model_type = (self.spec.get("model") or {}).get("type")
        self.truncation_params: _Truncation | None = None
        self.padding_params: _Padding | None = None
        trunc = self.spec.get("truncation")
        if trunc:
            self.enable_truncation(int(trunc["max_length"]), stride=int(trunc.get("stride", 0)),
                                   strategy=_STRATEGIES.get(trunc.get("strategy"), "longest_first"),
                                   direction=str(trunc.get("direction", "Right")).lower())  # fmt: skip
        pad = self.spec.get("padding")
        if pad:
            strategy = pad.get("strategy")
            length = strategy.get("Fixed") if isinstance(strategy, Mapping) else None
            self.enable_padding(direction=str(pad.get("direction", "Right")).lower(), pad_id=int(pad.get("pad_id", 0)),
                                pad_type_id=int(pad.get("pad_type_id", 0)), pad_token=pad.get("pad_token", "[PAD]"),
                                length=length, pad_to_multiple_of=pad.get("pad_to_multiple_of"))  # fmt: skip

    # ---------------------------------------------------------------- construction

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any], backend: str = "auto") -> Tokenizer:
        return cls(spec, backend)

    @classmethod
    def from_str(cls, text: str, backend: str = "auto") -> Tokenizer:
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as e:
            raise TokenizerFormatError(f"not a tokenizer.json: {e}") from None
        return cls(spec, backend)

    @classmethod
    def from_file(cls, path: str | os.PathLike, backend: str = "auto") -> Tokenizer:
        return cls(_read_json(path, "tokenizer.json"), backend)

    @property
    def backend(self) -> str:
        """``"tokenizers"`` or ``"python"``: which implementation runs this tokenizer."""
        return self._impl.backend

    @property
    def model_type(self) -> str | None:
        """The model's ``"type"`` in the file (``"WordPiece"``, ``"BPE"``, ...)."""
        return self._model_type

    # ---------------------------------------------------------------- settings

    def enable_truncation(self, max_length: int, stride: int = 0, strategy: str = "longest_first",
                          direction: str = "right") -> None:  # fmt: skip
        """Truncate every encoding to ``max_length`` tokens (special tokens included)."""
        if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)) or max_length < 0:
            raise ArgumentError(f"enable_truncation: max_length must be an int >= 0, got {max_length!r}")
        if strategy not in ("longest_first", "only_first", "only_second"):
            raise ArgumentError(
                f"enable_truncation: strategy must be longest_first, only_first or only_second, got {strategy!r}"
            )
        if direction not in ("left", "right"):
            raise ArgumentError(f"enable_truncation: direction must be 'left' or 'right', got {direction!r}")
        if stride >= max_length and max_length > 0:
            raise ArgumentError(f"enable_truncation: stride ({stride}) must be smaller than max_length ({max_length})")
        self.truncation_params = _Truncation(int(max_length), int(stride), strategy, direction)

    def no_truncation(self) -> None:
        self.truncation_params = None

    def enable_padding(self, direction: str = "right", pad_id: int = 0, pad_type_id: int = 0, pad_token: str = "[PAD]",
                       length: int | None = None, pad_to_multiple_of: int | None = None) -> None:  # fmt: skip
        """Pad every encoding to ``length`` (None: the longest of the batch), rounded up to ``pad_to_multiple_of``."""
        if direction not in ("left", "right"):
            raise ArgumentError(f"enable_padding: direction must be 'left' or 'right', got {direction!r}")
        self.padding_params = _Padding(length, direction, int(pad_id), int(pad_type_id), pad_token, pad_to_multiple_of)

    def no_padding(self) -> None:
        self.padding_params = None

    @property
    def truncation(self) -> dict[str, Any] | None:
        return None if self.truncation_params is None else self.truncation_params.as_dict()

    @property
    def padding(self) -> dict[str, Any] | None:
        return None if self.padding_params is None else self.padding_params.as_dict()

    # ---------------------------------------------------------------- encode / decode

    def encode(self, sequence: str, pair: str | None = None, add_special_tokens: bool = True) -> Encoding:
        """One text (and optionally its pair) -> :class:`Encoding`, truncated and padded per the settings."""
        return self.encode_batch([sequence if pair is None else (sequence, pair)], add_special_tokens)[0]

    def encode_batch(self, inputs: Sequence[str | tuple[str, str] | list[str]],
                     add_special_tokens: bool = True) -> list[Encoding]:  # fmt: skip
        """Texts or (text, pair) tuples -> encodings; with padding on and no fixed length, padded to the longest."""
        rows = []
        for item in inputs:
            if isinstance(item, str):
                rows.append((item, None))
            elif isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(s, str) for s in item):
                rows.append((item[0], item[1]))
            else:
                raise ArgumentTypeError(
                    f"encode_batch takes strings or (text, pair) tuples of strings, got {item!r:.80}"
                )
        if isinstance(self._impl, _RustPipeline):
            return self._impl.encode_batch(rows, add_special_tokens, self.truncation_params, self.padding_params)
        out = [self._impl.encode(a, b, add_special_tokens, self.truncation_params) for a, b in rows]
        p = self.padding_params
        if p is not None and out:
            # tokenizers pads each encoding (fixed length or its own), then the batch to its longest: the same as
            # padding all to the fixed length, or to the longest, rounded up to pad_to_multiple_of.
            length = _round_up(p.length if p.length is not None else max(len(e) for e in out), p.pad_to_multiple_of)
            for e in out:
                e.pad(length, p.pad_id, p.pad_type_id, p.pad_token, p.direction)
        return out

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return self._impl.decode(_int_list(ids, "decode"), skip_special_tokens)

    def decode_batch(self, sequences: Sequence[Sequence[int]], skip_special_tokens: bool = True) -> list[str]:
        return [self.decode(s, skip_special_tokens) for s in sequences]

    def normalize(self, text: str) -> str:
        """The normalizer alone (``tokenizer.normalizer.normalize_str``)."""
        return self._impl.normalize(text)

    def pre_tokenize(self, text: str) -> list[str]:
        """The pre-tokenizer alone on ``text``: its words."""
        return self._impl.pre_tokenize(text)

    def token_to_id(self, token: str) -> int | None:
        return self._impl.token_to_id(token)

    def id_to_token(self, index: int) -> str | None:
        return self._impl.id_to_token(int(index))

    def get_vocab(self, with_added_tokens: bool = True) -> dict[str, int]:
        return self._impl.get_vocab(with_added_tokens)

    def get_vocab_size(self, with_added_tokens: bool = True) -> int:
        return len(self.get_vocab(with_added_tokens))

    def special_tokens(self) -> set[str]:
        """The added tokens marked special (skipped by ``decode(skip_special_tokens=True)``)."""
        return self._impl.special_tokens()

    def add_special_tokens(self, tokens: Sequence[str]) -> int:
        """Make ``tokens`` special added tokens (matched whole in raw text, skipped when decoding special tokens):
        a token already in the vocabulary keeps its id, a new one gets the next free id. Returns how many were not
        added tokens before, as ``tokenizers`` does."""
        entries = [dict(e) for e in self.spec.get("added_tokens") or []]
        known = {e["content"] for e in entries}
        fresh = [t for t in dict.fromkeys(tokens) if t and t not in known]
        if not fresh:
            return 0
        model_size = self.get_vocab_size(with_added_tokens=False)
        for token in fresh:
            index = self.token_to_id(token)
            if index is None:
                top = max((e["id"] for e in entries), default=-1)
                index = top + 1 if top >= model_size or model_size == 0 else model_size
            entries.append({"id": index, "content": token, "single_word": False, "lstrip": False, "rstrip": False,
                            "normalized": False, "special": True})  # fmt: skip
        self.spec["added_tokens"] = entries
        self._impl = type(self._impl)(self.spec)
        return len(fresh)

    def __repr__(self) -> str:
        return f"Tokenizer(model={self._model_type}, vocab_size={self.get_vocab_size()}, backend={self.backend!r})"


def _int_list(ids: Any, where: str) -> list[int]:
    if isinstance(ids, np.ndarray):
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise ArgumentTypeError(f"{where}: expected a 1-d integer array of ids, got shape {ids.shape} {ids.dtype}")
        return ids.tolist()
    if isinstance(ids, (list, tuple)) and all(isinstance(i, (int, np.integer)) and i is not True and i is not False
                                              for i in ids):  # fmt: skip
        return [int(i) for i in ids]
    raise ArgumentTypeError(f"{where}: expected a list of int token ids, got {ids!r:.80}")


def _read_json(path: str | os.PathLike, what: str) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"no {what} at {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise TokenizerFormatError(f"cannot read {path} as {what}: {e}") from None


# ---------------------------------------------------------------- transformers' calling convention

_PADDING = {False: "do_not_pad", "do_not_pad": "do_not_pad", True: "longest", "longest": "longest",
            "max_length": "max_length"}  # fmt: skip
_TRUNCATION = {None: None, False: "do_not_truncate", "do_not_truncate": "do_not_truncate", True: "longest_first",
               "longest_first": "longest_first", "only_first": "only_first", "only_second": "only_second"}  # fmt: skip
_ROLES = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token", "bos_token", "eos_token")


class TokenizerFast:
    """A :class:`Tokenizer` called the way transformers calls ``PreTrainedTokenizerFast``.

    ``tok(texts, padding=True, truncation=True, max_length=..., return_tensors="np")`` -> ``{"input_ids",
    ["token_type_ids"], "attention_mask"}``; ``decode``, ``tokenize``, ``convert_*``, special-token attributes.
    Each call sets truncation and padding from its arguments (the file's own settings are ignored here, as in
    transformers). Special tokens not given are read off the pipeline (post-processor, padding, model's unknown
    token) or found by their usual names (``[MASK]``, ``<mask>``, ``<|endoftext|>``, ...).

    ``do_lower_case``, ``strip_accents``, ``tokenize_chinese_chars``: when given and the file's normalizer is a
    ``BertNormalizer`` with other settings, the normalizer is rebuilt with these (transformers' BertTokenizerFast).
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        *,
        model_max_length: int | None = None,
        padding_side: str = "right",
        truncation_side: str = "right",
        clean_up_tokenization_spaces: bool = False,
        model_input_names: Sequence[str] | None = None,
        **special_tokens: str | None,
    ) -> None:
        unknown = set(special_tokens) - set(_ROLES)
        if unknown:
            raise ArgumentError(
                f"TokenizerFast: unknown argument(s) {sorted(unknown)}; the special tokens are {list(_ROLES)}"
            )
        if padding_side not in ("left", "right") or truncation_side not in ("left", "right"):
            raise ArgumentError(f"padding_side and truncation_side must be 'left' or 'right', got {padding_side!r}, "
                                f"{truncation_side!r}")  # fmt: skip
        if model_max_length is not None and (not isinstance(model_max_length, (int, float, np.integer))
                                             or model_max_length < 1):  # fmt: skip
            raise ArgumentError(f"model_max_length must be a positive int or None, got {model_max_length!r}")
        self.tokenizer = tokenizer
        # transformers writes int(1e30) for "no limit"
        unlimited = model_max_length is None or model_max_length >= 1e20
        self.model_max_length = None if unlimited else int(model_max_length)
        self.padding_side, self.truncation_side = padding_side, truncation_side
        self.clean_up_tokenization_spaces = clean_up_tokenization_spaces
        given = {k: v for k, v in special_tokens.items() if v is not None}
        if any(not isinstance(v, str) or not v for v in given.values()):
            raise ArgumentTypeError(f"special tokens must be non-empty strings, got {given}")
        # transformers makes the special tokens it is given added tokens of the backend (so "[MASK]" in text is
        # matched whole); tokens only recognised by name here stay as the file has them.
        tokenizer.add_special_tokens([given[r] for r in _ROLES if r in given])
        roles = self._infer_roles()
        roles.update(given)
        for role in _ROLES:
            setattr(self, role, roles.get(role))
        post = (tokenizer.spec.get("post_processor") or {}).get("type")
        if model_input_names is None:
            typed = ("BertProcessing", "TemplateProcessing")
            steps = tokenizer.spec["post_processor"].get("processors", []) if post == "Sequence" else []
            with_types = post in typed or any(p.get("type") in typed for p in steps)
            model_input_names = ["input_ids", "token_type_ids", "attention_mask"] if with_types else [
                "input_ids", "attention_mask"]  # fmt: skip
        self.model_input_names = list(model_input_names)

    # ---------------------------------------------------------------- construction

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, backend: str = "auto", do_lower_case: bool | None = None,
                  strip_accents: bool | None = None, tokenize_chinese_chars: bool | None = None,
                  add_prefix_space: bool | None = None, **kwargs: Any) -> TokenizerFast:  # fmt: skip
        """From a ``tokenizer.json`` path (``kwargs``: the constructor's). ``add_prefix_space``, when given, is set on
        a ByteLevel pre-tokenizer, as transformers' GPT-2 and RoBERTa tokenizers set it from their config."""
        spec = _read_json(path, "tokenizer.json")
        if not isinstance(spec, Mapping) or "model" not in spec:
            raise TokenizerFormatError(f"{os.fspath(path)} is not a Hugging Face tokenizer.json (no 'model' entry)")
        spec = _with_bert_settings(spec, do_lower_case, strip_accents, tokenize_chinese_chars)
        if add_prefix_space is not None:
            spec = _with_prefix_space(spec, bool(add_prefix_space))
        return cls(Tokenizer(spec, backend), **kwargs)

    @classmethod
    def from_pretrained_dir(cls, directory: str | os.PathLike, *, backend: str = "auto",
                            **kwargs: Any) -> TokenizerFast:  # fmt: skip
        """From a transformers model folder: ``tokenizer.json`` plus ``tokenizer_config.json`` and
        ``special_tokens_map.json`` when present (model_max_length, special tokens, lower-casing)."""
        folder = Path(directory)
        config = _folder_config(folder)
        settings = {k: config.pop(k) for k in ("do_lower_case", "strip_accents", "tokenize_chinese_chars")
                    if k in config}  # fmt: skip
        return cls.from_file(folder / "tokenizer.json", backend=backend, **{**settings, **config, **kwargs})

    def _infer_roles(self) -> dict[str, str]:
        spec, tok = self.tokenizer.spec, self.tokenizer
        vocab = tok.get_vocab(True)
        roles: dict[str, str] = {}
        model = spec.get("model") or {}
        if model.get("unk_token"):
            roles["unk_token"] = model["unk_token"]
        post = spec.get("post_processor") or {}
        steps = post.get("processors", []) if post.get("type") == "Sequence" else [post]
        for step in steps:
            if step.get("type") in ("BertProcessing", "RobertaProcessing"):
                roles["cls_token"], roles["sep_token"] = step["cls"][0], step["sep"][0]
            elif step.get("type") == "TemplateProcessing":
                names = [p["SpecialToken"]["id"] for p in step.get("single", []) if "SpecialToken" in p]
                if names:
                    roles["cls_token" if len(names) > 1 else "eos_token"] = names[0]
                if len(names) > 1:
                    roles["sep_token"] = names[-1]
        if spec.get("padding"):
            roles["pad_token"] = spec["padding"].get("pad_token")
        for role, names in (("pad_token", ("[PAD]", "<pad>")), ("mask_token", ("[MASK]", "<mask>")),
                            ("unk_token", ("[UNK]", "<unk>")), ("bos_token", ("<s>", "<|endoftext|>")),
                            ("eos_token", ("</s>", "<|endoftext|>")), ("unk_token", ("<|endoftext|>",))):
            if role not in roles:
                found = next((n for n in names if n in vocab), None)
                if found is not None:
                    roles[role] = found
        return roles

    # ---------------------------------------------------------------- vocabulary

    @property
    def backend(self) -> str:
        return self.tokenizer.backend

    @property
    def vocab_size(self) -> int:
        """The model's vocabulary, without added tokens (transformers' ``vocab_size``)."""
        return self.tokenizer.get_vocab_size(with_added_tokens=False)

    def __len__(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def get_vocab(self) -> dict[str, int]:
        return self.tokenizer.get_vocab(True)

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | None | list[int | None]:
        if isinstance(tokens, str):
            return self.tokenizer.token_to_id(tokens)
        return [self.tokenizer.token_to_id(t) for t in tokens]

    def convert_ids_to_tokens(self, ids: int | Sequence[int], skip_special_tokens: bool = False) -> Any:
        if isinstance(ids, (int, np.integer)):
            return self.tokenizer.id_to_token(int(ids))
        special = set(self.all_special_ids) if skip_special_tokens else set()
        return [self.tokenizer.id_to_token(int(i)) for i in ids if int(i) not in special]

    @property
    def all_special_tokens(self) -> list[str]:
        named = [getattr(self, role) for role in _ROLES if getattr(self, role) is not None]
        return list(dict.fromkeys(named + sorted(self.tokenizer.special_tokens())))

    @property
    def all_special_ids(self) -> list[int]:
        return [i for i in (self.tokenizer.token_to_id(t) for t in self.all_special_tokens) if i is not None]

    def _role_id(self, role: str) -> int | None:
        token = getattr(self, role)
        return None if token is None else self.tokenizer.token_to_id(token)

    unk_token_id = property(lambda self: self._role_id("unk_token"))
    sep_token_id = property(lambda self: self._role_id("sep_token"))
    pad_token_id = property(lambda self: self._role_id("pad_token"))
    cls_token_id = property(lambda self: self._role_id("cls_token"))
    mask_token_id = property(lambda self: self._role_id("mask_token"))
    bos_token_id = property(lambda self: self._role_id("bos_token"))
    eos_token_id = property(lambda self: self._role_id("eos_token"))

    # ---------------------------------------------------------------- encode

    def tokenize(self, text: str, pair: str | None = None, add_special_tokens: bool = False) -> list[str]:
        """The token strings of ``text`` (no special tokens unless asked)."""
        return self._encode([(text, pair)], add_special_tokens, None, None)[0].tokens

    def encode(self, text: str, text_pair: str | None = None, *, add_special_tokens: bool = True,
               truncation: bool | str | None = None, max_length: int | None = None) -> list[int]:  # fmt: skip
        """The ids of one text (or pair), truncated as :meth:`__call__` would."""
        if not isinstance(text, str) or (text_pair is not None and not isinstance(text_pair, str)):
            raise ArgumentTypeError(f"encode takes a string (and an optional pair), got {type(text).__name__}; "
                                    "for a batch call the tokenizer itself: tok([...])")  # fmt: skip
        _, trunc, max_length = _strategies(False, truncation, max_length, self.model_max_length)
        truncate = self._truncation(trunc, max_length, 0)
        return self._encode([(text, text_pair)], add_special_tokens, truncate, None)[0].ids

    def __call__(
        self,
        text: str | Sequence[str],
        text_pair: str | Sequence[str] | None = None,
        *,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        stride: int = 0,
        pad_to_multiple_of: int | None = None,
        return_tensors: str | None = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_special_tokens_mask: bool = False,
        return_length: bool = False,
    ) -> dict[str, Any]:
        """Encode a text (or pair), or a batch, with transformers' padding and truncation rules.

        ``padding``: False, True/"longest", "max_length". ``truncation``: None (on when ``max_length`` is given
        without padding), True/"longest_first", "only_first", "only_second", False. ``return_tensors``: None
        (lists) or "np" (int64 arrays (N, L); (1, L) for one text). Returns ``input_ids``, ``token_type_ids``
        (when the model uses them), ``attention_mask`` and, if asked, ``special_tokens_mask`` and ``length``.
        """
        if return_tensors not in (None, "np"):
            raise ArgumentError(f"return_tensors must be None (lists) or 'np' (numpy int64), got {return_tensors!r}; "
                                "wrap the arrays with hubkit.from_numpy for tensors")  # fmt: skip
        batched = not isinstance(text, str)
        rows = _rows(text, text_pair)
        pad, trunc, max_length = _strategies(padding, truncation, max_length, self.model_max_length)
        padding_params = None
        if pad != "do_not_pad":
            if self.pad_token is None or self.pad_token_id is None:
                raise ArgumentError("asked to pad, but this tokenizer has no padding token; pass pad_token=... when "
                                    "building it (GPT-2 style models usually use eos_token)")  # fmt: skip
            padding_params = _Padding(max_length if pad == "max_length" else None, self.padding_side,
                                      self.pad_token_id, 0, self.pad_token, pad_to_multiple_of)  # fmt: skip
        encodings = self._encode(rows, add_special_tokens, self._truncation(trunc, max_length, stride), padding_params)
        want = {
            "input_ids": True,
            "token_type_ids": "token_type_ids" in self.model_input_names if return_token_type_ids is None
            else return_token_type_ids,
            "attention_mask": "attention_mask" in self.model_input_names if return_attention_mask is None
            else return_attention_mask,
            "special_tokens_mask": return_special_tokens_mask,
        }
        fields = {"input_ids": "ids", "token_type_ids": "type_ids", "attention_mask": "attention_mask",
                  "special_tokens_mask": "special_tokens_mask"}  # fmt: skip
        out: dict[str, Any] = {key: [getattr(e, fields[key]) for e in encodings] for key, on in want.items() if on}
        if return_length:
            out["length"] = [len(e) for e in encodings]
        if return_tensors == "np":
            lengths = {len(e) for e in encodings}
            if len(lengths) > 1:
                raise ArgumentError(f"return_tensors='np' needs rows of one length, got lengths {sorted(lengths)}; "
                                    "pass padding=True")  # fmt: skip
            return {k: np.array(v, dtype=np.int64).reshape(len(encodings), -1) if k != "length"
                    else np.array(v, dtype=np.int64) for k, v in out.items()}  # fmt: skip
        return out if batched else {k: v[0] for k, v in out.items()}

    def _truncation(self, trunc: str, max_length: int | None, stride: int) -> _Truncation | None:
        if trunc == "do_not_truncate" or max_length is None:
            return None
        return _Truncation(max_length, stride, trunc, self.truncation_side)

    def _encode(self, rows: list[tuple[str, str | None]], add_special_tokens: bool, truncation: _Truncation | None,
                padding: _Padding | None) -> list[Encoding]:  # fmt: skip
        # Settings are per call, as transformers sets them on its backend before each call (so, like it, one
        # TokenizerFast should not be shared by threads that call it with different settings).
        tok = self.tokenizer
        saved = tok.truncation_params, tok.padding_params
        tok.truncation_params, tok.padding_params = truncation, padding
        try:
            return tok.encode_batch([a if b is None else (a, b) for a, b in rows], add_special_tokens)
        finally:
            tok.truncation_params, tok.padding_params = saved

    # ---------------------------------------------------------------- decode

    def decode(self, ids: Any, skip_special_tokens: bool = False,
               clean_up_tokenization_spaces: bool | None = None) -> str | list[str]:  # fmt: skip
        """Ids -> text through the file's decoder; a 2-d input decodes row by row."""
        if isinstance(ids, (int, np.integer)):
            ids = [int(ids)]
        if (isinstance(ids, np.ndarray) and ids.ndim == 2) or (
            isinstance(ids, (list, tuple)) and ids and isinstance(ids[0], (list, tuple, np.ndarray))
        ):
            return [self.decode(row, skip_special_tokens, clean_up_tokenization_spaces) for row in ids]
        text = self.tokenizer.decode(_int_list(ids, "decode"), skip_special_tokens=skip_special_tokens)
        clean = clean_up_tokenization_spaces
        if clean is None:
            clean = self.clean_up_tokenization_spaces
        if clean and self.tokenizer.model_type != "BPE":  # transformers 5 skips the clean-up for BPE models
            text = _cleanup_spaces(text)
        return text

    def batch_decode(self, sequences: Any, skip_special_tokens: bool = False) -> list[str]:
        return [self.decode(s, skip_special_tokens) for s in sequences]

    def __repr__(self) -> str:
        return (f"TokenizerFast(model={self.tokenizer.model_type}, vocab_size={len(self)}, "
                f"model_max_length={self.model_max_length}, backend={self.backend!r})")  # fmt: skip


def _cleanup_spaces(text: str) -> str:
    """transformers' ``clean_up_tokenization``."""
    for old, new in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                     (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):  # fmt: skip
        text = text.replace(old, new)
    return text


def _rows(text: Any, text_pair: Any) -> list[tuple[str, str | None]]:
    if isinstance(text, str):
        if text_pair is not None and not isinstance(text_pair, str):
            raise ArgumentTypeError("text is one string, so text_pair must be a string or None; pass lists for a batch")
        return [(text, text_pair)]
    if not isinstance(text, (list, tuple)) or not all(isinstance(t, str) for t in text):
        raise ArgumentTypeError(f"text must be a string or a list of strings, got {type(text).__name__} {text!r:.60}")
    if text_pair is None:
        return [(t, None) for t in text]
    if not isinstance(text_pair, (list, tuple)) or not all(isinstance(t, str) for t in text_pair):
        raise ArgumentTypeError("text is a batch, so text_pair must be a list of strings too")
    if len(text_pair) != len(text):
        raise ArgumentError(f"text and text_pair need one entry per row, got {len(text)} and {len(text_pair)}")
    return list(zip(text, text_pair))


def _strategies(padding: Any, truncation: Any, max_length: Any,
                model_max_length: int | None) -> tuple[str, str, int | None]:  # fmt: skip
    """transformers' ``_get_padding_truncation_strategies``: (padding, truncation, max_length) to use."""
    if not isinstance(padding, (bool, str)) or padding not in _PADDING:
        raise ArgumentError(
            f"padding must be one of False, True, 'longest', 'max_length', 'do_not_pad', got {padding!r}"
        )
    if not (truncation is None or isinstance(truncation, (bool, str))) or truncation not in _TRUNCATION:
        raise ArgumentError("truncation must be one of None, False, True, 'longest_first', 'only_first', "
                            f"'only_second', 'do_not_truncate', got {truncation!r}")  # fmt: skip
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer))
                                   or max_length < 1):  # fmt: skip
        raise ArgumentError(f"max_length must be a positive int or None, got {max_length!r}")
    pad = _PADDING[padding]
    if truncation is None:
        trunc = "longest_first" if max_length is not None and padding is False else "do_not_truncate"
    else:
        trunc = _TRUNCATION[truncation]
    if max_length is None:
        if pad == "max_length":
            if model_max_length is None:
                pad = "do_not_pad"
            else:
                max_length = model_max_length
        if trunc != "do_not_truncate":
            if model_max_length is None:
                trunc = "do_not_truncate"
            else:
                max_length = model_max_length
    return pad, trunc, None if max_length is None else int(max_length)


def _with_bert_settings(spec: Mapping[str, Any], do_lower_case: bool | None, strip_accents: bool | None,
                        tokenize_chinese_chars: bool | None) -> dict[str, Any]:  # fmt: skip
    spec = dict(spec)
    normalizer = spec.get("normalizer")
    if not isinstance(normalizer, Mapping) or normalizer.get("type") != "BertNormalizer":
        return spec
    wanted = dict(normalizer)
    for key, value in (("lowercase", do_lower_case), ("strip_accents", strip_accents),
                       ("handle_chinese_chars", tokenize_chinese_chars)):  # fmt: skip
        if value is not None:
            wanted[key] = value
    spec["normalizer"] = wanted
    return spec


def _with_prefix_space(spec: Mapping[str, Any], add_prefix_space: bool) -> dict[str, Any]:
    """``spec`` with ``add_prefix_space`` set on its ByteLevel pre-tokenizer (alone or in a Sequence)."""
    spec = dict(spec)
    pre = spec.get("pre_tokenizer")
    if isinstance(pre, Mapping) and pre.get("type") == "ByteLevel":
        spec["pre_tokenizer"] = {**pre, "add_prefix_space": add_prefix_space}
    elif isinstance(pre, Mapping) and pre.get("type") == "Sequence":
        steps = [{**p, "add_prefix_space": add_prefix_space} if isinstance(p, Mapping) and p.get("type") == "ByteLevel"
                 else p for p in pre.get("pretokenizers", [])]  # fmt: skip
        spec["pre_tokenizer"] = {**pre, "pretokenizers": steps}
    return spec


def _in_folder(folder: Path) -> Callable[[str], Path | None]:
    """``get(name)`` for a folder: the path of its file ``name``, or ``None``."""
    return lambda name: folder / name if (folder / name).is_file() else None


def _folder_config(folder: Path | Callable[[str], Path | None]) -> dict[str, Any]:
    """TokenizerFast keyword arguments from a folder's tokenizer_config.json and special_tokens_map.json (``folder``:
    a directory, or ``get(name) -> path or None``)."""
    get = _in_folder(folder) if isinstance(folder, Path) else folder
    out: dict[str, Any] = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        path = get(name)
        if path is None:
            continue
        config = _read_json(path, name)
        if not isinstance(config, Mapping):
            continue
        for role in _ROLES:
            value = config.get(role)
            if isinstance(value, Mapping):
                value = value.get("content")
            if isinstance(value, str):
                out[role] = value
        for key in ("model_max_length", "do_lower_case", "strip_accents", "tokenize_chinese_chars",
                    "clean_up_tokenization_spaces", "padding_side", "truncation_side", "add_prefix_space"):  # fmt: skip
            if key in config and config[key] is not None:
                out[key] = config[key]
        names = config.get("model_input_names")
        if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
            out["model_input_names"] = names
    if isinstance(out.get("model_max_length"), (int, float)) and out["model_max_length"] >= 1e20:
        out.pop("model_max_length")
    return out


def wordpiece_tokenizer(
    vocab: Mapping[str, int] | Sequence[str] | str | os.PathLike,
    *,
    do_lower_case: bool = True,
    strip_accents: bool | None = None,
    tokenize_chinese_chars: bool = True,
    unk_token: str = "[UNK]",
    sep_token: str = "[SEP]",
    pad_token: str = "[PAD]",
    cls_token: str = "[CLS]",
    mask_token: str = "[MASK]",
    backend: str = "auto",
    **kwargs: Any,
) -> TokenizerFast:
    """BERT's fast tokenizer from a WordPiece vocabulary (a ``vocab.txt`` path, the tokens in id order, or a
    token -> id mapping): the ``tokenizer.json`` transformers writes for it (BertNormalizer, BertPreTokenizer,
    WordPiece with ``##`` and 100 characters a word, ``[CLS] A [SEP] (B [SEP])`` with token types 0/1, WordPiece
    decoder; the five special tokens as added tokens). ``kwargs`` go to :class:`TokenizerFast`."""
    if isinstance(vocab, (str, os.PathLike)):
        try:
            with open(vocab, encoding="utf-8") as f:
                vocab = [line.rstrip("\n") for line in f]
        except FileNotFoundError:
            raise CheckpointError(f"no vocabulary file at {os.fspath(vocab)!r}; expected a BERT vocab.txt") from None
    table = dict(vocab) if isinstance(vocab, Mapping) else {t: i for i, t in enumerate(vocab)}
    missing = [t for t in (unk_token, sep_token, pad_token, cls_token, mask_token) if t not in table]
    if missing:
        raise ArgumentError(f"wordpiece_tokenizer: the vocabulary lacks the special tokens {missing}")
    specials = [pad_token, unk_token, cls_token, sep_token, mask_token]
    spec = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": table[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for t in sorted(set(specials), key=table.get)],
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": tokenize_chinese_chars,
                       "strip_accents": strip_accents, "lowercase": do_lower_case},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": cls_token, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": sep_token, "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": cls_token, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": sep_token, "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": sep_token, "type_id": 1}}],
            "special_tokens": {t: {"id": t, "ids": [table[t]], "tokens": [t]} for t in (cls_token, sep_token)},
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": unk_token, "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": table},
    }  # fmt: skip
    return TokenizerFast(Tokenizer(spec, backend), unk_token=unk_token, sep_token=sep_token, pad_token=pad_token,
                         cls_token=cls_token, mask_token=mask_token, **kwargs)  # fmt: skip


def load_tokenizer(directory: str | os.PathLike, **kwargs: Any) -> Any:
    """The fast tokenizer of a Hugging Face model folder: its ``tokenizer.json``, or else the one transformers
    builds from the slow files, ``vocab.txt`` (BERT WordPiece, :func:`wordpiece_tokenizer`) or ``vocab.json`` +
    ``merges.txt`` (byte-level BPE); ``tokenizer_config.json`` and ``special_tokens_map.json`` are read too."""
    folder = Path(directory)
    return load_tokenizer_from(_in_folder(folder), str(folder), **kwargs)


def load_tokenizer_from(get: Callable[[str], Path | None], where: str, **kwargs: Any) -> Any:
    """:func:`load_tokenizer` for files found by ``get(name) -> path or None`` (a folder, a Hugging Face repo);
    ``where`` names them in errors."""
    tokenizer_json = get("tokenizer.json")
    if tokenizer_json is not None:
        config = _folder_config(get)
        settings = {k: config.pop(k) for k in ("do_lower_case", "strip_accents", "tokenize_chinese_chars",
                                               "add_prefix_space") if k in config}  # fmt: skip
        return TokenizerFast.from_file(tokenizer_json, **{**settings, **config, **kwargs})
    vocab_json = get("vocab.json")
    merges = get("merges.txt") if vocab_json is not None else None
    if vocab_json is not None and merges is not None:
        from hubkit.zoo.text.bpe import byte_level_bpe

        config = _folder_config(get)
        bert_only = ("do_lower_case", "strip_accents", "tokenize_chinese_chars")
        config = {k: v for k, v in config.items() if k not in bert_only}
        return byte_level_bpe(vocab_json, merges, **{**config, **kwargs})
    vocab_txt = get("vocab.txt")
    if vocab_txt is not None:
        config = {k: v for k, v in _folder_config(get).items() if k != "add_prefix_space"}
        return wordpiece_tokenizer(vocab_txt, **{**config, **kwargs})
    raise CheckpointError(f"{where} has no tokenizer: expected tokenizer.json, vocab.json + merges.txt, or vocab.txt")
