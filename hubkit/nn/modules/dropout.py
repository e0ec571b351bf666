"""Dropout: element-wise, channel-wise (Dropout1d/2d/3d) and alpha dropout for SELU networks."""

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


class _DropoutNd(Dropout):
    _function: str  # the functional's name, looked up at call time like the other layers' F.xxx calls

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return getattr(F, self._function)(input, self.p, self.training)


class Dropout1d(_DropoutNd):
    """Zeroes whole channels of ``(N, C, L)`` / ``(C, L)`` with probability ``p`` in training."""

    _function = "dropout1d"


class Dropout2d(_DropoutNd):
    """Zeroes whole channels of ``(N, C, H, W)`` with probability ``p`` in training."""

    _function = "dropout2d"


class Dropout3d(_DropoutNd):
    """Zeroes whole channels of ``(N, C, D, H, W)`` / ``(C, D, H, W)`` with probability ``p`` in training."""

    _function = "dropout3d"


class AlphaDropout(_DropoutNd):
    """Alpha dropout (for SELU networks): keeps zero mean and unit variance."""

    _function = "alpha_dropout"


class FeatureAlphaDropout(_DropoutNd):
    """Alpha dropout of whole channels."""

    _function = "feature_alpha_dropout"
