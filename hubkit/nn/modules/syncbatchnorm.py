"""SyncBatchNorm: batch normalization whose statistics cover the batches of every rank of a process group.

In training, with an initialized process group of more than one rank, each rank normalizes its own batch with
the mean and variance of all ranks' batches together, so N ranks with batches of any sizes compute exactly what
one process computes on the concatenated batch (forward, running statistics and input gradient). Everywhere
else (eval mode, no process group, a world of one, a rank outside ``process_group``) it is ``BatchNorm``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hubkit._backend import get_array_module
from hubkit.autograd import Function
from hubkit.errors import ArgumentError, ShapeError
from hubkit.kernels.generic import channel_axes, channel_shape
from hubkit.nn.module import Module
from hubkit.nn.modules.lazy import LazyModuleMixin
from hubkit.nn.modules.normalization import _BatchNorm, _InstanceNorm
from hubkit.tensor import Tensor


class _SyncBatchNorm(Function):
    """``x`` (N_r, C, *) on rank r, ``weight``/``bias`` (C,) or None -> (N_r, C, *), normalized with the mean
    and biased variance over all ranks' (N_r, *) values of each channel; ``running_mean``/``running_var``
    (C,) arrays or None are updated in place with torch's rule (the variance unbiased by the global count).

    A fused Function because the statistics need a collective between two halves of the arithmetic. Forward
    all-gathers each rank's (count, mean, sum of squared deviations) and combines them weighted by count (Chan
    et al.'s pairwise formula): uneven and empty batches are exact, and unlike an all-reduce of sums of
    squares nothing cancels when the mean is large against the spread. Backward all-reduces the per-channel
    sums of ``gy`` and ``gy * xhat``, the two terms through which every value of the global batch reaches
    every other. The ``weight``/``bias`` gradients stay this rank's own sums, as in torch: summed (or, by
    DistributedDataParallel, averaged) over ranks they are the single-process gradients.
    """

    def __init__(self, running_mean: Any, running_var: Any, momentum: float, eps: float, group: Any) -> None:
        self.running_mean, self.running_var = running_mean, running_var
        self.momentum, self.eps, self.group = momentum, eps, group

    def forward(self, x: Any, weight: Any, bias: Any) -> Any:
        from hubkit.distributed import _api as dist

        xp = get_array_module(x)
        c = x.shape[1]
        shape, axes = channel_shape(x), channel_axes(x)
        count = x.size // c
        # rows: count, mean, sum of squared deviations; float64 so the combination adds no rounding of its own
        local = xp.zeros((3, c), dtype=np.float64)
        local[0] = count
        if count:
            mean = x.mean(axis=axes, dtype=np.float64)
            centered = x - mean.astype(x.dtype).reshape(shape)
            local[1] = mean
            local[2] = (centered * centered).sum(axis=axes, dtype=np.float64)
        gathered = xp.empty((dist.get_world_size(self.group), 3, c), dtype=np.float64)
        dist.all_gather_into_tensor(Tensor._make(gathered), Tensor._make(local), group=self.group)
        counts, means, m2s = gathered[:, 0], gathered[:, 1], gathered[:, 2]
        total = int(counts[:, 0].sum())
        if total <= 1:  # every rank sees the same counts, so all of them raise here and none waits in backward
            raise ShapeError(f"SyncBatchNorm: expected more than 1 value per channel when training, got "
                             f"{total} over all ranks (this rank's input {tuple(x.shape)})")
        mean = (counts * means).sum(axis=0) / total
        deviation = means - mean
        var = (m2s + counts * deviation * deviation).sum(axis=0) / total
        if self.running_mean is not None:
            self.running_mean *= 1 - self.momentum
            self.running_mean += (self.momentum * mean).astype(self.running_mean.dtype)
            self.running_var *= 1 - self.momentum
            self.running_var += (self.momentum * total / (total - 1) * var).astype(self.running_var.dtype)
        self.running_mean = self.running_var = None  # never keep the module's buffers alive
        inv_std = (1 / xp.sqrt(var + self.eps)).astype(x.dtype)
        xhat = (x - mean.astype(x.dtype).reshape(shape)) * inv_std.reshape(shape)
        y = xhat if weight is None else xhat * weight.reshape(shape)
        if bias is not None:
            y = y + bias.reshape(shape)
        need_x, need_w, _ = self.needs_input_grad
        self.xhat = xhat if need_x or need_w else None
        self.inv_std = inv_std if need_x else None
        self.weight = weight if need_x else None
        self.total = total
        return y

    def backward(self, gy: Any) -> tuple[Any, Any, Any]:
        from hubkit.distributed import _api as dist

        xp = get_array_module(gy)
        need_x, need_w, need_b = self.needs_input_grad
        shape, axes = channel_shape(gy), channel_axes(gy)
        sums = xp.zeros((2, gy.shape[1]), dtype=np.float64)  # rows: sum(gy), sum(gy * xhat)
        if need_x or need_b:
            sums[0] = gy.sum(axis=axes, dtype=np.float64)
        if need_x or need_w:
            sums[1] = (gy * self.xhat).sum(axis=axes, dtype=np.float64)
        gw = sums[1].astype(gy.dtype) if need_w else None
        gb = sums[0].astype(gy.dtype) if need_b else None
        gx = None
        if need_x:
            dist.all_reduce(Tensor._make(sums), group=self.group)
            scale = self.inv_std if self.weight is None else self.inv_std * self.weight
            means = (sums / self.total).astype(gy.dtype)
            mean_g, mean_gx = means[0], means[1]
            gx = gy - mean_g.reshape(shape)
            gx -= self.xhat * mean_gx.reshape(shape)
            gx *= scale.reshape(shape)
        return gx, gw, gb


class SyncBatchNorm(_BatchNorm):
    """Batch normalization over ``(N, C, *)`` (any number of dims >= 2) whose training statistics span every
    rank of ``process_group`` (default: the world), ``torch.nn.SyncBatchNorm``.

    Parameters, buffers and state-dict keys are BatchNorm's. Training with an initialized group of more than
    one rank normalizes with the mean and biased variance of all ranks' batches (of any sizes, empty ones
    included) and updates ``running_mean``/``running_var`` identically on every rank; backward gives each
    rank its part of the single-process input gradient. Otherwise (eval mode, no process group, one rank,
    this rank not in ``process_group``) it is BatchNorm on the local batch. Build one from a model's
    BatchNorm layers with :meth:`convert_sync_batchnorm` before wrapping the model in DistributedDataParallel.
    CPU tensors synchronize over the ``"mpi"`` backend, CUDA tensors over ``"nccl"``.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, process_group: Any = None, device: Any = None,
                 dtype: Any = None, *, bias: bool = True) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)
        self.process_group = process_group

    def _check_input_dim(self, input: Tensor) -> None:  # noqa: A002
        if input.ndim < 2:
            raise ShapeError(f"SyncBatchNorm: expected at least 2D input (N, C, *), got {input.ndim}D input of "
                             f"shape {tuple(input.shape)}")
        if input.shape[1] == 0:
            raise ShapeError(f"SyncBatchNorm: number of input channels should be non-zero, got input of shape "
                             f"{tuple(input.shape)}")
        if input.shape[1] != self.num_features:
            raise ShapeError(f"SyncBatchNorm: expected {self.num_features} channels in dim 1, got input of shape "
                             f"{tuple(input.shape)}")

    def _sync_group(self) -> Any:
        """The group to synchronize with in this forward, or None when BatchNorm's local statistics apply."""
        if not self.training:
            return None
        # imported here: hubkit.distributed sits above nn, and a model that never trains synced never pays for it
        from hubkit.distributed import _api as dist

        if not dist.is_initialized():
            return None
        group = dist.group.WORLD if self.process_group is None else self.process_group
        return group if dist.get_world_size(group) > 1 else None  # -1 for a rank outside the group

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        self._check_input_dim(input)
        group = self._sync_group()
        if group is None:
            return super().forward(input)
        factor = 0.0 if self.momentum is None else self.momentum
        running = (None, None)
        if self.track_running_stats:
            self.num_batches_tracked.array += 1
            if self.momentum is None:  # cumulative moving average over all batches seen so far
                factor = 1.0 / float(self.num_batches_tracked.array)
            running = (self.running_mean.array, self.running_var.array)
        return _SyncBatchNorm(*running, float(factor), float(self.eps), group)(input, self.weight, self.bias)

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group: Any = None) -> Module:
        """Replace every ``BatchNorm1d/2d/3d`` in ``module`` (recursively) by a SyncBatchNorm over
        ``process_group`` that holds the same ``weight``/``bias`` Parameters and running-statistics buffers
        (the same objects, so optimizers and state-dict keys are unchanged) and the same training mode.
        Returns ``module`` itself, or the new layer when ``module`` is a BatchNorm. Instance norms stay."""
        converted = module
        if isinstance(module, _BatchNorm) and not isinstance(module, _InstanceNorm):
            if isinstance(module, LazyModuleMixin) and module.has_uninitialized_params():
                raise ArgumentError(f"SyncBatchNorm.convert_sync_batchnorm: {type(module).__name__} has not seen "
                                    "an input yet, so its num_features is unknown; run one forward pass first")
            converted = cls(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats, process_group, bias=module.bias is not None)
            if module.affine:
                converted.weight = module.weight
                converted.bias = module.bias
            converted.running_mean = module.running_mean
            converted.running_var = module.running_var
            converted.num_batches_tracked = module.num_batches_tracked
            converted.training = module.training
            if hasattr(module, "qconfig"):
                converted.qconfig = module.qconfig
        for name, child in module.named_children():
            converted.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return converted
