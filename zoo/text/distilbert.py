"""DistilBERT (Sanh et al. 2019) with Hugging Face's ``DistilBertModel`` / ``DistilBertForMaskedLM`` keys.

Keys: ``embeddings.{word_embeddings, position_embeddings, LayerNorm}``, ``transformer.layer.<i>.attention.{q_lin,
k_lin, v_lin, out_lin}``, ``transformer.layer.<i>.{sa_layer_norm, ffn.lin1, ffn.lin2, output_layer_norm}``; the
masked-LM model adds ``vocab_transform``, ``vocab_layer_norm`` and ``vocab_projector`` (its weight is the word
embedding matrix) and prefixes the encoder with ``distilbert.``. Post-LN blocks, LayerNorm eps 1e-12, no token
types; the position ids are ``arange(L)`` and not part of the state dict.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

import hubkit
import hubkit.nn.functional as F
from hubkit import nn
from hubkit.errors import ArgumentError, CheckpointError, ShapeError
from hubkit.hub.registry import ExtraFile, TextPreprocessing, WeightTag, register_model
from hubkit.tensor import Tensor
from hubkit.zoo.text.bert import _ACTIVATIONS, _as_ids
from hubkit.zoo.text.fill_mask import FillMaskMixin
from hubkit.zoo.text.presets import TokenizeMixin, tokenizer_for_weights

__all__ = ["DistilBertConfig", "DistilBertForMaskedLM", "DistilBertModel", "distilbert_base_uncased"]


@dataclass(frozen=True)
class DistilBertConfig:
    """The ``config.json`` fields DistilBERT needs (Hugging Face's names and defaults)."""

    vocab_size: int = 30522
    max_position_embeddings: int = 512
    sinusoidal_pos_embds: bool = False
    n_layers: int = 6
    n_heads: int = 12
    dim: int = 768
    hidden_dim: int = 3072
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation: str = "gelu"
    initializer_range: float = 0.02
    pad_token_id: int = 0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "max_position_embeddings", "n_layers", "n_heads", "dim", "hidden_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ArgumentError(f"DistilBertConfig: {name} must be a positive int, got {value!r}")
        if self.dim % self.n_heads:
            raise ArgumentError(f"DistilBertConfig: dim {self.dim} is not a multiple of n_heads {self.n_heads}")
        if self.activation not in _ACTIVATIONS:
            raise ArgumentError(f"DistilBertConfig: activation {self.activation!r} is not supported; expected one "
                                f"of {sorted(_ACTIVATIONS)}")  # fmt: skip

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> DistilBertConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in config.items() if k in names})

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> DistilBertConfig:
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise CheckpointError(f"no DistilBERT config at {path}; expected the model's config.json") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as e:
            raise CheckpointError(f"cannot read {path} as a JSON config: {e}") from None


def _sinusoidal(n_pos: int, dim: int) -> np.ndarray:
    """transformers' ``create_sinusoidal_embeddings``: sin on even, cos on odd features."""
    position = np.arange(n_pos)[:, None] / np.power(10000, 2 * (np.arange(dim) // 2) / dim)[None, :]
    out = np.zeros((n_pos, dim), dtype=np.float32)
    out[:, 0::2] = np.sin(position[:, 0::2])
    out[:, 1::2] = np.cos(position[:, 1::2])
    return out


class Embeddings(nn.Module):
    """Word + position embeddings, LayerNorm, dropout: ids (N, L) -> (N, L, dim)."""

    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.dim, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.dim)
        if config.sinusoidal_pos_embds:
            self.position_embeddings.weight.array[...] = _sinusoidal(config.max_position_embeddings, config.dim)
            self.position_embeddings.weight.requires_grad_(False)
        self.LayerNorm = nn.LayerNorm(config.dim, eps=1e-12)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, input_ids: Tensor) -> Tensor:
        positions = hubkit.arange(input_ids.shape[1], device=input_ids.device).reshape(1, -1)
        return self.dropout(self.LayerNorm(self.word_embeddings(input_ids) + self.position_embeddings(positions)))


