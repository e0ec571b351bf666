"""BERT and the sentence encoder without torch: Hugging Face's keys, masking, errors, and the pretrained path
(weights and vocabulary fetched from the local HTTP server, verified, tokenizer attached)."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest

import hubkit
from hubkit import tasks
from hubkit.errors import ArgumentError, CheckpointError, ShapeError
from hubkit.hub import api, registry
from hubkit.hub.checkpoint.formats import save_checkpoint
from hubkit.zoo.text import BertConfig, BertModel, SentenceEncoder
from hubkit.zoo.text.bert import _add_position_ids

TINY = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=4, intermediate_size=24,
                  max_position_embeddings=12)  # fmt: skip
WORDS = ["hello", "world", "the", "cat", "sat", "on", "mat", "a", "dog", "##s", "run", "##ning", ".", ","]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _model(cls=BertModel, seed: int = 0, **kwargs):
    hubkit.manual_seed(seed)
    return cls(TINY, **kwargs).eval()


def test_state_dict_keys_are_hugging_faces():
    keys = list(_model().state_dict())
    assert keys[:6] == ["embeddings.position_ids", "embeddings.word_embeddings.weight",
                        "embeddings.position_embeddings.weight", "embeddings.token_type_embeddings.weight",
                        "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"]  # fmt: skip
    layer0 = [k for k in keys if k.startswith("encoder.layer.0.")]
    assert layer0 == [f"encoder.layer.0.{k}" for k in (
        "attention.self.query.weight", "attention.self.query.bias", "attention.self.key.weight",
        "attention.self.key.bias", "attention.self.value.weight", "attention.self.value.bias",
        "attention.output.dense.weight", "attention.output.dense.bias", "attention.output.LayerNorm.weight",
        "attention.output.LayerNorm.bias", "intermediate.dense.weight", "intermediate.dense.bias",
        "output.dense.weight", "output.dense.bias", "output.LayerNorm.weight", "output.LayerNorm.bias")]  # fmt: skip
    assert keys[-2:] == ["pooler.dense.weight", "pooler.dense.bias"]
    assert len(keys) == 6 + 16 * 2 + 2
    assert "pooler.dense.weight" not in BertModel(TINY, add_pooling_layer=False).state_dict()


def test_padding_does_not_change_the_real_tokens():
    model = _model()
    ids = np.array([[2, 5, 6, 7, 3]])
    with hubkit.no_grad():
        alone = model(ids).last_hidden_state.numpy()
        padded = np.array([[2, 5, 6, 7, 3, 0, 0], [2, 8, 3, 0, 0, 0, 0]])
        mask = (padded != 0).astype(np.int64)
        out = model(padded, mask)
    np.testing.assert_allclose(out.last_hidden_state.numpy()[0, :5], alone[0], rtol=1e-5, atol=1e-6)
    assert out.pooler_output.shape == (2, 16)
    np.testing.assert_allclose(np.abs(out.pooler_output.numpy()) <= 1, True)  # tanh


def test_token_types_default_to_zero_and_change_the_output_when_given():
    model = _model()
    ids = np.array([[2, 5, 3, 6, 3]])
    with hubkit.no_grad():
        default = model(ids).last_hidden_state.numpy()
        zeros = model(ids, token_type_ids=np.zeros_like(ids)).last_hidden_state.numpy()
        pair = model(ids, token_type_ids=np.array([[0, 0, 0, 1, 1]])).last_hidden_state.numpy()
    np.testing.assert_array_equal(default, zeros)
    assert not np.allclose(default, pair)


def test_training_mode_backpropagates_to_every_parameter():
    model = _model().train()
    ids = np.array([[2, 5, 6, 3, 0]])
    out = model(ids, (ids != 0).astype(np.int64))
    (out.last_hidden_state.sum() + out.pooler_output.sum()).backward()
    missing = [k for k, p in model.named_parameters() if p.grad is None]
    assert missing == []
    # the padding row of the word embeddings gets no gradient, like torch's padding_idx
    np.testing.assert_array_equal(model.embeddings.word_embeddings.weight.grad.numpy()[0], 0)


def test_bad_inputs_are_clear_errors(tmp_path):
    model = _model()
    with pytest.raises(ShapeError, match="12 position embeddings"):
        model(np.ones((1, 13), dtype=np.int64))
    with pytest.raises(ShapeError, match=r"\(batch, length\)"):
        model(np.ones(5, dtype=np.int64))
    with pytest.raises(ArgumentError, match="integers"):
        model(np.ones((1, 3), dtype=np.float32))
    with pytest.raises(ShapeError, match="attention_mask"):
        model(np.ones((2, 3), dtype=np.int64), np.ones((2, 4), dtype=np.int64))
    with pytest.raises(ArgumentError, match="multiple of num_attention_heads"):
        BertConfig(hidden_size=10, num_attention_heads=4)
    with pytest.raises(ArgumentError, match="hidden_act"):
        BertConfig(hidden_act="mish")
    with pytest.raises(ArgumentError, match="position_embedding_type"):
        BertConfig.from_dict({"position_embedding_type": "relative_key"})
    with pytest.raises(CheckpointError, match="config.json"):
        BertConfig.from_json_file(tmp_path / "missing.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="object"):
        BertConfig.from_json_file(tmp_path / "list.json")


def test_config_from_json_ignores_fields_bert_does_not_use(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"architectures": ["BertModel"], "hidden_size": 32, "num_attention_heads": 4,
                                "num_hidden_layers": 1, "model_type": "bert", "transformers_version": "4.8.2"}))
    config = BertConfig.from_json_file(path)
    assert (config.hidden_size, config.num_hidden_layers, config.vocab_size) == (32, 1, 30522)


def test_checkpoints_without_position_ids_load_strictly():
    source = _model(seed=1)
    state = {k: np.array(v.numpy()) for k, v in source.state_dict().items() if k != "embeddings.position_ids"}
    target = _model(seed=2)
    target.load_state_dict(_add_position_ids(state), strict=True)
    ids = np.array([[2, 5, 3]])
    with hubkit.no_grad():
        np.testing.assert_array_equal(target(ids).last_hidden_state.numpy(), source(ids).last_hidden_state.numpy())


# ---------------------------------------------------------------- the sentence encoder and the hub


def _vocab_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(SPECIALS + WORDS + [f"[unused{i}]" for i in range(40 - len(SPECIALS) - len(WORDS))])
                    + "\n", encoding="utf-8")  # fmt: skip
    return path


def test_encode_needs_a_tokenizer():
    with pytest.raises(ArgumentError, match="tokenizer"):
        _model(SentenceEncoder).encode(["hello world"])


def test_encode_gives_unit_vectors_in_input_order_whatever_the_batching(tmp_path):
    from hubkit.zoo.text.tokenizers import BertTokenizer

    model = _model(SentenceEncoder, max_seq_length=8)
    model.tokenizer = BertTokenizer.from_file(_vocab_file(tmp_path))
    sentences = ["hello", "the cat sat on the mat.", "a dog", "running dogs , hello world"]
    emb = model.encode(sentences, batch_size=2)
    assert emb.shape == (4, 16) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, rtol=1e-5)
    singles = np.stack([model.encode(s) for s in sentences])
    np.testing.assert_allclose(emb, singles, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.encode(sentences, batch_size=3), emb, rtol=1e-5, atol=1e-6)
    assert model.training is False
    with pytest.raises(ArgumentError, match="strings"):
        model.encode(["fine", 3])
    with pytest.raises(ArgumentError, match="batch_size"):
        model.encode(["fine"], batch_size=0)


def _serve_tiny_minilm(http_server, tmp_path, monkeypatch):
    """Point all-MiniLM-L6-v2's tag at a tiny random model, its tokenizer.json and vocabulary on the local server."""
    from hubkit.zoo.text.tokenizer_json import wordpiece_tokenizer

    api._ensure_zoo()
    entry = registry.get_entry("all-MiniLM-L6-v2")
    state = {k: np.array(v.numpy()) for k, v in _model(SentenceEncoder, seed=3).state_dict().items()}
    ckpt = tmp_path / "model.safetensors"
    save_checkpoint(state, ckpt, format="safetensors")
    vocab_path = _vocab_file(tmp_path)
    data, vocab = ckpt.read_bytes(), vocab_path.read_bytes()
    tok_json = json.dumps(wordpiece_tokenizer(vocab_path, backend="python").tokenizer.spec).encode()
    url = http_server.add("/st/model.safetensors", data)
    tok_url, vocab_url = http_server.add("/st/tokenizer.json", tok_json), http_server.add("/st/vocab.txt", vocab)
    (tag,) = entry.weights
    assert [f.name for f in tag.files] == ["tokenizer.json", "vocab.txt"]
    files = (dataclasses.replace(tag.files[0], url=tok_url, sha256=hashlib.sha256(tok_json).hexdigest(),
                                 size=len(tok_json)),
             dataclasses.replace(tag.files[1], url=vocab_url, sha256=hashlib.sha256(vocab).hexdigest(),
                                 size=len(vocab)))  # fmt: skip
    tag = dataclasses.replace(tag, url=url, sha256=hashlib.sha256(data).hexdigest(), size=len(data), files=files,
                              num_params=sum(v.size for k, v in state.items() if k != "embeddings.position_ids"))
    monkeypatch.setitem(registry._REGISTRY, "all-minilm-l6-v2",
                        dataclasses.replace(entry, weights=(tag,), builder=lambda **kw: SentenceEncoder(TINY, **kw)))
    return state


