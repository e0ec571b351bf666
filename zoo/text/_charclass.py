"""Character classes and regular expressions that behave like those of the Rust ``tokenizers`` library.

The classes come from ``_unicode_tables`` (measured from ``tokenizers`` itself, see
scripts/make_unicode_tables.py), so a pure-Python tokenizer gives the Rust answer on every code point whatever
the running Python's ``unicodedata`` version is. Tables are parsed on first use; ``import hubkit`` never does.

``onig_to_re`` turns the Oniguruma patterns found in ``tokenizer.json`` files (``Split`` and ``Replace``) into
patterns for Python's ``re``: ``\\p{L}``, ``\\p{N}``, ``\\s``, ``\\d``, ``\\w`` and their negations become explicit
classes built from the measured tables. Other ``\\p{..}`` properties need the optional ``regex`` package.
"""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from collections.abc import Callable
from typing import Any

from hubkit.errors import ArgumentError

__all__ = ["CharSet", "LazyTranslation", "char_set", "class_body", "lowercase", "normalize_form", "onig_to_re",
           "regex_class"]


class CharSet:
    """A set of code points stored as sorted ranges; ``ch in s`` is a binary search."""

    def __init__(self, ranges: list[tuple[int, int]]) -> None:
        self.ranges = ranges
        self._starts = [a for a, _ in ranges]
        self._ends = [b for _, b in ranges]

    @classmethod
    def parse(cls, text: str) -> CharSet:
        ranges = []
        for word in text.split():
            a, _, b = word.partition("-")
            ranges.append((int(a, 16), int(b or a, 16)))
        return cls(ranges)

    def __contains__(self, ch: str) -> bool:
        cp = ord(ch)
        i = bisect.bisect_right(self._starts, cp) - 1
        return i >= 0 and cp <= self._ends[i]

    def __len__(self) -> int:
        return sum(b - a + 1 for a, b in self.ranges)


@functools.cache
def char_set(name: str) -> CharSet:
    """One of ``_unicode_tables``' sets by name (``"WHITESPACE"``, ``"RE_LETTER"``, ...)."""
    from hubkit.zoo.text import _unicode_tables

    return CharSet.parse(getattr(_unicode_tables, name))


@functools.cache
def _lowercase_table() -> dict[int, str]:
    from hubkit.zoo.text import _unicode_tables

    table: dict[int, str] = {}
    for word in _unicode_tables.LOWERCASE.split():
        if "=" in word:
            cp, _, seq = word.partition("=")
            table[int(cp, 16)] = "".join(chr(int(h, 16)) for h in seq.split("."))
            continue
        span, _, delta = word.partition(":")
        span, _, step = span.partition("/")
        a, _, b = span.partition("-")
        for cp in range(int(a, 16), int(b or a, 16) + 1, int(step or 1)):
            table[cp] = chr(cp + int(delta))
    return table


class LazyTranslation(dict):
    """A ``str.translate`` table filled on first sight of each code point by ``classify(ch)``.

    Classifying the 1.1M code points up front would take seconds; texts use few distinct characters, so each
    is classified once and then looked up in C. Concurrent fills write the same value, so no lock is needed.
    """

    def __init__(self, classify: Callable[[str], Any]) -> None:
        super().__init__()
        self._classify = classify

    def __missing__(self, cp: int) -> Any:
        value = self._classify(chr(cp))
        self[cp] = value
        return value


@functools.cache
def _lower_translation() -> LazyTranslation:
    table = _lowercase_table()
    return LazyTranslation(lambda ch: table.get(ord(ch), ord(ch)))


def lowercase(text: str) -> str:
    """Rust's ``char::to_lowercase`` on each code point (no final-sigma rule: ``"Σ"`` is always ``"σ"``)."""
    if text.isascii():
        return text.lower()
    return text.translate(_lower_translation())


@functools.cache
def _boundaries(compat: bool) -> LazyTranslation:
    """Per code point: True when the crate's normalization does not know it (no decomposition there though
    unicodedata has one, or a starter there though unicodedata gives it a combining class)."""
    changes = char_set("NFKD_CHANGES" if compat else "NFD_CHANGES")
    marks = char_set("COMBINING")
    form = "NFKD" if compat else "NFD"

    def unknown(ch: str) -> bool:
        if ch in changes:  # the crate decomposes it (into code points it knows)
            return False
        if unicodedata.normalize(form, ch) != ch:
            return True
        return bool(unicodedata.combining(ch)) and ch not in marks

    return LazyTranslation(unknown)


