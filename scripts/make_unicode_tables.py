"""Regenerate zoo/text/_unicode_tables.py: the character classes of the Rust ``tokenizers`` library, measured.

hubkit's pure-Python ``tokenizer.json`` pipeline must split and normalize text exactly as the ``tokenizers``
package does. The Rust crates behind it carry their own Unicode tables, each of a different Unicode version
(``unicode_categories`` for BERT's control/punctuation/mark tests, Rust's std for ``char::to_lowercase`` and
``char::is_whitespace``, Oniguruma for ``\\p{L}``/``\\p{N}``/``\\s`` in the GPT-2 pattern), and none of them matches
the ``unicodedata`` of any one Python version. So the classes are measured: every code point is pushed through
the installed ``tokenizers`` and the answers are written down as code-point ranges. The output is committed;
run this again only to refresh it against a newer ``tokenizers``:

    python scripts/make_unicode_tables.py            # rewrites zoo/text/_unicode_tables.py
    python scripts/make_unicode_tables.py --check    # exits 1 if the file differs

Needs ``tokenizers`` (the ``text`` extra); takes about a minute.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import unicodedata
from pathlib import Path

TARGET = Path(__file__).resolve().parent.parent / "zoo" / "text" / "_unicode_tables.py"
CODE_POINTS = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]  # a str cannot hold lone surrogates


def _ranges(points: set[int]) -> str:
    """``"0009-000d 0020 ..."``: sorted code points as hex ranges, wrapped for the source file."""
    out: list[list[int]] = []
    for c in sorted(points):
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    words = [f"{a:04x}" if a == b else f"{a:04x}-{b:04x}" for a, b in out]
    return _wrap(words)


def _wrap(words: list[str]) -> str:
    lines, line = [], ""
    for w in words:
        if len(line) + len(w) + 1 > 100:
            lines.append(line)
            line = ""
        line += (" " if line else "") + w
    lines.append(line)
    return "(\n" + "\n".join(f'    "{ln} "' for ln in lines) + "\n)"


def _mapping(table: dict[int, str]) -> str:
    """Single-code-point mappings as runs ``"start-end/step:delta"`` (every ``step``-th code point in the run
    maps to itself plus ``delta``); longer results as ``"cp=hex.hex"``."""
    singles = sorted((c, ord(v)) for c, v in table.items() if len(v) == 1)
    runs: list[list[int]] = []  # [start, end, step, delta]
    for c, target in singles:
        delta = target - c
        if runs:
            start, end, step, d = runs[-1]
            if d == delta and (start == end and c - end in (1, 2) or start != end and c - end == step):
                runs[-1] = [start, c, c - end if start == end else step, d]
                continue
        runs.append([c, c, 1, delta])
    words = [f"{s:04x}:{d:+d}" if s == e else f"{s:04x}-{e:04x}/{st}:{d:+d}" for s, e, st, d in runs]
    words += [f"{c:04x}=" + ".".join(f"{ord(ch):04x}" for ch in v) for c, v in sorted(table.items()) if len(v) != 1]
    return _wrap(words)


def _per_char(normalizer, chars: list[str], sep: str) -> list[str]:
    """``normalizer`` applied to each character alone, in one call: characters joined by ``sep``."""
    out = normalizer.normalize_str(sep.join(chars)).split(sep)
    if len(out) != len(chars):
        raise SystemExit(f"separator {sep!r} was changed by {normalizer}; pick another")
    return out


def _matched(pattern: str) -> set[int]:
    """Code points the Oniguruma regex ``pattern`` (one character wide) matches, via a ``Split`` pre-tokenizer."""
    from tokenizers import Regex, pre_tokenizers

    text = "".join(map(chr, CODE_POINTS))
    covered = bytearray(len(CODE_POINTS))
    for _, (a, b) in pre_tokenizers.Split(Regex(pattern), "removed").pre_tokenize_str(text):
        covered[a:b] = b"\x01" * (b - a)
    return {CODE_POINTS[i] for i, hit in enumerate(covered) if not hit}


def build() -> str:
    import tokenizers
    from tokenizers import normalizers, pre_tokenizers

    chars = [chr(c) for c in CODE_POINTS]
    no_bar = [c for c in chars if c != "|"]
    no_nul = [c for c in chars if c != "\x00"]

    def bert(**kw):
        base = {"clean_text": False, "handle_chinese_chars": False, "strip_accents": False, "lowercase": False}
        return normalizers.BertNormalizer(**{**base, **kw})

    cleaned = dict(zip(no_bar, _per_char(bert(clean_text=True), no_bar, "|")))
    other = {ord(c) for c, r in cleaned.items() if r == "" and c not in "\x00\ufffd"}
    spaces = {ord(c) for c, r in cleaned.items() if r == " " and c != " "} | {0x20}

    # BertPreTokenizer: "x<c>x" splits into x, x (whitespace) or x, c, x (punctuation).
    pre = pre_tokenizers.BertPreTokenizer().pre_tokenize_str(" ".join("x" + c + "x" for c in chars))
    words = [w for w, _ in pre]
    punct, ws_pre, i = set(), set(), 0
    for c in chars:
        if words[i] == "x" and i + 1 < len(words) and words[i + 1] == "x":
            ws_pre.add(ord(c))
            i += 2
        elif words[i] == "x" and words[i + 1] == c and words[i + 2] == "x":
            punct.add(ord(c))
            i += 3
        else:
            i += 1
    # clean_text tests control before whitespace, so U+000B, U+000C and U+0085 are dropped, not spaced.
    if ws_pre - other != spaces:
        raise SystemExit("BertPreTokenizer and BertNormalizer disagree on whitespace; the tables need two sets")

    chinese = {ord(c) for c, r in zip(no_bar, _per_char(bert(handle_chinese_chars=True), no_bar, "|"))
               if r == f" {c} "}  # fmt: skip
    nfd = dict(zip(no_nul, _per_char(normalizers.NFD(), no_nul, "\x00")), **{"\x00": "\x00"})
    stripped = dict(zip(no_bar, _per_char(bert(strip_accents=True), no_bar, "|")))
    marks = {ord(c) for c in no_bar if nfd[c] == c and stripped[c] == ""}
    for c in no_bar:  # the filter really is "NFD, then drop these"
        if stripped[c] != "".join(ch for ch in nfd[c] if ord(ch) not in marks):
            raise SystemExit(f"BertNormalizer accent stripping of U+{ord(c):04X} is not NFD + a mark filter")
    strip_accents = {ord(c) for c, r in zip(no_bar, _per_char(normalizers.StripAccents(), no_bar, "|")) if r == ""}
    lower = {ord(c): r for c, r in zip(no_bar, _per_char(normalizers.Lowercase(), no_bar, "|")) if r != c}

    # Normalization forms. The crate's tables are older than any supported Python's, so the Python path uses
    # unicodedata except on what the crate does not know: code points it does not decompose (outside
    # NFD_CHANGES / NFKD_CHANGES) and marks it takes for starters (outside COMBINING). Those are left alone and
    # act as boundaries. Measured: which code points the crate decomposes, and which it reorders as marks.
    decomposes = {}
    for form in ("NFD", "NFKD"):
        got = _per_char(getattr(normalizers, form)(), no_nul, "\x00")
        decomposes[form] = {ord(c) for c, r in zip(no_nul, got) if r != c}
    stable = [c for c in no_nul if ord(c) not in decomposes["NFD"]]
    # A mark of class k reorders "c + U+0334 (class 1)" when k > 1 and "U+0345 (class 240) + c" when 0 < k < 240.
    after = _per_char(normalizers.NFD(), [c + "\u0334" for c in stable], "\x00")
    before = _per_char(normalizers.NFD(), ["\u0345" + c for c in stable], "\x00")
    combining = {ord(c) for c, a, b in zip(stable, after, before) if a != c + "\u0334" or b != "\u0345" + c}
    for form in ("NFC", "NFD", "NFKC", "NFKD"):
        changes = decomposes["NFKD" if "K" in form else "NFD"]
        got = _per_char(getattr(normalizers, form)(), no_nul, "\x00")
        for c, r in zip(no_nul, got):
            decomposition = "NFKD" if "K" in form else "NFD"
            known = ord(c) in changes or (unicodedata.normalize(decomposition, c) == c and (
                ord(c) in combining or not unicodedata.combining(c)))  # fmt: skip
            if known and r != unicodedata.normalize(form, c):
                raise SystemExit(f"{form}: the crate maps U+{ord(c):04X} differently from this Python")

    # Digits isolates Rust's char::is_numeric; in "x"-separated text only those stand alone as one character.
    numeric = {ord(p) for p, _ in pre_tokenizers.Digits(individual_digits=True).pre_tokenize_str(
        "x" + "x".join(c for c in chars if c != "x") + "x") if len(p) == 1 and p != "x"}  # fmt: skip
    punctuation = pre_tokenizers.Punctuation().pre_tokenize_str("x" + "x".join(c for c in chars if c != "x") + "x")
    if {ord(p) for p, _ in punctuation if len(p) == 1 and p != "x"} != punct:
        raise SystemExit("the Punctuation pre-tokenizer and BertPreTokenizer disagree on punctuation")

    # The Whitespace pre-tokenizer (\w+|[^\w\s]+) runs on the regex crate, whose \w differs from Oniguruma's:
    # "x<c>x" stays one word exactly when c is a word character there, and splits in two around a space.
    pieces = [w for w, _ in pre_tokenizers.Whitespace().pre_tokenize_str(" ".join("x" + c + "x" for c in chars))]
    ws_word, ws_space, i = set(), set(), 0
    for c in chars:
        if pieces[i] == "x" + c + "x":
            ws_word.add(ord(c))
            i += 1
        elif pieces[i] == "x" and pieces[i + 1] == "x":
            ws_space.add(ord(c))
            i += 2
        else:
            i += 3 if pieces[i + 2] == "x" else 2
    letters, numbers, space_re = _matched(r"\p{L}"), _matched(r"\p{N}"), _matched(r"\s")
    digits, word = _matched(r"\d"), _matched(r"\w")

    sections = [
        ("WHITESPACE", "Rust's char::is_whitespace (BertPreTokenizer splits; BertNormalizer spaces those not in "
         "BERT_CONTROL)",
         _ranges(ws_pre)),
        ("BERT_CONTROL", "BertNormalizer(clean_text) drops these (Cc/Cf/Co/Cs of the unicode_categories crate, "
         "minus tab, newline, carriage return)", _ranges(other)),
        ("BERT_PUNCTUATION", "BertPreTokenizer isolates these (ASCII punctuation and unicode_categories' P*)",
         _ranges(punct)),
        ("NUMERIC", "Rust's char::is_numeric (the Digits pre-tokenizer)", _ranges(numeric)),
        ("BERT_CHINESE", "BertNormalizer(handle_chinese_chars) puts spaces around these", _ranges(chinese)),
        ("BERT_MARKS", "BertNormalizer(strip_accents) drops these after NFD", _ranges(marks)),
        ("STRIP_ACCENTS", "the StripAccents normalizer drops these", _ranges(strip_accents)),
        ("LOWERCASE", "Rust's char::to_lowercase, one code point at a time (Lowercase, BertNormalizer)",
         _mapping(lower)),
        ("NFD_CHANGES", "the crate's NFD changes these (canonical decompositions, Hangul syllables)",
         _ranges(decomposes["NFD"])),
        ("NFKD_CHANGES", "the crate's NFKD changes these", _ranges(decomposes["NFKD"])),
        ("COMBINING", "the crate's non-starters (canonical combining class > 0)", _ranges(combining)),
        ("RE_LETTER", "Oniguruma's \\p{L}", _ranges(letters)),
        ("RE_NUMBER", "Oniguruma's \\p{N}", _ranges(numbers)),
        ("RE_SPACE", "Oniguruma's \\s", _ranges(space_re)),
        ("RE_DIGIT", "Oniguruma's \\d", _ranges(digits)),
        ("RE_WORD", "Oniguruma's \\w", _ranges(word)),
        ("WS_WORD", "the regex crate's \\w (the Whitespace pre-tokenizer, added tokens' single_word)",
         _ranges(ws_word)),
        ("WS_SPACE", "the regex crate's \\s (the Whitespace pre-tokenizer, added tokens' lstrip/rstrip)",
         _ranges(ws_space)),
    ]
    about = (
        f"Generated by scripts/make_unicode_tables.py from tokenizers {tokenizers.__version__} (Python "
        f"{sys.version_info.major}.{sys.version_info.minor}, unicodedata {unicodedata.unidata_version}); do not "
        "edit. Sets are space-separated hex code points and ranges; LOWERCASE holds runs ``start-end/step:delta`` "
        "and multi-code-point results ``cp=hex.hex``."
    )
    head = (
        '"""Character classes of the Rust ``tokenizers`` library, measured code point by code point.\n\n'
        + "\n".join(textwrap.wrap(about, 116)) + '\n"""\n\n'
        f'TOKENIZERS_VERSION = "{tokenizers.__version__}"\n'
        f'UNIDATA_VERSION = "{unicodedata.unidata_version}"\n'
    )
    body = "".join("\n" + "\n".join(textwrap.wrap(doc, 116, initial_indent="# ", subsequent_indent="# "))
                   + f"\n{name} = {value}\n" for name, doc, value in sections)  # fmt: skip
    return head + body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    text = build()
    if args.check:
        same = TARGET.is_file() and TARGET.read_text(encoding="utf-8") == text
        print("up to date" if same else f"{TARGET} differs from what tokenizers reports")
        return 0 if same else 1
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET} ({len(text):,} characters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