def test_pretrained_fetches_weights_and_vocabulary_and_attaches_the_tokenizer(http_server, tmp_path, monkeypatch):
    state = _serve_tiny_minilm(http_server, tmp_path, monkeypatch)
    model = hubkit.load("all-MiniLM-L6-v2", pretrained=True)
    assert not model.training and model.tokenizer is not None
    np.testing.assert_array_equal(model.encoder.layer[1].output.dense.weight.numpy(),
                                  state["encoder.layer.1.output.dense.weight"])  # fmt: skip
    assert model.encode(["the cat sat"]).shape == (1, 16)
    # the fast tokenizer from tokenizer.json (sentence-transformers' and transformers 5's); vocab.txt is not needed
    assert type(model.tokenizer).__name__ == "TokenizerFast" and model.tokenizer.model_max_length == 256
    assert http_server.count("/st/model.safetensors") == http_server.count("/st/tokenizer.json") == 1
    assert http_server.count("/st/vocab.txt") == 0
    tok = hubkit.get_weights("all-MiniLM-L6-v2").transforms()
    assert tok("the cat", return_tensors="np")["input_ids"].tolist() == [[2, 7, 8, 3]]
    assert http_server.count("/st/tokenizer.json") == 1  # served from the cache
    info = hubkit.model_info("all-MiniLM-L6-v2")
    assert info["modality"] == "text" and info["task"] == "sentence-embedding"
    (w,) = info["weights"]
    assert w["preprocessing"]["kind"] == "text" and w["preprocessing"]["max_length"] == 256
    assert [f["name"] for f in w["files"]] == ["tokenizer.json", "vocab.txt"]
    urls = [r.url for r in api.weight_resources("all-MiniLM-L6-v2")]
    assert urls == [w["url"], w["files"][0]["url"], w["files"][1]["url"]]


