"""The parts a ``tokenizer.json`` is made of, in pure Python: normalizers, pre-tokenizers, models, post-processors
and decoders, built from their JSON objects by ``build_*``, plus :class:`Encoding`. Each follows the Rust
implementation in huggingface/tokenizers, with the character classes measured from it (``_charclass``).
:mod:`hubkit.zoo.text.tokenizer_json` assembles them into a tokenizer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hubkit.errors import ArgumentError, CheckpointError
from hubkit.zoo.text._charclass import (
    LazyTranslation,
    char_set,
    class_body,
    lowercase,
    normalize_form,
    onig_to_re,
    regex_class,
)
from hubkit.zoo.text.bpe import BPE, bytes_to_unicode, gpt2_pattern, unicode_to_bytes


class TokenizerFormatError(CheckpointError):
    """A ``tokenizer.json`` that is malformed or uses a component hubkit's Python pipeline does not implement."""


# ---------------------------------------------------------------- encoding


@dataclass
class Encoding:
    """One encoded sequence (or pair): parallel lists of equal length, as ``tokenizers.Encoding`` has them."""

    ids: list[int] = field(default_factory=list)
    type_ids: list[int] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    attention_mask: list[int] = field(default_factory=list)
    special_tokens_mask: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def of(cls, pieces: list[tuple[str, int]], type_id: int, special: int = 0) -> Encoding:
        n = len(pieces)
        return cls([i for _, i in pieces], [type_id] * n, [t for t, _ in pieces], [1] * n, [special] * n)

    def extend(self, other: Encoding) -> None:
        self.ids += other.ids
        self.type_ids += other.type_ids
        self.tokens += other.tokens
        self.attention_mask += other.attention_mask
        self.special_tokens_mask += other.special_tokens_mask

    def truncate(self, max_length: int, direction: str) -> None:
        if len(self.ids) <= max_length:
            return
        keep = slice(0, max_length) if direction == "right" else slice(len(self.ids) - max_length, None)
        for name in ("ids", "type_ids", "tokens", "attention_mask", "special_tokens_mask"):
            setattr(self, name, getattr(self, name)[keep])

    def pad(self, length: int, pad_id: int, pad_type_id: int, pad_token: str, direction: str) -> None:
        extra = length - len(self.ids)
        if extra <= 0:
            return
        fills = {"ids": pad_id, "type_ids": pad_type_id, "tokens": pad_token, "attention_mask": 0,
                 "special_tokens_mask": 1}  # fmt: skip
        for name, value in fills.items():
            current = getattr(self, name)
            setattr(self, name, current + [value] * extra if direction == "right" else [value] * extra + current)


# ---------------------------------------------------------------- splitting (tokenizers' NormalizedString.split)

_BEHAVIORS = ("removed", "isolated", "merged_with_previous", "merged_with_next", "contiguous")


def _behavior(value: Any) -> str:
    name = re.sub(r"(?<!^)([A-Z])", r"_\1", str(value)).lower()
    if name not in _BEHAVIORS:
        raise TokenizerFormatError(f"unknown split behavior {value!r}; expected one of {list(_BEHAVIORS)}")
    return name


def _events_from_spans(text: str, spans: Iterable[tuple[int, int]]) -> list[tuple[int, int, bool]]:
    """Cover ``text`` with (start, end, is_match) events, as tokenizers' ``Pattern::find_matches``."""
    if not text:
        return [(0, 0, False)]
    events, prev = [], 0
    for a, b in spans:
        if prev != a:
            events.append((prev, a, False))
        events.append((a, b, True))
        prev = b
    if prev != len(text):
        events.append((prev, len(text), False))
    return events


def _char_events(text: str, matches: Callable[[str], bool]) -> list[tuple[int, int, bool]]:
    """Every character for which ``matches`` holds is one match; the runs between are non-matches."""
    return _events_from_spans(text, ((i, i + 1) for i, ch in enumerate(text) if matches(ch)))


