"""hubkit.zoo.text.tokenizers.BertTokenizer on a small generated vocabulary: every rule of BERT's basic and
WordPiece tokenizers, encoding with pairs, truncation and padding, decoding, and the errors users can cause.
The same behaviours are checked against transformers on the real all-MiniLM-L6-v2 vocabulary in
test_tokenizers_parity.py."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubkit.errors import ArgumentError, ArgumentTypeError, CheckpointError, HubkitError
from hubkit.zoo.text.tokenizers import BertTokenizer, VocabFileNotFoundError

VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",                               # 0-4
    "the", "quick", "brown", "fox", "un", "##aff", "##able", "hello", "world",  # 5-13
    "cafe", "naive", "facade", "café", "Hello", "Café", ",", ".", "!", "?",     # 14-23
    "$", "`", "'", "s", "t", "don", "n", "5", "3", "14", "中", "国", "x", "##x",  # 24-37
    "hel", "##lo", "##l", "¿", "«", "»", "—", "a", "##b", "##c", "[", "]",      # 38-49
    "-", "foo", "##bar", "ο", "##δ", "##ος", "i", "m", "re", "ve", "ll",        # 50-60
]
ID = {t: i for i, t in enumerate(VOCAB)}


@pytest.fixture(scope="module")
def vocab_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tok(vocab_file):
    return BertTokenizer.from_file(vocab_file)


# ---------------------------------------------------------------- vocabulary


def test_from_file_uses_line_index_as_id(tok):
    assert tok.vocab_size == len(VOCAB) == len(tok)
    assert tok.get_vocab() == ID
    assert tok.convert_tokens_to_ids(["hello", "##aff", "nope"]) == [12, 10, 1]
    assert tok.convert_ids_to_tokens([12, 10, 9999]) == ["hello", "##aff", "[UNK]"]
    assert (tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id, tok.mask_token_id) == (
        0, 1, 2, 3, 4)


def test_from_file_strips_only_the_newline(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes(b"[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n a \n\nb\r\n")
    t = BertTokenizer.from_file(path)
    assert t.convert_ids_to_tokens([5, 6, 7]) == [" a ", "", "b"]


def test_get_vocab_is_a_copy(tok):
    tok.get_vocab()["hello"] = 0
    assert tok.convert_tokens_to_ids("hello") == 12


def test_vocab_as_mapping_and_duplicate_tokens_keep_the_last_id():
    t = BertTokenizer({"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, "hi": 7})
    assert t.tokenize("Hi!") == ["hi", "[UNK]"] and t.encode("hi") == [2, 7, 3]
    dup = BertTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hi", "hi"])
    assert dup.convert_tokens_to_ids("hi") == 6
    assert dup.convert_ids_to_tokens(5) == "[UNK]"  # transformers' id -> token map loses the earlier id
    assert dup.vocab_size == 6


# ---------------------------------------------------------------- basic tokenizer


def test_lowercases_and_strips_accents(tok):
    assert tok.tokenize("Café NAÏVE Façade") == ["cafe", "naive", "facade"]
    assert tok.tokenize("CAFE\u0301") == ["cafe"]  # decomposed accent


def test_strip_accents_false_keeps_accents_but_lowercases(vocab_file):
    t = BertTokenizer.from_file(vocab_file, strip_accents=False)
    assert t.tokenize("CAFÉ Cafe\u0301") == ["café", "café"]  # NFC composes the second one


def test_do_lower_case_false_keeps_case_and_accents(vocab_file):
    t = BertTokenizer.from_file(vocab_file, do_lower_case=False)
    assert t.tokenize("Hello hello HELLO Café") == ["Hello", "hello", "[UNK]", "Café"]
    stripped = BertTokenizer.from_file(vocab_file, do_lower_case=False, strip_accents=True)
    assert stripped.tokenize("Café café") == ["[UNK]", "cafe"]  # "Cafe" is not in the vocabulary


def test_final_sigma_follows_python_lower(tok):
    # Slow BERT lower-cases before stripping accents, so a word-final capital sigma becomes "ς".
    assert tok.tokenize("ΟΔΟΣ") == ["ο", "##δ", "##ος"]


def test_splits_unicode_punctuation_and_ascii_symbols(tok):
    assert tok.tokenize("hello,world!?") == ["hello", ",", "world", "!", "?"]
    assert tok.tokenize("$5 `x`") == ["$", "5", "`", "x", "`"]
    assert tok.tokenize("¿«hello»—x") == ["¿", "«", "hello", "»", "—", "x"]
    assert tok.tokenize("3.14") == ["3", ".", "14"]
    assert tok.tokenize("don't") == ["don", "'", "t"]


def test_non_punctuation_symbols_stay_in_the_word(tok):
    # "€" is a currency symbol (Sc), not punctuation and not ASCII: "5€" is one word, unknown.
    assert tok.tokenize("5€ 5") == ["[UNK]", "5"]


def test_control_characters_are_dropped(tok):
    assert tok.tokenize("hel\x00lo wor\u200bld \x07the\ufffd") == ["hello", "world", "the"]


def test_tab_newline_and_unicode_spaces_separate_words(tok):
    assert tok.tokenize("hello\tworld\nthe\r\nfox\u00a0brown\u3000quick") == [
        "hello", "world", "the", "fox", "brown", "quick"]
    assert tok.tokenize("hello\u2028world") == ["hello", "world"]  # line separator: str.split() splits on it


def test_empty_and_whitespace_only_text_give_no_tokens(tok):
    assert tok.tokenize("") == []
    assert tok.tokenize(" \t\n\u3000 ") == []
    assert tok.tokenize("\u0301") == []  # a lone accent is stripped to nothing


def test_cjk_ideographs_are_split_into_single_words(tok, vocab_file):
    assert tok.tokenize("中国hello") == ["中", "国", "hello"]
    off = BertTokenizer.from_file(vocab_file, tokenize_chinese_chars=False)
    assert off.tokenize("中国 中") == ["[UNK]", "中"]


def test_never_split_words_are_kept_verbatim(vocab_file):
    t = BertTokenizer.from_file(vocab_file, never_split=["Foo-Bar", "hello-world"])
    assert t.tokenize("Foo-Bar foo-foobar") == ["Foo-Bar", "foo", "-", "foo", "##bar"]
    assert t.tokenize("HELLO-WORLD") == ["hello-world"]  # matched again after lower-casing
    assert t.convert_tokens_to_ids(["Foo-Bar"]) == [t.unk_token_id]


# ---------------------------------------------------------------- WordPiece


def test_wordpiece_greedy_longest_match_first(tok):
    assert tok.tokenize("unaffable") == ["un", "##aff", "##able"]
    assert tok.tokenize("hello") == ["hello"]  # the whole word beats "hel" + "##lo"
    assert tok.tokenize("helllo") == ["hel", "##l", "##lo"]
    assert tok.tokenize("abcb") == ["a", "##b", "##c", "##b"]


def test_word_with_an_unmatched_piece_is_one_unk(tok):
    assert tok.tokenize("unaffablez the") == ["[UNK]", "the"]
    assert tok.tokenize("zebra") == ["[UNK]"]


def test_words_longer_than_max_input_chars_per_word_are_unk(tok, vocab_file):
    assert tok.tokenize("x" * 100) == ["x"] + ["##x"] * 99
    assert tok.tokenize("x" * 101) == ["[UNK]"]
    short = BertTokenizer.from_file(vocab_file, max_input_chars_per_word=3)
    assert short.tokenize("xxx xxxx") == ["x", "##x", "##x", "[UNK]"]


def test_repeated_words_tokenize_identically_with_the_cache(tok):
    first = tok.tokenize("unaffable " * 3)
    assert first == ["un", "##aff", "##able"] * 3
    assert tok.tokenize("unaffable " * 3) == first


# ---------------------------------------------------------------- special tokens


def test_special_tokens_in_text_are_kept_whole(tok):
    assert tok.tokenize("Hello [MASK] world[SEP]x") == ["hello", "[MASK]", "world", "[SEP]", "x"]
    assert tok.tokenize("[CLS][PAD][UNK]") == ["[CLS]", "[PAD]", "[UNK]"]
    assert tok.encode("[MASK]") == [2, 4, 3]


def test_special_tokens_match_case_sensitively(tok):
    assert tok.tokenize("[mask]") == ["[", "[UNK]", "]"]


def test_special_token_reappearing_after_control_chars_are_dropped_stays_whole(tok):
    # transformers: the raw text does not match "[CLS]", the cleaned word does, and is left alone.
    assert tok.tokenize("[CL\x00S]") == ["[CLS]"]


# ---------------------------------------------------------------- encode, pairs, truncation


def test_encode_adds_cls_and_sep(tok):
    assert tok.encode("hello world") == [2, 12, 13, 3]
    assert tok.encode("hello", "world") == [2, 12, 3, 13, 3]
    assert tok.encode("hello", "world", add_special_tokens=False) == [12, 13]
    assert tok.encode("") == [2, 3]


def test_pair_token_type_ids_mark_the_second_segment(tok):
    out = tok("hello world", "the fox")
    assert out["input_ids"] == [2, 12, 13, 3, 5, 8, 3]
    assert out["token_type_ids"] == [0, 0, 0, 0, 1, 1, 1]
    assert out["attention_mask"] == [1] * 7
    plain = tok("hello", "fox", add_special_tokens=False)
    assert plain["input_ids"] == [12, 8] and plain["token_type_ids"] == [0, 0]


def test_longest_first_removes_from_the_longer_segment(tok):
    a, b = "a b c d e f", "x x x x x x x x x x"  # 6 and 10 tokens
    out = tok(a, b, truncation=True, max_length=8)
    ids = out["input_ids"]
    assert len(ids) == 8
    # 11 to remove: 4 from the longer one to equalise, then 7 shared, the odd one from the second.
    assert tok.decode(ids) == "[CLS] a [UNK] [UNK] [SEP] x x [SEP]"
    assert out["token_type_ids"] == [0, 0, 0, 0, 0, 1, 1, 1]
    equal = tok("x x x", "the the the", truncation="longest_first", max_length=8)
    assert tok.decode(equal["input_ids"]) == "[CLS] x x x [SEP] the the [SEP]"  # ties: the second loses
    odd = tok("x x x", "the the the", truncation="longest_first", max_length=6)
    assert tok.decode(odd["input_ids"]) == "[CLS] x x [SEP] the [SEP]"  # 3 to remove: 2 from the second


def test_only_first_and_only_second_truncate_one_segment(tok):
    first = tok("x x x x x", "the the", truncation="only_first", max_length=7)
    assert tok.decode(first["input_ids"]) == "[CLS] x x [SEP] the the [SEP]"
    second = tok("x x", "the the the the the", truncation="only_second", max_length=7)
    assert tok.decode(second["input_ids"]) == "[CLS] x x [SEP] the the [SEP]"
    # only_second has nothing to cut in a single sequence (transformers leaves it long)
    assert len(tok("x x x x x", truncation="only_second", max_length=4)["input_ids"]) == 7


def test_single_sequence_truncation_keeps_the_special_tokens(tok):
    assert tok.encode("hello world the fox", max_length=4, truncation=True) == [2, 12, 13, 3]
    assert tok.encode("hello world the fox", max_length=1, truncation=True) == [2, 3]


def test_max_length_alone_turns_truncation_on(tok):
    assert tok.encode("hello world the fox", max_length=3) == [2, 12, 3]
    assert tok("hello world the fox", max_length=3)["input_ids"] == [2, 12, 3]
    assert tok.encode("hello world the fox", max_length=3, truncation=False) == [2, 12, 13, 5, 8, 3]


def test_truncation_without_max_length_uses_model_max_length(vocab_file):
    t = BertTokenizer.from_file(vocab_file, model_max_length=4)
    assert t("x x x x x", truncation=True)["input_ids"] == [2, 36, 36, 3]
    unlimited = BertTokenizer.from_file(vocab_file, model_max_length=None)
    assert len(unlimited("x x x x x", truncation=True)["input_ids"]) == 7


# ---------------------------------------------------------------- batches, padding, arrays


def test_padding_longest_pads_on_the_right(tok):
    out = tok(["hello world the", "fox"], padding=True)
    assert out["input_ids"] == [[2, 12, 13, 5, 3], [2, 8, 3, 0, 0]]
    assert out["attention_mask"] == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    assert out["token_type_ids"] == [[0] * 5, [0] * 5]
    assert tok(["hello world the", "fox"], padding="longest") == out


def test_padding_pair_batch_sets_type_ids_zero_on_padding(tok):
    out = tok(["hello", "the fox"], ["world", "x x x"], padding=True)
    assert out["token_type_ids"] == [[0, 0, 0, 1, 1, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1]]
    assert out["attention_mask"][0] == [1, 1, 1, 1, 1, 0, 0, 0]


def test_padding_max_length_pads_to_max_length_and_never_truncates_alone(tok, vocab_file):
    out = tok(["hello", "x x x x x x"], padding="max_length", max_length=5)
    assert out["input_ids"] == [[2, 12, 3, 0, 0], [2] + [36] * 6 + [3]]
    both = tok(["hello", "x x x x x x"], padding="max_length", truncation=True, max_length=5)
    assert both["input_ids"] == [[2, 12, 3, 0, 0], [2, 36, 36, 36, 3]]
    t = BertTokenizer.from_file(vocab_file, model_max_length=6)
    assert t("hello", padding="max_length")["input_ids"] == [2, 12, 3, 0, 0, 0]


def test_no_padding_leaves_rows_ragged(tok):
    out = tok(["hello world", "fox"])
    assert out["input_ids"] == [[2, 12, 13, 3], [2, 8, 3]]
    assert out["attention_mask"] == [[1, 1, 1, 1], [1, 1, 1]]


def test_return_tensors_np_gives_int64_n_by_l(tok):
    out = tok(["hello world the", "fox"], ["x", "x x"], padding=True, return_tensors="np")
    assert set(out) == {"input_ids", "token_type_ids", "attention_mask"}
    for value in out.values():
        assert isinstance(value, np.ndarray) and value.dtype == np.int64 and value.shape == (2, 7)
    np.testing.assert_array_equal(out["attention_mask"].sum(1), [7, 6])
    single = tok("hello", return_tensors="np")
    assert single["input_ids"].shape == (1, 3) and single["input_ids"].tolist() == [[2, 12, 3]]
    empty = tok([], return_tensors="np")
    assert empty["input_ids"].shape == (0, 0) and empty["input_ids"].dtype == np.int64


def test_return_tensors_np_holds_the_same_numbers_as_lists(tok):
    texts, pairs = ["hello world the", "fox", "", "x " * 9], ["x", "the quick brown", "fox", "x x"]
    for kwargs in ({"padding": True}, {"padding": "max_length", "max_length": 20},
                   {"padding": "max_length", "truncation": "only_first", "max_length": 8}):
        lists = tok(texts, pairs, **kwargs)
        arrays = tok(texts, pairs, return_tensors="np", **kwargs)
        assert {k: v.tolist() for k, v in arrays.items()} == lists


def test_return_tensors_np_with_unequal_lengths_raises(tok):
    with pytest.raises(ArgumentError, match=r"lengths \[3, 4\].*padding=True"):
        tok(["hello world", "fox"], return_tensors="np")
    with pytest.raises(ArgumentError, match=r"lengths \[5, 8\]"):
        tok(["hello", "x x x x x x"], padding="max_length", max_length=5, return_tensors="np")


def test_optional_outputs_can_be_turned_off(tok):
    out = tok("hello", return_attention_mask=False, return_token_type_ids=False)
    assert out == {"input_ids": [2, 12, 3]}


# ---------------------------------------------------------------- decode


def test_decode_round_trips_encoded_text(tok):
    ids = tok.encode("Hello, world! The quick brown fox.")
    assert tok.decode(ids) == "[CLS] hello, world! the quick brown fox. [SEP]"
    assert tok.decode(ids, skip_special_tokens=True) == "hello, world! the quick brown fox."


def test_decode_merges_wordpieces(tok):
    assert tok.decode(tok.encode("unaffable helllo", add_special_tokens=False)) == "unaffable helllo"
    assert tok.decode([10, 11]) == "##affable"  # a leading continuation piece keeps its "##"


def test_decode_cleans_up_tokenization_spaces(tok):
    ids = tok.encode("don ' t , a . fox ! x ? s ' s", add_special_tokens=False)
    assert tok.decode(ids) == "don't, a. fox! x? s's"
    assert tok.decode(ids, clean_up_tokenization_spaces=False) == "don ' t , a . fox ! x ? s ' s"
    assert tok.decode(tok.encode("don n't i 'm x 're x 've", add_special_tokens=False)) == \
        "donn't i'm x're x've"  # " n't" loses its space too, as in transformers


def test_decode_accepts_arrays_batches_and_single_ids(tok):
    batch = tok(["hello world", "fox"], padding=True, return_tensors="np")["input_ids"]
    assert tok.decode(batch, skip_special_tokens=True) == ["hello world", "fox"]
    assert tok.decode(batch[1]) == "[CLS] fox [SEP] [PAD]"
    assert tok.decode([[12], [13]]) == ["hello", "world"]
    assert tok.decode(12) == "hello"
    assert tok.decode([]) == ""
    assert tok.decode([12, 999, -1]) == "hello [UNK] [UNK]"  # unknown ids decode to [UNK], as transformers


def test_skip_special_tokens_also_skips_unk(tok):
    assert tok.decode(tok.encode("zebra hello"), skip_special_tokens=True) == "hello"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["the", "quick", "brown", "fox", "hello", "world", "unaffable", "xxx", "!", ","]),
                max_size=12))
def test_decode_of_encode_restores_vocabulary_words(words):
    tok = BertTokenizer(VOCAB)
    text = " ".join(words)
    assert tok.decode(tok.encode(text), skip_special_tokens=True, clean_up_tokenization_spaces=False) == text


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_text_tokenizes_to_vocabulary_tokens(text):
    tok = BertTokenizer(VOCAB)
    tokens = tok.tokenize(text)
    assert all(t in ID for t in tokens)
    assert all(t.strip() == t and t for t in tokens)
    assert tok.encode(text) == [2] + [ID[t] for t in tokens] + [3]


# ---------------------------------------------------------------- from_pretrained_dir


def test_from_pretrained_dir_reads_tokenizer_config(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]", "Hello"]) + "\n")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({
        "do_lower_case": False, "model_max_length": 4, "unk_token": {"content": "<unk>", "lstrip": False},
        "never_split": None, "tokenizer_class": "BertTokenizer"}))
    (tmp_path / "special_tokens_map.json").write_text(json.dumps({"pad_token": "<pad>", "unk_token": "[UNK]"}))
    t = BertTokenizer.from_pretrained_dir(tmp_path)
    assert t.tokenize("Hello hello") == ["Hello", "<unk>"]
    assert t.unk_token == "<unk>" and t.pad_token_id == 0 and t.model_max_length == 4
    assert t("Hello Hello Hello", truncation=True)["input_ids"] == [2, 5, 5, 3]
    assert BertTokenizer.from_pretrained_dir(tmp_path, do_lower_case=True).tokenize("HELLO") == ["<unk>"]


def test_from_pretrained_dir_maps_the_huge_model_max_length_to_no_limit(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB))
    (tmp_path / "tokenizer_config.json").write_text('{"model_max_length": 1000000000000000019884624838656}')
    assert BertTokenizer.from_pretrained_dir(tmp_path).model_max_length is None


# ---------------------------------------------------------------- errors


def test_missing_vocab_file_raises_a_file_not_found_hubkit_error(tmp_path):
    with pytest.raises(VocabFileNotFoundError, match="no vocabulary file at .*nope.txt") as info:
        BertTokenizer.from_file(tmp_path / "nope.txt")
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, HubkitError)
    with pytest.raises(VocabFileNotFoundError, match="not a directory"):
        BertTokenizer.from_pretrained_dir(tmp_path / "nope")
    with pytest.raises(VocabFileNotFoundError, match="vocab.txt"):
        BertTokenizer.from_pretrained_dir(tmp_path)


def test_empty_or_binary_vocab_file_raises_checkpoint_error(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="is empty.*one token per line"):
        BertTokenizer.from_file(tmp_path / "empty.txt")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CheckpointError, match="not UTF-8"):
        BertTokenizer.from_file(tmp_path / "bin.txt")
    with pytest.raises(CheckpointError, match="cannot read"):
        BertTokenizer.from_file(tmp_path)


def test_vocab_without_special_tokens_is_rejected(tmp_path):
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\n")
    with pytest.raises(CheckpointError, match=r"lacks the special tokens sep_token='\[SEP\]', cls_token='\[CLS\]'"):
        BertTokenizer.from_file(tmp_path / "vocab.txt")
    with pytest.raises(ArgumentError, match="mask_token='<mask>'"):
        BertTokenizer(VOCAB, mask_token="<mask>")


def test_malformed_tokenizer_config_raises_checkpoint_error(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB))
    (tmp_path / "tokenizer_config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="cannot parse .*tokenizer_config.json"):
        BertTokenizer.from_pretrained_dir(tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"vocab": "vocab.txt"}, ArgumentTypeError, "from_file"),
        ({"vocab": []}, ArgumentError, "vocab is empty"),
        ({"vocab": ["[PAD]", 3]}, ArgumentTypeError, "item 1 is 3"),
        ({"vocab": {"[PAD]": "0"}}, ArgumentTypeError, "map str tokens to int ids"),
        ({"vocab": {"[PAD]": -1}}, ArgumentError, ">= 0"),
        ({"do_lower_case": "yes"}, ArgumentTypeError, "do_lower_case must be True or False"),
        ({"strip_accents": 1}, ArgumentTypeError, "strip_accents must be True, False or None"),
        ({"never_split": "[X]"}, ArgumentTypeError, "iterable of strings"),
        ({"never_split": ["ok", 1]}, ArgumentTypeError, "only strings, found 1"),
        ({"unk_token": ""}, ArgumentTypeError, "unk_token must be a non-empty string"),
        ({"model_max_length": 0}, ArgumentError, "model_max_length must be >= 1"),
        ({"max_input_chars_per_word": 2.5}, ArgumentTypeError, "positive int"),
    ],
)
def test_bad_constructor_arguments_raise_clear_errors(kwargs, error, message):
    kwargs = {"vocab": VOCAB, **kwargs}
    with pytest.raises(error, match=message):
        BertTokenizer(kwargs.pop("vocab"), **kwargs)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda t: t.tokenize(b"bytes"), ArgumentTypeError, "expected a str, got bytes"),
        (lambda t: t.encode(["a", "b"]), ArgumentTypeError, "for a batch call the tokenizer"),
        (lambda t: t("a", padding="bogus"), ArgumentError, "padding must be one of"),
        (lambda t: t("a", truncation="left"), ArgumentError, "truncation must be one of"),
        (lambda t: t("a", max_length=0), ArgumentError, "max_length must be >= 1"),
        (lambda t: t("a", max_length="8"), ArgumentTypeError, "max_length must be a positive int"),
        (lambda t: t("a", return_tensors="pt"), ArgumentError, "hubkit.from_numpy"),
        (lambda t: t(["a", "b"], ["x"]), ArgumentError, "2 texts and 1 pairs"),
        (lambda t: t(["a"], "x"), ArgumentTypeError, "text_pair must be a list"),
        (lambda t: t("a", ["x"]), ArgumentTypeError, "text_pair must be a string or None"),
        (lambda t: t(["a", 3]), ArgumentTypeError, "string or a list of strings"),
        (lambda t: t(None), ArgumentTypeError, "got NoneType"),
        (lambda t: t.decode(["hello"]), ArgumentTypeError, "list of int token ids"),
        (lambda t: t.decode(np.zeros(3)), ArgumentTypeError, "integer array"),
        (lambda t: t.convert_tokens_to_ids([1, 2]), ArgumentTypeError, "list of str"),
    ],
)
def test_bad_call_arguments_raise_clear_errors(tok, call, error, message):
    with pytest.raises(error, match=message):
        call(tok)


# ---------------------------------------------------------------- imports


def test_module_is_not_imported_by_hubkit_and_imports_no_tokenizer_libraries():
    code = (
        "import sys, hubkit\n"
        "assert 'hubkit.zoo.text.tokenizers' not in sys.modules\n"
        "import hubkit.zoo.text.tokenizers\n"
        "bad = [m for m in ('transformers', 'tokenizers', 'torch') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