def test_text_models_are_listed_and_predict_points_to_encode():
    assert hubkit.list_models(modality="text", task="sentence-embedding") == ["all-MiniLM-L6-v2"]
    assert set(hubkit.list_models(modality="text")) == {"all-MiniLM-L6-v2", "bert-base-uncased",
                                                         "distilbert-base-uncased", "roberta-base", "gpt2",
                                                         "distilgpt2", "gpt2-medium"}  # fmt: skip
    info = hubkit.model_info("all-minilm-l6-v2")
    assert info["num_params"] == 22713216 and info["weights"][0]["format"] == "safetensors"
    with pytest.raises(ArgumentError, match="encode"):
        tasks.predict("all-MiniLM-L6-v2", ["x.jpg"])
    with pytest.raises(ArgumentError, match="tokenizer"):
        hubkit.get_weights("resnet18").tokenizer()


def test_info_and_models_cli_show_the_text_model(capsys):
    from hubkit.cli import main

    assert main(["info", "all-MiniLM-L6-v2"]) == 0
    text = capsys.readouterr().out
    assert "text / sentence-embedding" in text and "legacy" not in text
    assert "wordpiece tokenizer (tokenizer.json), lower-case True, max 256 tokens" in text
    assert "file:         tokenizer.json: https://huggingface.co/" in text
    assert main(["models", "all*"]) == 0
    row = capsys.readouterr().out.splitlines()[1].split()
    assert row == ["all-MiniLM-L6-v2", "22.7M", "-", "SENTENCE_TRANSFORMERS*"]
    assert main(["predict", "all-MiniLM-L6-v2", "x.jpg"]) == 1
    assert "encode" in capsys.readouterr().err