class DistilBertSelfAttention(nn.Module):
    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.n_heads, self.dim = config.n_heads, config.dim
        self.head_dim = config.dim // config.n_heads
        self.q_lin = nn.Linear(config.dim, config.dim)
        self.k_lin = nn.Linear(config.dim, config.dim)
        self.v_lin = nn.Linear(config.dim, config.dim)
        self.out_lin = nn.Linear(config.dim, config.dim)
        self.dropout = nn.Dropout(config.attention_dropout)

    def _heads(self, x: Tensor) -> Tensor:
        n, length, _ = x.shape
        return x.reshape(n, length, self.n_heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, x: Tensor, keep: Tensor | None) -> Tensor:
        q, k, v = self._heads(self.q_lin(x)), self._heads(self.k_lin(x)), self._heads(self.v_lin(x))
        dropout = self.dropout.p if self.training else 0.0
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=dropout)
        n, _, length, _ = context.shape
        return self.out_lin(context.permute(0, 2, 1, 3).reshape(n, length, self.dim))


class FFN(nn.Module):
    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.dropout = nn.Dropout(config.dropout)
        self.lin1 = nn.Linear(config.dim, config.hidden_dim)
        self.lin2 = nn.Linear(config.hidden_dim, config.dim)
        self.activation = _ACTIVATIONS[config.activation]

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.lin2(self.activation(self.lin1(x))))


class TransformerBlock(nn.Module):
    """``sa_layer_norm(attention(x) + x)``, then ``output_layer_norm(ffn(h) + h)``: (N, L, dim) -> (N, L, dim)."""

    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.attention = DistilBertSelfAttention(config)
        self.sa_layer_norm = nn.LayerNorm(config.dim, eps=1e-12)
        self.ffn = FFN(config)
        self.output_layer_norm = nn.LayerNorm(config.dim, eps=1e-12)

    def forward(self, x: Tensor, keep: Tensor | None) -> Tensor:
        h = self.sa_layer_norm(self.attention(x, keep) + x)
        return self.output_layer_norm(self.ffn(h) + h)


class Transformer(nn.Module):
    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList([TransformerBlock(config) for _ in range(config.n_layers)])

    def forward(self, x: Tensor, keep: Tensor | None) -> Tensor:
        for block in self.layer:
            x = block(x, keep)
        return x


class DistilBertModel(nn.Module, TokenizeMixin):
    """DistilBERT's encoder: ids (N, L) and ``attention_mask`` (N, L) (1 = token, 0 = padding) -> hidden states
    (N, L, dim)."""

    def __init__(self, config: DistilBertConfig | None = None) -> None:
        super().__init__()
        self.config = config or DistilBertConfig()
        self.embeddings = Embeddings(self.config)
        self.transformer = Transformer(self.config)
        _init_weights(self, self.config)

    def forward(self, input_ids: Any, attention_mask: Any = None) -> Tensor:
        device = self.embeddings.word_embeddings.weight.device
        ids = _as_ids(input_ids, "input_ids", device)
        if ids.ndim != 2:
            raise ShapeError(f"DistilBertModel: input_ids must be (batch, length), got shape {tuple(ids.shape)}")
        n, length = ids.shape
        if length > self.config.max_position_embeddings:
            raise ShapeError(f"DistilBertModel: {length} tokens per sequence, but the model has "
                             f"{self.config.max_position_embeddings} positions; truncate the input")  # fmt: skip
        keep = None
        if attention_mask is not None:
            mask = _as_ids(attention_mask, "attention_mask", device)
            if tuple(mask.shape) != (n, length):
                raise ShapeError(
                    f"DistilBertModel: attention_mask {tuple(mask.shape)} must match input_ids {(n, length)}"
                )
            keep = (mask != 0).reshape(n, 1, 1, length)
        return self.transformer(self.embeddings(ids), keep)


