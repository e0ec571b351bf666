"""BERT's WordPiece tokenizer in pure Python, token for token the same as transformers' slow ``BertTokenizer``.

    from hubkit.zoo.text.tokenizers import BertTokenizer
    tok = BertTokenizer.from_pretrained_dir("all-MiniLM-L6-v2/")      # vocab.txt (+ tokenizer_config.json)
    batch = tok(["A sentence.", "Another one"], padding=True, truncation=True, return_tensors="np")
    batch["input_ids"]        # (N, L) int64, [CLS] ... [SEP] then [PAD]

The pipeline is the one in ``transformers/models/bert/tokenization_bert.py`` (the slow, Python one):

1. special tokens (``[CLS]``, ``[SEP]``, ``[PAD]``, ``[UNK]``, ``[MASK]``) found in the raw text are cut out
   and kept whole;
2. basic tokenizer on the rest: drop NUL, U+FFFD and control characters, map whitespace to ``" "``, put spaces
   around CJK ideographs, NFC, split on whitespace, then per word: lower-case and strip accents (NFD, drop
   ``Mn``), split off every punctuation character (Unicode ``P*`` plus every ASCII symbol, ``$`` and the
   backtick included);
3. WordPiece on each word: greedy longest match from the left, non-initial pieces looked up as ``"##" + piece``;
   a word with an unmatched position or more than ``max_input_chars_per_word`` characters becomes ``[UNK]``.

The fast tokenizer (``tokenizer.json``, Rust ``BertNormalizer``) differs on a few inputs: it has no NFC step,
strips accents before lower-casing (so a final capital sigma stays a plain sigma), does not treat U+2B820..U+2B91F
as ideographs, and uses Rust's notions of whitespace and control. This module follows the slow one (in
transformers 5 that is ``BertTokenizerLegacy``; ``transformers.BertTokenizer`` became the Rust-backed one).

Only the standard library and numpy are used; ``import hubkit`` does not import this module.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from hubkit.errors import ArgumentError, ArgumentTypeError, CheckpointError

__all__ = ["BertTokenizer", "VocabFileNotFoundError"]


class VocabFileNotFoundError(CheckpointError, FileNotFoundError):
    """A vocabulary file (``vocab.txt``) or tokenizer directory does not exist."""


# ---------------------------------------------------------------- character classes (BERT's, not Python's)

# Code-point ranges the original BERT treats as CJK ideographs (each gets spaces around it).
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)
_CJK_RE = re.compile("[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in _CJK_RANGES) + "]")


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    # Every non-alphanumeric ASCII character counts, "$", "^", "`" and friends included, as in BERT.
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


class _TranslateTable(dict):
    """A ``str.translate`` table filled on first sight of each code point.

    Classifying all 1.1M code points up front would cost most of a second at import; texts use a few hundred
    distinct characters, so each is classified once and then looked up in C. Concurrent fills write the
    same value, so no lock is needed.
    """

    def __init__(self, classify) -> None:
        super().__init__()
        self._classify = classify

    def __missing__(self, cp: int) -> int | str | None:
        value = self._classify(chr(cp))
        self[cp] = value
        return value


def _clean_char(ch: str) -> int | str | None:
    if ch in "\x00\ufffd" or _is_control(ch):
        return None
    if _is_whitespace(ch):
        return " "
    return ord(ch)


def _split_punct_char(ch: str) -> int | str:
    return f" {ch} " if _is_punctuation(ch) else ord(ch)


_CLEAN = _TranslateTable(_clean_char)
_SPLIT_PUNCT = _TranslateTable(_split_punct_char)
# Accent stripping runs on NFD text, where an accent is a separate nonspacing mark (Mn).
_STRIP_ACCENTS = _TranslateTable(lambda ch: None if unicodedata.category(ch) == "Mn" else ord(ch))

# transformers' value for "no model_max_length"; a tokenizer_config.json may hold it.
_NO_MAX_LENGTH = int(1e20)

_PADDING = {False: "do_not_pad", "do_not_pad": "do_not_pad", True: "longest", "longest": "longest",
            "max_length": "max_length"}
_TRUNCATION = {None: None, False: "do_not_truncate", "do_not_truncate": "do_not_truncate",
               True: "longest_first", "longest_first": "longest_first", "only_first": "only_first",
               "only_second": "only_second"}

# decode's clean-up: transformers' PreTrainedTokenizerBase.clean_up_tokenization, in its order.
_CLEANUP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
            (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


def _check_flag(name: str, value: Any, allow_none: bool = False) -> None:
    if isinstance(value, bool) or (allow_none and value is None):
        return
    accepted = "True, False or None" if allow_none else "True or False"
    raise ArgumentTypeError(f"BertTokenizer: {name} must be {accepted}, got {value!r} ({type(value).__name__}).")


def _check_positive_int(name: str, value: Any, allow_none: bool = False) -> None:
    if allow_none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        accepted = "a positive int or None" if allow_none else "a positive int"
        raise ArgumentTypeError(f"BertTokenizer: {name} must be {accepted}, got {value!r} ({type(value).__name__}).")
    if value < 1:
        raise ArgumentError(f"BertTokenizer: {name} must be >= 1, got {value}.")


class BertTokenizer:
    """BERT's basic + WordPiece tokenizer with transformers' slow ``BertTokenizer`` semantics.

    Args:
        vocab: token -> id mapping, or the tokens in id order (``vocab.txt``'s lines). A token listed twice
            keeps its last id, and the earlier id decodes to ``unk_token``, as in transformers.
        do_lower_case: lower-case words (and strip accents unless ``strip_accents is False``).
        strip_accents: None follows ``do_lower_case``; True/False forces accent stripping on/off.
        tokenize_chinese_chars: split every CJK ideograph into its own word.
        never_split: words kept whole: not lower-cased, not split on punctuation, not WordPiece'd.
        unk_token, sep_token, pad_token, cls_token, mask_token: the special tokens; each must be in ``vocab``.
        model_max_length: the length ``truncation=True`` / ``padding="max_length"`` use when ``max_length`` is
            not given; None means no limit.
        max_input_chars_per_word: longer words become ``unk_token``.

    Raises:
        ArgumentError / ArgumentTypeError: a bad argument, or a special token missing from the vocabulary.
    """

    def __init__(
        self,
        vocab: Mapping[str, int] | Sequence[str],
        *,
        do_lower_case: bool = True,
        strip_accents: bool | None = None,
        tokenize_chinese_chars: bool = True,
        never_split: Iterable[str] = (),
        unk_token: str = "[UNK]",
        sep_token: str = "[SEP]",
        pad_token: str = "[PAD]",
        cls_token: str = "[CLS]",
        mask_token: str = "[MASK]",
        model_max_length: int | None = 512,
        max_input_chars_per_word: int = 100,
    ) -> None:
        self._vocab = self._vocab_dict(vocab)
        self._ids_to_tokens = {i: t for t, i in self._vocab.items()}
        _check_flag("do_lower_case", do_lower_case)
        _check_flag("strip_accents", strip_accents, allow_none=True)
        _check_flag("tokenize_chinese_chars", tokenize_chinese_chars)
        _check_positive_int("model_max_length", model_max_length, allow_none=True)
        _check_positive_int("max_input_chars_per_word", max_input_chars_per_word)
        if isinstance(never_split, str) or not isinstance(never_split, Iterable):
            raise ArgumentTypeError(
                f"BertTokenizer: never_split must be an iterable of strings (e.g. a list), got {never_split!r}."
            )
        never_split = frozenset(never_split)
        if not all(isinstance(t, str) for t in never_split):
            bad = sorted(repr(t) for t in never_split if not isinstance(t, str))
            raise ArgumentTypeError(f"BertTokenizer: never_split must hold only strings, found {', '.join(bad)}.")

        specials = {"unk_token": unk_token, "sep_token": sep_token, "pad_token": pad_token,
                    "cls_token": cls_token, "mask_token": mask_token}
        for name, token in specials.items():
            if not isinstance(token, str) or not token:
                raise ArgumentTypeError(f"BertTokenizer: {name} must be a non-empty string, got {token!r}.")
        missing = [f"{name}={token!r}" for name, token in specials.items() if token not in self._vocab]
        if missing:
            raise ArgumentError(
                f"BertTokenizer: the vocabulary ({len(self._vocab)} tokens) lacks the special tokens "
                f"{', '.join(missing)}; use a BERT vocab.txt that lists them or pass the names this vocabulary "
                "uses (e.g. unk_token='<unk>')."
            )

        self.do_lower_case = do_lower_case
        self.strip_accents = strip_accents
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.never_split = never_split
        self.unk_token, self.sep_token, self.pad_token = unk_token, sep_token, pad_token
        self.cls_token, self.mask_token = cls_token, mask_token
        self.model_max_length = None if model_max_length is None else int(model_max_length)
        self.max_input_chars_per_word = int(max_input_chars_per_word)

        # transformers' order of all_special_tokens; duplicates (e.g. pad == unk) collapse.
        self.all_special_tokens = list(dict.fromkeys([unk_token, sep_token, pad_token, cls_token, mask_token]))
        self.all_special_ids = [self._vocab[t] for t in self.all_special_tokens]
        # Longest first, so that at one position the longest special token wins (transformers' Trie).
        alternatives = sorted(self.all_special_tokens, key=len, reverse=True)
        self._special_re = re.compile("(" + "|".join(map(re.escape, alternatives)) + ")")
        self._special_first_chars = frozenset(t[0] for t in self.all_special_tokens)
        self._special_set = frozenset(self.all_special_tokens)
        # The basic tokenizer also leaves special tokens alone (they can reappear after control chars are dropped).
        self._basic_never_split = never_split | self._special_set
        self._strip = strip_accents if strip_accents is not None else do_lower_case

        # WordPiece can stop growing a candidate piece beyond the longest vocabulary entry.
        self._max_first_len = max(map(len, self._vocab))
        self._max_cont_len = max((len(t) - 2 for t in self._vocab if t.startswith("##")), default=0)
        self._unk_id = self._vocab[unk_token]
        self._wordpiece_cache: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {}
        self._wordpiece_cache_size = 1 << 18

    # ---------------------------------------------------------------- construction

    @staticmethod
    def _vocab_dict(vocab: Any) -> dict[str, int]:
        if isinstance(vocab, Mapping):
            out = {}
            for token, index in vocab.items():
                if not isinstance(token, str) or isinstance(index, bool) or not isinstance(index, (int, np.integer)):
                    raise ArgumentTypeError(
                        "BertTokenizer: vocab must map str tokens to int ids, found "
                        f"{token!r}: {index!r} ({type(token).__name__} -> {type(index).__name__})."
                    )
                if index < 0:
                    raise ArgumentError(f"BertTokenizer: vocab ids must be >= 0, found {token!r}: {index}.")
                out[token] = int(index)
        elif isinstance(vocab, Sequence) and not isinstance(vocab, (str, bytes)):
            out = {}
            for index, token in enumerate(vocab):
                if not isinstance(token, str):
                    raise ArgumentTypeError(
                        f"BertTokenizer: vocab must be a sequence of str tokens, item {index} is {token!r} "
                        f"({type(token).__name__})."
                    )
                out[token] = index
        else:
            raise ArgumentTypeError(
                "BertTokenizer: vocab must be a mapping token -> id or a list of tokens in id order, got "
                f"{type(vocab).__name__}; to read a vocab.txt use BertTokenizer.from_file(path)."
            )
        if not out:
            raise ArgumentError("BertTokenizer: vocab is empty; pass a BERT vocabulary (e.g. from vocab.txt).")
        return out

    @classmethod
    def from_file(cls, vocab_txt_path: str | os.PathLike, **kwargs: Any) -> Any:
        """Read a ``vocab.txt`` (one token per line, line index = id) and build a tokenizer.

        ``kwargs`` are the constructor's keyword arguments. Lines lose only their trailing ``"\\n"`` (and, as
        in transformers, text mode turns ``"\\r\\n"`` into ``"\\n"`` first).

        A ``tokenizer.json`` path gives the fast tokenizer it describes instead
        (:class:`~hubkit.zoo.text.tokenizer_json.TokenizerFast`), with transformers' ``BertTokenizerFast`` reading
        of ``do_lower_case``, ``strip_accents``, ``tokenize_chinese_chars`` and ``model_max_length``; the other
        arguments belong to the slow tokenizer and are refused.

        Raises:
            VocabFileNotFoundError: no file at that path.
            CheckpointError: the file is not readable UTF-8 text, is empty, or lacks the special tokens.
        """
        path = os.fspath(vocab_txt_path)
        if path.endswith(".json"):
            return _fast_from_json(path, kwargs)
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.readlines()
        except FileNotFoundError:
            raise VocabFileNotFoundError(
                f"BertTokenizer.from_file: no vocabulary file at {path!r}; expected a BERT vocab.txt "
                "(one token per line). Check the path or download the model's files first."
            ) from None
        except UnicodeDecodeError as e:
            raise CheckpointError(
                f"BertTokenizer.from_file: {path!r} is not UTF-8 text ({e}); expected a BERT vocab.txt, "
                "one token per line. Check that the right file was given."
            ) from None
        except OSError as e:
            raise CheckpointError(
                f"BertTokenizer.from_file: cannot read {path!r} ({e.strerror or e}); expected a readable vocab.txt "
                "file."
            ) from None
        if not lines:
            raise CheckpointError(
                f"BertTokenizer.from_file: {path!r} is empty; expected a BERT vocab.txt with one token per line. "
                "The download may have been cut short: fetch the file again."
            )
        try:
            return cls([line.rstrip("\n") for line in lines], **kwargs)
        except ArgumentError as e:
            if "lacks the special tokens" not in str(e):
                raise
            raise CheckpointError(f"{path!r}: {e}") from None

    @classmethod
    def from_pretrained_dir(cls, directory: str | os.PathLike, **kwargs: Any) -> BertTokenizer:
        """Build a tokenizer from a Hugging Face model directory.

        Reads ``vocab.txt`` and, where present, ``tokenizer_config.json`` and ``special_tokens_map.json``
        (``do_lower_case``, ``strip_accents``, ``tokenize_chinese_chars``, ``never_split``, ``model_max_length``
        and the special tokens). Keyword arguments override the files.

        Raises:
            VocabFileNotFoundError: the directory or its ``vocab.txt`` does not exist.
            CheckpointError: a file is unreadable or malformed.
        """
        directory = os.fspath(directory)
        if not os.path.isdir(directory):
            raise VocabFileNotFoundError(
                f"BertTokenizer.from_pretrained_dir: {directory!r} is not a directory; expected a model folder "
                "holding vocab.txt (and optionally tokenizer_config.json)."
            )
        config: dict[str, Any] = {}
        for name in ("special_tokens_map.json", "tokenizer_config.json"):
            config.update(cls._read_json(os.path.join(directory, name)))

        options: dict[str, Any] = {}
        for key in ("do_lower_case", "strip_accents", "tokenize_chinese_chars"):
            if key in config:
                options[key] = config[key]
        if config.get("never_split") is not None:
            options["never_split"] = config["never_split"]
        if "model_max_length" in config:
            value = config["model_max_length"]
            options["model_max_length"] = None if value is None or value >= _NO_MAX_LENGTH else value
        for key in ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token"):
            value = config.get(key)
            if isinstance(value, dict):  # a serialized AddedToken
                value = value.get("content")
            if value is not None:
                options[key] = value
        options.update(kwargs)
        return cls.from_file(os.path.join(directory, "vocab.txt"), **options)

    @staticmethod
    def _read_json(path: str) -> dict[str, Any]:
        if not os.path.isfile(path):
            return {}
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise CheckpointError(
                f"BertTokenizer.from_pretrained_dir: cannot parse {path!r} as JSON ({e}); fix or delete the file."
            ) from None
        if not isinstance(data, dict):
            raise CheckpointError(
                f"BertTokenizer.from_pretrained_dir: {path!r} holds a {type(data).__name__}, expected a JSON object."
            )
        return data

    # ---------------------------------------------------------------- vocabulary

    @property
    def vocab_size(self) -> int:
        """Number of distinct tokens in the vocabulary."""
        return len(self._vocab)

    def __len__(self) -> int:
        return len(self._vocab)

    def get_vocab(self) -> dict[str, int]:
        """A copy of the token -> id mapping."""
        return dict(self._vocab)

    @property
    def unk_token_id(self) -> int:
        return self._vocab[self.unk_token]

    @property
    def sep_token_id(self) -> int:
        return self._vocab[self.sep_token]

    @property
    def pad_token_id(self) -> int:
        return self._vocab[self.pad_token]

    @property
    def cls_token_id(self) -> int:
        return self._vocab[self.cls_token]

    @property
    def mask_token_id(self) -> int:
        return self._vocab[self.mask_token]

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        """Token(s) -> id(s); a token outside the vocabulary maps to ``unk_token_id``."""
        unk = self._vocab[self.unk_token]
        if isinstance(tokens, str):
            return self._vocab.get(tokens, unk)
        if not isinstance(tokens, Sequence) or not all(isinstance(t, str) for t in tokens):
            raise ArgumentTypeError(
                f"convert_tokens_to_ids: expected a str or a list of str, got {type(tokens).__name__} "
                f"{_preview(tokens)}."
            )
        get = self._vocab.get
        return [get(t, unk) for t in tokens]

    def convert_ids_to_tokens(self, ids: int | Sequence[int], skip_special_tokens: bool = False) -> str | list[str]:
        """Id(s) -> token(s); an id no token has maps to ``unk_token`` (as in transformers)."""
        if _is_int(ids):
            return self._ids_to_tokens.get(int(ids), self.unk_token)
        ids = _id_list(ids, "convert_ids_to_tokens")
        skip = set(self.all_special_ids) if skip_special_tokens else ()
        get, unk = self._ids_to_tokens.get, self.unk_token
        return [get(i, unk) for i in ids if i not in skip]

    # ---------------------------------------------------------------- tokenize

    def tokenize(self, text: str) -> list[str]:
        """Split ``text`` into WordPiece tokens; special tokens written in the text stay whole.

        ``"Héllo, [MASK] wörld!"`` -> ``["hello", ",", "[MASK]", "world", "!"]`` (with lower-casing).
        """
        if not isinstance(text, str):
            raise ArgumentTypeError(f"tokenize: expected a str, got {type(text).__name__} {_preview(text)}.")
        out: list[str] = []
        for is_special, piece in self._split_special_tokens(text):
            if is_special:
                out.append(piece)
            else:
                self._wordpieces_into(piece, out, 0)
        return out

    def _encode_text(self, text: str) -> list[int]:
        """``convert_tokens_to_ids(tokenize(text))`` without building the token strings."""
        out: list[int] = []
        vocab = self._vocab
        for is_special, piece in self._split_special_tokens(text):
            if is_special:
                out.append(vocab[piece])
            else:
                self._wordpieces_into(piece, out, 1)
        return out

    def _split_special_tokens(self, text: str) -> list[tuple[bool, str]]:
        """``text`` cut into (is_special_token, piece) runs, as transformers' added-token Trie does."""
        if not any(c in text for c in self._special_first_chars):
            return [(False, text)]
        special = self._special_set
        return [(piece in special, piece) for piece in self._special_re.split(text) if piece]

    def _wordpieces_into(self, text: str, out: list, field: int) -> None:
        """Append the WordPiece tokens (``field`` 0) or their ids (``field`` 1) of special-token-free text."""
        cache = self._wordpiece_cache
        never_split = self.never_split
        for word in self._basic_tokenize(text):
            if never_split and word in never_split:
                out.append(word if field == 0 else self._vocab.get(word, self._unk_id))
                continue
            entry = cache.get(word)
            if entry is None:
                entry = self._wordpiece(word)
            out.extend(entry[field])

    def _basic_tokenize(self, text: str) -> list[str]:
        if not text.isprintable() or "\ufffd" in text:
            text = text.translate(_CLEAN)
        if not text.isascii():
            if self.tokenize_chinese_chars:
                text = _CJK_RE.sub(r" \g<0> ", text)
            text = unicodedata.normalize("NFC", text)
        normalized = text.lower() if self.do_lower_case else text
        if self._strip and not normalized.isascii():
            normalized = unicodedata.normalize("NFD", normalized).translate(_STRIP_ACCENTS)
        # Whole-text lower-casing and accent stripping equal transformers' per-word ones (Python's final-sigma
        # context and NFD reordering stop at whitespace), unless some word is a never-split one before or after
        # normalizing; only then is the word-by-word path needed.
        never_split = self._basic_never_split
        if any(t in text or t in normalized for t in never_split):
            return self._basic_tokenize_by_word(text)
        return normalized.translate(_SPLIT_PUNCT).split()

    def _basic_tokenize_by_word(self, text: str) -> list[str]:
        never_split = self._basic_never_split
        lower, strip = self.do_lower_case, self._strip
        words: list[str] = []
        for token in text.split():
            if token in never_split:
                words.append(token)
                continue
            if lower:
                token = token.lower()
            if strip and not token.isascii():
                token = unicodedata.normalize("NFD", token).translate(_STRIP_ACCENTS)
            if token in never_split:  # transformers checks again after lower-casing, before punctuation
                words.append(token)
                continue
            words.extend(token.translate(_SPLIT_PUNCT).split())
        return words

    def _wordpiece(self, word: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
        """WordPiece tokens of one word and their ids, cached."""
        pieces = self._wordpiece_uncached(word)
        entry = (pieces, tuple(self._vocab[p] for p in pieces))
        if len(self._wordpiece_cache) >= self._wordpiece_cache_size:
            self._wordpiece_cache.clear()
        self._wordpiece_cache[word] = entry
        return entry

    def _wordpiece_uncached(self, word: str) -> tuple[str, ...]:
        n = len(word)
        if n > self.max_input_chars_per_word:
            return (self.unk_token,)
        vocab = self._vocab
        pieces = []
        start = 0
        while start < n:
            end = min(n, start + (self._max_cont_len if start else self._max_first_len))
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in vocab:
                    break
                end -= 1
            else:
                return (self.unk_token,)
            pieces.append(piece)
            start = end
        return tuple(pieces)

    # ---------------------------------------------------------------- encode

    def encode(
        self,
        text: str,
        text_pair: str | None = None,
        *,
        add_special_tokens: bool = True,
        max_length: int | None = None,
        truncation: bool | str | None = None,
    ) -> list[int]:
        """Token ids of ``[CLS] text [SEP]`` or ``[CLS] text [SEP] text_pair [SEP]``.

        ``truncation`` and ``max_length`` work as in :meth:`__call__` (None with a ``max_length`` means
        ``"longest_first"``, as in transformers).
        """
        if not isinstance(text, str) or (text_pair is not None and not isinstance(text_pair, str)):
            bad = text if not isinstance(text, str) else text_pair
            raise ArgumentTypeError(
                f"encode: expected str inputs, got {type(bad).__name__} {_preview(bad)}; for a batch call the "
                "tokenizer itself: tok([...])."
            )
        _, trunc, max_length = self._strategies(False, truncation, max_length)
        ids, _ = self._build(text, text_pair, add_special_tokens, trunc, max_length)
        return ids

    def __call__(
        self,
        text: str | Sequence[str],
        text_pair: str | Sequence[str] | None = None,
        *,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        return_tensors: str | None = None,
        return_attention_mask: bool = True,
        return_token_type_ids: bool = True,
    ) -> dict[str, Any]:
        """Encode one text (or pair) or a batch, with transformers' padding and truncation rules.

        Args:
            text: a string, or a list of N strings.
            text_pair: the second segment(s): a string for a single ``text``, a list of N strings for a batch.
            padding: False/"do_not_pad"; True/"longest" (to the longest row); "max_length" (to ``max_length``,
                or ``model_max_length`` when it is None). Pads on the right with ``pad_token_id``.
            truncation: True/"longest_first" (drop tokens from the end of the longer segment, one at a time);
                "only_first"; "only_second"; False/"do_not_truncate". None truncates "longest_first" exactly
                when ``max_length`` is given and ``padding`` is False. Special tokens are never removed.
            max_length: the length limit; None with truncation on means ``model_max_length``.
            return_tensors: None (lists) or "np" (int64 arrays of shape (N, L); (1, L) for one text).

        Returns:
            ``{"input_ids", "token_type_ids", "attention_mask"}`` (the last two unless turned off);
            ``token_type_ids`` is 0 on the first segment with its [CLS]/[SEP], 1 on the second, 0 on padding;
            ``attention_mask`` is 1 on tokens and 0 on padding.
        """
        if return_tensors not in (None, "np"):
            raise ArgumentError(
                f"BertTokenizer: return_tensors must be None (lists) or 'np' (numpy int64), got {return_tensors!r}; "
                "for hubkit tensors wrap the arrays with hubkit.from_numpy."
            )
        _check_flag("return_attention_mask", return_attention_mask)
        _check_flag("return_token_type_ids", return_token_type_ids)
        batched = not isinstance(text, str)
        texts, pairs = self._batch_inputs(text, text_pair)
        pad, trunc, max_length = self._strategies(padding, truncation, max_length)

        rows = [self._build(a, b, add_special_tokens, trunc, max_length) for a, b in zip(texts, pairs)]
        lengths = [len(ids) for ids, _ in rows]
        target = 0
        if pad == "longest" and rows:
            target = max(lengths)
        elif pad == "max_length":
            target = max_length
        if return_tensors == "np":
            return self._to_arrays(rows, lengths, target, return_token_type_ids, return_attention_mask)

        input_ids, type_ids, masks = [], [], []
        pad_id = self.pad_token_id
        for (ids, n_first), n in zip(rows, lengths):
            extra = max(target - n, 0)
            input_ids.append(ids + [pad_id] * extra)
            type_ids.append([0] * n_first + [1] * (n - n_first) + [0] * extra)
            masks.append([1] * n + [0] * extra)
        out: dict[str, Any] = {"input_ids": input_ids}
        if return_token_type_ids:
            out["token_type_ids"] = type_ids
        if return_attention_mask:
            out["attention_mask"] = masks
        if not batched:
            return {k: v[0] for k, v in out.items()}
        return out

    def _to_arrays(
        self, rows: list[tuple[list[int], int]], lengths: list[int], target: int, type_ids: bool, mask: bool
    ) -> dict[str, np.ndarray]:
        """Padded rows as (N, L) int64 arrays, scattered in one step from the concatenated ids."""
        final = {max(n, target) for n in lengths}
        if len(final) > 1:
            raise ArgumentError(
                f"BertTokenizer: return_tensors='np' needs rows of one length, got lengths {sorted(final)}; "
                "pass padding=True (or padding='max_length' with truncation=True)."
            )
        n_rows, width = len(rows), final.pop() if final else 0
        lengths_arr = np.array(lengths, dtype=np.int64).reshape(n_rows, 1)
        positions = np.arange(width, dtype=np.int64)
        filled = positions < lengths_arr
        input_ids = np.full((n_rows, width), self.pad_token_id, dtype=np.int64)
        input_ids[filled] = np.fromiter((i for ids, _ in rows for i in ids), dtype=np.int64, count=sum(lengths))
        out = {"input_ids": input_ids}
        if type_ids:
            n_first = np.array([n for _, n in rows], dtype=np.int64).reshape(n_rows, 1)
            out["token_type_ids"] = (filled & (positions >= n_first)).astype(np.int64)
        if mask:
            out["attention_mask"] = filled.astype(np.int64)
        return out

    def _batch_inputs(self, text: Any, text_pair: Any) -> tuple[list[str], list[str | None]]:
        if isinstance(text, str):
            if text_pair is not None and not isinstance(text_pair, str):
                raise ArgumentTypeError(
                    f"BertTokenizer: text is one string, so text_pair must be a string or None, got "
                    f"{type(text_pair).__name__} {_preview(text_pair)}; pass a list of texts to encode a batch."
                )
            return [text], [text_pair]
        if not isinstance(text, (list, tuple)) or not all(isinstance(t, str) for t in text):
            raise ArgumentTypeError(
                f"BertTokenizer: text must be a string or a list of strings, got {type(text).__name__} "
                f"{_preview(text)}."
            )
        if text_pair is None:
            return list(text), [None] * len(text)
        if not isinstance(text_pair, (list, tuple)) or not all(isinstance(t, str) for t in text_pair):
            raise ArgumentTypeError(
                f"BertTokenizer: text is a batch, so text_pair must be a list of strings too, got "
                f"{type(text_pair).__name__} {_preview(text_pair)}."
            )
        if len(text_pair) != len(text):
            raise ArgumentError(
                f"BertTokenizer: text and text_pair must have one entry per row, got {len(text)} texts and "
                f"{len(text_pair)} pairs."
            )
        return list(text), list(text_pair)

    def _strategies(self, padding: Any, truncation: Any, max_length: Any) -> tuple[str, str, int | None]:
        """transformers' _get_padding_truncation_strategies: (padding, truncation, max_length) to use."""
        if not isinstance(padding, (bool, str)) or padding not in _PADDING:
            raise ArgumentError(
                f"BertTokenizer: padding must be one of False, True, 'longest', 'max_length', 'do_not_pad', "
                f"got {padding!r}."
            )
        if not (truncation is None or isinstance(truncation, (bool, str))) or truncation not in _TRUNCATION:
            raise ArgumentError(
                "BertTokenizer: truncation must be one of None, False, True, 'longest_first', 'only_first', "
                f"'only_second', 'do_not_truncate', got {truncation!r}."
            )
        _check_positive_int("max_length", max_length, allow_none=True)
        if max_length is not None:
            max_length = int(max_length)
        pad = _PADDING[padding]
        if truncation is None:
            # transformers' backward-compatible rule: a max_length alone turns truncation on.
            trunc = "longest_first" if max_length is not None and padding is False else "do_not_truncate"
        else:
            trunc = _TRUNCATION[truncation]
        if max_length is None:
            if pad == "max_length":
                if self.model_max_length is None:
                    pad = "do_not_pad"
                else:
                    max_length = self.model_max_length
            if trunc != "do_not_truncate":
                if self.model_max_length is None:
                    trunc = "do_not_truncate"
                else:
                    max_length = self.model_max_length
        return pad, trunc, max_length

    def _build(
        self, text: str, pair: str | None, add_special_tokens: bool, trunc: str, max_length: int | None
    ) -> tuple[list[int], int]:
        """One row's ids, truncated (transformers' prepare_for_model), and how many of them have token type 0
        (the first segment with its [CLS] and [SEP]; the rest, the second segment and its [SEP], have type 1)."""
        ids = self._encode_text(text)
        pair_ids = self._encode_text(pair) if pair is not None else None
        n_special = (3 if pair_ids is not None else 2) if add_special_tokens else 0
        total = len(ids) + len(pair_ids or ()) + n_special
        if trunc != "do_not_truncate" and max_length and total > max_length:
            ids, pair_ids = _truncate(ids, pair_ids, total - max_length, trunc)
        if not add_special_tokens:
            seq = ids + (pair_ids or [])
            return seq, len(seq)
        cls, sep = self.cls_token_id, self.sep_token_id
        if pair_ids is None:
            return [cls, *ids, sep], len(ids) + 2
        return [cls, *ids, sep, *pair_ids, sep], len(ids) + 2

    # ---------------------------------------------------------------- decode

    def decode(
        self,
        ids: Sequence[int] | np.ndarray,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool = True,
    ) -> str | list[str]:
        """Ids -> text: tokens joined by spaces, ``##`` pieces glued to their word, then (by default) the
        clean-up " ." -> ".", " ," -> ",", " ' " -> "'", " n't" -> "n't" and friends.

        A 2-d input (a list of lists or an (N, L) array) decodes row by row into a list of strings.
        Lower-casing and accent stripping are not undone.
        """
        if isinstance(ids, np.ndarray) and ids.ndim == 2 or (
            isinstance(ids, (list, tuple)) and ids and isinstance(ids[0], (list, tuple, np.ndarray))
        ):
            return [self.decode(row, skip_special_tokens, clean_up_tokenization_spaces) for row in ids]
        tokens = self.convert_ids_to_tokens(ids if not _is_int(ids) else [ids], skip_special_tokens)
        text = " ".join(tokens).replace(" ##", "").strip()
        if clean_up_tokenization_spaces:
            for old, new in _CLEANUP:
                text = text.replace(old, new)
        return text


_FAST_OPTIONS = ("do_lower_case", "strip_accents", "tokenize_chinese_chars", "model_max_length")


def _fast_from_json(path: str, kwargs: dict[str, Any]) -> Any:
    from hubkit.zoo.text.tokenizer_json import TokenizerFast

    extra = sorted(set(kwargs) - set(_FAST_OPTIONS))
    if extra:
        raise ArgumentError(
            f"BertTokenizer.from_file({path!r}): a tokenizer.json takes {', '.join(_FAST_OPTIONS)}; {', '.join(extra)} "
            "are options of the slow vocab.txt tokenizer"
        )
    return TokenizerFast.from_file(path, **kwargs)


def _truncate(ids: list[int], pair_ids: list[int] | None, remove: int, strategy: str) -> tuple[list, list | None]:
    """Remove ``remove`` ids from the ends, as transformers' truncate_sequences (right side)."""
    if strategy == "only_first" or (strategy == "longest_first" and pair_ids is None):
        return ids[:-remove], pair_ids
    if strategy == "longest_first":
        # Same result as dropping one token at a time from the longer segment (the second one on ties).
        n_first, n_second = len(ids), len(pair_ids)
        first_pass = min(abs(n_second - n_first), remove)
        rest = remove - first_pass
        if n_first > n_second:
            from_first, from_second = first_pass + rest // 2, rest - rest // 2
        else:
            from_first, from_second = rest // 2, first_pass + rest - rest // 2
        return (ids[:-from_first] if from_first else ids), (pair_ids[:-from_second] if from_second else pair_ids)
    if strategy == "only_second" and pair_ids:
        return ids, pair_ids[:-remove]
    return ids, pair_ids


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _id_list(ids: Any, where: str) -> list[int]:
    if isinstance(ids, np.ndarray):
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise ArgumentTypeError(
                f"{where}: expected a 1-d integer array of token ids, got shape {ids.shape} dtype {ids.dtype}."
            )
        return ids.tolist()
    if isinstance(ids, (list, tuple)) and all(_is_int(i) for i in ids):
        return [int(i) for i in ids]
    raise ArgumentTypeError(f"{where}: expected an int or a list of int token ids, got {_preview(ids)}.")


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
