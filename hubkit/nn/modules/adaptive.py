"""AdaptiveLogSoftmaxWithLoss (Grave et al., 2016, "Efficient softmax approximation for GPUs")."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Sequence
from typing import Any

from hubkit.errors import ArgumentError, IndexOutOfRangeError, ShapeError
from hubkit.nn import functional as F
from hubkit.nn.module import Module
from hubkit.nn.modules.container import ModuleList, Sequential
from hubkit.nn.modules.linear import Linear
from hubkit.ops.shape import cat
from hubkit.tensor import Tensor

_ASMoutput = namedtuple("_ASMoutput", ["output", "loss"])


class AdaptiveLogSoftmaxWithLoss(Module):
    """Log-softmax over ``n_classes`` split by frequency at ``cutoffs``: the ``cutoffs[0]`` most frequent
    classes and one entry per tail cluster go through the ``head`` Linear; cluster ``i`` has its own
    two-layer projection (``in_features -> in_features // div_value**(i+1) -> cluster size``) in ``tail``.

    ``forward(input (N, in_features), target (N,))`` returns ``(output, loss)``: ``output (N,)`` the
    log-probability of each target, ``loss`` their negated mean (unbatched ``(in_features,)`` and ``()`` too).
    ``log_prob(input)`` gives the full ``(N, n_classes)`` log-probabilities, ``predict(input)`` their argmax.
    Parameter names and state-dict keys are torch's (``head.weight``, ``tail.0.0.weight``, ...).
    """

    def __init__(self, in_features: int, n_classes: int, cutoffs: Sequence[int], div_value: float = 4.0,
                 head_bias: bool = False, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        cutoffs = list(cutoffs)
        if len(cutoffs) == 0:
            raise ArgumentError("cutoffs should be a sequence of length larger than 0")
        if (cutoffs != sorted(cutoffs) or min(cutoffs) <= 0 or max(cutoffs) > n_classes - 1
                or len(set(cutoffs)) != len(cutoffs) or any(int(c) != c for c in cutoffs)):
            raise ArgumentError("cutoffs should be a sequence of unique, positive integers sorted in an increasing "
                                "order, where each value is between 1 and n_classes-1")
        self.in_features = in_features
        self.n_classes = n_classes
        self.cutoffs = cutoffs + [n_classes]
        self.div_value = div_value
        self.head_bias = head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        self.head = Linear(in_features, self.head_size, bias=head_bias, device=device, dtype=dtype)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            hidden = int(in_features // (div_value ** (i + 1)))
            size = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(Sequential(Linear(in_features, hidden, bias=False, device=device, dtype=dtype),
                                        Linear(hidden, size, bias=False, device=device, dtype=dtype)))

    def reset_parameters(self) -> None:
        self.head.reset_parameters()
        for i2h, h2o in self.tail:
            i2h.reset_parameters()
            h2o.reset_parameters()

    def forward(self, input_: Tensor, target_: Tensor) -> _ASMoutput:
        if target_.ndim == 1:
            if input_.shape[0] != target_.shape[0]:
                raise ShapeError("Input and target should have the same size in the batch dimension.")
            if input_.ndim != 2:
                raise ShapeError(f"1D target tensor expects 2D input tensors, but found inputs with size "
                                 f"{tuple(input_.shape)}")
        elif target_.ndim == 0:
            if input_.ndim != 1:
                raise ShapeError(f"0D target tensor expects 1D input tensors, but found inputs with size "
                                 f"{tuple(input_.shape)}")
        else:
            raise ShapeError("0D or 1D target tensor expected, multi-target not supported")
        batched = target_.ndim > 0
        input = input_ if batched else input_.unsqueeze(0)  # noqa: A001
        target = target_ if batched else target_.unsqueeze(0)
        xp = target._xp
        t = target.array
        output = input.new_zeros(target.shape[0])
        gather = xp.zeros(t.shape, dtype=t.dtype)
        used = 0
        bounds = [0] + self.cutoffs
        for i in range(len(bounds) - 1):
            low, high = bounds[i], bounds[i + 1]
            mask = (t >= low) & (t < high)
            rows = xp.flatnonzero(mask)
            if rows.size == 0:
                continue
            if i == 0:
                gather[rows] = t[rows]
            else:
                rows_t = Tensor._make(rows)
                cluster = F.log_softmax(self.tail[i - 1](input.index_select(0, rows_t)), dim=1)
                local = cluster.gather(1, Tensor._make((t[rows] - low)[:, None])).squeeze(1)
                gather[rows] = self.shortlist_size + i - 1
                output = output.index_copy(0, rows_t, local)
            used += rows.size
        if used != t.shape[0]:
            raise IndexOutOfRangeError(f"Target values should be in [0, {self.n_classes - 1}], but values in range "
                                       f"[{int(t.min())}, {int(t.max())}] were found. ")
        head = F.log_softmax(self.head(input), dim=1)
        output = output + head.gather(1, Tensor._make(gather[:, None])).squeeze(1)
        loss = (-output).mean()
        if not batched:
            output = output.squeeze(0)
        return _ASMoutput(output, loss)

    def _get_full_log_prob(self, input: Tensor, head_output: Tensor) -> Tensor:  # noqa: A002
        head = F.log_softmax(head_output, dim=1)
        parts = [head[:, : self.shortlist_size]]
        for i in range(self.n_clusters):
            cluster = F.log_softmax(self.tail[i](input), dim=1)
            parts.append(cluster + head[:, self.shortlist_size + i].unsqueeze(1))
        return cat(parts, dim=1)

    def log_prob(self, input: Tensor) -> Tensor:  # noqa: A002
        """Log-probabilities of every class: ``(N, in_features) -> (N, n_classes)``."""
        return self._get_full_log_prob(input, self.head(input))

    def predict(self, input: Tensor) -> Tensor:  # noqa: A002
        """The most probable class of each row, ``(N, in_features) -> (N,)``; the tail clusters are evaluated
        only for rows whose head prediction is a cluster."""
        head_output = self.head(input)
        output = head_output.argmax(dim=1)
        outside = (output >= self.shortlist_size).array
        if not outside.any():
            return output
        if outside.all():
            return self._get_full_log_prob(input, head_output).argmax(dim=1)
        rows = Tensor._make(input._xp.flatnonzero(outside))
        best = self._get_full_log_prob(input.index_select(0, rows), head_output.index_select(0, rows)).argmax(dim=1)
        return output.index_copy(0, rows, best)