def _init_weights(module: nn.Module, config: DistilBertConfig) -> None:
    """Hugging Face's initialisation: N(0, initializer_range) weights, zero biases, unit LayerNorms, zero pad row."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            if isinstance(m, nn.Embedding) and not m.weight.requires_grad:
                continue  # frozen sinusoidal positions
            nn.init.normal_(m.weight, 0.0, config.initializer_range)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    for m in module.modules():
        if isinstance(m, nn.Embedding) and m.padding_idx is not None:
            m.weight.array[m.padding_idx] = 0


class DistilBertForMaskedLM(nn.Module, FillMaskMixin, TokenizeMixin):
    """DistilBERT with its masked-LM head: ids (N, L) -> logits (N, L, vocab); ``fill_mask(text)`` as the
    transformers pipeline. ``vocab_projector.weight`` is ``distilbert.embeddings.word_embeddings.weight``."""

    def __init__(self, config: DistilBertConfig | None = None) -> None:
        super().__init__()
        self.config = config or DistilBertConfig()
        self.distilbert = DistilBertModel(self.config)
        self.activation = _ACTIVATIONS[self.config.activation]
        self.vocab_transform = nn.Linear(self.config.dim, self.config.dim)
        self.vocab_layer_norm = nn.LayerNorm(self.config.dim, eps=1e-12)
        self.vocab_projector = nn.Linear(self.config.dim, self.config.vocab_size)
        for m in (self.vocab_transform, self.vocab_projector):
            nn.init.normal_(m.weight, 0.0, self.config.initializer_range)
            nn.init.zeros_(m.bias)
        self.vocab_projector.weight = self.distilbert.embeddings.word_embeddings.weight
        self.tokenizer: Any = None

    def forward(self, input_ids: Any, attention_mask: Any = None) -> Tensor:
        h = self.distilbert(input_ids, attention_mask)
        return self.vocab_projector(self.vocab_layer_norm(self.activation(self.vocab_transform(h))))

    def _mlm_logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return self(input_ids, attention_mask).cpu().numpy()


def hf_distilbert_mlm_state(state: dict[str, Any]) -> dict[str, Any]:
    """A Hugging Face DistilBERT checkpoint under ``DistilBertForMaskedLM``'s keys: ``distilbert.`` added where
    missing, the tied ``vocab_projector.weight`` supplied when absent, and the position-id buffer of older files
    dropped."""
    if not any(k.startswith("distilbert.") for k in state):
        state = {(k if k.startswith("vocab_") else "distilbert." + k): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.endswith("embeddings.position_ids")}
    if "vocab_projector.weight" not in state and "distilbert.embeddings.word_embeddings.weight" in state:
        state["vocab_projector.weight"] = state["distilbert.embeddings.word_embeddings.weight"]
    return state


# ---------------------------------------------------------------- registry


_REPO, _REVISION = "distilbert/distilbert-base-uncased", "12040accade4e8a0f71eabdb258fecc2e7e948be"


def _hf(name: str) -> str:
    return f"https://huggingface.co/{_REPO}/resolve/{_REVISION}/{name}"


# Revision, model.safetensors (267,954,768 bytes) and tokenizer.json hashes from pinned manifests of this revision;
# its tokenizer.json is bert-base-uncased's.
@register_model(
    "distilbert-base-uncased",
    modality="text", task="fill-mask",
    description="DistilBERT-base uncased (66M): 6-layer distilled BERT with its masked-LM head",
    paper="https://arxiv.org/abs/1910.01108",
    weights=(WeightTag(
        tag="HF", url=_hf("model.safetensors"),
        sha256="5e3f1108e3cb34ee048634875d8482665b65ac713291a7e32396fb18f6ff0063", size=267954768,
        file_size_mb=268.0, format="safetensors", license="Apache-2.0",
        source=f"https://huggingface.co/{_REPO}/tree/{_REVISION}",
        recipe="distilled from bert-base-uncased on BookCorpus and English Wikipedia", num_params=66985530,
        num_classes=0,
        preprocessing=TextPreprocessing(vocab="tokenizer.json", do_lower_case=True, max_length=512,
                                        tokenizer="wordpiece"),
        files=(ExtraFile(name="tokenizer.json", url=_hf("tokenizer.json"),
                         sha256="ce64fce797c24f68df90b40a3f74f579b336a493db14bd583fd520ea0d8c9a98", size=466062),),
        transforms_factory=tokenizer_for_weights,
    ),),
    default="HF", key_map=hf_distilbert_mlm_state,
)  # fmt: skip
def distilbert_base_uncased(**kwargs: Any) -> DistilBertForMaskedLM:
    """Hugging Face's DistilBERT-base, uncased: BERT-base distilled into 6 layers (66M parameters), with its
    masked-LM head."""
    return DistilBertForMaskedLM(DistilBertConfig(), **kwargs)