def _apply_behavior(text: str, events: list[tuple[int, int, bool]], behavior: str) -> list[str]:
    if behavior == "removed":
        kept = [(a, b) for a, b, hit in events if not hit]
    elif behavior == "isolated":
        kept = [(a, b) for a, b, _ in events]
    else:
        order = reversed(events) if behavior == "merged_with_next" else events
        acc: list[list[int]] = []
        previous = False
        for a, b, hit in order:
            if behavior == "contiguous":
                join = hit == previous and acc
            else:
                join = hit and not previous and acc
            if join:
                if behavior == "merged_with_next":
                    acc[-1][0] = a
                else:
                    acc[-1][1] = b
            else:
                acc.append([a, b])
            previous = hit
        if behavior == "merged_with_next":
            acc.reverse()
        kept = [(a, b) for a, b in acc]
    return [text[a:b] for a, b in kept if b > a]


def _strip_whitespace(text: str, left: bool, right: bool) -> str:
    spaces = char_set("WHITESPACE")
    start, end = 0, len(text)
    while left and start < end and text[start] in spaces:
        start += 1
    while right and end > start and text[end - 1] in spaces:
        end -= 1
    return text[start:end]


def _pattern(spec: Any, where: str) -> tuple[str, str]:
    """(``"string"`` or ``"regex"``, value) from a ``{"String": ...}`` / ``{"Regex": ...}`` object."""
    if isinstance(spec, Mapping) and len(spec) == 1:
        kind, value = next(iter(spec.items()))
        if kind in ("String", "Regex") and isinstance(value, str):
            return kind.lower(), value
    raise TokenizerFormatError(f"{where}: expected a pattern {{'String': ...}} or {{'Regex': ...}}, got {spec!r}")


def _find_spans(text: str, kind: str, pattern: str) -> list[tuple[int, int]]:
    if kind == "regex":
        return [m.span() for m in onig_to_re(pattern).finditer(text)]
    if not pattern:
        return []
    spans, start = [], text.find(pattern)
    while start >= 0:
        spans.append((start, start + len(pattern)))
        start = text.find(pattern, start + len(pattern))
    return spans


# ---------------------------------------------------------------- normalizers


def _spaced_chinese(ch: str) -> int | str:
    return f" {ch} " if ch in char_set("BERT_CHINESE") else ord(ch)


def _clean(ch: str) -> int | str | None:
    if ch in "\x00\ufffd" or ch in char_set("BERT_CONTROL"):
        return None
    if ch in char_set("WHITESPACE"):
        return " "
    return ord(ch)


_CLEAN = LazyTranslation(_clean)
_CHINESE = LazyTranslation(_spaced_chinese)
_BERT_MARKS = LazyTranslation(lambda ch: None if ch in char_set("BERT_MARKS") else ord(ch))
_STRIP_ACCENTS = LazyTranslation(lambda ch: None if ch in char_set("STRIP_ACCENTS") else ord(ch))


class Normalizer:
    def normalize(self, text: str) -> str:
        raise NotImplementedError


class BertNormalizer(Normalizer):
    """Clean (drop controls, space the whitespace), space out CJK ideographs, strip accents (NFD, drop marks;
    None follows ``lowercase``), lower-case code point by code point, in that order."""

    def __init__(self, clean_text: bool = True, handle_chinese_chars: bool = True, strip_accents: bool | None = None,
                 lowercase: bool = True) -> None:  # fmt: skip
        self.clean_text, self.handle_chinese_chars = clean_text, handle_chinese_chars
        self.strip_accents, self.lowercase = strip_accents, lowercase

    def normalize(self, text: str) -> str:
        if self.clean_text:
            text = text.translate(_CLEAN)
        if self.handle_chinese_chars and not text.isascii():
            text = text.translate(_CHINESE)
        strip = self.lowercase if self.strip_accents is None else self.strip_accents
        if strip and not text.isascii():
            text = normalize_form("NFD", text).translate(_BERT_MARKS)
        if self.lowercase:
            text = lowercase(text)
        return text


