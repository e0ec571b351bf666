"""Distance modules: PairwiseDistance and CosineSimilarity (PyTorch's names, attributes and defaults)."""

from __future__ import annotations

from hubkit.nn import functional as F
from hubkit.nn.module import Module
from hubkit.tensor import Tensor


class PairwiseDistance(Module):
    """``||x1 - x2 + eps||_p`` over the last dim: ``(*, D)`` and ``(*, D)`` -> ``(*)`` (``(*, 1)`` with keepdim).

    The order is kept as ``norm``, torch's attribute name.
    """

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> None:
        super().__init__()
        self.norm = p
        self.eps = eps
        self.keepdim = keepdim

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return F.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)


class CosineSimilarity(Module):
    """Cosine similarity of ``x1`` and ``x2`` (broadcast together) along ``dim``, which is reduced."""

    def __init__(self, dim: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return F.cosine_similarity(x1, x2, self.dim, self.eps)
