"""Normalization layers: BatchNorm1d/2d/3d, InstanceNorm1d/2d/3d, LocalResponseNorm, CrossMapLRN2d, LayerNorm,
GroupNorm (PyTorch's buffers, defaults and repr)."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hubkit.errors import ArgumentError, ShapeError
from hubkit.nn import functional as F
from hubkit.nn import init
from hubkit.nn.module import Module
from hubkit.nn.parameter import Parameter
from hubkit.tensor import Tensor, int64, ones, zeros


def _register_affine(module: Module, shape: tuple[int, ...], affine: bool, bias: bool, dtype: Any,
                     device: Any) -> None:
    """PyTorch's per-element affine of a normalization layer: ``weight`` (ones) and ``bias`` (zeros), or None."""
    module.register_parameter("weight", Parameter(ones(shape, dtype=dtype, device=device)) if affine else None)
    module.register_parameter(
        "bias", Parameter(zeros(shape, dtype=dtype, device=device)) if affine and bias else None
    )


def _reset_affine(module: Module) -> None:
    if module.weight is not None:
        init.ones_(module.weight)
    if module.bias is not None:
        init.zeros_(module.bias)


class _BatchNorm(Module):
    _expected_dims: tuple[int, ...] = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device: Any = None, dtype: Any = None, *,
                 bias: bool = True) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        _register_affine(self, (num_features,), affine, bias, dtype, device)
        if track_running_stats:
            self.register_buffer("running_mean", zeros((num_features,), dtype=dtype, device=device))
            self.register_buffer("running_var", ones((num_features,), dtype=dtype, device=device))
            self.register_buffer("num_batches_tracked", zeros((), dtype=int64, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.array[...] = 0
            self.running_var.array[...] = 1
            self.num_batches_tracked.array[...] = 0

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        _reset_affine(self)

    def _check_input_dim(self, input: Tensor) -> None:  # noqa: A002
        if input.ndim not in self._expected_dims:
            dims = " or ".join(f"{d}D" for d in self._expected_dims)
            raise ShapeError(
                f"{type(self).__name__}: expected {dims} input (got {input.ndim}D input of shape {tuple(input.shape)})"
            )
        if input.shape[1] != self.num_features:
            raise ShapeError(
                f"{type(self).__name__}: expected {self.num_features} channels in dim 1, got input of shape "
                f"{tuple(input.shape)}"
            )

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        self._check_input_dim(input)
        # the buffers and parameters straight from their dicts: this runs once per layer and call
        buffers, params, training = self._buffers, self._parameters, self.training
        running_mean, running_var = buffers.get("running_mean"), buffers.get("running_var")
        factor = 0.0 if self.momentum is None else self.momentum
        if training and self.track_running_stats:
            tracked = buffers["num_batches_tracked"]
            tracked.array += 1
            if self.momentum is None:  # cumulative moving average over all batches seen so far
                factor = 1.0 / float(tracked.array)
        use_batch_stats = training or (running_mean is None and running_var is None)
        track = not training or self.track_running_stats
        return F.batch_norm(input, running_mean if track else None, running_var if track else None,
                            params.get("weight"), params.get("bias"), use_batch_stats, factor, self.eps)

    def _load_from_state_dict(self, state_dict: Mapping[str, Any], prefix: str, missing: list[str],
                              mismatched: list[tuple[str, tuple, tuple]], used: set[str]) -> None:
        # Checkpoints saved before num_batches_tracked existed (torchvision's ResNet files among them) lack it;
        # like torch, keep the current count instead of reporting the key as missing.
        before = len(missing)
        super()._load_from_state_dict(state_dict, prefix, missing, mismatched, used)
        key = prefix + "num_batches_tracked"
        if key in missing[before:]:
            missing.remove(key)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalization over ``(N, C)`` or ``(N, C, L)``, per channel C.

    Training normalizes with batch statistics and updates ``running_mean``/``running_var`` with
    ``momentum`` (``None``: cumulative average); eval uses the running statistics.
    """

    _expected_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalization over ``(N, C, H, W)``, per channel C (see BatchNorm1d for the statistics)."""

    _expected_dims = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch normalization over ``(N, C, D, H, W)``, per channel C (see BatchNorm1d for the statistics)."""

    _expected_dims = (5,)


class _InstanceNorm(_BatchNorm):
    """Each (sample, channel) plane normalized over its own positions; torch's defaults: no affine, no
    running statistics. With ``track_running_stats`` eval mode uses the running statistics instead."""

    _no_batch_dim = 0

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = False,
                 track_running_stats: bool = False, device: Any = None, dtype: Any = None, *,
                 bias: bool = True) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        if input.ndim not in (self._no_batch_dim, self._no_batch_dim + 1):
            raise ShapeError(f"{type(self).__name__}: expected {self._no_batch_dim}D or {self._no_batch_dim + 1}D "
                             f"input (got {input.ndim}D input of shape {tuple(input.shape)})")
        feature_dim = input.ndim - self._no_batch_dim
        if input.shape[feature_dim] != self.num_features:
            if self.affine:
                raise ShapeError(f"{type(self).__name__}: expected input's size at dim={feature_dim} to match "
                                 f"num_features ({self.num_features}), but got input {tuple(input.shape)}")
            warnings.warn(f"input's size at dim={feature_dim} does not match num_features. You can silence this "
                          "warning by not passing in num_features, which is not used because affine=False",
                          stacklevel=2)
        if input.ndim == self._no_batch_dim:
            return self._instance_norm(input.unsqueeze(0)).squeeze(0)
        return self._instance_norm(input)

    def _instance_norm(self, input: Tensor) -> Tensor:  # noqa: A002
        return F.instance_norm(input, self.running_mean, self.running_var, self.weight, self.bias,
                               self.training or not self.track_running_stats,
                               0.0 if self.momentum is None else self.momentum, self.eps)


class InstanceNorm1d(_InstanceNorm):
    """Instance normalization of ``(N, C, L)`` or unbatched ``(C, L)``."""

    _no_batch_dim = 2


class InstanceNorm2d(_InstanceNorm):
    """Instance normalization of ``(N, C, H, W)`` or unbatched ``(C, H, W)``."""

    _no_batch_dim = 3


class InstanceNorm3d(_InstanceNorm):
    """Instance normalization of ``(N, C, D, H, W)`` or unbatched ``(C, D, H, W)``."""

    _no_batch_dim = 4


class LocalResponseNorm(Module):
    """``(N, C, *)`` divided by ``(k + alpha / size * sum of squares over size neighbouring channels) ** beta``."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> None:
        super().__init__()
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class LayerNorm(Module):
    """Normalizes over the trailing ``normalized_shape`` dims: ``(*, *normalized_shape)`` in and out."""

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (int(normalized_shape),)
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        _register_affine(self, self.normalized_shape, elementwise_affine, bias, dtype, device)

    def reset_parameters(self) -> None:
        _reset_affine(self)

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


class GroupNorm(Module):
    """Normalizes ``(N, C, *)`` over groups of ``C / num_groups`` channels, with a per-channel affine."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 device: Any = None, dtype: Any = None, *, bias: bool = True) -> None:
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups:
            raise ArgumentError(
                f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups ({num_groups})"
            )
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        _register_affine(self, (num_channels,), affine, bias, dtype, device)

    def reset_parameters(self) -> None:
        _reset_affine(self)

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


def _cross_map_window(channels: int, size: int) -> Any:
    """The (C, C) 0/1 matrix of which squared channels torch's CrossMapLRN2d sums for each output channel.

    torch's forward (a port of Lua torch's SpatialCrossMapLRN) builds the sums with a running window:
    channel 0 sums the first ``pre_pad = (size - 1) // 2 + 1`` channels, channel c adds channel
    ``c + pre_pad - 1`` (while it exists) and drops channel ``c - pre_pad`` only once ``c > pre_pad``, so
    channel 0 never leaves and its windows are not the symmetric ones ``local_response_norm`` uses. The
    same recurrence run on indicator vectors gives the matrix, so hubkit's outputs are torch's.
    """
    pre_pad = int((size - 1) / 2 + 1)
    window = np.zeros((channels, channels))
    window[0, : min(pre_pad, channels)] = 1
    for c in range(1, channels):
        window[c] = window[c - 1]
        if c < channels - pre_pad + 1:
            window[c, c + pre_pad - 1] += 1
        if c > pre_pad:
            window[c, c - pre_pad] -= 1
    return window


class CrossMapLRN2d(Module):
    """Local response normalization across channels of ``(N, C, H, W)``, torch's legacy ``CrossMapLRN2d``:
    ``y = x * (k + alpha / size * s) ** -beta`` with ``s`` the sum of squares over torch's running channel
    window (see ``_cross_map_window``; it differs from ``LocalResponseNorm``'s for ``C > (size - 1) // 2 + 1``).

    The forward pass equals torch's. The backward is autograd's exact gradient of it; torch's hand-written
    backward is not (torch's own gradcheck of CrossMapLRN2d fails), so gradients differ from torch's.
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1) -> None:
        super().__init__()
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        if input.ndim != 4:
            raise ShapeError(f"CrossMapLRN2d: Expected input to be 4D, got {input.ndim}D instead.")
        window = Tensor._make(input._xp.asarray(_cross_map_window(input.shape[1], self.size), dtype=input.dtype))
        sums = F.matmul(window, F.reshape(input * input, input.shape[0], input.shape[1], -1))
        scale = F.reshape(sums, *input.shape) * (self.alpha / self.size) + self.k
        return input * scale ** -self.beta

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class RMSNorm(Module):
    """Root-mean-square normalization over the trailing ``normalized_shape`` dims: ``(*, *normalized_shape)``
    in and out, ``weight: normalized_shape`` (ones) when ``elementwise_affine``; ``eps=None`` means the input
    dtype's machine epsilon, as in torch."""

    def __init__(self, normalized_shape: int | Sequence[int], eps: float | None = None,
                 elementwise_affine: bool = True, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (int(normalized_shape),)
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(ones(self.normalized_shape, dtype=dtype, device=device))
        else:
            self.register_parameter("weight", None)

    def reset_parameters(self) -> None:
        if self.weight is not None:
            init.ones_(self.weight)

    def forward(self, x: Tensor) -> Tensor:
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