class _Form(Normalizer):
    def __init__(self, form: str) -> None:
        self.form = form

    def normalize(self, text: str) -> str:
        return normalize_form(self.form, text)


class _Lowercase(Normalizer):
    def normalize(self, text: str) -> str:
        return lowercase(text)


class _Strip(Normalizer):
    def __init__(self, strip_left: bool = True, strip_right: bool = True) -> None:
        self.left, self.right = strip_left, strip_right

    def normalize(self, text: str) -> str:
        return _strip_whitespace(text, self.left, self.right)


class _StripAccents(Normalizer):
    def normalize(self, text: str) -> str:
        return text.translate(_STRIP_ACCENTS)


class _Replace(Normalizer):
    def __init__(self, pattern: Any, content: str) -> None:
        self.kind, self.pattern = _pattern(pattern, "Replace")
        self.content = content

    def normalize(self, text: str) -> str:
        if self.kind == "string":
            return text.replace(self.pattern, self.content) if self.pattern else text
        return onig_to_re(self.pattern).sub(lambda _: self.content, text)


class _Prepend(Normalizer):
    def __init__(self, prepend: str) -> None:
        self.prepend = prepend

    def normalize(self, text: str) -> str:
        return self.prepend + text if text else text


class _ByteLevelNormalizer(Normalizer):
    def normalize(self, text: str) -> str:
        table = bytes_to_unicode()
        return "".join(table[b] for b in text.encode("utf-8"))


class _NormalizerSequence(Normalizer):
    def __init__(self, normalizers: list[Normalizer]) -> None:
        self.normalizers = normalizers

    def normalize(self, text: str) -> str:
        for n in self.normalizers:
            text = n.normalize(text)
        return text


def build_normalizer(spec: Mapping[str, Any] | None) -> Normalizer | None:
    if spec is None:
        return None
    kind = spec.get("type")
    if kind == "BertNormalizer":
        return BertNormalizer(spec.get("clean_text", True), spec.get("handle_chinese_chars", True),
                              spec.get("strip_accents"), spec.get("lowercase", True))  # fmt: skip
    if kind in ("NFC", "NFD", "NFKC", "NFKD"):
        return _Form(kind)
    if kind == "Lowercase":
        return _Lowercase()
    if kind == "Strip":
        return _Strip(spec.get("strip_left", True), spec.get("strip_right", True))
    if kind == "StripAccents":
        return _StripAccents()
    if kind == "Replace":
        return _Replace(spec.get("pattern"), spec.get("content", ""))
    if kind == "Prepend":
        return _Prepend(spec.get("prepend", ""))
    if kind == "ByteLevel":
        return _ByteLevelNormalizer()
    if kind == "Sequence":
        return _NormalizerSequence([n for n in map(build_normalizer, spec.get("normalizers", [])) if n])
    raise TokenizerFormatError(_unsupported("normalizer", kind, "BertNormalizer, NFC, NFD, NFKC, NFKD, Lowercase, "
                                            "Strip, StripAccents, Replace, Prepend, ByteLevel, Sequence"))  # fmt: skip


def _unsupported(what: str, kind: Any, supported: str) -> str:
    return (f"the {what} type {kind!r} is not implemented by hubkit's pure-Python tokenizer (it has "
            f"{supported}); install 'tokenizers' (pip install 'hubkit[text]') and hubkit runs this tokenizer.json "
            "with it")  # fmt: skip


# ---------------------------------------------------------------- pre-tokenizers


class _PreTokenizer:
    def split(self, pieces: list[str], first: bool) -> list[str]:
        """Split each piece into words. ``first``: the first piece starts the input (Metaspace's "first")."""
        out = []
        for i, piece in enumerate(pieces):
            out.extend(self.split_one(piece, first and i == 0))
        return out

    def split_one(self, piece: str, first: bool) -> list[str]:
        raise NotImplementedError


