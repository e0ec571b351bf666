"""``linear_cross_entropy``: cross entropy of a linear projection (``torch.nn.functional.linear_cross_entropy``,
new in torch 2.14), and ``LinearCrossEntropyOptions``, torch's switch to its memory-saving chunked path.

hubkit computes torch's reference path for every call: ``cross_entropy(linear(input, W, b), target)``,
which is what the chunked path computes too, so the values and gradients are the same. ``options`` is
validated as torch validates it and otherwise changes nothing: hubkit materializes the full
``(N, num_classes)`` logits (torch's chunking only bounds that memory).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import numpy as np

from hubkit.errors import ArgumentError, ShapeError
from hubkit.nn.functional.loss import cross_entropy
from hubkit.ops.linalg import linear
from hubkit.tensor import Tensor, _as_dtype

_ACC_POLICIES = ("auto", "accurate", "compact")


@dataclasses.dataclass(slots=True, frozen=True)
class LinearCrossEntropyOptions:
    """torch's configuration of the chunked ``linear_cross_entropy`` (fields, defaults and checks as torch's);
    accepted by hubkit, which always computes the reference path (see the module docstring)."""

    allow_retain_graph: bool = False
    batch_chunk_size: int | None = None
    chunking_method: str | None = "auto"
    acc_policy: str = "auto"
    acc_dtype: Any = None

    def __post_init__(self) -> None:
        if self.acc_policy not in _ACC_POLICIES:
            raise ArgumentError(f"invalid acc_policy: {self.acc_policy!r}; expected one of "
                                f"{', '.join(map(repr, _ACC_POLICIES))}")
        if self.chunking_method is not None and self.chunking_method != "auto":
            name, sep, factor = self.chunking_method.partition(":")
            factor = factor if sep else "1"
            if not (name == "aspect_ratio" and factor.isdigit() and int(factor) > 0):
                raise ArgumentError(f"invalid chunking_method: {self.chunking_method!r}")
        if not (self.batch_chunk_size is None
                or (isinstance(self.batch_chunk_size, int) and self.batch_chunk_size > 0)):
            raise ArgumentError(f"batch_chunk_size must be positive int or None, got {self.batch_chunk_size!r}")
        if self.acc_dtype is not None and _as_dtype(self.acc_dtype) not in (np.float16, np.float32, np.float64):
            raise ArgumentError(f"acc_dtype must be one of {{None, float16, bfloat16, float32, float64}}, got "
                                f"{self.acc_dtype!r}. Pass acc_dtype=None to let the op pick automatically.")


def linear_cross_entropy(input: Tensor, linear_weight: Tensor, target: Tensor, *,  # noqa: A002
                         linear_bias: Tensor | None = None, weight: Tensor | None = None, reduction: str = "mean",
                         ignore_index: int | None = None, label_smoothing: float = 0.0,
                         options: LinearCrossEntropyOptions | None = None) -> Tensor:
    """``cross_entropy(linear(input, linear_weight, linear_bias), target, ...)``.

    ``input``: ``(N, in)`` or ``(in,)``; ``linear_weight``: ``(C, in)``, or ``(C, d1, ..., dK, in)`` for a
    K-dimensional loss (logits ``(N, C, d1, ..., dK)``); ``linear_bias``: ``(C, d1, ..., dK)``; ``target``:
    class indices ``(N, d1, ..., dK)`` or class probabilities shaped like the logits. ``ignore_index=None``
    means -100 for index targets (and must stay None for probability targets).
    """
    if input.ndim not in (1, 2):
        raise ShapeError(f"expected input with dimensionality 1 or 2, got {input.ndim}")
    if linear_weight.ndim < 2:
        raise ShapeError(f"expected linear_weight with dimensionality at least 2, got {linear_weight.ndim}")
    batches, in_features = tuple(input.shape[:-1]), input.shape[-1]
    if in_features != linear_weight.shape[-1]:
        raise ShapeError(f"expected equal input and linear_weight last dimensions (in_features), got "
                         f"{input.shape[-1]} and {linear_weight.shape[-1]}, respectively")
    num_classes, out_features = linear_weight.shape[0], tuple(linear_weight.shape[1:-1])
    if linear_bias is not None and tuple(linear_bias.shape) != (num_classes, *out_features):
        raise ShapeError(f"expected linear_bias shape {(num_classes, *out_features)}, got "
                         f"{tuple(linear_bias.shape)}")
    if out_features and not batches:
        raise ShapeError(f"K-dimensional loss defined by linear_weight shape {tuple(linear_weight.shape)} requires "
                         f"batched input, (N, {in_features}), got unbatched input with shape {tuple(input.shape)}")
    logits_shape = (*batches, num_classes, *out_features)
    probabilities = tuple(target.shape) == logits_shape
    if probabilities and ignore_index is not None:
        raise ArgumentError("ignore_index cannot be specified when target contains probabilities")
    ignore_index = -100 if ignore_index is None else ignore_index
    if options is not None and (out_features or label_smoothing != 0.0 or reduction not in ("mean", "sum", "none")):
        # torch's warning where its chunked path does not apply (hubkit's result is the same either way)
        warnings.warn(f"linear_cross_entropy: ``options`` ignored; chunked path needs reduction in "
                      f"{{'mean','sum','none'}}, label_smoothing == 0, out_features == (). Got "
                      f"reduction={reduction!r}, label_smoothing={label_smoothing}, out_features={out_features}.",
                      stacklevel=2)
    if out_features:
        rows = math.prod(out_features, start=num_classes)
        linear_weight = linear_weight.reshape(rows, in_features)
        linear_bias = None if linear_bias is None else linear_bias.reshape(rows)
    logits = linear(input, linear_weight, linear_bias).reshape(*logits_shape)
    return cross_entropy(logits, target, weight=weight, reduction=reduction, ignore_index=ignore_index,
                         label_smoothing=label_smoothing)
