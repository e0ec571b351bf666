"""Random Unicode text for tokenizer fuzzing: every plane, combining marks, right-to-left scripts, controls,
format and unassigned characters, emoji sequences, special tokens and very long words.

``strings(n, seed)`` is deterministic; ``EDGE`` lists strings every tokenizer test must include (the two known
differences between BERT's slow and fast tokenizers among them).
"""

from __future__ import annotations

import random

EDGE = [
    "ΟΔΥΣΣΕΥΣ",  # slow BERT: final "##ς"; fast: "##σ" (accents stripped before lower-casing)
    "\U0002b820\U0002b821",  # CJK ideographs the slow tokenizer splits (2 [UNK]) and the fast one does not (1)
    "",
    " ",
    "Hello, world!",
    "The [MASK] sat on the mat.",
    "x[MASK]y [CLS][SEP] <mask> <s></s> <|endoftext|>",
    "İstanbul ǅemal ΣΑΣ. straße",
    "cafe\u0301 nai\u0308ve e\u0301\u0300\u0302 \u0301leading",
    "a" * 100,
    "a" * 101,
    "x" * 300,
    "line1\nline2\r\nline3\t\x0b\x0c\x85\u2028 end",
    "null\x00char \ufffd \ufeffBOM zero\u200dwidth soft\u00adhyphen",
    "rtl \u200f\u202eمرحبا بالعالم\u202c שלום עולם",
    "👍🏽👨‍👩‍👧‍👦 🇫🇷 ❤️ #️⃣",
    "\U000e0001\U000e0041 \U0010fffd \U000f0000 \ue000",
    "\u0378\u0379 \U0001fffe \U00031350 \U0002ebf0",
    "  leading and trailing  ",
    "don't I'm we're they've he'd you'll it's",
    "3.14159 1,000,000 ①②③ ½ ²",
]

# (low, high) code-point blocks to draw from, with a weight each.
_BLOCKS = [
    ((0x20, 0x7E), 30),  # ASCII
    ((0x00, 0x1F), 2),  # C0 controls
    ((0x7F, 0x9F), 1),  # DEL, C1 controls
    ((0xA0, 0x24F), 6),  # Latin-1, Latin extended
    ((0x300, 0x36F), 5),  # combining diacritics
    ((0x370, 0x3FF), 3),  # Greek
    ((0x400, 0x4FF), 3),  # Cyrillic
    ((0x590, 0x5FF), 2),  # Hebrew
    ((0x600, 0x6FF), 3),  # Arabic
    ((0x700, 0x8FF), 1),  # Syriac, Thaana, NKo, Samaritan, Arabic extended
    ((0x900, 0xDFF), 3),  # Indic scripts
    ((0xE00, 0xEFF), 1),  # Thai, Lao
    ((0x1100, 0x11FF), 1),  # Hangul jamo
    ((0x1AB0, 0x1AFF), 1),  # combining diacritics extended
    ((0x1DC0, 0x1DFF), 1),  # combining supplement
    ((0x2000, 0x206F), 3),  # general punctuation, spaces, format characters
    ((0x20A0, 0x20FF), 1),  # currency, combining marks for symbols
    ((0x2100, 0x27FF), 2),  # letterlike, arrows, math, dingbats
    ((0x3000, 0x30FF), 2),  # CJK punctuation, kana
    ((0x3400, 0x4DBF), 1),  # CJK extension A
    ((0x4E00, 0x9FFF), 4),  # CJK unified
    ((0xAC00, 0xD7A3), 2),  # Hangul syllables
    ((0xE000, 0xF8FF), 1),  # private use
    ((0xF900, 0xFAFF), 1),  # CJK compatibility
    ((0xFB00, 0xFDFF), 1),  # presentation forms
    ((0xFE00, 0xFE0F), 1),  # variation selectors
    ((0xFF00, 0xFFEF), 2),  # fullwidth forms
    ((0xFFF0, 0xFFFF), 1),  # specials, noncharacters
    ((0x10000, 0x1FFFF), 3),  # plane 1: historic scripts, music, math, emoji
    ((0x1F300, 0x1FAFF), 3),  # emoji
    ((0x20000, 0x2FFFF), 3),  # plane 2: CJK extensions B-F
    ((0x2B700, 0x2B95F), 1),  # around the slow/fast CJK boundary
    ((0x30000, 0x3FFFF), 1),  # plane 3
    ((0x40000, 0xDFFFF), 1),  # planes 4-13, unassigned
    ((0xE0000, 0xE01EF), 1),  # tags, variation selectors supplement
    ((0xF0000, 0x10FFFF), 1),  # private use planes
]
_LOWS = [b[0] for b, _ in _BLOCKS]
_WEIGHTS = [w for _, w in _BLOCKS]
_WORDS = ["the", "Quick", "naïve", "don't", "3.14", "unaffable", "Straße", "ΟΔΥΣΣΕΥΣ", "中文", "👍", "hello",
          "world", "I'm", "e-mail", "São", "Ελληνικά", "мир", "שלום", "مرحبا", "ひらがな", "한국어"]  # fmt: skip
_SPECIALS = ["[MASK]", "[CLS]", "[SEP]", "[PAD]", "[UNK]", "<mask>", "<s>", "</s>", "<pad>", "<|endoftext|>"]
_SPACES = [" ", " ", " ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2009", "\u200b", "\x0b", "\x85"]


def _char(rng: random.Random) -> str:
    (low, high), _ = rng.choices(_BLOCKS, weights=_WEIGHTS)[0]
    while True:
        cp = rng.randint(low, high)
        if not 0xD800 <= cp <= 0xDFFF:
            return chr(cp)


def _word(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.35:
        return rng.choice(_WORDS) if rng.random() < 0.5 else rng.choice(_WORDS).upper()
    if kind < 0.45:
        return rng.choice(_SPECIALS)
    if kind < 0.48:  # a very long word
        return "".join(rng.choice("abcdefghij") for _ in range(rng.randint(90, 400)))
    if kind < 0.52:  # a base letter with a pile of combining marks
        return rng.choice("aeiouAEIOUnNcC") + "".join(chr(rng.randint(0x300, 0x36F)) for _ in range(rng.randint(1, 6)))
    if kind < 0.55:  # digits
        return "".join(rng.choice("0123456789.,") for _ in range(rng.randint(1, 20)))
    return "".join(_char(rng) for _ in range(rng.randint(1, 8)))


def strings(n: int, seed: int = 0) -> list[str]:
    """``n`` random strings (``EDGE`` first), reproducible from ``seed``."""
    rng = random.Random(seed)
    out = list(EDGE[:n])
    while len(out) < n:
        if rng.random() < 0.15:  # raw random code points, no word structure
            out.append("".join(_char(rng) for _ in range(rng.randint(1, 30))))
            continue
        parts = []
        for _ in range(rng.randint(1, 8)):
            parts.append(_word(rng))
            parts.append(rng.choice(_SPACES) if rng.random() < 0.8 else "")
        out.append("".join(parts))
    return out