def _bert_split_char(ch: str) -> int | str:
    if ch in char_set("WHITESPACE"):
        return " "
    if ch in char_set("BERT_PUNCTUATION"):
        return f" {ch} "
    return ord(ch)


_BERT_SPLIT = LazyTranslation(_bert_split_char)
_WHITESPACE_SPLIT = LazyTranslation(lambda ch: " " if ch in char_set("WHITESPACE") else ord(ch))


class _BertPreTokenizer(_PreTokenizer):
    def split_one(self, piece: str, first: bool) -> list[str]:
        # Whitespace (removed) and punctuation (isolated) as spaces, then one split on plain spaces.
        return [w for w in piece.translate(_BERT_SPLIT).split(" ") if w]


class _WhitespaceSplit(_PreTokenizer):
    def split_one(self, piece: str, first: bool) -> list[str]:
        return [w for w in piece.translate(_WHITESPACE_SPLIT).split(" ") if w]


class _Whitespace(_PreTokenizer):
    _re: re.Pattern | None = None

    def split_one(self, piece: str, first: bool) -> list[str]:
        if _Whitespace._re is None:
            # tokenizers runs this pattern with the regex crate, whose \w and \s are WS_WORD and WS_SPACE
            word, other = regex_class("WS_WORD"), "[^" + class_body("WS_WORD") + class_body("WS_SPACE") + "]"
            _Whitespace._re = re.compile(f"{word}+|{other}+")
        return _Whitespace._re.findall(piece)


class _ByteLevelPreTokenizer(_PreTokenizer):
    def __init__(self, add_prefix_space: bool = True, use_regex: bool = True) -> None:
        self.add_prefix_space, self.use_regex = add_prefix_space, use_regex

    def split_one(self, piece: str, first: bool) -> list[str]:
        if self.add_prefix_space and not piece.startswith(" "):
            piece = " " + piece
        words = gpt2_pattern().findall(piece) if self.use_regex else [piece]
        table = bytes_to_unicode()
        return ["".join(table[b] for b in w.encode("utf-8")) for w in words if w]


class _SplitPreTokenizer(_PreTokenizer):
    def __init__(self, pattern: Any, behavior: Any, invert: bool = False) -> None:
        self.kind, self.pattern = _pattern(pattern, "Split")
        self.behavior, self.invert = _behavior(behavior), invert

    def split_one(self, piece: str, first: bool) -> list[str]:
        events = _events_from_spans(piece, _find_spans(piece, self.kind, self.pattern))
        if self.invert:
            events = [(a, b, not hit) for a, b, hit in events]
        return _apply_behavior(piece, events, self.behavior)


class _CharPredicateSplit(_PreTokenizer):
    def __init__(self, predicate: Callable[[str], bool], behavior: str) -> None:
        self.predicate, self.behavior = predicate, behavior

    def split_one(self, piece: str, first: bool) -> list[str]:
        return _apply_behavior(piece, _char_events(piece, self.predicate), self.behavior)


class _Metaspace(_PreTokenizer):
    def __init__(self, replacement: str = "▁", prepend_scheme: str = "always", split: bool = True) -> None:
        if prepend_scheme not in ("always", "first", "never"):
            raise TokenizerFormatError(
                f"Metaspace prepend_scheme must be always, first or never, got {prepend_scheme!r}"
            )
        self.replacement, self.prepend_scheme, self.split_words = replacement, prepend_scheme, split

    def split_one(self, piece: str, first: bool) -> list[str]:
        piece = piece.replace(" ", self.replacement)
        prepend = self.prepend_scheme == "always" or (self.prepend_scheme == "first" and first)
        if prepend and not piece.startswith(self.replacement):
            piece = self.replacement + piece
        if not self.split_words:
            return [piece] if piece else []
        return _apply_behavior(piece, _char_events(piece, lambda ch: ch == self.replacement), "merged_with_next")


