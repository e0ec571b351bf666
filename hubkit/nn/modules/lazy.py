"""Lazy modules: layers that infer their input size at the first forward (torch's ``LazyModuleMixin``).

``nn.LazyLinear(10)`` holds ``UninitializedParameter`` s until its first call; that call gives them
shapes from the input (``in_features = input.shape[-1]``), initializes them as ``nn.Linear`` would, and
turns the module into a plain ``nn.Linear`` (its class changes, as in torch). The same objects stay
the module's parameters, so an optimizer built before the first forward updates them afterwards.

Before the first forward, ``state_dict()`` lists the uninitialized parameters themselves, and
``load_state_dict`` of initialized values gives them their shapes (the module keeps its lazy class
until it runs). ``module.to(device, dtype)`` before the first forward decides where and in what dtype
the parameters are created.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hubkit.autograd import no_grad
from hubkit.errors import ArgumentError, ShapeError
from hubkit.nn.module import Module
from hubkit.nn.modules.conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from hubkit.nn.modules.linear import Linear
from hubkit.nn.modules.normalization import (
    BatchNorm1d,
    BatchNorm2d,
    BatchNorm3d,
    InstanceNorm1d,
    InstanceNorm2d,
    InstanceNorm3d,
)
from hubkit.nn.parameter import UninitializedBuffer, UninitializedParameter, is_lazy
from hubkit.tensor import Tensor, int64, zeros


class LazyModuleMixin:
    """Mixin for modules whose parameters get their shapes from the first input.

    Subclasses create ``UninitializedParameter`` s in ``__init__`` and implement
    ``initialize_parameters(*args)``, which materializes them from the forward arguments. After that
    the module's class becomes ``cls_to_become`` (when set).
    """

    cls_to_become: type | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._initialize_hook = self.register_forward_pre_hook(self._infer_parameters)

    def has_uninitialized_params(self) -> bool:
        """Whether a parameter or buffer of this module (not its children) is still uninitialized."""
        return any(is_lazy(t) for t in (*self._parameters.values(), *self._buffers.values()))

    def initialize_parameters(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(f"initialize_parameters is not implemented for {type(self).__name__}")

    def _infer_parameters(self, module: Module, args: tuple) -> None:
        module.initialize_parameters(*args)
        if module.has_uninitialized_params():
            raise ArgumentError(f"module {module._get_name()} has not been fully initialized")
        module._initialize_hook.remove()
        del module._initialize_hook
        if module.cls_to_become is not None:
            module.__class__ = module.cls_to_become

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        # an uninitialized parameter appears as itself (a detached copy would have lost what it is)
        for name, param in self._parameters.items():
            if param is not None:
                destination[prefix + name] = param if is_lazy(param) or keep_vars else param.detach()
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = buf if is_lazy(buf) or keep_vars else buf.detach()

    def _load_from_state_dict(self, state_dict: Mapping[str, Any], prefix: str, missing: list[str],
                              mismatched: list[tuple[str, tuple, tuple]], used: set[str]) -> None:
        """Give uninitialized parameters and buffers the shapes of initialized values in ``state_dict``
        (torch's lazy load hook), then load as any module does. An uninitialized value loaded into an
        uninitialized parameter leaves it as it is."""
        still_lazy = []
        for store in (self._parameters, self._buffers):
            for name, target in store.items():
                key = prefix + name
                if target is None or key not in state_dict or not is_lazy(target):
                    continue
                value = state_dict[key]
                if is_lazy(value):
                    still_lazy.append(name)
                    continue
                with no_grad():
                    target.materialize(tuple(value.shape))
        if not still_lazy:
            super()._load_from_state_dict(state_dict, prefix, missing, mismatched, used)
            return
        # hide the entries that stay uninitialized from the generic loader (it compares shapes), keeping order
        params, buffers = dict(self._parameters), dict(self._buffers)
        try:
            for name in still_lazy:
                self._parameters.pop(name, None)
                self._buffers.pop(name, None)
            super()._load_from_state_dict(state_dict, prefix, missing, mismatched, used)
        finally:
            self._parameters.clear()
            self._parameters.update(params)
            self._buffers.clear()
            self._buffers.update(buffers)
        used.update(prefix + name for name in still_lazy)


def _new_uninitialized(device: Any, dtype: Any) -> UninitializedParameter:
    return UninitializedParameter(device=device, dtype=dtype)


# ---------------------------------------------------------------- Linear


class LazyLinear(LazyModuleMixin, Linear):
    """``nn.Linear`` whose ``in_features`` is ``input.shape[-1]`` of the first input: ``(*, in) -> (*, out)``."""

    cls_to_become = Linear

    def __init__(self, out_features: int, bias: bool = True, device: Any = None, dtype: Any = None) -> None:
        super().__init__(0, 0, False)
        self.weight = _new_uninitialized(device, dtype)
        self.out_features = out_features
        if bias:
            self.bias = _new_uninitialized(device, dtype)

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.in_features != 0:
            super().reset_parameters()

    def initialize_parameters(self, input: Tensor, *args: Any) -> None:  # noqa: A002
        if self.has_uninitialized_params():
            with no_grad():
                self.in_features = input.shape[-1]
                self.weight.materialize((self.out_features, self.in_features))
                if self.bias is not None:
                    self.bias.materialize((self.out_features,))
                self.reset_parameters()
        if self.in_features == 0:  # materialized by load_state_dict: take the size from the weights
            if input.shape[-1] != self.weight.shape[-1]:
                raise ShapeError(f"The in_features inferred from input: {input.shape[-1]} is not equal to "
                                 f"in_features from self.weight: {self.weight.shape[-1]}")
            self.in_features = input.shape[-1]


# ---------------------------------------------------------------- convolutions


class _LazyConvXdMixin(LazyModuleMixin):
    """``in_channels`` from dim 1 of a batched input (dim 0 of an unbatched one) at the first forward."""

    def _lazy_setup(self, out_channels: int, groups: int, bias: bool, device: Any, dtype: Any) -> None:
        if out_channels % groups:
            raise ArgumentError(f"{type(self).__name__}: out_channels ({out_channels}) must be divisible by "
                                f"groups ({groups})")
        self.weight = _new_uninitialized(device, dtype)
        self.out_channels = out_channels
        if bias:
            self.bias = _new_uninitialized(device, dtype)

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.in_channels != 0:
            super().reset_parameters()

    def _get_in_channels(self, input: Tensor) -> int:  # noqa: A002
        spatial = len(self.kernel_size)
        if input.ndim not in (spatial + 1, spatial + 2):
            raise ShapeError(f"Expected {spatial + 1}D (unbatched) or {spatial + 2}D (batched) input to "
                             f"{type(self).__name__}, but got input of size: {tuple(input.shape)}")
        return input.shape[1] if input.ndim == spatial + 2 else input.shape[0]

    def initialize_parameters(self, input: Tensor, *args: Any, **kwargs: Any) -> None:  # noqa: A002
        if self.has_uninitialized_params():
            self.in_channels = self._get_in_channels(input)
            if self.in_channels % self.groups:
                raise ArgumentError(f"{type(self).__name__}: in_channels ({self.in_channels}) of the input must be "
                                    f"divisible by groups ({self.groups})")
            with no_grad():
                if self.transposed:
                    self.weight.materialize((self.in_channels, self.out_channels // self.groups, *self.kernel_size))
                else:
                    self.weight.materialize((self.out_channels, self.in_channels // self.groups, *self.kernel_size))
                if self.bias is not None:
                    self.bias.materialize((self.out_channels,))
                self.reset_parameters()
        elif self.in_channels == 0:  # materialized by load_state_dict: the weights know the size
            self.in_channels = self.weight.shape[0] if self.transposed else self.weight.shape[1] * self.groups


class LazyConv1d(_LazyConvXdMixin, Conv1d):
    """``nn.Conv1d`` whose ``in_channels`` comes from the first input: ``(N, C_in, L) -> (N, C_out, L_out)``."""

    cls_to_become = Conv1d

    def __init__(self, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__(0, 0, kernel_size, stride, padding, dilation, groups, False, padding_mode)
        self._lazy_setup(out_channels, groups, bias, device, dtype)


class LazyConv2d(_LazyConvXdMixin, Conv2d):
    """``nn.Conv2d`` whose ``in_channels`` comes from the first input: ``(N, C_in, H, W) -> (N, C_out, H', W')``."""

    cls_to_become = Conv2d

    def __init__(self, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__(0, 0, kernel_size, stride, padding, dilation, groups, False, padding_mode)
        self._lazy_setup(out_channels, groups, bias, device, dtype)


class LazyConv3d(_LazyConvXdMixin, Conv3d):
    """``nn.Conv3d`` whose ``in_channels`` comes from the first input: ``(N, C_in, D, H, W) -> (N, C_out, ...)``."""

    cls_to_become = Conv3d

    def __init__(self, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__(0, 0, kernel_size, stride, padding, dilation, groups, False, padding_mode)
        self._lazy_setup(out_channels, groups, bias, device, dtype)


class LazyConvTranspose1d(_LazyConvXdMixin, ConvTranspose1d):
    """``nn.ConvTranspose1d`` whose ``in_channels`` comes from the first input."""

    cls_to_become = ConvTranspose1d

    def __init__(self, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 output_padding: Any = 0, groups: int = 1, bias: bool = True, dilation: Any = 1,
                 padding_mode: str = "zeros", device: Any = None, dtype: Any = None) -> None:
        super().__init__(0, 0, kernel_size, stride, padding, output_padding, groups, False, dilation, padding_mode)
        self._lazy_setup(out_channels, groups, bias, device, dtype)


class LazyConvTranspose2d(_LazyConvXdMixin, ConvTranspose2d):
    """``nn.ConvTranspose2d`` whose ``in_channels`` comes from the first input."""

    cls_to_become = ConvTranspose2d

    def __init__(self, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 output_padding: Any = 0, groups: int = 1, bias: bool = True, dilation: Any = 1,
                 padding_mode: str = "zeros", device: Any = None, dtype: Any = None) -> None:
        super().__init__(0, 0, kernel_size, stride, padding, output_padding, groups, False, dilation, padding_mode)
        self._lazy_setup(out_channels, groups, bias, device, dtype)


class LazyConvTranspose3d(_LazyConvXdMixin, ConvTranspose3d):
    """``nn.ConvTranspose3d`` whose ``in_channels`` comes from the first input."""

    cls_to_become = ConvTranspose3d

    def __init__(self, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 output_padding: Any = 0, groups: int = 1, bias: bool = True, dilation: Any = 1,
                 padding_mode: str = "zeros", device: Any = None, dtype: Any = None) -> None:
        super().__init__(0, 0, kernel_size, stride, padding, output_padding, groups, False, dilation, padding_mode)
        self._lazy_setup(out_channels, groups, bias, device, dtype)


# ---------------------------------------------------------------- normalization


class _LazyNormBase(LazyModuleMixin):
    """``num_features`` from the input's channel dim at the first forward; torch's defaults for the lazy
    norms: affine and running statistics on (also for the instance norms)."""

    def __init__(self, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device: Any = None, dtype: Any = None) -> None:
        super().__init__(0, eps, momentum, False, False)
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = _new_uninitialized(device, dtype)
            self.bias = _new_uninitialized(device, dtype)
        if track_running_stats:
            self.running_mean = UninitializedBuffer(device=device, dtype=dtype)
            self.running_var = UninitializedBuffer(device=device, dtype=dtype)
            self.num_batches_tracked = zeros((), dtype=int64, device=device)

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.num_features != 0:
            super().reset_parameters()

    def _feature_dim(self, input: Tensor) -> int:  # noqa: A002
        return 1

    def initialize_parameters(self, input: Tensor) -> None:  # noqa: A002
        if self.has_uninitialized_params():
            self.num_features = input.shape[self._feature_dim(input)]
            with no_grad():
                if self.affine:
                    self.weight.materialize((self.num_features,))
                    self.bias.materialize((self.num_features,))
                if self.track_running_stats:
                    self.running_mean.materialize((self.num_features,))
                    self.running_var.materialize((self.num_features,))
                self.reset_parameters()
        elif self.num_features == 0:  # materialized by load_state_dict (or nothing to materialize)
            self.num_features = input.shape[self._feature_dim(input)]


class LazyBatchNorm1d(_LazyNormBase, BatchNorm1d):
    """``nn.BatchNorm1d`` whose ``num_features`` is dim 1 of the first ``(N, C)`` or ``(N, C, L)`` input."""

    cls_to_become = BatchNorm1d


class LazyBatchNorm2d(_LazyNormBase, BatchNorm2d):
    """``nn.BatchNorm2d`` whose ``num_features`` is dim 1 of the first ``(N, C, H, W)`` input."""

    cls_to_become = BatchNorm2d


class LazyBatchNorm3d(_LazyNormBase, BatchNorm3d):
    """``nn.BatchNorm3d`` whose ``num_features`` is dim 1 of the first ``(N, C, D, H, W)`` input."""

    cls_to_become = BatchNorm3d


class _LazyInstanceNorm(_LazyNormBase):
    def _feature_dim(self, input: Tensor) -> int:  # noqa: A002
        # the channel dim of a batched input, dim 0 of an unbatched one (C, *spatial)
        return 0 if input.ndim == self._no_batch_dim else 1


class LazyInstanceNorm1d(_LazyInstanceNorm, InstanceNorm1d):
    """``nn.InstanceNorm1d`` whose ``num_features`` is the channel dim of the first input."""

    cls_to_become = InstanceNorm1d


class LazyInstanceNorm2d(_LazyInstanceNorm, InstanceNorm2d):
    """``nn.InstanceNorm2d`` whose ``num_features`` is the channel dim of the first input."""

    cls_to_become = InstanceNorm2d


class LazyInstanceNorm3d(_LazyInstanceNorm, InstanceNorm3d):
    """``nn.InstanceNorm3d`` whose ``num_features`` is the channel dim of the first input."""

    cls_to_become = InstanceNorm3d
