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
from hubkit.hub.registry import register_model
from hubkit.nn import functional as F
from hubkit.tensor import Tensor

from .backbone import Backbone, run_modules, sequential_stages

__all__ = ["FashionMNISTCNN", "fashion_mnist_cnn"]


class FashionMNISTCNN(Backbone, nn.Module):
    """``(N, in_channels, 28, 28) -> (N, num_classes)`` logits.

    Stages: each conv's ReLU (32 channels at full size, 64 at 1/2); the last max pool ends the trunk.
    """

    first_conv = "features.0"
    classifier_name = "classifier.3"
    head_modules = ("classifier",)
    default_input_size = (1, 28, 28)

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
        self.num_classes = num_classes
        self.num_features, self.head_hidden_size = 64, 1024
        self._stage_ranges, self.feature_info = sequential_stages(self.features, [(0, 2, 32, 1), (2, 5, 64, 2)])

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """``(N, 64, 7, 7) -> (N, num_classes)``, or the ``(N, 1024)`` pre-logits (after dropout)."""
        x = run_modules(list(self.classifier)[:-1])(F.flatten(x, 1))
        return x if pre_logits else self.classifier[-1](x)


@register_model(
    modality="vision", task="image-classification",
    description="Two-conv + max-pool CNN of the Fashion-MNIST benchmark table (architecture only; published "
                "test accuracy 0.916)",
    paper="https://arxiv.org/abs/1708.07747",
)  # fmt: skip
def fashion_mnist_cnn(**kwargs: Any) -> FashionMNISTCNN:
    """The Fashion-MNIST benchmark's two-conv CNN: 3,274,634 parameters at 10 classes."""
    return FashionMNISTCNN(**kwargs)
