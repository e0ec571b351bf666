"""RoBERTa (Liu et al. 2019) with Hugging Face's ``RobertaModel`` / ``RobertaForMaskedLM`` keys.

The encoder is BERT's (same module names: ``encoder.layer.<i>.attention.self.query`` ...); the differences are
in the embeddings and the head: position ids count only real tokens and start after the padding id
(``padding_idx + 1``, so ``max_position_embeddings`` is 514 for 512 tokens), one token type, LayerNorm eps 1e-5,
and the masked-LM head ``lm_head.{dense, layer_norm, decoder, bias}`` (exact GELU; ``decoder.weight`` is the word
embedding matrix, ``decoder.bias`` is ``bias``). The tokenizer is GPT-2's byte-level BPE with RoBERTa's
``<s> ... </s>`` specials (:mod:`hubkit.zoo.text.bpe`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

import hubkit
import hubkit.nn.functional as F
from hubkit import nn
from hubkit._backend import get_array_module
from hubkit.errors import ShapeError
from hubkit.hub.registry import ExtraFile, TextPreprocessing, WeightTag, register_model
from hubkit.tensor import Tensor
from hubkit.zoo.text.bert import BertConfig, BertEncoder, BertOutput, BertPooler, _as_ids
from hubkit.zoo.text.fill_mask import FillMaskMixin
from hubkit.zoo.text.presets import TokenizeMixin, tokenizer_for_weights

__all__ = ["RobertaConfig", "RobertaForMaskedLM", "RobertaModel", "roberta_base"]


@dataclass(frozen=True)
class RobertaConfig(BertConfig):
    """BERT's config fields with RoBERTa's defaults (``roberta-base``)."""

    vocab_size: int = 50265
    max_position_embeddings: int = 514
    type_vocab_size: int = 1
    layer_norm_eps: float = 1e-5
    pad_token_id: int = 1
    bos_token_id: int = 0
    eos_token_id: int = 2


class RobertaEmbeddings(nn.Module):
    """Word + token-type + position embeddings, LayerNorm, dropout: ids (N, L) -> (N, L, hidden). Position ids
    are ``padding_idx + cumsum(ids != padding_idx)`` on real tokens and ``padding_idx`` on padding."""

    def __init__(self, config: RobertaConfig) -> None:
        super().__init__()
        self.padding_idx = config.pad_token_id
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size,
                                                padding_idx=config.pad_token_id)  # fmt: skip

    def forward(self, input_ids: Tensor, token_type_ids: Tensor) -> Tensor:
        real = input_ids.array != self.padding_idx
        positions = get_array_module(real).cumsum(real, axis=1) * real + self.padding_idx
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings(Tensor._make(positions.astype("int64")))
        return self.dropout(self.LayerNorm(x))


class RobertaModel(nn.Module, TokenizeMixin):
    """A RoBERTa encoder: ids (N, L) -> :class:`~hubkit.zoo.text.bert.BertOutput` (hidden states (N, L, H),
    pooled (N, H) or None). ``attention_mask`` (N, L) is 1 for tokens and 0 for padding."""

    def __init__(self, config: RobertaConfig | None = None, add_pooling_layer: bool = True) -> None:
        super().__init__()
        self.config = config or RobertaConfig()
        self.embeddings = RobertaEmbeddings(self.config)
        self.encoder = BertEncoder(self.config)
        self.pooler = BertPooler(self.config) if add_pooling_layer else None
        std = 0.02
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, 0.0, std)
                if isinstance(module, nn.Linear) and module.bias is not None:
                    nn.init.zeros_(module.bias)
                if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                    module.weight.array[module.padding_idx] = 0
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def hidden_states(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None) -> Tensor:
        """The last layer's hidden states (N, L, H)."""
        device = self.embeddings.word_embeddings.weight.device
        ids = _as_ids(input_ids, "input_ids", device)
        if ids.ndim != 2:
            raise ShapeError(f"RobertaModel: input_ids must be (batch, length), got shape {tuple(ids.shape)}")
        n, length = ids.shape
        limit = self.config.max_position_embeddings - self.config.pad_token_id - 1
        if length > limit:
            raise ShapeError(f"RobertaModel: {length} tokens per sequence, but this model has positions for {limit}; "
                             "truncate the input")  # fmt: skip
        types = hubkit.zeros((n, length), dtype=ids.dtype, device=device) if token_type_ids is None else _as_ids(
            token_type_ids, "token_type_ids", device)  # fmt: skip
        keep = None
        if attention_mask is not None:
            mask = _as_ids(attention_mask, "attention_mask", device)
            if tuple(mask.shape) != (n, length):
                raise ShapeError(
                    f"RobertaModel: attention_mask {tuple(mask.shape)} must match input_ids {(n, length)}"
                )
            keep = (mask != 0).reshape(n, 1, 1, length)
        return self.encoder(self.embeddings(ids, types), keep)

    def forward(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None) -> BertOutput:
        hidden = self.hidden_states(input_ids, attention_mask, token_type_ids)
        return BertOutput(hidden, self.pooler(hidden) if self.pooler is not None else None)


