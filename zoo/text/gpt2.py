"""GPT-2 (Radford et al. 2019) with Hugging Face's ``GPT2LMHeadModel`` module tree and keys, a key/value cache,
text generation and perplexity.

Keys: ``transformer.wte``, ``transformer.wpe``, ``transformer.h.<i>.{ln_1, attn.c_attn, attn.c_proj, ln_2,
mlp.c_fc, mlp.c_proj}``, ``transformer.ln_f``, and ``lm_head.weight`` (the same tensor as ``transformer.wte.weight``).
The four projections are ``Conv1D``: weight stored ``(in, out)`` and applied as ``x @ W + b`` (the transpose of
``nn.Linear``), so upstream weights load without transposing. Pre-LN blocks, tanh GELU ("gelu_new"), LayerNorm
eps 1e-5, attention scaled by ``1/sqrt(head_dim)`` with a causal mask.

    model = hubkit.load("gpt2", pretrained=True)
    model.generate("Once upon a time", max_new_tokens=30)            # greedy; do_sample=True to sample
    for piece in model.stream("Once upon a time"): print(piece, end="")
    model.perplexity("The quick brown fox jumps over the lazy dog.")
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

import hubkit
import hubkit.nn.functional as F
from hubkit import nn
from hubkit._backend import get_array_module
from hubkit.errors import ArgumentError, CheckpointError, ShapeError
from hubkit.hub.registry import ExtraFile, TextPreprocessing, WeightTag, register_model
from hubkit.tensor import Tensor
from hubkit.zoo.text.generation import CausalLMMixin
from hubkit.zoo.text.presets import TokenizeMixin, tokenizer_for_weights

__all__ = ["GPT2Config", "GPT2LMHeadModel", "GPT2Model", "KVCache", "distilgpt2", "gpt2", "gpt2_medium"]

_ACTIVATIONS = {
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu": lambda x: F.gelu(x),
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": F.tanh,
}


@dataclass(frozen=True)
class GPT2Config:
    """The ``config.json`` fields GPT-2 needs (Hugging Face's names and defaults, which are ``gpt2``'s)."""

    vocab_size: int = 50257
    n_positions: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_inner: int | None = None
    activation_function: str = "gelu_new"
    resid_pdrop: float = 0.1
    embd_pdrop: float = 0.1
    attn_pdrop: float = 0.1
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    scale_attn_weights: bool = True
    scale_attn_by_inverse_layer_idx: bool = False
    reorder_and_upcast_attn: bool = False
    bos_token_id: int | None = 50256
    eos_token_id: int | None = 50256

    def __post_init__(self) -> None:
        for name in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ArgumentError(f"GPT2Config: {name} must be a positive int, got {value!r}")
        if self.n_embd % self.n_head:
            raise ArgumentError(f"GPT2Config: n_embd {self.n_embd} is not a multiple of n_head {self.n_head}")
        if self.activation_function not in _ACTIVATIONS:
            raise ArgumentError(f"GPT2Config: activation_function {self.activation_function!r} is not supported; "
                                f"expected one of {sorted(_ACTIVATIONS)}")  # fmt: skip

    @property
    def inner_size(self) -> int:
        return self.n_inner if self.n_inner is not None else 4 * self.n_embd

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> GPT2Config:
        """From a ``config.json`` mapping; keys GPT-2 does not use are ignored (``n_ctx`` is an old
        spelling of ``n_positions``)."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in config.items() if k in names}
        if "n_positions" not in values and "n_ctx" in config:
            values["n_positions"] = config["n_ctx"]
        return cls(**values)

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> GPT2Config:
        path = Path(path)
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CheckpointError(f"no GPT-2 config at {path}; expected the model's config.json") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CheckpointError(f"cannot read {path} as a JSON config: {e}") from None
        if not isinstance(config, dict):
            raise CheckpointError(f"{path} holds a JSON {type(config).__name__}, expected an object of config fields")
        return cls.from_dict(config)


class KVCache:
    """Past keys and values of every layer, preallocated: ``keys[i]``/``values[i]`` are (N, heads, capacity,
    head_dim) arrays of which the first ``length`` positions are filled. New positions are written in place, so
    a generated token costs one position, not a copy of the past."""

    def __init__(self, n_layer: int, batch: int, n_head: int, capacity: int, head_dim: int, like: Any) -> None:
        xp = get_array_module(like)
        shape = (batch, n_head, capacity, head_dim)
        self.keys = [xp.empty(shape, dtype=like.dtype) for _ in range(n_layer)]
        self.values = [xp.empty(shape, dtype=like.dtype) for _ in range(n_layer)]
        self.capacity = capacity
        self.length = 0

    def __len__(self) -> int:
        return self.length


