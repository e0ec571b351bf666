"""Masked language models without torch: BERT's masked-LM head, DistilBERT and RoBERTa with Hugging Face's keys,
the key maps for upstream checkpoints, ``fill_mask`` and the pretrained path through the local HTTP server."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest

import hubkit
from hubkit.errors import ArgumentError, ArgumentTypeError
from hubkit.hub import api, registry, save_checkpoint
from hubkit.zoo.text import (
    BertConfig,
    BertForMaskedLM,
    DistilBertConfig,
    DistilBertForMaskedLM,
    DistilBertModel,
    RobertaConfig,
    RobertaForMaskedLM,
    RobertaModel,
)
from hubkit.zoo.text.bert import hf_bert_mlm_state
from hubkit.zoo.text.distilbert import hf_distilbert_mlm_state
from hubkit.zoo.text.roberta import hf_roberta_mlm_state
from hubkit.zoo.text.tokenizer_json import TokenizerFast

WORDPIECE = Path(__file__).resolve().parents[1] / "data" / "tokenizer_json" / "wordpiece.json"  # vocab of ~1,500
SMALL = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 24}


def _tokenizer() -> TokenizerFast:
    return TokenizerFast.from_file(WORDPIECE, backend="python")


def _bert(seed: int = 0) -> BertForMaskedLM:
    hubkit.manual_seed(seed)
    model = BertForMaskedLM(BertConfig(vocab_size=len(_tokenizer()), max_position_embeddings=64, **SMALL)).eval()
    model.tokenizer = _tokenizer()
    return model


def _numpy_state(model) -> dict[str, np.ndarray]:
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def test_bert_mlm_keys_and_tied_decoder():
    model = _bert()
    keys = list(model.state_dict())
    assert keys[0] == "bert.embeddings.position_ids" and not any(k.startswith("bert.pooler.") for k in keys)
    assert keys[-7:] == ["cls.predictions.bias", "cls.predictions.transform.dense.weight",
                         "cls.predictions.transform.dense.bias", "cls.predictions.transform.LayerNorm.weight",
                         "cls.predictions.transform.LayerNorm.bias", "cls.predictions.decoder.weight",
                         "cls.predictions.decoder.bias"]  # fmt: skip
    head = model.cls.predictions
    assert head.decoder.weight is model.bert.embeddings.word_embeddings.weight and head.decoder.bias is head.bias


def test_a_pretraining_checkpoint_loads_through_the_bert_key_map():
    source = _bert(seed=1)
    state = {}
    for key, value in _numpy_state(source).items():
        if key.startswith("cls.predictions.decoder.") or key == "bert.embeddings.position_ids":
            continue  # tied or a buffer: often absent upstream
        state[key.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")] = value
    state["bert.pooler.dense.weight"] = np.zeros((16, 16), np.float32)  # pre-training files carry these
    state["bert.pooler.dense.bias"] = np.zeros(16, np.float32)
    state["cls.seq_relationship.weight"] = np.zeros((2, 16), np.float32)
    state["cls.seq_relationship.bias"] = np.zeros(2, np.float32)
    target = _bert(seed=2)
    target.load_state_dict(hf_bert_mlm_state(state), strict=True)
    ids = np.array([[2, 40, 41, 3]])
    with hubkit.no_grad():
        np.testing.assert_array_equal(target(ids).numpy(), source(ids).numpy())


def test_fill_mask_returns_the_pipelines_shape():
    model = _bert()
    out = model.fill_mask("paris is the [MASK] of france.")
    assert len(out) == 5 and set(out[0]) == {"score", "token", "token_str", "sequence"}
    scores = [r["score"] for r in out]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1 + 1e-6
    for r in out:
        assert r["token_str"] == model.tokenizer.decode([r["token"]])
        assert "[MASK]" not in r["sequence"] and "[CLS]" not in r["sequence"]
    two = model.fill_mask("[MASK] is the capital of [MASK].", top_k=2)
    assert len(two) == 2 and all(len(row) == 2 for row in two) and "[MASK]" in two[0][0]["sequence"]
    batch = model.fill_mask(["a [MASK] b", "[MASK] c"], top_k=1)
    assert len(batch) == 2 and len(batch[0]) == 1
    with pytest.raises(ArgumentError, match="no mask token"):
        model.fill_mask("nothing masked")
    with pytest.raises(ArgumentError, match="top_k"):
        model.fill_mask("a [MASK]", top_k=0)
    with pytest.raises(ArgumentTypeError, match="string or a list"):
        model.fill_mask(3)
    model.tokenizer = None
    with pytest.raises(ArgumentError, match="tokenizer"):
        model.fill_mask("a [MASK]")


def test_distilbert_keys_padding_and_key_map():
    hubkit.manual_seed(0)
    config = DistilBertConfig(vocab_size=50, dim=16, n_layers=2, n_heads=4, hidden_dim=24, max_position_embeddings=20)
    model = DistilBertForMaskedLM(config).eval()
    keys = list(model.state_dict())
    assert keys[:5] == ["distilbert.embeddings.word_embeddings.weight",
                        "distilbert.embeddings.position_embeddings.weight", "distilbert.embeddings.LayerNorm.weight",
                        "distilbert.embeddings.LayerNorm.bias",
                        "distilbert.transformer.layer.0.attention.q_lin.weight"]  # fmt: skip
    assert keys[-6:] == ["vocab_transform.weight", "vocab_transform.bias", "vocab_layer_norm.weight",
                         "vocab_layer_norm.bias", "vocab_projector.weight", "vocab_projector.bias"]  # fmt: skip
    assert model.vocab_projector.weight is model.distilbert.embeddings.word_embeddings.weight
    ids = np.array([[1, 5, 6, 7]])
    with hubkit.no_grad():
        alone = model(ids).numpy()
        padded = model(np.array([[1, 5, 6, 7, 0, 0]]), np.array([[1, 1, 1, 1, 0, 0]])).numpy()
    np.testing.assert_allclose(padded[:, :4], alone, rtol=1e-5, atol=1e-5)
    encoder_only = {k[len("distilbert."):]: v for k, v in _numpy_state(model).items() if k.startswith("distilbert.")}
    base = DistilBertModel(config)
    base.load_state_dict(encoder_only, strict=True)
    state = {k: v for k, v in _numpy_state(model).items() if k != "vocab_projector.weight"}
    state["distilbert.embeddings.position_ids"] = np.arange(20)[None]  # older files
    DistilBertForMaskedLM(config).load_state_dict(hf_distilbert_mlm_state(state), strict=True)
    sinusoidal = DistilBertModel(dataclasses.replace(config, sinusoidal_pos_embds=True))
    weights = sinusoidal.embeddings.position_embeddings.weight
    assert not weights.requires_grad and np.allclose(weights.numpy()[1, :2], [np.sin(1), np.cos(1)])


def test_roberta_positions_start_after_padding_and_the_key_map():
    hubkit.manual_seed(0)
    config = RobertaConfig(vocab_size=50, max_position_embeddings=20, **SMALL)
    base = RobertaModel(config).eval()
    assert "embeddings.position_ids" not in base.state_dict()
    ids = np.array([[0, 5, 6, 2]])
    with hubkit.no_grad():
        alone = base(ids).last_hidden_state.numpy()
        padded = base(np.array([[0, 5, 6, 2, 1, 1]]), np.array([[1, 1, 1, 1, 0, 0]])).last_hidden_state.numpy()
    np.testing.assert_allclose(padded[:, :4], alone, rtol=1e-5, atol=1e-5)
    with pytest.raises(hubkit.errors.ShapeError, match="positions for 18"):
        base(np.zeros((1, 19), np.int64) + 5)
    mlm = RobertaForMaskedLM(config).eval()
    assert mlm.lm_head.decoder.weight is mlm.roberta.embeddings.word_embeddings.weight
    state = {k: v for k, v in _numpy_state(mlm).items() if not k.startswith("lm_head.decoder.")}
    state.update({"roberta.pooler.dense.weight": np.zeros((16, 16), np.float32),
                  "roberta.pooler.dense.bias": np.zeros(16, np.float32)})  # fmt: skip
    other = RobertaForMaskedLM(config).eval()
    other.load_state_dict(hf_roberta_mlm_state(state), strict=True)
    with hubkit.no_grad():
        np.testing.assert_array_equal(other(ids).numpy(), mlm(ids).numpy())


def test_pretrained_bert_base_uncased_fills_masks(http_server, tmp_path, monkeypatch):
    api._ensure_zoo()
    entry = registry.get_entry("bert-base-uncased")
    source = _bert(seed=5)
    state = {k: v for k, v in _numpy_state(source).items() if not k.startswith("cls.predictions.decoder.")}
    ckpt = tmp_path / "model.safetensors"
    save_checkpoint(state, ckpt, format="safetensors")
    data, tok = ckpt.read_bytes(), WORDPIECE.read_bytes()
    (tag,) = entry.weights
    files = (dataclasses.replace(tag.files[0], url=http_server.add("/bert/tokenizer.json", tok),
                                 sha256=hashlib.sha256(tok).hexdigest(), size=len(tok)),)  # fmt: skip
    tag = dataclasses.replace(tag, url=http_server.add("/bert/model.safetensors", data),
                              sha256=hashlib.sha256(data).hexdigest(), size=len(data), files=files)  # fmt: skip
    config = source.config
    monkeypatch.setitem(registry._REGISTRY, "bert-base-uncased",
                        dataclasses.replace(entry, weights=(tag,), builder=lambda **kw: BertForMaskedLM(config)))
    model = hubkit.load("bert-base-uncased", pretrained=True)
    assert isinstance(model.tokenizer, TokenizerFast) and model.tokenizer.model_max_length == 512
    assert model.fill_mask("paris is the [MASK] of france.") == source.fill_mask("paris is the [MASK] of france.")


def test_registry_entries_for_the_encoders():
    api._ensure_zoo()
    assert set(hubkit.list_models(task="fill-mask")) == {"bert-base-uncased", "distilbert-base-uncased",
                                                          "roberta-base"}  # fmt: skip
    bert = registry.get_entry("bert-base-uncased").weights[0]
    assert "/resolve/86b5e0934494bd15c9632b12f734a8a67f723594/model.safetensors" in bert.url
    assert bert.size == 440449768 and bert.num_params == 109514298
    assert registry.get_entry("roberta-base").weights[0].num_params == 124697433
    assert registry.get_entry("distilbert-base-uncased").weights[0].num_params == 66985530
    for name in ("bert-base-uncased", "distilbert-base-uncased", "roberta-base", "all-MiniLM-L6-v2"):
        (tag,) = registry.get_entry(name).weights
        assert tag.preprocessing.vocab == "tokenizer.json" and tag.file("tokenizer.json").sha256
