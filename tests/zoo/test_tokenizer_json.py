"""The pure-Python tokenizer.json pipeline against fixtures written by Hugging Face's tokenizers
(tests/data/tokenizer_json/make_fixtures.py), the transformers-style front (TokenizerFast), GPT-2's byte-level BPE
pieces, and the errors a user can hit. No tokenizers, no torch: every tokenizer here runs with backend="python"."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import textfuzz

from hubkit.errors import ArgumentError, ArgumentTypeError, CheckpointError
from hubkit.zoo.text import _charclass
from hubkit.zoo.text.bpe import BPE, byte_level_bpe, bytes_to_unicode, gpt2_pattern, read_merges
from hubkit.zoo.text.tokenizer_json import (
    Tokenizer,
    TokenizerFast,
    TokenizerFormatError,
    load_tokenizer,
    wordpiece_tokenizer,
)
from hubkit.zoo.text.tokenizers import BertTokenizer

DATA = Path(__file__).resolve().parents[1] / "data" / "tokenizer_json"
EXPECTED = json.loads((DATA / "expected.json").read_text(encoding="utf-8"))
COMPONENTS = json.loads((DATA / "components.json").read_text(encoding="utf-8"))
TEXTS = textfuzz.strings(80, seed=3)
COMPONENT_TEXTS = textfuzz.strings(28, seed=7) + ["a  b\tc", "Hello  World 123 4.5", "▁x y", "don't STOP"]


def _digest(texts: list[str]) -> str:
    return hashlib.sha256("\x00".join(texts).encode("utf-8", "surrogatepass")).hexdigest()


def _python(name: str) -> Tokenizer:
    return Tokenizer.from_file(DATA / f"{name}.json", backend="python")


def test_fixture_texts_are_the_ones_the_fixtures_were_made_from():
    assert EXPECTED["texts_sha256"] == _digest(TEXTS), "textfuzz changed: rerun make_fixtures.py"
    assert EXPECTED["component_texts_sha256"] == _digest(COMPONENT_TEXTS)


@pytest.mark.parametrize("name", ["wordpiece", "gpt2", "roberta"])
def test_python_pipeline_equals_tokenizers_on_the_fixture_strings(name):
    tok = _python(name)
    assert tok.backend == "python"
    for i, (text, want) in enumerate(zip(TEXTS, EXPECTED[name])):
        pair = TEXTS[-i - 1] if i % 3 == 0 else None
        got = tok.encode(text, pair)
        assert got.ids == want["ids"], (text, pair)
        assert got.type_ids == want["type_ids"]
        assert got.special_tokens_mask == want["special_tokens_mask"]
        assert got.attention_mask == [1] * len(got.ids)
        assert tok.decode(got.ids) == want["decoded"]
        assert tok.decode(got.ids, skip_special_tokens=False) == want.get("decoded_all", want["decoded"])


@pytest.mark.parametrize("index", range(len(COMPONENTS)))
def test_each_component_equals_tokenizers(index):
    entry = COMPONENTS[index]
    spec = {"model": {"type": "WordLevel", "vocab": {"a": 0}, "unk_token": "a"}, entry["kind"]: entry["spec"]}
    tok = Tokenizer(spec, backend="python")
    if entry["kind"] == "normalizer":
        for text, want in zip(COMPONENT_TEXTS, entry["outputs"]):
            assert tok.normalize(text) == want, (entry["spec"], text)
    elif entry["kind"] == "pre_tokenizer":
        for text, want in zip(COMPONENT_TEXTS, entry["outputs"]):
            assert tok.pre_tokenize(text) == want, (entry["spec"], text)
    else:
        from hubkit.zoo.text._components import build_decoder

        decode = build_decoder(entry["spec"])
        for tokens, want in entry["cases"]:
            assert "".join(decode(tokens)) == want, (entry["spec"], tokens)


def test_the_two_slow_fast_differences_follow_the_fast_tokenizer():
    tok = TokenizerFast.from_file(DATA / "wordpiece.json", backend="python")
    # Accents are stripped before lower-casing, one code point at a time: a final capital sigma becomes "σ".
    assert tok.tokenizer.normalize("ΟΔΥΣΣΕΥΣ") == "οδυσσευσ"
    # U+2B820.. are not CJK ideographs for the fast tokenizer: the pair stays one word, so one [UNK].
    assert tok.tokenize("\U0002b820\U0002b821") == ["[UNK]"]
    assert tok.tokenize("\U00020000\U00020001") == ["[UNK]", "[UNK]"]  # Extension B is split in both


def test_transformers_call_convention_padding_and_truncation():
    tok = TokenizerFast.from_file(DATA / "wordpiece.json", backend="python", model_max_length=8)
    assert tok.model_input_names == ["input_ids", "token_type_ids", "attention_mask"]
    single = tok("hello world")
    assert set(single) == {"input_ids", "token_type_ids", "attention_mask"}
    assert single["input_ids"][0] == tok.cls_token_id and single["input_ids"][-1] == tok.sep_token_id
    batch = tok(["hello", "the quick brown fox jumps over the lazy dog"], padding=True, truncation=True,
                return_tensors="np")  # fmt: skip
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert ids.shape == (2, 8) and ids.dtype == np.int64
    assert mask[0].tolist() == [1, 1, 1, 0, 0, 0, 0, 0] or mask[0].sum() < 8
    assert (ids[0][mask[0] == 0] == tok.pad_token_id).all() and ids[1, -1] == tok.sep_token_id
    fixed = tok(["a", "b c"], padding="max_length", max_length=6, return_tensors="np", return_special_tokens_mask=True)
    assert fixed["input_ids"].shape == (2, 6) and fixed["special_tokens_mask"][0, -1] == 1
    pair = tok("hello world", "the lazy dog", return_token_type_ids=True)
    assert 1 in pair["token_type_ids"] and pair["token_type_ids"][0] == 0
    left = TokenizerFast.from_file(DATA / "wordpiece.json", backend="python", padding_side="left")
    assert left(["a", "b c d"], padding=True)["attention_mask"][0][0] == 0
    assert tok.decode(tok.encode("hello, world!")) == "[CLS] hello, world! [SEP]"
    assert tok.decode(tok.encode("hello, world!"), skip_special_tokens=True) == "hello, world!"
    rows = np.array([tok.encode("a b"), tok.encode("b a")])
    assert tok.batch_decode(rows, skip_special_tokens=True) == ["a b", "b a"]


def test_call_errors_say_what_to_do():
    tok = TokenizerFast.from_file(DATA / "wordpiece.json", backend="python")
    with pytest.raises(ArgumentError, match="padding=True"):
        tok(["a", "b c d e"], return_tensors="np")
    with pytest.raises(ArgumentError, match="return_tensors"):
        tok("a", return_tensors="pt")
    with pytest.raises(ArgumentError, match="padding must be"):
        tok("a", padding="yes")
    with pytest.raises(ArgumentTypeError, match="list of strings"):
        tok([1, 2])
    with pytest.raises(ArgumentError, match="one entry per row"):
        tok(["a", "b"], ["c"])
    gpt = TokenizerFast.from_file(DATA / "gpt2.json", backend="python")
    assert gpt.pad_token is None and gpt.eos_token == "<|endoftext|>"
    with pytest.raises(ArgumentError, match="no padding token"):
        gpt(["a", "bb"], padding=True)
    with pytest.raises(ArgumentError, match="unknown argument"):
        TokenizerFast(gpt.tokenizer, bad_token="x")


def test_gpt2_style_tokenizer_has_no_token_types_and_roundtrips_text():
    tok = TokenizerFast.from_file(DATA / "gpt2.json", backend="python")
    assert tok.model_input_names == ["input_ids", "attention_mask"]
    for text in ["Hello world", " Hello world", "naïve 中文 👍🏽\n\tend", "<|endoftext|>x"]:
        ids = tok.encode(text)
        assert tok.decode(ids) == text  # byte-level BPE loses nothing
    assert tok.encode("<|endoftext|>") == [tok.eos_token_id]
    assert tok.decode(tok.encode("a<|endoftext|>b"), skip_special_tokens=True) == "ab"


def test_tokenizer_settings_from_the_file_and_enable_disable():
    spec = json.loads((DATA / "wordpiece.json").read_text(encoding="utf-8"))
    spec["truncation"] = {"max_length": 5, "strategy": "LongestFirst", "stride": 0, "direction": "Right"}
    spec["padding"] = {"strategy": {"Fixed": 7}, "direction": "Right", "pad_to_multiple_of": None, "pad_id": 0,
                       "pad_type_id": 0, "pad_token": "[PAD]"}  # fmt: skip
    tok = Tokenizer(spec, backend="python")
    assert tok.truncation["max_length"] == 5 and tok.padding["length"] == 7
    e = tok.encode("the quick brown fox jumps over the lazy dog")
    assert len(e) == 7 and e.attention_mask == [1] * 5 + [0, 0]
    tok.no_padding()
    tok.enable_truncation(4, strategy="longest_first", direction="left")
    assert len(tok.encode("a b c d e f g")) == 4
    tok.no_truncation()
    tok.enable_padding(pad_to_multiple_of=8, pad_id=0, pad_token="[PAD]")
    lengths = {len(e) for e in tok.encode_batch(["a", ("b c", "d e f g h i j k l")])}
    assert lengths == {16}
    with pytest.raises(ArgumentError, match="strategy"):
        tok.enable_truncation(4, strategy="middle")
    with pytest.raises(ArgumentError, match="only_second"):
        tok.enable_truncation(3, strategy="only_second")
        tok.encode("a b c d")


def test_bert_tokenizer_from_file_reads_a_tokenizer_json_as_the_fast_tokenizer():
    tok = BertTokenizer.from_file(DATA / "wordpiece.json", do_lower_case=True, model_max_length=16)
    assert isinstance(tok, TokenizerFast) and tok.model_max_length == 16
    cased = BertTokenizer.from_file(DATA / "wordpiece.json", do_lower_case=False)
    assert cased.tokenizer.normalize("HeLLo") == "HeLLo" and tok.tokenizer.normalize("HeLLo") == "hello"
    with pytest.raises(ArgumentError, match="never_split"):
        BertTokenizer.from_file(DATA / "wordpiece.json", never_split=["x"])


def test_wordpiece_tokenizer_from_a_vocabulary_and_load_tokenizer(tmp_path):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "##s", ",", "!"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (tmp_path / "tokenizer_config.json").write_text('{"model_max_length": 12, "do_lower_case": true}')
    tok = load_tokenizer(tmp_path, backend="python")
    assert isinstance(tok, TokenizerFast) and tok.model_max_length == 12
    assert tok("Hello, worlds!")["input_ids"] == [2, 5, 8, 6, 7, 9, 3]
    assert tok.mask_token_id == 4 and tok.decode([2, 5, 8, 6, 7, 3], skip_special_tokens=True) == "hello, worlds"
    with pytest.raises(ArgumentError, match="lacks the special tokens"):
        wordpiece_tokenizer(["a", "b"])
    with pytest.raises(CheckpointError, match="no tokenizer"):
        load_tokenizer(tmp_path / "nothing")


def test_bad_files_and_unsupported_components_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no tokenizer.json"):
        Tokenizer.from_file(tmp_path / "missing.json", backend="python")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(TokenizerFormatError, match="cannot read"):
        Tokenizer.from_file(tmp_path / "bad.json", backend="python")
    with pytest.raises(TokenizerFormatError, match="no 'model'"):
        Tokenizer({"normalizer": None}, backend="python")
    with pytest.raises(TokenizerFormatError, match="Unigram.*install 'tokenizers'"):
        Tokenizer({"model": {"type": "Unigram", "vocab": []}}, backend="python")
    with pytest.raises(TokenizerFormatError, match="Precompiled"):
        Tokenizer({"model": {"type": "WordLevel", "vocab": {"a": 0}}, "normalizer": {"type": "Precompiled"}},
                  backend="python")  # fmt: skip
    with pytest.raises(ArgumentError, match="dropout"):
        Tokenizer({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "dropout": 0.1}}, backend="python")
    with pytest.raises(ArgumentError, match="backend"):
        Tokenizer({"model": {"type": "WordLevel", "vocab": {}}}, backend="rust")


def test_bytes_to_unicode_is_gpt2s_table():
    table = bytes_to_unicode()
    assert len(table) == 256 and len(set(table.values())) == 256
    assert table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ" and table[ord("\t")] == "ĉ" and table[173] == "Ń"
    assert table[ord("A")] == "A" and table[0] == "\u0100"


def test_gpt2_pattern_splits_like_the_reference():
    split = gpt2_pattern().findall
    assert split("Hello world") == ["Hello", " world"]
    assert split("I'm  don't 123abc  \n end!!") == ["I", "'m", " ", " don", "'t", " 123", "abc", "  \n", " end", "!!"]
    assert split("naïve 中文١٢٣ x") == ["naïve", " 中文", "١٢٣", " x"]  # Arabic-Indic digits are \p{N}
    # \x1c-\x1f count as spaces for Python's \s but not for Oniguruma's: they stay punctuation here
    assert split("a\x1cb") == ["a", "\x1c", "b"]


def test_bpe_merges_lowest_rank_first_and_leftmost_on_ties(tmp_path):
    vocab = {c: i for i, c in enumerate(["a", "b", "c", "ab", "bc", "abc", "aa", "aaa"])}
    bpe = BPE(vocab, [("b", "c"), ("a", "b"), ("a", "bc"), ("a", "a")])
    assert [t for t, _ in bpe.tokenize("abc")] == ["abc"]  # "bc" (rank 0) before "ab" (rank 1)
    assert [t for t, _ in bpe.tokenize("aaa")] == ["aa", "a"]  # the leftmost pair of equal rank first
    assert bpe.tokenize("") == [] and [t for t, _ in bpe.tokenize("xa")] == ["a"]  # no unk: dropped
    fallback = BPE({"<0x78>": 0, "a": 1, "<unk>": 2}, [], byte_fallback=True, unk_token="<unk>")
    assert [t for t, _ in fallback.tokenize("xaé")] == ["<0x78>", "a", "<unk>"]
    (tmp_path / "merges.txt").write_text("#version: 0.2\nb c\na b\n\n", encoding="utf-8")
    assert read_merges(tmp_path / "merges.txt") == [("b", "c"), ("a", "b")]
    with pytest.raises(CheckpointError, match="not in the vocabulary"):
        BPE({"a": 0}, [("a", "a")])


def test_byte_level_bpe_from_vocab_and_merges_equals_the_tokenizer_json():
    spec = json.loads((DATA / "gpt2.json").read_text(encoding="utf-8"))
    model = spec["model"]
    built = byte_level_bpe(model["vocab"], model["merges"])
    reference = TokenizerFast.from_file(DATA / "gpt2.json", backend="python")
    for text in TEXTS[:40]:
        assert built.encode(text) == reference.encode(text)


def test_character_tables_are_the_measured_ones():
    assert "\u3000" in _charclass.char_set("WHITESPACE") and "\x1c" not in _charclass.char_set("RE_SPACE")
    assert "\u0890" not in _charclass.char_set("BERT_CONTROL")  # a Unicode 14 format char the crate does not know
    assert "\u07fd" not in _charclass.char_set("BERT_MARKS")  # a Unicode 11 mark the crate does not know
    assert _charclass.lowercase("ΣΑΣ İ") == "σασ i\u0307"
    assert _charclass.lowercase("\U00010d50") == "\U00010d70"  # Garay (Unicode 16) lower-cases in Rust's std
    assert _charclass.normalize_form("NFD", "é\U00011938") == "e\u0301\U00011938"
    assert _charclass.onig_to_re(r"\p{L}+").findall("ab1 cd") == ["ab", "cd"]
    with pytest.raises(ArgumentError, match="regex"):
        import sys

        saved = sys.modules.get("regex")
        sys.modules["regex"] = None  # type: ignore[assignment]
        try:
            _charclass.onig_to_re.__wrapped__(r"\p{Lu}")
        finally:
            if saved is not None:
                sys.modules["regex"] = saved
            else:
                del sys.modules["regex"]


def test_a_folder_named_tokenizers_on_sys_path_is_not_taken_for_the_package(tmp_path, monkeypatch):
    # pytest puts test folders on sys.path; a data folder called "tokenizers" there imported as an empty
    # namespace package, and every tokenizer then failed with "no attribute 'Tokenizer'" (CI without the extra)
    import sys
    import types

    from hubkit.zoo.text.tokenizer_json import tokenizers_available

    shadow = types.ModuleType("tokenizers")
    shadow.__path__ = [str(tmp_path / "tokenizers")]
    monkeypatch.setitem(sys.modules, "tokenizers", shadow)
    assert not tokenizers_available()
    tok = Tokenizer.from_file(DATA / "wordpiece.json")  # backend "auto": the pure-Python pipeline
    assert tok.encode("hello world").ids == _python("wordpiece").encode("hello world").ids
