"""The two-convolution CNN of Fashion-MNIST's benchmark table (zalandoresearch/fashion-mnist README).

Row followed: "2 Conv Layers with max pooling (Tensorflow) >300 epochs", preprocessing none, Fashion test
accuracy 0.916, code ``benchmark/convnet.py`` in that repository (the TensorFlow layers tutorial's network):
conv 5x5 1->32 'same' + ReLU, max-pool 2x2/2, conv 5x5 32->64 'same' + ReLU, max-pool 2x2/2, dense 3136->1024
+ ReLU, dropout 0.4, dense 1024->10. Trained there with plain SGD, lr 0.001, batch 400. The README marks its
table as submitted and not re-tested by Zalando. One difference: TensorFlow flattens NHWC maps, this model
flattens NCHW (same parameter count; only matters when importing TensorFlow weights, which do not exist).

No upstream weights exist; the architecture is registered so ``hubkit.load("fashion_mnist_cnn")`` builds it.
Keys: ``features.0`` / ``features.3`` convs, ``classifier.0`` / ``classifier.3`` linears.
"""

from __future__ import annotations

from typing import Any

from hubkit import nn
from hubkit.hub.registry import ModelEntry, register
from hubkit.nn import functional as F
from hubkit.tensor import Tensor

__all__ = ["FashionMNISTCNN", "fashion_mnist_cnn"]


class FashionMNISTCNN(nn.Module):
    """``(N, in_channels, 28, 28) -> (N, num_classes)`` logits."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, dropout: float = 0.4) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(32, 64, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(64 * 7 * 7, 1024),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(1024, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(F.flatten(self.features(x), 1))


def fashion_mnist_cnn(**kwargs: Any) -> FashionMNISTCNN:
    """The Fashion-MNIST benchmark's two-conv CNN: 3,274,634 parameters at 10 classes."""
    return FashionMNISTCNN(**kwargs)


register(ModelEntry(
    name="fashion_mnist_cnn", builder=fashion_mnist_cnn, modality="vision", task="image-classification",
    description="Two-conv + max-pool CNN of the Fashion-MNIST benchmark table (architecture only; published "
                "test accuracy 0.916)",
    paper="https://arxiv.org/abs/1708.07747",
))  # fmt: skip