class _PreTokenizerSequence(_PreTokenizer):
    def __init__(self, steps: list[_PreTokenizer]) -> None:
        self.steps = steps

    def split(self, pieces: list[str], first: bool) -> list[str]:
        for step in self.steps:
            pieces = step.split(pieces, first)
        return pieces


def build_pre_tokenizer(spec: Mapping[str, Any] | None) -> _PreTokenizer | None:
    if spec is None:
        return None
    kind = spec.get("type")
    if kind == "BertPreTokenizer":
        return _BertPreTokenizer()
    if kind == "ByteLevel":
        return _ByteLevelPreTokenizer(spec.get("add_prefix_space", True), spec.get("use_regex", True))
    if kind == "Whitespace":
        return _Whitespace()
    if kind == "WhitespaceSplit":
        return _WhitespaceSplit()
    if kind == "Split":
        return _SplitPreTokenizer(spec.get("pattern"), spec.get("behavior", "Removed"), spec.get("invert", False))
    if kind == "Punctuation":
        punct = char_set("BERT_PUNCTUATION")
        return _CharPredicateSplit(punct.__contains__, _behavior(spec.get("behavior", "Isolated")))
    if kind == "Digits":
        numeric = char_set("NUMERIC")
        return _CharPredicateSplit(numeric.__contains__,
                                   "isolated" if spec.get("individual_digits", False) else "contiguous")  # fmt: skip
    if kind == "CharDelimiterSplit":
        delimiter = spec.get("delimiter", " ")
        return _CharPredicateSplit(lambda ch: ch == delimiter, "removed")
    if kind == "Metaspace":
        scheme = spec.get("prepend_scheme")
        if scheme is None:  # the pre-0.15 spelling
            scheme = "always" if spec.get("add_prefix_space", True) else "never"
        return _Metaspace(spec.get("replacement", "▁"), scheme, spec.get("split", True))
    if kind == "Sequence":
        return _PreTokenizerSequence([p for p in map(build_pre_tokenizer, spec.get("pretokenizers", [])) if p])
    raise TokenizerFormatError(_unsupported("pre-tokenizer", kind, "BertPreTokenizer, ByteLevel, Whitespace, "
                                            "WhitespaceSplit, Split, Punctuation, Digits, CharDelimiterSplit, "
                                            "Metaspace, Sequence"))  # fmt: skip


# ---------------------------------------------------------------- models


class WordPiece:
    """Greedy longest-match-first from the left; non-initial pieces carry ``continuing_subword_prefix``; a word
    with an unmatched position, or longer than ``max_input_chars_per_word``, is one ``unk_token``."""

    def __init__(self, vocab: Mapping[str, int], unk_token: str = "[UNK]", continuing_subword_prefix: str = "##",
                 max_input_chars_per_word: int = 100) -> None:  # fmt: skip
        self.vocab = dict(vocab)
        self.vocab_r = {i: t for t, i in self.vocab.items()}
        if unk_token not in self.vocab:
            raise TokenizerFormatError(f"WordPiece unk_token {unk_token!r} is not in the vocabulary")
        self.unk_token, self.prefix = unk_token, continuing_subword_prefix
        self.max_chars = max_input_chars_per_word
        self._max_len = max(map(len, self.vocab), default=1)
        self._cache: dict[str, list[tuple[str, int]]] = {}

    def tokenize(self, word: str) -> list[tuple[str, int]]:
        found = self._cache.get(word)
        if found is None:
            found = self._tokenize(word)
            if len(self._cache) > 1 << 17:
                self._cache.clear()
            self._cache[word] = found
        return found

    def _tokenize(self, word: str) -> list[tuple[str, int]]:
        unk = [(self.unk_token, self.vocab[self.unk_token])]
        n = len(word)
        if n > self.max_chars:
            return unk
        vocab, out, start = self.vocab, [], 0
        while start < n:
            end = min(n, start + self._max_len)
            while end > start:
                piece = word[start:end] if start == 0 else self.prefix + word[start:end]
                index = vocab.get(piece)
                if index is not None:
                    break
                end -= 1
            else:
                return unk
            out.append((piece, index))
            start = end
        return out

    def token_to_id(self, token: str) -> int | None:
        return self.vocab.get(token)

    def id_to_token(self, index: int) -> str | None:
        return self.vocab_r.get(index)


