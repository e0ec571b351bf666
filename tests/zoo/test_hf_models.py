"""``hubkit.load(FOLDER)`` for every family hubkit implements, on tiny random models written in the Hugging Face
layouts (tests/hfmodels.py): the right model class, the same outputs as the model the weights came from, the tokenizer
and ``tokenize``, sentence-transformers pipelines, and clear errors for what is not supported."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hfmodels import (
    WAV2VEC2_VOCAB,
    bert_files,
    distilbert_files,
    gpt2_files,
    roberta_files,
    safetensors,
    wav2vec2_files,
    write,
)

import hubkit
from hubkit.errors import ArgumentError, CheckpointError, CheckpointNotFoundError
from hubkit.hub.checkpoint.formats import load_checkpoint, save_checkpoint
from hubkit.zoo.hf import family_of

TEXTS = ["hello world", "the cat sat on the mat .", "a"]

TEXT_FAMILIES = {
    "bert": (lambda: bert_files(), "BertModel"),
    "bert-mlm": (lambda: bert_files(arch="BertForMaskedLM"), "BertForMaskedLM"),
    "bert-task-head": (lambda: bert_files(arch="BertForSequenceClassification"), "BertModel"),
    "sentence-transformers": (lambda: bert_files(sentence=True), "SentenceEncoder"),
    "distilbert-mlm": (lambda: distilbert_files(), "DistilBertForMaskedLM"),
    "distilbert": (lambda: distilbert_files(masked_lm=False), "DistilBertModel"),
    "roberta-mlm": (lambda: roberta_files(), "RobertaForMaskedLM"),
    "roberta": (lambda: roberta_files(masked_lm=False), "RobertaModel"),
    "gpt2": (lambda: gpt2_files(), "GPT2LMHeadModel"),
}


def _out(model, batch) -> np.ndarray:
    with hubkit.no_grad():
        out = model(batch["input_ids"], batch["attention_mask"])
    return (out[0] if isinstance(out, tuple) else out).numpy()


@pytest.mark.parametrize("family", sorted(TEXT_FAMILIES))
def test_a_text_folder_loads_as_its_family_with_its_tokenizer(family, tmp_path):
    make, cls = TEXT_FAMILIES[family]
    files, source = make()
    folder = write(tmp_path / family, files)
    model = hubkit.load(str(folder))
    assert type(model).__name__ == cls and not model.training
    texts = TEXTS[:1] if family == "gpt2" else TEXTS  # GPT-2 has no padding token: one text needs none
    batch = model.tokenize(texts)
    assert all(v.dtype == np.int64 and v.shape == batch["input_ids"].shape for v in batch.values())
    assert ("token_type_ids" in batch) == family.startswith(("bert", "sentence"))
    assert list(batch)[0] == "input_ids" and "attention_mask" in batch
    np.testing.assert_array_equal(_out(model, batch), _out(source, batch))
    again = hubkit.load(folder)  # a pathlib.Path naming a folder is a folder too
    np.testing.assert_array_equal(_out(again, batch), _out(model, batch))


def test_tokenize_pads_truncates_lowercases_and_takes_pairs(tmp_path):
    model = hubkit.load(str(write(tmp_path / "st", bert_files(sentence=True, max_seq_length=6)[0])))
    batch = model.tokenize(["the cat sat on the mat on the mat", "a"])
    assert batch["input_ids"].shape == (2, 6) and batch["attention_mask"].tolist()[1] == [1, 1, 1, 0, 0, 0]
    single = model.tokenize("the cat")
    assert single["input_ids"].shape[0] == 1
    pairs = model.tokenize([("the cat", "a dog")])
    assert pairs["token_type_ids"][0].tolist().count(1) >= 2
    model.do_lower_case = True
    np.testing.assert_array_equal(model.tokenize(["THE CAT"])["input_ids"], model.tokenize(["the cat"])["input_ids"])
    assert model.tokenize([])["input_ids"].shape == (0, 0)
    with pytest.raises(ArgumentError, match="strings"):
        model.tokenize(["fine", 3])
    model.tokenizer = None
    with pytest.raises(ArgumentError, match="needs a tokenizer"):
        model.tokenize(["x"])


def test_a_wav2vec2_ctc_folder_gets_its_head_labels_and_normalisation(tmp_path):
    files, source = wav2vec2_files()
    model = hubkit.load(str(write(tmp_path / "asr", files)))
    assert type(model).__name__ == "Wav2Vec2Model" and model.labels == tuple(WAV2VEC2_VOCAB)
    assert model.normalize_waveform and model.blank == 0
    x = np.random.default_rng(0).standard_normal(1600).astype(np.float32) * 3 + 1
    np.testing.assert_array_equal(model(x).numpy(), source(x).numpy())
    normalized = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    emissions = source(normalized).numpy()[0]
    assert model.transcribe(x) == [_greedy(emissions)]
    features = hubkit.load(str(write(tmp_path / "features", wav2vec2_files(ctc=False)[0])))
    assert features.aux is None and features(x).shape[-1] == 16


def _greedy(emissions: np.ndarray) -> str:
    labels = list(WAV2VEC2_VOCAB)
    best = emissions.argmax(axis=1)
    kept = [b for i, b in enumerate(best) if (i == 0 or b != best[i - 1]) and b != 0]
    return " ".join("".join(labels[b] for b in kept).replace("|", " ").split())


def _pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    m = mask[..., None].astype(np.float32)
    if mode == "cls":
        return hidden[:, 0]
    if mode == "max":
        return np.where(m > 0, hidden, -np.inf).max(axis=1)
    if mode == "mean":
        return (hidden * m).sum(1) / m.sum(1)
    if mode == "mean_sqrt_len_tokens":
        return (hidden * m).sum(1) / np.sqrt(m.sum(1))
    if mode == "weightedmean":
        w = m * np.arange(1, hidden.shape[1] + 1, dtype=np.float32)[None, :, None]
        return (hidden * w).sum(1) / w.sum(1)
    last = mask.sum(1) - 1
    return hidden[np.arange(len(hidden)), last]


@pytest.mark.parametrize("pooling", [("mean",), ("cls",), ("max",), ("mean_sqrt_len_tokens",), ("weightedmean",),
                                     ("lasttoken",), ("cls", "max", "mean")])
def test_sentence_transformers_pooling_modes(pooling, tmp_path):
    files, _ = bert_files(sentence=True, pooling=pooling, normalize=False)
    model = hubkit.load(str(write(tmp_path / "st", files)))
    assert model.pooling == pooling and not model.normalize
    assert model.get_sentence_embedding_dimension() == 16 * len(pooling)
    batch = model.tokenize(TEXTS)
    with hubkit.no_grad():
        hidden = model.hidden_states(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).numpy()
    want = np.concatenate([_pool(hidden, batch["attention_mask"], m) for m in pooling], axis=1)
    np.testing.assert_allclose(model.encode(TEXTS), want, rtol=1e-5, atol=1e-6)


def test_sentence_transformers_settings_are_read(tmp_path):
    files, _ = bert_files(sentence=True, max_seq_length=12, similarity="dot")
    settings = json.loads(files["config_sentence_transformers.json"])
    settings.update(prompts={"query": "query: ", "doc": ""}, default_prompt_name="query")
    files["config_sentence_transformers.json"] = json.dumps(settings).encode()
    model = hubkit.load(str(write(tmp_path / "st", files)))
    assert model.max_seq_length == 12 and model.similarity_fn_name == "dot" and model.normalize
    assert model.prompts == {"query": "query: ", "doc": ""} and model.default_prompt_name == "query"
    np.testing.assert_allclose(model.encode("cat"), model.encode("query: cat", prompt=""), rtol=1e-6)  # the default
    np.testing.assert_allclose(model.encode("cat", prompt_name="doc"), model.encode("cat", prompt=""), rtol=1e-6)
    assert not np.allclose(model.encode("cat", prompt_name="doc"), model.encode("cat"))
    with pytest.raises(ArgumentError, match="prompt_name 'title' is not one of this model's prompts"):
        model.encode("cat", prompt_name="title")


def test_sharded_and_torch_format_weights_load(tmp_path):
    files, source = bert_files()
    state = load_checkpoint(write(tmp_path / "src", files) / "model.safetensors")
    names = sorted(state)
    sharded = {k: v for k, v in files.items() if k != "model.safetensors"}
    half = len(names) // 2
    sharded["model-00001-of-00002.safetensors"] = safetensors({k: state[k] for k in names[:half]})
    sharded["model-00002-of-00002.safetensors"] = safetensors({k: state[k] for k in names[half:]})
    sharded["model.safetensors.index.json"] = json.dumps({"weight_map": {
        k: f"model-0000{1 + (i >= half)}-of-00002.safetensors" for i, k in enumerate(names)}}).encode()  # fmt: skip
    model = hubkit.load(str(write(tmp_path / "sharded", sharded)))
    batch = model.tokenize(TEXTS)
    np.testing.assert_array_equal(_out(model, batch), _out(source, batch))
    torch_folder = write(tmp_path / "bin", {k: v for k, v in files.items() if k != "model.safetensors"})
    save_checkpoint(state, torch_folder / "pytorch_model.bin", format="torch")
    np.testing.assert_array_equal(_out(hubkit.load(str(torch_folder)), batch), _out(source, batch))
    (tmp_path / "sharded" / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(CheckpointError, match="shard model-00002-of-00002.safetensors, which is missing"):
        hubkit.load(str(tmp_path / "sharded"))


def test_unsupported_families_name_the_supported_ones(tmp_path):
    write(tmp_path / "t5", {"config.json": b'{"model_type": "t5", "architectures": ["T5ForConditionalGeneration"]}'})
    with pytest.raises(ArgumentError, match="model_type 't5'.*bert, distilbert, roberta, gpt2, wav2vec2"):
        hubkit.load(str(tmp_path / "t5"))
    assert family_of({"architectures": ["RobertaForSequenceClassification"]}) == "roberta"
    with pytest.raises(ArgumentError, match="no model_type and no architectures"):
        family_of({})


def test_missing_and_unreadable_files_are_clear_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="has no config.json"):
        hubkit.load(str(tmp_path / "empty"))
    files, _ = bert_files()
    del files["model.safetensors"]
    files["tf_model.h5"] = b"\x89HDF"
    with pytest.raises(CheckpointError, match="no weights.*tf_model.h5, which hubkit does not read"):
        hubkit.load(str(write(tmp_path / "tf", files)))
    write(tmp_path / "bad", {"config.json": b"{not json"})
    with pytest.raises(CheckpointError, match="cannot read config.json"):
        hubkit.load(str(tmp_path / "bad"))
    with pytest.raises(CheckpointNotFoundError, match="no such file"):
        hubkit.load(str(tmp_path / "nowhere/"))
    files, _ = bert_files()
    del files["tokenizer.json"]
    model = hubkit.load(str(write(tmp_path / "notok", files)))
    assert model.tokenizer is None and model.max_seq_length == 64


def test_unsupported_sentence_transformers_pipelines_are_refused(tmp_path):
    dense = ({"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"},)
    files, _ = bert_files(sentence=True, extra_modules=dense)
    with pytest.raises(ArgumentError, match="Transformer -> Pooling -> Normalize -> Dense"):
        hubkit.load(str(write(tmp_path / "dense", files)))
    st, _ = bert_files(sentence=True)
    files, _ = distilbert_files(masked_lm=False)
    files.update({k: v for k, v in st.items() if k not in ("config.json", "model.safetensors", "tokenizer.json")})
    with pytest.raises(ArgumentError, match="on a distilbert encoder.*BERT encoders"):
        hubkit.load(str(write(tmp_path / "distil-st", files)))


def test_wav2vec2_layouts_hubkit_does_not_implement_are_refused(tmp_path):
    files, _ = wav2vec2_files(feat_extract_norm="layer", do_stable_layer_norm=True)
    with pytest.raises(ArgumentError, match="feat_extract_norm='layer'.*do_stable_layer_norm"):
        hubkit.load(str(write(tmp_path / "large", files)))
    files, _ = wav2vec2_files()
    files["vocab.json"] = json.dumps({"<pad>": 0, "a": 1}).encode()
    with pytest.raises(CheckpointError, match="vocab.json has 2 tokens, the CTC head 8 outputs"):
        hubkit.load(str(write(tmp_path / "vocab", files)))


def test_folder_loads_take_only_device(tmp_path):
    folder = write(tmp_path / "bert", bert_files()[0])
    with pytest.raises(ArgumentError, match="model folder.*pretrained="):
        hubkit.load(str(folder), pretrained=True)
    with pytest.raises(ArgumentError, match="revision="):
        hubkit.load(str(folder), revision="main")
    with pytest.raises(ArgumentError, match="map_location="):
        hubkit.load(Path(folder), map_location="cpu")
    assert type(hubkit.load(str(folder), device="cpu")).__name__ == "BertModel"


def test_a_folder_named_like_a_model_is_a_folder_and_says_so(tmp_path, monkeypatch):
    write(tmp_path / "gpt2", gpt2_files()[0])
    monkeypatch.chdir(tmp_path)
    assert type(hubkit.load("gpt2")).__name__ == "GPT2LMHeadModel"  # transformers' rule: the local folder first
    with pytest.raises(ArgumentError, match="shadows the model 'gpt2'"):
        hubkit.load("gpt2", pretrained=True)
