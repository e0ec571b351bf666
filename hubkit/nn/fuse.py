"""The inference fast path: fold BatchNorm into the layer before it and fuse the ReLU after it.

``fuse_for_inference(model)`` returns a copy of ``model`` in eval mode in which every
``Conv1d/Conv2d/Linear -> BatchNorm -> ReLU`` run inside a ``Sequential`` (and any run named in
``modules_to_fuse``) is one ``FusedLayer``: the batch norm's running statistics and affine are
folded into the layer's weight and bias, and the ReLU is applied in place on the layer's output
when no gradient is being recorded. The original model is not modified. Outputs equal the
original's in eval mode within float32 rounding; the saving is one full pass over each activation
for the batch norm and one for the ReLU, plus their allocations.

The fold uses the running statistics, so the fused model is for inference only.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np

from hubkit.autograd import is_grad_enabled
from hubkit.errors import ArgumentError
from hubkit.nn import functional as F
from hubkit.nn.module import Module
from hubkit.nn.modules.activation import ReLU
from hubkit.nn.modules.container import Sequential
from hubkit.nn.modules.conv import Conv1d, Conv2d
from hubkit.nn.modules.linear import Identity, Linear
from hubkit.nn.modules.normalization import BatchNorm1d, BatchNorm2d, _BatchNorm
from hubkit.nn.parameter import Parameter
from hubkit.tensor import Tensor

_HEADS = (Conv1d, Conv2d, Linear)
_BN_FOR = {Conv1d: BatchNorm1d, Conv2d: BatchNorm2d, Linear: BatchNorm1d}


class FusedLayer(Module):
    """A Conv1d/Conv2d/Linear whose weight and bias already include a folded batch norm, optionally followed
    by a ReLU. ``(N, C, *) -> (N, OC, *)`` like the wrapped ``layer``.
    """

    def __init__(self, layer: Module, relu: bool) -> None:
        super().__init__()
        self.layer = layer
        self.relu = relu

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        out = self.layer(input)
        if not self.relu:
            return out
        if out.requires_grad and is_grad_enabled():
            return F.relu(out)
        out._xp.maximum(out.array, 0, out=out.array)  # nothing records this output: rectify it in place
        return out

    def extra_repr(self) -> str:
        return f"relu={self.relu}"


def _fold_batch_norm(layer: Module, bn: _BatchNorm) -> None:
    """Fold ``bn``'s eval-mode affine map ``(z - mean) / sqrt(var + eps) * gamma + beta`` into ``layer``."""
    out_channels = layer.weight.shape[0]
    if bn.num_features != out_channels:
        raise ArgumentError(
            f"cannot fold {bn} into {type(layer).__name__} with {out_channels} output channels: channel counts differ"
        )
    if bn.running_mean is None:
        raise ArgumentError(f"cannot fold {bn}: it has no running statistics (track_running_stats=False)")
    w = layer.weight.array
    xp = layer.weight._xp
    mean = bn.running_mean.array.astype(np.float64)
    var = bn.running_var.array.astype(np.float64)
    gamma = bn.weight.array.astype(np.float64) if bn.weight is not None else 1.0
    beta = bn.bias.array.astype(np.float64) if bn.bias is not None else 0.0
    scale = gamma / xp.sqrt(var + bn.eps)
    bias = layer.bias.array.astype(np.float64) if layer.bias is not None else 0.0
    new_w = w.astype(np.float64) * scale.reshape((-1,) + (1,) * (w.ndim - 1))
    new_b = (bias - mean) * scale + beta
    layer.weight = Parameter(Tensor._make(new_w.astype(w.dtype)), requires_grad=False)
    layer.bias = Parameter(Tensor._make(xp.asarray(new_b, dtype=w.dtype)), requires_grad=False)


def _fuse_run(parent: Module, names: Sequence[str]) -> None:
    """Replace ``parent.<names[0]>`` by a FusedLayer and the batch norm / ReLU after it by Identity."""
    missing = [n for n in names if parent._modules.get(n) is None]
    if missing:
        raise ArgumentError(f"cannot fuse {list(names)}: {type(parent).__name__} has no submodule(s) {missing}")
    mods = [parent._modules[n] for n in names]
    head, rest = mods[0], mods[1:]
    if not isinstance(head, _HEADS):
        raise ArgumentError(f"can only fuse runs starting with Conv1d, Conv2d or Linear, got {type(head).__name__}")
    relu = False
    for i, m in enumerate(rest):
        if isinstance(m, _BatchNorm) and i == 0:
            _fold_batch_norm(head, m)
        elif isinstance(m, ReLU) and i == len(rest) - 1:
            relu = True
        else:
            kinds = [type(x).__name__ for x in mods]
            raise ArgumentError(f"cannot fuse {kinds}: expected a Conv/Linear, then an optional BatchNorm, "
                                "then an optional ReLU")
    parent._modules[names[0]] = FusedLayer(head, relu)
    for n in names[1:]:
        parent._modules[n] = Identity()


def _fuse_sequential(seq: Sequential) -> None:
    names = list(seq._modules)
    i = 0
    while i < len(names):
        head = seq._modules[names[i]]
        if type(head) not in _HEADS:
            i += 1
            continue
        run = [names[i]]
        nxt = seq._modules.get(names[i + 1]) if i + 1 < len(names) else None
        if type(nxt) is _BN_FOR[type(head)] and nxt.running_mean is not None:
            run.append(names[i + 1])
            nxt = seq._modules.get(names[i + 2]) if i + 2 < len(names) else None
        if type(nxt) is ReLU:
            run.append(names[i + len(run)])
        if len(run) > 1:
            _fuse_run(seq, run)
        i += len(run)


def fuse_for_inference(model: Module, modules_to_fuse: Sequence[Sequence[str]] = ()) -> Module:
    """A fused copy of ``model`` for inference (eval mode); ``model`` itself is left unchanged.

    Inside every ``Sequential``, runs of ``Conv1d/Conv2d/Linear``, then an optional ``BatchNorm``, then an
    optional ``ReLU`` are fused automatically. Modules called from a custom ``forward`` are fused only when
    listed: ``modules_to_fuse=[["conv1", "bn1"], ["layer1.0.conv1", "layer1.0.bn1"]]`` (dotted names, like
    ``torch.ao.quantization.fuse_modules``). List a ReLU only if the forward uses that module once, right
    after the batch norm: it becomes an Identity.
    """
    fused = copy.deepcopy(model).eval()
    for group in modules_to_fuse:
        if len(group) < 2:
            raise ArgumentError(f"each entry of modules_to_fuse needs at least two names, got {list(group)}")
        parents = {name.rpartition(".")[0] for name in group}
        if len(parents) != 1:
            raise ArgumentError(f"modules to fuse must share one parent module, got {list(group)}")
        parent = fused.get_submodule(parents.pop())
        _fuse_run(parent, [name.rpartition(".")[2] for name in group])
    for m in list(fused.modules()):
        if isinstance(m, Sequential):
            _fuse_sequential(m)
    return fused
