"""nn.Transformer and its encoder/decoder stacks and layers (Vaswani et al., 2017), PyTorch's names.

Submodule names are torch's (``encoder.layers.0.self_attn.in_proj_weight``, ``decoder.norm.weight``, ...), so
a torch state dict loads by key. Shapes, with ``S`` the source length, ``T`` the target length, ``N`` the batch
and ``E = d_model``: sequences are ``(S, N, E)``, ``(N, S, E)`` with ``batch_first=True`` or unbatched
``(S, E)``; attention masks ``(T, S)`` or ``(N * nhead, T, S)``; key padding masks ``(N, S)`` (``(S,)``
unbatched). A bool mask marks with True the positions that may NOT be attended to (the opposite of
``scaled_dot_product_attention``'s bool mask); a float mask is added to the attention scores.

``is_causal`` flags are hints that the mask given is the causal one. hubkit always applies the mask it is
given; when the flag is set and no mask is given it builds the causal mask (torch raises there instead).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np

from hubkit.errors import ArgumentError, ShapeError
from hubkit.nn import functional as F
from hubkit.nn import init
from hubkit.nn.module import Module
from hubkit.nn.modules.attention import MultiheadAttention
from hubkit.nn.modules.container import ModuleList
from hubkit.nn.modules.dropout import Dropout
from hubkit.nn.modules.linear import Linear
from hubkit.nn.modules.normalization import LayerNorm
from hubkit.tensor import Tensor, get_default_dtype, tensor

Activation = str | Callable[[Tensor], Tensor]


def _activation_fn(activation: Activation, owner: str) -> Callable[[Tensor], Tensor]:
    """torch's legacy strings ``"relu"``/``"gelu"`` as the functional ops; any callable (a Module too) as is."""
    if isinstance(activation, str):
        if activation == "relu":
            return F.relu
        if activation == "gelu":
            return F.gelu
        raise ArgumentError(f"{owner}: activation should be 'relu', 'gelu' or a callable, not {activation!r}")
    if not callable(activation):
        raise ArgumentError(f"{owner}: activation should be 'relu', 'gelu' or a callable, got {activation!r}")
    return activation


def _check_heads(d_model: int, nhead: int, owner: str) -> None:
    if d_model <= 0 or nhead <= 0 or d_model % nhead:
        raise ArgumentError(
            f"{owner}: d_model ({d_model}) must be positive and divisible by nhead ({nhead}); each of the nhead "
            f"heads attends over d_model / nhead features"
        )


