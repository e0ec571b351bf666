"""Tiny random models written in the Hugging Face layouts, without torch: for ``hubkit.load(FOLDER)`` and
``hubkit.load("hf:...")`` tests.

Each ``*_files(...)`` returns ``(files, source)``: ``{relative path: bytes}`` of a transformers ``save_pretrained``
(or sentence-transformers ``save``) folder, and the hubkit model its weights came from, to compare outputs with.
Checkpoints are written as transformers 5 writes them (tied weights once, no ``position_ids`` buffer); tokenizers are
the small ``tokenizer.json`` fixtures of tests/data/tokenizer_json. ``write(folder, files)`` puts them on disk.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

import hubkit
from hubkit.hub.checkpoint.formats import save_checkpoint

TOKENIZERS = Path(__file__).resolve().parent / "data" / "tokenizer_json"
BERT_KW = {"vocab_size": 1500, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4,
           "intermediate_size": 24, "max_position_embeddings": 64}  # fmt: skip


def write(folder: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


def safetensors(state: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    save_checkpoint({k: np.ascontiguousarray(v) for k, v in state.items()}, buf, format="safetensors")
    return buf.getvalue()


def _json(data: object) -> bytes:
    return json.dumps(data, indent=1).encode()


def _state(model, drop: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    return {k: np.array(v.numpy()) for k, v in model.state_dict().items() if not k.endswith(drop)}


def bert_files(*, arch: str = "BertModel", seed: int = 0, sentence: bool = False, pooling=("mean",),
               normalize: bool = True, max_seq_length: int = 24, similarity: str | None = None,
               extra_modules: tuple[dict, ...] = ()) -> tuple[dict[str, bytes], object]:
    """A BERT folder: ``arch`` BertModel / BertForMaskedLM / BertForSequenceClassification, or (``sentence``) a
    sentence-transformers one: Transformer -> Pooling(``pooling``) [-> Normalize]."""
    from hubkit.zoo.text.bert import BertConfig, BertForMaskedLM, BertModel, SentenceEncoder

    hubkit.manual_seed(seed)
    config = BertConfig(**BERT_KW)
    files = {"tokenizer.json": (TOKENIZERS / "wordpiece.json").read_bytes()}
    if sentence:
        source = SentenceEncoder(config, normalize=normalize, max_seq_length=max_seq_length, pooling=pooling).eval()
        state = _state(source, ("position_ids",))
        modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
        if normalize:
            modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                            "type": "sentence_transformers.models.Normalize"})  # fmt: skip
        modules.extend(extra_modules)
        legacy = {"pooling_mode_cls_token": "cls" in pooling, "pooling_mode_max_tokens": "max" in pooling,
                  "pooling_mode_mean_tokens": "mean" in pooling,
                  "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens" in pooling,
                  "pooling_mode_weightedmean_tokens": "weightedmean" in pooling,
                  "pooling_mode_lasttoken": "lasttoken" in pooling}  # fmt: skip
        files.update({
            "modules.json": _json(modules),
            "1_Pooling/config.json": _json({"word_embedding_dimension": 16, **legacy}),
            "sentence_bert_config.json": _json({"max_seq_length": max_seq_length, "do_lower_case": False}),
            "config_sentence_transformers.json": _json({"similarity_fn_name": similarity, "prompts": {},
                                                        "default_prompt_name": None}),
        })  # fmt: skip
        arch = "BertModel"
    elif arch == "BertForMaskedLM":
        source = BertForMaskedLM(config).eval()
        state = _state(source, ("position_ids", "cls.predictions.decoder.weight", "cls.predictions.decoder.bias"))
    else:
        source = BertModel(config).eval()
        state = _state(source, ("position_ids",))
        if arch == "BertForSequenceClassification":
            state = {f"bert.{k}": v for k, v in state.items()}
            state["classifier.weight"] = np.ones((2, 16), np.float32)
            state["classifier.bias"] = np.zeros(2, np.float32)
    files["model.safetensors"] = safetensors(state)
    files["config.json"] = _json({"model_type": "bert", "architectures": [arch], **BERT_KW,
                                  "type_vocab_size": 2, "pad_token_id": 0})  # fmt: skip
    return files, source


def distilbert_files(*, masked_lm: bool = True, seed: int = 0) -> tuple[dict[str, bytes], object]:
    from hubkit.zoo.text.distilbert import DistilBertConfig, DistilBertForMaskedLM, DistilBertModel

    hubkit.manual_seed(seed)
    kw = {"vocab_size": 1500, "dim": 16, "n_layers": 2, "n_heads": 4, "hidden_dim": 24, "max_position_embeddings": 64}
    config = DistilBertConfig(**kw)
    if masked_lm:
        source, arch = DistilBertForMaskedLM(config).eval(), "DistilBertForMaskedLM"
        state = _state(source, ("vocab_projector.weight",))
    else:
        source, arch = DistilBertModel(config).eval(), "DistilBertModel"
        state = _state(source)
    return {"config.json": _json({"model_type": "distilbert", "architectures": [arch], **kw}),
            "model.safetensors": safetensors(state),
            "tokenizer.json": (TOKENIZERS / "wordpiece.json").read_bytes()}, source  # fmt: skip


def roberta_files(*, masked_lm: bool = True, seed: int = 0) -> tuple[dict[str, bytes], object]:
    from hubkit.zoo.text.roberta import RobertaConfig, RobertaForMaskedLM, RobertaModel

    hubkit.manual_seed(seed)
    # the fixture's specials are ids 600-603 (<s>, </s>, <pad>, <mask>): positions start after the padding id 602
    kw = {"vocab_size": 604, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4,
          "intermediate_size": 24, "max_position_embeddings": 640, "pad_token_id": 602, "bos_token_id": 600,
          "eos_token_id": 601, "type_vocab_size": 1, "layer_norm_eps": 1e-5}  # fmt: skip
    config = RobertaConfig(**kw)
    if masked_lm:
        source, arch = RobertaForMaskedLM(config).eval(), "RobertaForMaskedLM"
        state = _state(source, ("lm_head.decoder.weight", "lm_head.decoder.bias", "position_ids"))
    else:
        source, arch = RobertaModel(config).eval(), "RobertaModel"
        state = _state(source, ("position_ids",))
    return {"config.json": _json({"model_type": "roberta", "architectures": [arch], **kw}),
            "model.safetensors": safetensors(state),
            "tokenizer.json": (TOKENIZERS / "roberta.json").read_bytes()}, source  # fmt: skip


def gpt2_files(*, seed: int = 0) -> tuple[dict[str, bytes], object]:
    from hubkit.zoo.text.gpt2 import GPT2Config, GPT2LMHeadModel

    hubkit.manual_seed(seed)
    kw = {"vocab_size": 600, "n_positions": 48, "n_embd": 32, "n_layer": 2, "n_head": 4, "initializer_range": 0.2,
          "bos_token_id": 0, "eos_token_id": 0}  # fmt: skip
    source = GPT2LMHeadModel(GPT2Config(**kw)).eval()
    state = _state(source, ("lm_head.weight",))
    return {"config.json": _json({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], **kw}),
            "model.safetensors": safetensors(state),
            "tokenizer.json": (TOKENIZERS / "gpt2.json").read_bytes()}, source  # fmt: skip


WAV2VEC2_VOCAB = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "E": 5, "T": 6, "A": 7}
_TO_HF = (("feature_extractor.", "wav2vec2.feature_extractor."),
          ("encoder.feature_projection.", "wav2vec2.feature_projection."),
          ("encoder.transformer.", "wav2vec2.encoder."), ("aux.", "lm_head."))


def wav2vec2_files(*, seed: int = 0, ctc: bool = True, **config_changes) -> tuple[dict[str, bytes], object]:
    """A transformers ``Wav2Vec2ForCTC`` (or ``Wav2Vec2Model``) folder of the base layout, new weight-norm names."""
    from hubkit.zoo.audio.wav2vec2 import Wav2Vec2Config, Wav2Vec2Model

    hubkit.manual_seed(seed)
    config = Wav2Vec2Config(conv_layers=((8, 10, 5), (8, 3, 2)), embed_dim=16, pos_conv_kernel=4, pos_conv_groups=2,
                            num_layers=2, num_heads=2, ffn_dim=24, aux_num_out=len(WAV2VEC2_VOCAB) if ctc else None)
    source = Wav2Vec2Model(config, labels=list(WAV2VEC2_VOCAB) if ctc else None).eval()
    state = {}
    for key, value in _state(source).items():
        for ours, theirs in _TO_HF:
            if key.startswith(ours):
                key = theirs + key[len(ours):]
                break
        key = key.replace("conv.weight_g", "conv.parametrizations.weight.original0")
        key = key.replace("conv.weight_v", "conv.parametrizations.weight.original1")
        state[key] = value
    state["wav2vec2.masked_spec_embed"] = np.zeros(16, np.float32)
    hf_config = {"model_type": "wav2vec2", "architectures": ["Wav2Vec2ForCTC" if ctc else "Wav2Vec2Model"],
                 "conv_dim": [8, 8], "conv_kernel": [10, 3], "conv_stride": [5, 2], "conv_bias": False,
                 "feat_extract_norm": "group", "do_stable_layer_norm": False, "hidden_size": 16,
                 "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 24,
                 "num_conv_pos_embeddings": 4, "num_conv_pos_embedding_groups": 2, "vocab_size": len(WAV2VEC2_VOCAB),
                 "pad_token_id": 0, "layer_norm_eps": 1e-5, "hidden_act": "gelu", "feat_extract_activation": "gelu",
                 **config_changes}  # fmt: skip
    files = {"config.json": _json(hf_config), "model.safetensors": safetensors(state),
             "preprocessor_config.json": _json({"do_normalize": True, "sampling_rate": 16000})}
    if ctc:
        files["vocab.json"] = _json(WAV2VEC2_VOCAB)
        files["tokenizer_config.json"] = _json({"word_delimiter_token": "|", "pad_token": "<pad>"})
    return files, source