class WordLevel:
    """Each word is one token, or ``unk_token``."""

    def __init__(self, vocab: Mapping[str, int], unk_token: str | None = None) -> None:
        self.vocab = dict(vocab)
        self.vocab_r = {i: t for t, i in self.vocab.items()}
        self.unk_token = unk_token

    def tokenize(self, word: str) -> list[tuple[str, int]]:
        index = self.vocab.get(word)
        if index is not None:
            return [(word, index)]
        if self.unk_token is None or self.unk_token not in self.vocab:
            raise ArgumentError(f"WordLevel: {word!r} is not in the vocabulary and the model has no unk_token")
        return [(self.unk_token, self.vocab[self.unk_token])]

    def token_to_id(self, token: str) -> int | None:
        return self.vocab.get(token)

    def id_to_token(self, index: int) -> str | None:
        return self.vocab_r.get(index)


def build_model(spec: Mapping[str, Any]) -> Any:
    kind = spec.get("type")
    vocab = spec.get("vocab")
    if kind == "WordPiece":
        return WordPiece(vocab, spec.get("unk_token", "[UNK]"), spec.get("continuing_subword_prefix", "##"),
                         spec.get("max_input_chars_per_word", 100))  # fmt: skip
    if kind == "BPE":
        return BPE(vocab, spec.get("merges", []), unk_token=spec.get("unk_token"),
                   continuing_subword_prefix=spec.get("continuing_subword_prefix"),
                   end_of_word_suffix=spec.get("end_of_word_suffix"), fuse_unk=spec.get("fuse_unk", False),
                   byte_fallback=spec.get("byte_fallback", False), ignore_merges=spec.get("ignore_merges", False),
                   dropout=spec.get("dropout"))  # fmt: skip
    if kind == "WordLevel":
        return WordLevel(vocab, spec.get("unk_token"))
    if kind is None and isinstance(vocab, Mapping) and "merges" in spec:  # old files name no type for BPE
        return build_model({**spec, "type": "BPE"})
    raise TokenizerFormatError(_unsupported("model", kind, "WordPiece, BPE, WordLevel"))


# ---------------------------------------------------------------- post-processors


class _PostProcessor:
    def added_tokens(self, is_pair: bool) -> int:
        return 0

    def process(self, encodings: list[Encoding], add_special_tokens: bool) -> list[Encoding]:
        return encodings


class _BertProcessing(_PostProcessor):
    def __init__(self, sep: Sequence[Any], cls: Sequence[Any]) -> None:
        self.sep, self.cls = (sep[0], int(sep[1])), (cls[0], int(cls[1]))

    def added_tokens(self, is_pair: bool) -> int:
        return 3 if is_pair else 2

    def process(self, encodings: list[Encoding], add_special_tokens: bool) -> list[Encoding]:
        if not add_special_tokens:
            return encodings
        out = Encoding.of([self.cls], 0, 1)
        first = encodings[0]
        first.type_ids = [0] * len(first)
        out.extend(first)
        out.extend(Encoding.of([self.sep], 0, 1))
        if len(encodings) > 1:
            second = encodings[1]
            second.type_ids = [1] * len(second)
            out.extend(second)
            out.extend(Encoding.of([self.sep], 1, 1))
        return [out]