class CausalLMOutput(NamedTuple):
    """``logits`` (N, T, vocab) and the cache extended by these T positions (None without ``use_cache``)."""

    logits: Tensor
    past_key_values: KVCache | None


class Conv1D(nn.Module):
    """Hugging Face's ``Conv1D``: a linear layer with the weight stored ``(in, out)``: ``(*, nx) -> (*, nf)``."""

    def __init__(self, nf: int, nx: int) -> None:
        super().__init__()
        self.nf, self.nx = nf, nx
        self.weight = nn.Parameter(hubkit.empty((nx, nf)))
        self.bias = nn.Parameter(hubkit.zeros(nf))
        nn.init.normal_(self.weight, 0.0, 0.02)

    def forward(self, x: Tensor) -> Tensor:
        lead = x.shape[:-1]
        # One 2-d GEMM: a batched (N, T, nx) @ (nx, nf) would loop over N in numpy.
        return hubkit.addmm(self.bias, x.reshape(-1, self.nx), self.weight).reshape(*lead, self.nf)

    def extra_repr(self) -> str:
        return f"nf={self.nf}, nx={self.nx}"


class GPT2Attention(nn.Module):
    def __init__(self, config: GPT2Config, layer_idx: int) -> None:
        super().__init__()
        self.embed_dim, self.num_heads = config.n_embd, config.n_head
        self.head_dim = config.n_embd // config.n_head
        self.layer_idx = layer_idx
        self.scaling = self.head_dim**-0.5 if config.scale_attn_weights else 1.0
        if config.scale_attn_by_inverse_layer_idx:
            self.scaling /= float(layer_idx + 1)
        self.c_attn = Conv1D(3 * config.n_embd, config.n_embd)
        self.c_proj = Conv1D(config.n_embd, config.n_embd)
        self.attn_dropout = nn.Dropout(config.attn_pdrop)
        self.resid_dropout = nn.Dropout(config.resid_pdrop)

    def _heads(self, x: Tensor) -> Tensor:
        n, length, _ = x.shape
        return x.reshape(n, length, self.num_heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, x: Tensor, keep: Tensor | None, cache: KVCache | None) -> Tensor:
        """``x`` (N, T, E); ``keep`` a bool mask broadcastable to (N, heads, T, S) of the key positions each query
        may see (None: all); ``cache`` the past of this layer, extended in place."""
        q, k, v = self.c_attn(x).split(self.embed_dim, dim=2)
        q, k, v = self._heads(q), self._heads(k), self._heads(v)
        if cache is not None:
            start, end = cache.length, cache.length + x.shape[1]
            keys, values = cache.keys[self.layer_idx], cache.values[self.layer_idx]
            keys[:, :, start:end] = k.array
            values[:, :, start:end] = v.array
            k, v = Tensor._make(keys[:, :, :end]), Tensor._make(values[:, :, :end])
        dropout = self.attn_dropout.p if self.training else 0.0
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=dropout, scale=self.scaling)
        n, _, length, _ = context.shape
        out = context.permute(0, 2, 1, 3).reshape(n, length, self.embed_dim)
        return self.resid_dropout(self.c_proj(out))


