"""sentence-transformers' conventions on SentenceEncoder (``encode``'s arguments, ``similarity``,
``get_sentence_embedding_dimension``, ``max_seq_length``) and ``hubkit.zoo.text.util`` (``cos_sim`` and friends,
``semantic_search``, ``quantize_embeddings``), on a tiny random model."""

from __future__ import annotations

import numpy as np
import pytest
from hfmodels import bert_files, write

import hubkit
from hubkit.errors import ArgumentError, ShapeError
from hubkit.tensor import Tensor
from hubkit.zoo.text import util

TEXTS = ["the cat sat on the mat .", "hello world", "a dog", "running dogs , hello"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("st")
    normalized = hubkit.load(str(write(root / "norm", bert_files(sentence=True)[0])))
    plain = hubkit.load(str(write(root / "plain", bert_files(sentence=True, normalize=False, seed=1)[0])))
    return normalized, plain


def test_encode_returns_what_sentence_transformers_returns(models):
    _, model = models
    emb = model.encode(TEXTS)
    assert isinstance(emb, np.ndarray) and emb.shape == (4, 16) and emb.dtype == np.float32
    one = model.encode(TEXTS[0])
    assert one.shape == (16,)
    np.testing.assert_allclose(one, emb[0], rtol=1e-5, atol=1e-6)
    tensor = model.encode(TEXTS, convert_to_tensor=True)
    assert isinstance(tensor, Tensor) and tuple(tensor.shape) == (4, 16)
    np.testing.assert_allclose(tensor.numpy(), emb, rtol=1e-6)
    rows = model.encode(TEXTS, convert_to_numpy=False)
    assert isinstance(rows, list) and len(rows) == 4 and all(isinstance(r, Tensor) and r.shape == (16,) for r in rows)
    np.testing.assert_allclose(model.encode(TEXTS, batch_size=1), emb, rtol=1e-5, atol=1e-6)
    assert model.encode([]).shape == (0, 16)


def test_normalize_embeddings_and_the_normalize_module(models):
    normalized, plain = models
    raw = plain.encode(TEXTS)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1)
    unit = plain.encode(TEXTS, normalize_embeddings=True)
    np.testing.assert_allclose(unit, raw / np.linalg.norm(raw, axis=1, keepdims=True), rtol=1e-5, atol=1e-6)
    # a pipeline with a Normalize module (all-MiniLM-L6-v2's) is unit-length whatever encode is told
    np.testing.assert_allclose(np.linalg.norm(normalized.encode(TEXTS), axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(normalized.encode(TEXTS, normalize_embeddings=True), normalized.encode(TEXTS),
                               rtol=1e-5, atol=1e-6)  # fmt: skip


def test_truncate_dim_precision_and_token_embeddings(models):
    _, model = models
    full = model.encode(TEXTS)
    np.testing.assert_allclose(model.encode(TEXTS, truncate_dim=5), full[:, :5], rtol=1e-6)
    model.truncate_dim = 4
    assert model.get_sentence_embedding_dimension() == 4 and model.encode(TEXTS).shape == (4, 4)
    model.truncate_dim = None
    assert model.get_sentence_embedding_dimension() == model.get_embedding_dimension() == 16
    binary = model.encode(TEXTS, precision="binary")
    assert binary.dtype == np.int8 and binary.shape == (4, 2)
    np.testing.assert_array_equal(binary, util.quantize_embeddings(full, "binary"))
    assert model.encode(TEXTS, precision="uint8").dtype == np.uint8
    tokens = model.encode(TEXTS, output_value="token_embeddings")
    lengths = model.tokenize(TEXTS)["attention_mask"].sum(axis=1)
    assert [t.shape[0] for t in tokens] == lengths.tolist() and all(t.shape[1] == 16 for t in tokens)
    everything = model.encode(TEXTS[:2], output_value=None)
    assert set(everything[0]) >= {"sentence_embedding", "token_embeddings", "input_ids", "attention_mask"}
    with pytest.raises(ArgumentError, match="precision"):
        model.encode(TEXTS, precision="float16")
    with pytest.raises(ArgumentError, match="output_value"):
        model.encode(TEXTS, output_value="logits")
    with pytest.raises(ArgumentError, match="truncate_dim"):
        model.encode(TEXTS, truncate_dim=0)


def test_similarity_follows_similarity_fn_name(models):
    _, model = models
    emb = model.encode(TEXTS)
    cos = emb @ emb.T / np.outer(np.linalg.norm(emb, axis=1), np.linalg.norm(emb, axis=1))
    assert model.similarity_fn_name == "cosine"
    np.testing.assert_allclose(model.similarity(emb, emb).numpy(), cos, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.similarity_pairwise(emb, emb[::-1]).numpy(),
                               np.diag(cos[:, ::-1]), rtol=1e-5, atol=1e-6)  # fmt: skip
    model.similarity_fn_name = "dot"
    np.testing.assert_allclose(model.similarity(emb, emb).numpy(), emb @ emb.T, rtol=1e-5, atol=1e-6)
    model.similarity_fn_name = "euclidean"
    dist = np.linalg.norm(emb[:, None] - emb[None], axis=-1)
    np.testing.assert_allclose(model.similarity(emb, emb).numpy(), -dist, rtol=1e-5, atol=1e-5)
    model.similarity_fn_name = "manhattan"
    np.testing.assert_allclose(model.similarity(emb[0], emb).numpy(), -np.abs(emb[0] - emb).sum(-1)[None],
                               rtol=1e-5, atol=1e-5)  # fmt: skip
    with pytest.raises(ArgumentError, match="similarity_fn_name must be one of"):
        model.similarity_fn_name = "maxsim"
    model.similarity_fn_name = None
    assert model.similarity_fn_name == "cosine"


def test_max_seq_length_truncates(models):
    _, model = models
    long = " ".join(["cat"] * 100)
    assert model.max_seq_length == 24 and model.tokenize([long])["input_ids"].shape == (1, 24)
    model.max_seq_length = 8
    try:
        assert model.tokenize([long])["input_ids"].shape == (1, 8)
        assert model.encode(long).shape == (16,)
    finally:
        model.max_seq_length = 24


def test_util_functions(models):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 5)).astype(np.float32), rng.standard_normal((4, 5)).astype(np.float32)
    an, bn = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
    np.testing.assert_allclose(util.cos_sim(a, b).numpy(), an @ bn.T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(util.cos_sim(hubkit.tensor(a[0]), b.tolist()).numpy(), (an @ bn.T)[:1], rtol=1e-5)
    np.testing.assert_allclose(util.dot_score(a, b).numpy(), a @ b.T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(util.pairwise_cos_sim(a, b[:3]).numpy(), (an * bn[:3]).sum(1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(util.pairwise_dot_score(a, b[:3]).numpy(), (a * b[:3]).sum(1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(util.normalize_embeddings(a).numpy(), an, rtol=1e-5, atol=1e-6)
    hits = util.semantic_search(a, b, top_k=2)
    scores = an @ bn.T
    assert [[h["corpus_id"] for h in row] for row in hits] == np.argsort(-scores, axis=1)[:, :2].tolist()
    np.testing.assert_allclose([h["score"] for h in hits[0]], np.sort(scores[0])[::-1][:2], rtol=1e-5)
    chunked = util.semantic_search(a, b, top_k=2, query_chunk_size=1, corpus_chunk_size=3)
    assert [[h["corpus_id"] for h in r] for r in chunked] == [[h["corpus_id"] for h in r] for r in hits]
    with pytest.raises(ShapeError, match="different sizes"):
        util.cos_sim(a, b[:, :4])
    with pytest.raises(ShapeError, match="as many rows"):
        util.pairwise_cos_sim(a, b)
    with pytest.raises(ArgumentError, match="top_k"):
        util.semantic_search(a, b, top_k=0)
    with pytest.raises(ArgumentError, match="single embedding"):
        util.quantize_embeddings(a[:1], "int8")
    q = util.quantize_embeddings(a, "int8")
    assert q.dtype == np.int8 and q.min() == -128 and q.max() == 127