def _clones(module: Module, n: int, owner: str) -> ModuleList:
    """``n`` independent deep copies of ``module`` (torch's ``_get_clones``): the layers share no parameters."""
    if n < 0:
        raise ArgumentError(f"{owner}: num_layers must be >= 0, got {n}")
    return ModuleList([copy.deepcopy(module) for _ in range(n)])


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward block, each with a residual connection, dropout and LayerNorm.

    ``forward(src, src_mask, src_key_padding_mask, is_causal)``: ``src (S, N, E)`` (``(N, S, E)`` with
    ``batch_first``, or ``(S, E)``) -> the same shape. ``norm_first=True`` normalizes before each block
    (pre-LN) instead of after it (post-LN). ``activation`` is ``"relu"``, ``"gelu"`` or a unary callable.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: Activation = F.relu, layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        _check_heads(d_model, nhead, "TransformerEncoderLayer")
        factory = {"device": device, "dtype": dtype}
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                            **factory)  # fmt: skip
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **factory)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **factory)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        # set last, as torch does, so a Module activation is the last child in the repr and the state dict
        self.activation = _activation_fn(activation, "TransformerEncoderLayer")

    def forward(self, src: Tensor, src_mask: Any = None, src_key_padding_mask: Any = None,
                is_causal: bool = False) -> Tensor:
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._ff_block(self.norm2(x))
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._ff_block(x))

    def _sa_block(self, x: Tensor, attn_mask: Any, key_padding_mask: Any, is_causal: bool) -> Tensor:
        out = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False,
                             is_causal=is_causal)[0]  # fmt: skip
        return self.dropout1(out)

    def _ff_block(self, x: Tensor) -> Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class TransformerDecoderLayer(Module):
    """Self-attention, attention over the encoder's ``memory``, then a feed-forward block (each residual).

    ``forward(tgt, memory, tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask,
    tgt_is_causal, memory_is_causal)``: ``tgt (T, N, E)``, ``memory (S, N, E)`` (batch first or unbatched
    alike) -> ``(T, N, E)``. ``tgt_mask (T, T)``, ``memory_mask (T, S)``.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: Activation = F.relu, layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        _check_heads(d_model, nhead, "TransformerDecoderLayer")
        factory = {"device": device, "dtype": dtype}
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=batch_first, bias=bias,
                                            **factory)  # fmt: skip
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=batch_first,
                                                 bias=bias, **factory)  # fmt: skip
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **factory)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **factory)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.activation = _activation_fn(activation, "TransformerDecoderLayer")

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Any = None, memory_mask: Any = None,
                tgt_key_padding_mask: Any = None, memory_key_padding_mask: Any = None, tgt_is_causal: bool = False,
                memory_is_causal: bool = False) -> Tensor:
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask, memory_is_causal)
            return x + self._ff_block(self.norm3(x))
        x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
        x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal))
        return self.norm3(x + self._ff_block(x))

    def _sa_block(self, x: Tensor, attn_mask: Any, key_padding_mask: Any, is_causal: bool) -> Tensor:
        out = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False,
                             is_causal=is_causal)[0]  # fmt: skip
        return self.dropout1(out)

    def _mha_block(self, x: Tensor, mem: Tensor, attn_mask: Any, key_padding_mask: Any, is_causal: bool) -> Tensor:
        out = self.multihead_attn(x, mem, mem, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                                  need_weights=False, is_causal=is_causal)[0]  # fmt: skip
        return self.dropout2(out)

    def _ff_block(self, x: Tensor) -> Tensor:
        return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class TransformerEncoder(Module):
    """``num_layers`` deep copies of ``encoder_layer`` run in turn, then the optional ``norm``.

    ``forward(src, mask, src_key_padding_mask, is_causal)``: ``src (S, N, E)`` -> ``(S, N, E)``.
    ``enable_nested_tensor`` and ``mask_check`` are accepted for torch compatibility, but hubkit has no nested
    tensors and always takes torch's plain path (``use_nested_tensor`` is False): positions marked in
    ``src_key_padding_mask`` are computed like the others. torch's nested fast path (eval mode under no_grad)
    writes zeros at those positions instead; every non-padded position agrees either way.
    """

    def __init__(self, encoder_layer: Module, num_layers: int, norm: Module | None = None,
                 enable_nested_tensor: bool = True, mask_check: bool = True) -> None:
        super().__init__()
        self.layers = _clones(encoder_layer, num_layers, "TransformerEncoder")
        self.num_layers = num_layers
        self.norm = norm
        self.enable_nested_tensor = enable_nested_tensor
        self.use_nested_tensor = False
        self.mask_check = mask_check

    def forward(self, src: Tensor, mask: Any = None, src_key_padding_mask: Any = None,
                is_causal: bool | None = None) -> Tensor:
        output = src
        for layer in self.layers:
            output = layer(output, src_mask=mask, is_causal=is_causal is True,
                           src_key_padding_mask=src_key_padding_mask)  # fmt: skip
        if self.norm is not None:
            output = self.norm(output)
        return output


class TransformerDecoder(Module):
    """``num_layers`` deep copies of ``decoder_layer`` run in turn over ``memory``, then the optional ``norm``.

    ``forward(tgt, memory, tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask,
    tgt_is_causal, memory_is_causal)``: ``tgt (T, N, E)``, ``memory (S, N, E)`` -> ``(T, N, E)``.
    """

    def __init__(self, decoder_layer: Module, num_layers: int, norm: Module | None = None) -> None:
        super().__init__()
        self.layers = _clones(decoder_layer, num_layers, "TransformerDecoder")
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Any = None, memory_mask: Any = None,
                tgt_key_padding_mask: Any = None, memory_key_padding_mask: Any = None,
                tgt_is_causal: bool | None = None, memory_is_causal: bool = False) -> Tensor:
        output = tgt
        for layer in self.layers:
            output = layer(output, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                           tgt_key_padding_mask=tgt_key_padding_mask, memory_key_padding_mask=memory_key_padding_mask,
                           tgt_is_causal=tgt_is_causal is True, memory_is_causal=memory_is_causal)  # fmt: skip
        if self.norm is not None:
            output = self.norm(output)
        return output


class Transformer(Module):
    """The encoder-decoder Transformer: ``forward(src, tgt, ...)`` -> ``(T, N, E)``.

    ``src (S, N, E)`` and ``tgt (T, N, E)`` (``(N, S, E)`` / ``(N, T, E)`` with ``batch_first``, or unbatched
    ``(S, E)`` / ``(T, E)``); masks as in the module docstring: ``src_mask (S, S)``, ``tgt_mask (T, T)``,
    ``memory_mask (T, S)``, ``src_key_padding_mask`` and ``memory_key_padding_mask (N, S)``,
    ``tgt_key_padding_mask (N, T)``. ``custom_encoder`` / ``custom_decoder`` replace the built stacks. Every
    parameter with more than one dim starts Xavier-uniform, as in torch.
    """

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6, num_decoder_layers: int = 6,
                 dim_feedforward: int = 2048, dropout: float = 0.1, activation: Activation = F.relu,
                 custom_encoder: Module | None = None, custom_decoder: Module | None = None,
                 layer_norm_eps: float = 1e-5, batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        layer_args = (d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first, norm_first,
                      bias)  # fmt: skip
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            self.encoder = TransformerEncoder(TransformerEncoderLayer(*layer_args, **factory), num_encoder_layers,
                                              LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory))  # fmt: skip
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            self.decoder = TransformerDecoder(TransformerDecoderLayer(*layer_args, **factory), num_decoder_layers,
                                              LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory))  # fmt: skip
        self._reset_parameters()
        self.d_model = d_model
        self.nhead = nhead
        self.batch_first = batch_first

    def _reset_parameters(self) -> None:
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p)

    def forward(self, src: Tensor, tgt: Tensor, src_mask: Any = None, tgt_mask: Any = None, memory_mask: Any = None,
                src_key_padding_mask: Any = None, tgt_key_padding_mask: Any = None,
                memory_key_padding_mask: Any = None, src_is_causal: bool | None = None,
                tgt_is_causal: bool | None = None, memory_is_causal: bool = False) -> Tensor:
        if src.ndim not in (2, 3) or tgt.ndim != src.ndim:
            raise ShapeError(
                f"Transformer: src and tgt must both be 3-d (batched) or both 2-d (unbatched), got "
                f"{tuple(src.shape)} and {tuple(tgt.shape)}"
            )
        batch_dim = 0 if self.batch_first else 1
        if src.ndim == 3 and src.shape[batch_dim] != tgt.shape[batch_dim]:
            raise ShapeError(
                f"Transformer: the batch size of src {tuple(src.shape)} and tgt {tuple(tgt.shape)} must be equal "
                f"(dim {batch_dim} with batch_first={self.batch_first})"
            )
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise ShapeError(
                f"Transformer: the feature size of src {tuple(src.shape)} and tgt {tuple(tgt.shape)} must equal "
                f"d_model={self.d_model}"
            )
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask, memory_key_padding_mask=memory_key_padding_mask,
                            tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)  # fmt: skip

    @staticmethod
    def generate_square_subsequent_mask(sz: int, device: Any = None, dtype: Any = None) -> Tensor:
        """The causal mask ``(sz, sz)``: ``-inf`` above the diagonal (the future), ``0.0`` elsewhere."""
        mask = np.triu(np.full((sz, sz), -np.inf), 1)
        return tensor(mask, dtype=dtype if dtype is not None else get_default_dtype(), device=device)