class _RobertaProcessing(_BertProcessing):
    def added_tokens(self, is_pair: bool) -> int:
        return 4 if is_pair else 2

    def process(self, encodings: list[Encoding], add_special_tokens: bool) -> list[Encoding]:
        for e in encodings:  # RoBERTa has no token types: every sequence is type 0
            e.type_ids = [0] * len(e)
        if not add_special_tokens:
            return encodings
        out = Encoding.of([self.cls], 0, 1)
        out.extend(encodings[0])
        out.extend(Encoding.of([self.sep], 0, 1))
        if len(encodings) > 1:
            out.extend(Encoding.of([self.sep], 0, 1))
            out.extend(encodings[1])
            out.extend(Encoding.of([self.sep], 0, 1))
        return [out]


class _TemplateProcessing(_PostProcessor):
    def __init__(self, single: list[Any], pair: list[Any], special_tokens: Mapping[str, Any]) -> None:
        self.single, self.pair = self._pieces(single), self._pieces(pair)
        self.special = {}
        for name, entry in special_tokens.items():
            ids, tokens = list(entry.get("ids", [])), list(entry.get("tokens", []))
            if len(ids) != len(tokens):
                raise TokenizerFormatError(
                    f"TemplateProcessing special token {name!r}: {len(ids)} ids but {len(tokens)} tokens"
                )
            self.special[name] = list(zip(tokens, ids))

    @staticmethod
    def _pieces(template: list[Any]) -> list[tuple[str, str, int]]:
        pieces = []
        for piece in template:
            if "Sequence" in piece:
                pieces.append(("sequence", piece["Sequence"]["id"], int(piece["Sequence"].get("type_id", 0))))
            elif "SpecialToken" in piece:
                pieces.append(("special", piece["SpecialToken"]["id"], int(piece["SpecialToken"].get("type_id", 0))))
            else:
                raise TokenizerFormatError(f"TemplateProcessing: unknown template piece {piece!r}")
        return pieces

    def added_tokens(self, is_pair: bool) -> int:
        template = self.pair if is_pair else self.single
        return sum(len(self.special.get(name, ())) for kind, name, _ in template if kind == "special")

    def process(self, encodings: list[Encoding], add_special_tokens: bool) -> list[Encoding]:
        template = self.pair if len(encodings) > 1 else self.single
        out = Encoding()
        for kind, name, type_id in template:
            if kind == "sequence":
                e = encodings[0 if name == "A" else 1]
                e.type_ids = [type_id] * len(e)
                out.extend(e)
            elif add_special_tokens:
                if name not in self.special:
                    raise TokenizerFormatError(
                        f"TemplateProcessing uses the special token {name!r} but does not define it"
                    )
                out.extend(Encoding.of(self.special[name], type_id, 1))
        return [out]


class _PostProcessorSequence(_PostProcessor):
    def __init__(self, steps: list[_PostProcessor]) -> None:
        self.steps = steps

    def added_tokens(self, is_pair: bool) -> int:
        return sum(s.added_tokens(is_pair) for s in self.steps)

    def process(self, encodings: list[Encoding], add_special_tokens: bool) -> list[Encoding]:
        for step in self.steps:
            encodings = step.process(encodings, add_special_tokens)
        return encodings


def build_post_processor(spec: Mapping[str, Any] | None) -> _PostProcessor | None:
    if spec is None:
        return None
    kind = spec.get("type")
    if kind == "BertProcessing":
        return _BertProcessing(spec["sep"], spec["cls"])
    if kind == "RobertaProcessing":
        return _RobertaProcessing(spec["sep"], spec["cls"])
    if kind == "TemplateProcessing":
        return _TemplateProcessing(spec.get("single", []), spec.get("pair", []), spec.get("special_tokens", {}))
    if kind == "ByteLevel":
        return _PostProcessor()
    if kind == "Sequence":
        return _PostProcessorSequence([p for p in map(build_post_processor, spec.get("processors", [])) if p])
    raise TokenizerFormatError(_unsupported("post-processor", kind, "BertProcessing, RobertaProcessing, "
                                            "TemplateProcessing, ByteLevel, Sequence"))  # fmt: skip


# ---------------------------------------------------------------- decoders