class RobertaLMHead(nn.Module):
    """``decoder(layer_norm(gelu(dense(h))))`` -> (N, L, vocab)."""

    def __init__(self, config: RobertaConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)
        self.bias = nn.Parameter(hubkit.zeros(config.vocab_size))
        self.decoder.bias = self.bias

    def forward(self, h: Tensor) -> Tensor:
        return self.decoder(self.layer_norm(F.gelu(self.dense(h))))


class RobertaForMaskedLM(nn.Module, FillMaskMixin, TokenizeMixin):
    """RoBERTa with its masked-LM head (keys ``roberta.*`` without a pooler, ``lm_head.*``): ids (N, L) -> logits
    (N, L, vocab); ``fill_mask("The capital of France is <mask>.")`` as transformers' pipeline."""

    def __init__(self, config: RobertaConfig | None = None) -> None:
        super().__init__()
        self.config = config or RobertaConfig()
        self.roberta = RobertaModel(self.config, add_pooling_layer=False)
        self.lm_head = RobertaLMHead(self.config)
        nn.init.normal_(self.lm_head.dense.weight, 0.0, 0.02)
        nn.init.zeros_(self.lm_head.dense.bias)
        self.lm_head.decoder.weight = self.roberta.embeddings.word_embeddings.weight
        self.tokenizer: Any = None

    def forward(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None) -> Tensor:
        return self.lm_head(self.roberta.hidden_states(input_ids, attention_mask, token_type_ids))

    def _mlm_logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return self(input_ids, attention_mask).cpu().numpy()


def hf_roberta_mlm_state(state: dict[str, Any]) -> dict[str, Any]:
    """A Hugging Face RoBERTa checkpoint under ``RobertaForMaskedLM``'s keys: ``roberta.`` added where missing,
    the pooler and the old position-id buffer dropped, tied decoder weight and bias supplied when absent."""
    if not any(k.startswith("roberta.") for k in state):
        state = {(k if k.startswith("lm_head.") else "roberta." + k): v for k, v in state.items()}
    state = {k: v for k, v in state.items()
             if not k.startswith("roberta.pooler.") and not k.endswith("embeddings.position_ids")}  # fmt: skip
    if "lm_head.decoder.weight" not in state and "roberta.embeddings.word_embeddings.weight" in state:
        state["lm_head.decoder.weight"] = state["roberta.embeddings.word_embeddings.weight"]
    if "lm_head.bias" not in state and "lm_head.decoder.bias" in state:
        state["lm_head.bias"] = state["lm_head.decoder.bias"]
    if "lm_head.decoder.bias" not in state and "lm_head.bias" in state:
        state["lm_head.decoder.bias"] = state["lm_head.bias"]
    return state


# ---------------------------------------------------------------- registry


_REPO, _REVISION = "FacebookAI/roberta-base", "e2da8e2f811d1448a5b465c236feacd80ffbac7b"


def _hf(name: str) -> str:
    return f"https://huggingface.co/{_REPO}/resolve/{_REVISION}/{name}"


# Revision and the sha256 of model.safetensors (498,818,054 bytes) and tokenizer.json from pinned manifests of this
# revision (the weights' hash is the Hub's LFS metadata).
@register_model(
    "roberta-base",
    modality="text", task="fill-mask",
    description="RoBERTa-base (125M) with its masked-LM head; GPT-2's byte-level BPE tokenizer",
    paper="https://arxiv.org/abs/1907.11692",
    weights=(WeightTag(
        tag="HF", url=_hf("model.safetensors"),
        sha256="5bde1d28afb363d0103324efeb5afc8b2b397fe5e04beabb9b1ef355255ade81", size=498818054,
        file_size_mb=498.8, format="safetensors", license="MIT",
        source=f"https://huggingface.co/{_REPO}/tree/{_REVISION}",
        recipe="masked-LM pre-training on 160GB of English text (BookCorpus, Wikipedia, CC-News, OpenWebText, "
               "Stories)",
        num_params=124697433, num_classes=0,
        preprocessing=TextPreprocessing(vocab="tokenizer.json", do_lower_case=False, max_length=512,
                                        tokenizer="byte-level-bpe"),
        files=(ExtraFile(name="tokenizer.json", url=_hf("tokenizer.json"),
                         sha256="847bbeab6174d66a88898f729d52fa8d355fafe1bea101cf960dd404581df70e", size=None),),
        transforms_factory=tokenizer_for_weights,
    ),),
    default="HF", key_map=hf_roberta_mlm_state,
)  # fmt: skip
def roberta_base(**kwargs: Any) -> RobertaForMaskedLM:
    """FacebookAI's RoBERTa-base (12 layers, 768 wide, 125M parameters) with its masked-LM head."""
    return RobertaForMaskedLM(RobertaConfig(), **kwargs)