class GPT2MLP(nn.Module):
    def __init__(self, config: GPT2Config) -> None:
        super().__init__()
        self.c_fc = Conv1D(config.inner_size, config.n_embd)
        self.c_proj = Conv1D(config.n_embd, config.inner_size)
        self.act = _ACTIVATIONS[config.activation_function]
        self.dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class GPT2Block(nn.Module):
    """``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``: (N, T, E) -> (N, T, E)."""

    def __init__(self, config: GPT2Config, layer_idx: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = GPT2Attention(config, layer_idx)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = GPT2MLP(config)

    def forward(self, x: Tensor, keep: Tensor | None, cache: KVCache | None) -> Tensor:
        x = x + self.attn(self.ln_1(x), keep, cache)
        return x + self.mlp(self.ln_2(x))


def _as_ids(value: Any, name: str, device: Any) -> Tensor:
    t = value if isinstance(value, Tensor) else hubkit.tensor(np.asarray(value, dtype=np.int64))
    if t.dtype.kind not in "iub":
        raise ArgumentError(f"GPT-2: {name} must hold integers, got dtype {t.dtype}")
    return t.to(device) if t.device != device else t


class GPT2Model(nn.Module):
    """The GPT-2 transformer: ids (N, T) -> hidden states (N, T, E) after ``ln_f``."""

    def __init__(self, config: GPT2Config | None = None) -> None:
        super().__init__()
        self.config = config = config or GPT2Config()
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList([GPT2Block(config, i) for i in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)

    def new_cache(self, batch: int, capacity: int | None = None) -> KVCache:
        """An empty cache for ``batch`` sequences of up to ``capacity`` positions (default: all positions)."""
        c = self.config
        capacity = c.n_positions if capacity is None else capacity
        return KVCache(c.n_layer, batch, c.n_head, capacity, c.n_embd // c.n_head, self.wte.weight.array)

    def forward(self, input_ids: Any, attention_mask: Any = None, position_ids: Any = None,
                past_key_values: KVCache | None = None) -> Tensor:  # fmt: skip
        """``input_ids`` (N, T); ``attention_mask`` (N, past + T), 1 for tokens and 0 for padding;
        ``position_ids`` (N, T) default ``past .. past + T - 1``; ``past_key_values`` is extended in place."""
        device = self.wte.weight.device
        ids = _as_ids(input_ids, "input_ids", device)
        if ids.ndim != 2:
            raise ShapeError(f"GPT-2: input_ids must be (batch, length), got shape {tuple(ids.shape)}")
        n, length = ids.shape
        past = 0 if past_key_values is None else past_key_values.length
        total = past + length
        if total > self.config.n_positions:
            raise ShapeError(f"GPT-2: {total} positions ({past} cached + {length} new), but the model has "
                             f"{self.config.n_positions}; shorten the input")  # fmt: skip
        if past_key_values is not None and total > past_key_values.capacity:
            raise ShapeError(f"GPT-2: the cache holds {past_key_values.capacity} positions, {total} are needed")
        if position_ids is None:
            positions = hubkit.arange(past, total, device=device).reshape(1, length)
        else:
            positions = _as_ids(position_ids, "position_ids", device)
        xp = get_array_module(self.wte.weight.array)
        keep = None
        if length > 1:  # a single new token may see every past position
            keep = xp.arange(total)[None, :] <= (xp.arange(length) + past)[:, None]
        if attention_mask is not None:
            mask = _as_ids(attention_mask, "attention_mask", device).array
            if mask.shape != (n, total):
                raise ShapeError(f"GPT-2: attention_mask must be (batch, past + length) = {(n, total)}, "
                                 f"got {tuple(mask.shape)}")  # fmt: skip
            pad = (mask != 0)[:, None, None, :]
            keep = pad if keep is None else (keep[None, None] & pad)
        keep_t = None if keep is None else Tensor._make(keep)
        x = self.drop(self.wte(ids) + self.wpe(positions))
        for block in self.h:
            x = block(x, keep_t, past_key_values)
        if past_key_values is not None:
            past_key_values.length = total
        return self.ln_f(x)


class GPT2LMHeadModel(nn.Module, CausalLMMixin, TokenizeMixin):
    """GPT-2 with its language-model head: ids (N, T) -> :class:`CausalLMOutput` (logits (N, T, vocab)).

    ``lm_head.weight`` is ``transformer.wte.weight`` (one parameter under two keys, as in torch). Weights load
    by Hugging Face key; checkpoints saved from ``GPT2Model`` (no ``transformer.`` prefix, as the ``gpt2`` hub
    file is) go through :func:`hf_gpt2_state` first. ``generate``, ``stream`` and ``perplexity`` come from
    :class:`~hubkit.zoo.text.generation.CausalLMMixin`; text needs ``model.tokenizer`` (set by ``hubkit.load``).
    """

    def __init__(self, config: GPT2Config | None = None) -> None:
        super().__init__()
        self.config = config = config or GPT2Config()
        self.transformer = GPT2Model(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight
        self.tokenizer: Any = None
        self._init_weights()

    def _init_weights(self) -> None:
        """Hugging Face's initialisation: N(0, 0.02) weights and embeddings, zero biases, unit LayerNorms, and
        the residual projections (``c_proj``) scaled down to N(0, 0.02 / sqrt(2 * n_layer))."""
        std = self.config.initializer_range
        for name, module in self.named_modules():
            if isinstance(module, (Conv1D, nn.Embedding)):
                scale = 1 / math.sqrt(2 * self.config.n_layer) if name.endswith("c_proj") else 1.0
                nn.init.normal_(module.weight, 0.0, std * scale)
                if isinstance(module, Conv1D):
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    @classmethod
    def from_pretrained_dir(cls, directory: str | os.PathLike) -> GPT2LMHeadModel:
        """A GPT-2 from a Hugging Face model folder (``config.json``, ``model.safetensors`` or
        ``pytorch_model.bin``, and ``tokenizer.json`` or ``vocab.json`` + ``merges.txt`` when present), loaded
        strictly, in eval mode."""
        from hubkit.hub import load_checkpoint
        from hubkit.zoo.text.tokenizer_json import load_tokenizer

        folder = Path(directory)
        if not folder.is_dir():
            raise CheckpointError(f"{folder} is not a directory; expected a Hugging Face model folder")
        config = GPT2Config.from_json_file(folder / "config.json")
        files = [folder / name for name in ("model.safetensors", "pytorch_model.bin") if (folder / name).is_file()]
        if not files:
            raise CheckpointError(f"{folder} has config.json but no weights; expected model.safetensors or "
                                  "pytorch_model.bin")  # fmt: skip
        model = cls(config)
        model.load_state_dict(hf_gpt2_state(dict(load_checkpoint(files[0]))), strict=True)
        model.eval()
        if any((folder / f).is_file() for f in ("tokenizer.json", "vocab.json")):
            model.tokenizer = load_tokenizer(folder)
        return model

    def forward(self, input_ids: Any, attention_mask: Any = None, position_ids: Any = None,
                past_key_values: KVCache | None = None, use_cache: bool = False) -> CausalLMOutput:  # fmt: skip
        """``input_ids`` (N, T) -> logits (N, T, vocab). With ``use_cache`` and no cache given, a new one is
        started; the returned cache continues where these positions end."""
        if use_cache and past_key_values is None:
            past_key_values = self.transformer.new_cache(np.shape(input_ids)[0])
        hidden = self.transformer(input_ids, attention_mask, position_ids, past_key_values)
        return CausalLMOutput(self.lm_head(hidden), past_key_values)

    # CausalLMMixin hooks
    def _forward_logits(self, ids: np.ndarray, cache: KVCache | None, last_only: bool = False) -> np.ndarray:
        hidden = self.transformer(ids, past_key_values=cache)[0]
        if last_only:  # only the next token's scores are needed: skip the vocabulary projection of the rest
            hidden = hidden[-1:]
        return self.lm_head(hidden).cpu().numpy()

    def _new_cache(self, capacity: int) -> KVCache:
        return self.transformer.new_cache(1, capacity)

    def _max_positions(self) -> int:
        return self.config.n_positions


def hf_gpt2_state(state: dict[str, Any]) -> dict[str, Any]:
    """A Hugging Face GPT-2 checkpoint's tensors under ``GPT2LMHeadModel``'s keys: the ``transformer.`` prefix
    added where missing (``GPT2Model`` files), the causal-mask buffers (``attn.bias``, ``attn.masked_bias``) of
    older files dropped, and ``lm_head.weight`` supplied from ``wte`` when absent (it is tied)."""
    if not any(k.startswith("transformer.") for k in state):
        state = {("transformer." + k if not k.startswith("lm_head.") else k): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.endswith((".attn.bias", ".attn.masked_bias"))}
    if "lm_head.weight" not in state and "transformer.wte.weight" in state:
        state["lm_head.weight"] = state["transformer.wte.weight"]
    return state


# ---------------------------------------------------------------- registry

GPT2_CONFIG = GPT2Config()
DISTILGPT2_CONFIG = GPT2Config(n_layer=6)
GPT2_MEDIUM_CONFIG = GPT2Config(n_embd=1024, n_layer=24, n_head=16)


def _hf(repo: str, revision: str, name: str) -> str:
    return f"https://huggingface.co/{repo}/resolve/{revision}/{name}"


_GPT2_TEXT = TextPreprocessing(vocab="tokenizer.json", do_lower_case=False, max_length=1024,
                               tokenizer="byte-level-bpe")  # fmt: skip
_MIT = "MIT"


def _weights(repo: str, revision: str, *, sha256: str | None, size: int | None, tokenizer_sha256: str | None,
             tokenizer_size: int | None, num_params: int, license: str, recipe: str) -> WeightTag:  # fmt: skip
    # sha256=None: upstream publishes no hash we could verify here; the first download records the file's sha256
    # in the cache and later loads are checked against that record.
    return WeightTag(
        tag="HF", url=_hf(repo, revision, "model.safetensors"), sha256=sha256, size=size,
        file_size_mb=None if size is None else round(size / 1e6, 1), format="safetensors", license=license,
        source=f"https://huggingface.co/{repo}/tree/{revision}", recipe=recipe, num_params=num_params,
        num_classes=0, preprocessing=_GPT2_TEXT,
        files=(ExtraFile(name="tokenizer.json", url=_hf(repo, revision, "tokenizer.json"), sha256=tokenizer_sha256,
                         size=tokenizer_size),),
        transforms_factory=tokenizer_for_weights,
    )  # fmt: skip


# Revisions and hashes: shared/reference/anchors-wave2.md §5.5 (gpt2); distilgpt2's from its pinned manifests.
@register_model(
    "gpt2",
    modality="text", task="text-generation",
    description="OpenAI GPT-2 small (124M): byte-level BPE language model, generate/stream/perplexity",
    paper="https://cdn.openai.com/better-language-models/language_models_are_unsupervised_multitask_learners.pdf",
    weights=(_weights("openai-community/gpt2", "607a30d783dfa663caf39e06633721c8d4cfcd7e",
                      sha256="248dfc3911869ec493c76e65bf2fcf7f615828b0254c12b473182f0f81d3a707", size=548105171,
                      tokenizer_sha256=None, tokenizer_size=None, num_params=124439808, license=_MIT,
                      recipe="OpenAI's WebText language model, converted by Hugging Face"),),
    default="HF", key_map=hf_gpt2_state,
)  # fmt: skip
def gpt2(**kwargs: Any) -> GPT2LMHeadModel:
    """OpenAI's GPT-2 small: 12 layers, 768 wide, 12 heads, 1024 positions, 50,257 byte-level BPE tokens
    (124M parameters)."""
    return GPT2LMHeadModel(GPT2_CONFIG, **kwargs)


@register_model(
    "distilgpt2",
    modality="text", task="text-generation",
    description="DistilGPT2 (82M): GPT-2 small distilled to 6 layers, same tokenizer",
    paper="https://arxiv.org/abs/1910.01108",
    weights=(_weights("distilbert/distilgpt2", "2290a62682d06624634c1f46a6ad5be0f47f38aa",
                      sha256="e1ff18884359fe8beb795a5f414feb85a6ce3d929ad019c0d958c039d2b94a1b", size=352824413,
                      tokenizer_sha256="8414cab924d8b9b33013f0d221c5862f365ee9be39c5c2bfae8a5a9e970478a6",
                      tokenizer_size=1355256, num_params=81912576, license="Apache-2.0",
                      recipe="knowledge distillation from GPT-2 on OpenWebTextCorpus"),),
    default="HF", key_map=hf_gpt2_state,
)  # fmt: skip
def distilgpt2(**kwargs: Any) -> GPT2LMHeadModel:
    """Hugging Face's DistilGPT2: GPT-2 small distilled into 6 layers (82M parameters)."""
    return GPT2LMHeadModel(DISTILGPT2_CONFIG, **kwargs)


@register_model(
    "gpt2-medium",
    modality="text", task="text-generation",
    description="OpenAI GPT-2 medium (355M): 24 layers, 1024 wide",
    paper="https://cdn.openai.com/better-language-models/language_models_are_unsupervised_multitask_learners.pdf",
    weights=(_weights("openai-community/gpt2-medium", "6dcaa7a952f72f9298047fd5137cd6e4f05f41da", sha256=None,
                      size=None, tokenizer_sha256=None, tokenizer_size=None, num_params=354823168, license=_MIT,
                      recipe="OpenAI's WebText language model, converted by Hugging Face"),),
    default="HF", key_map=hf_gpt2_state,
)  # fmt: skip
def gpt2_medium(**kwargs: Any) -> GPT2LMHeadModel:
    """OpenAI's GPT-2 medium: 24 layers, 1024 wide, 16 heads (355M parameters)."""
    return GPT2LMHeadModel(GPT2_MEDIUM_CONFIG, **kwargs)