def test_embed_api_and_cli(http_server, tmp_path, monkeypatch, capsys):
    from hubkit.cli import main

    _serve_tiny_minilm(http_server, tmp_path, monkeypatch)
    emb = tasks.embed("all-MiniLM-L6-v2", ["the cat sat", "a dog", "the cat sat"])
    assert emb.shape == (3, 16)
    np.testing.assert_allclose(emb[0], emb[2], rtol=1e-5, atol=1e-6)  # BLAS blocks rows differently
    assert main(["embed", "all-MiniLM-L6-v2", "the cat sat", "a dog", "--no-progress"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "2 text(s) -> embeddings of 16 dims" and out[1] == "cosine similarity:"
    assert out[2].split()[-2] == "1.000" and out[3].split()[-1] == "1.000"  # each text vs itself
    assert main(["embed", "all-MiniLM-L6-v2", "a dog", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["texts"] == ["a dog"] and len(data["embeddings"][0]) == 16
    np.testing.assert_allclose(data["embeddings"][0], emb[1], atol=1e-6)
    with pytest.raises(ArgumentError, match="text model"):
        tasks.embed("resnet18", ["x"])
    with pytest.raises(hubkit.errors.ArgumentTypeError, match="list of strings"):
        tasks.embed("all-MiniLM-L6-v2", "just one")


def _write_hf_folder(folder, state, vocab_path=None, **extra_config) -> None:
    folder.mkdir()
    config = {f.name: getattr(TINY, f.name) for f in dataclasses.fields(TINY)}
    (folder / "config.json").write_text(json.dumps({"architectures": ["BertModel"], **config, **extra_config}))
    save_checkpoint(state, folder / "model.safetensors", format="safetensors")
    if vocab_path is not None:
        (folder / "vocab.txt").write_bytes(vocab_path.read_bytes())


def test_from_pretrained_dir_loads_a_hugging_face_folder_with_its_tokenizer(tmp_path):
    source = _model(SentenceEncoder, seed=5)
    state = {k: np.array(v.numpy()) for k, v in source.state_dict().items() if k != "embeddings.position_ids"}
    _write_hf_folder(tmp_path / "st", state, _vocab_file(tmp_path))
    (tmp_path / "st" / "sentence_bert_config.json").write_text('{"max_seq_length": 7, "do_lower_case": false}')
    model = SentenceEncoder.from_pretrained_dir(tmp_path / "st")
    assert model.max_seq_length == 7 and not model.training and model.tokenizer is not None
    source.tokenizer = model.tokenizer
    source.max_seq_length = 7
    np.testing.assert_array_equal(model.encode(["the cat sat on the mat"]), source.encode(["the cat sat on the mat"]))


def test_from_pretrained_dir_takes_task_checkpoints_and_legacy_names(tmp_path):
    source = _model(seed=6)
    state = {}
    for key, value in source.state_dict().items():
        key = key.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        state["bert." + key] = np.array(value.numpy())
    state["classifier.weight"] = np.zeros((2, 16), np.float32)
    state["classifier.bias"] = np.zeros(2, np.float32)
    _write_hf_folder(tmp_path / "clf", state)
    model = BertModel.from_pretrained_dir(tmp_path / "clf")
    ids = np.array([[2, 5, 6, 3]])
    with hubkit.no_grad():
        np.testing.assert_array_equal(model(ids).pooler_output.numpy(), source(ids).pooler_output.numpy())
    headless = BertModel.from_pretrained_dir(tmp_path / "clf", add_pooling_layer=False)
    assert headless.pooler is None


def test_from_pretrained_dir_says_what_is_missing(tmp_path):
    with pytest.raises(CheckpointError, match="not a directory"):
        BertModel.from_pretrained_dir(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="config.json"):
        BertModel.from_pretrained_dir(tmp_path / "empty")
    (tmp_path / "empty" / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="model.safetensors or pytorch_model.bin"):
        BertModel.from_pretrained_dir(tmp_path / "empty")
