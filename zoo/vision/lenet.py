"""LeNet-5 (LeCun et al. 1998) for 1x28x28 digits, in its common modern form (ReLU, max pooling).

No upstream weights exist; the architecture is registered so ``hubkit.load("lenet5")`` builds it for
training (e.g. on ``hubkit.datasets.MNIST``) and ``weights=<path>`` loads a checkpoint saved from it.
Keys: ``features.0`` conv 1->6 5x5 pad 2, ``features.3`` conv 6->16 5x5, ``classifier.0/2/4``
Linear 400->120->84->num_classes.
"""

from __future__ import annotations

from hubkit import nn
from hubkit.hub.registry import register_model
from hubkit.nn import functional as F
from hubkit.tensor import Tensor

from .backbone import Backbone, run_modules, sequential_stages

__all__ = ["LeNet5", "lenet5"]


class LeNet5(Backbone, nn.Module):
    """``(N, in_channels, 28, 28) -> (N, num_classes)`` logits.

    Stages: each conv's ReLU (6 channels at full size, 16 at 1/2); the last max pool ends the trunk.
    """

    first_conv = "features.0"
    classifier_name = "classifier.4"
    head_modules = ("classifier",)
    default_input_size = (1, 28, 28)

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(inplace=True),
            nn.Linear(120, 84),
            nn.ReLU(inplace=True),
            nn.Linear(84, num_classes),
        )
        self.num_classes = num_classes
        self.num_features, self.head_hidden_size = 16, 84
        self._stage_ranges, self.feature_info = sequential_stages(self.features, [(0, 2, 6, 1), (2, 5, 16, 2)])

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """``(N, 16, 5, 5) -> (N, num_classes)``, or the ``(N, 84)`` pre-logits."""
        x = run_modules(list(self.classifier)[:-1])(F.flatten(x, 1))
        return x if pre_logits else self.classifier[-1](x)


@register_model(
    modality="vision", task="image-classification",
    description="LeNet-5 digit classifier (architecture only, no upstream weights)",
    paper="http://yann.lecun.com/exdb/publis/pdf/lecun-01a.pdf",
)
def lenet5(**kwargs) -> LeNet5:
    """LeNet-5, 61 706 parameters at 10 classes."""
    return LeNet5(**kwargs)
