"""Dropout."""

from __future__ import annotations

from hubkit.errors import ArgumentError
from hubkit.nn import functional as F
from hubkit.nn.module import Module
from hubkit.tensor import Tensor


class Dropout(Module):
    """Zeroes each element with probability ``p`` in training and scales the rest by ``1 / (1 - p)``.

    Identity in eval mode. Shape is unchanged. Draws from hubkit's global generator.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ArgumentError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return F.dropout(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