_CLEANUP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
            (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))  # fmt: skip


def _cleanup(text: str) -> str:
    for old, new in _CLEANUP:
        text = text.replace(old, new)
    return text


def _decode_byte_level(tokens: list[str]) -> list[str]:
    table, data = unicode_to_bytes(), bytearray()
    for token in tokens:
        try:
            data.extend(table[ch] for ch in token)
        except KeyError:  # a token outside the byte alphabet (an added token) is taken as its UTF-8 text
            data.extend(token.encode("utf-8"))
    return [data.decode("utf-8", errors="replace")]


def _decode_byte_fallback(tokens: list[str]) -> list[str]:
    out: list[str] = []
    pending = bytearray()

    def flush() -> None:
        if pending:
            try:
                out.append(pending.decode("utf-8"))
            except UnicodeDecodeError:
                out.extend("\ufffd" * len(pending))
            pending.clear()

    for token in tokens:
        if len(token) == 6 and token.startswith("<0x") and token.endswith(">"):
            try:
                pending.append(int(token[3:5], 16))
                continue
            except ValueError:
                pass
        flush()
        out.append(token)
    flush()
    return out


def build_decoder(spec: Mapping[str, Any] | None) -> Callable[[list[str]], list[str]] | None:
    if spec is None:
        return None
    kind = spec.get("type")
    if kind == "WordPiece":
        prefix, cleanup = spec.get("prefix", "##"), spec.get("cleanup", True)

        def wordpiece(tokens: list[str]) -> list[str]:
            out = []
            for i, t in enumerate(tokens):
                if i:
                    t = t.replace(prefix, "", 1) if t.startswith(prefix) else " " + t
                out.append(_cleanup(t) if cleanup else t)
            return out

        return wordpiece
    if kind == "ByteLevel":
        return _decode_byte_level
    if kind == "BPEDecoder":
        suffix = spec.get("suffix", "</w>")
        return lambda tokens: [t.replace(suffix, "" if i == len(tokens) - 1 else " ") for i, t in enumerate(tokens)]
    if kind == "Metaspace":
        replacement = spec.get("replacement", "▁")
        scheme = spec.get("prepend_scheme") or ("always" if spec.get("add_prefix_space", True) else "never")
        return lambda tokens: ["".join("" if c == replacement and i == 0 and scheme != "never" else
                                       (" " if c == replacement else c) for c in t)
                               for i, t in enumerate(tokens)]  # fmt: skip
    if kind == "ByteFallback":
        return _decode_byte_fallback
    if kind == "Fuse":
        return lambda tokens: ["".join(tokens)]
    if kind == "Strip":
        content, start, stop = spec.get("content", " "), spec.get("start", 0), spec.get("stop", 0)

        def strip(tokens: list[str]) -> list[str]:
            out = []
            for t in tokens:
                a, b = 0, len(t)
                while a < min(start, b) and t[a] == content:
                    a += 1
                while b > a and len(t) - b < stop and t[b - 1] == content:
                    b -= 1
                out.append(t[a:b])
            return out

        return strip
    if kind == "Replace":
        pattern_kind, pattern = _pattern(spec.get("pattern"), "Replace decoder")
        content = spec.get("content", "")
        if pattern_kind == "string":
            return lambda tokens: [t.replace(pattern, content) if pattern else t for t in tokens]
        return lambda tokens: [onig_to_re(pattern).sub(lambda _: content, t) for t in tokens]
    if kind == "Sequence":
        steps = [d for d in map(build_decoder, spec.get("decoders", [])) if d]

        def chain(tokens: list[str]) -> list[str]:
            for step in steps:
                tokens = step(tokens)
            return tokens

        return chain
    raise TokenizerFormatError(_unsupported("decoder", kind, "WordPiece, ByteLevel, BPEDecoder, Metaspace, "
                                            "ByteFallback, Fuse, Strip, Replace, Sequence"))  # fmt: skip