def normalize_form(form: str, text: str) -> str:
    """Unicode normalization (``"NFC"``, ``"NFD"``, ``"NFKC"``, ``"NFKD"``) as the ``tokenizers`` crate does it:
    ``unicodedata``, except that code points the crate's older tables do not know are left alone, and, being
    starters without decompositions there, separate what is normalized on either side of them."""
    if text.isascii():
        return text
    unknown = _boundaries("K" in form)
    if not any(unknown[ord(ch)] for ch in text):
        return unicodedata.normalize(form, text)
    out, run = [], []
    for ch in text:
        if unknown[ord(ch)]:
            out.append(unicodedata.normalize(form, "".join(run)))
            out.append(ch)
            run = []
        else:
            run.append(ch)
    out.append(unicodedata.normalize(form, "".join(run)))
    return "".join(out)


# ---------------------------------------------------------------- regular expressions


def regex_class(name: str, negate: bool = False) -> str:
    """A ``re`` character class (``[...]``) holding the table ``name``."""
    return "[" + ("^" if negate else "") + class_body(name) + "]"


@functools.cache
def class_body(name: str) -> str:
    """The inside of :func:`regex_class`, to combine several tables in one class."""
    return "".join(_escape(a) if a == b else f"{_escape(a)}-{_escape(b)}" for a, b in char_set(name).ranges)


def _escape(cp: int) -> str:
    return f"\\U{cp:08x}" if cp > 0xFFFF else f"\\u{cp:04x}"


# Oniguruma escapes with a measured table: (table, negated).
_ESCAPES = {"s": ("RE_SPACE", False), "S": ("RE_SPACE", True), "d": ("RE_DIGIT", False), "D": ("RE_DIGIT", True),
            "w": ("RE_WORD", False), "W": ("RE_WORD", True)}  # fmt: skip
_PROPERTIES = {"L": "RE_LETTER", "Letter": "RE_LETTER", "N": "RE_NUMBER", "Number": "RE_NUMBER"}


class _NeedsRegexModule(Exception):
    pass


def _property(pattern: str, i: int) -> tuple[str, bool, int]:
    """At ``pattern[i]`` (just after a backslash) read ``p{Name}``, ``P{Name}``, ``pL`` or ``p{^Name}``:
    returns (name, negated, index after it)."""
    negated = pattern[i] == "P"
    if i + 1 < len(pattern) and pattern[i + 1] == "{":
        end = pattern.find("}", i + 2)
        if end < 0:
            raise ArgumentError(f"unterminated \\p{{...}} in the tokenizer pattern {pattern!r}")
        name = pattern[i + 2 : end]
        i = end + 1
    else:
        name = pattern[i + 1 : i + 2]
        i += 2
    if name.startswith("^"):
        negated, name = not negated, name[1:]
    return name, negated, i


def _translate(pattern: str) -> str:
    out: list[str] = []
    i, n, in_class = 0, len(pattern), False
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt in "pP":
                name, negated, i = _property(pattern, i + 1)
                if name not in _PROPERTIES or (in_class and negated):
                    raise _NeedsRegexModule(name)
                out.append(class_body(_PROPERTIES[name]) if in_class else regex_class(_PROPERTIES[name], negated))
                continue
            if nxt in _ESCAPES:
                table, negated = _ESCAPES[nxt]
                if in_class and negated:
                    raise _NeedsRegexModule("\\" + nxt)
                out.append(class_body(table) if in_class else regex_class(table, negated))
                i += 2
                continue
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
            out.append(ch)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":  # a leading "]" is a literal
                out.append("\\]")
                i += 1
            continue
        if ch == "[" and in_class:
            raise _NeedsRegexModule("nested character class")
        if ch == "]" and in_class:
            in_class = False
        out.append(ch)
        i += 1
    return "".join(out)


@functools.cache
def onig_to_re(pattern: str) -> Any:
    """A compiled pattern (``re``, or ``regex`` for properties without a measured table) matching as the
    Oniguruma ``pattern`` of a ``tokenizer.json`` does."""
    try:
        return re.compile(_translate(pattern))
    except _NeedsRegexModule as e:
        try:
            import regex
        except ImportError:
            raise ArgumentError(
                f"the tokenizer pattern {pattern!r} uses {e.args[0]}, which hubkit's pure-Python tokenizer can only "
                "run with the 'regex' package: pip install regex (or install 'tokenizers', which hubkit then uses)"
            ) from None
        return regex.compile(pattern)
    except re.error as e:
        raise ArgumentError(
            f"the tokenizer pattern {pattern!r} is not supported by Python's re ({e}); install 'tokenizers' "
            "(pip install 'hubkit[text]'), which hubkit then uses for this tokenizer"
        ) from None
