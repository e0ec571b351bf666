"""M5 (Dai et al. 2017), the raw-waveform keyword-spotting CNN of PyTorch's speech-command tutorial.

Keys: ``conv{1..4}``, ``bn{1..4}``, ``fc1``. Input (N, 1, samples) at 8 kHz (the tutorial resamples Speech
Commands from 16 kHz); output (N, 1, n_output) log-probabilities. No upstream weights exist: train it
(``hubkit.datasets.SPEECHCOMMANDS``), as the tutorial does.
"""

from __future__ import annotations

from typing import Any

import hubkit.nn.functional as F
from hubkit import nn
from hubkit.hub.registry import register_model
from hubkit.tensor import Tensor

__all__ = ["M5", "m5"]


class M5(nn.Module):
    """Four conv -> BatchNorm -> ReLU -> max-pool(4) stages, a global average over time, one Linear."""

    def __init__(self, n_input: int = 1, n_output: int = 35, stride: int = 16, n_channel: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(n_input, n_channel, kernel_size=80, stride=stride)
        self.bn1 = nn.BatchNorm1d(n_channel)
        self.pool1 = nn.MaxPool1d(4)
        self.conv2 = nn.Conv1d(n_channel, n_channel, kernel_size=3)
        self.bn2 = nn.BatchNorm1d(n_channel)
        self.pool2 = nn.MaxPool1d(4)
        self.conv3 = nn.Conv1d(n_channel, 2 * n_channel, kernel_size=3)
        self.bn3 = nn.BatchNorm1d(2 * n_channel)
        self.pool3 = nn.MaxPool1d(4)
        self.conv4 = nn.Conv1d(2 * n_channel, 2 * n_channel, kernel_size=3)
        self.bn4 = nn.BatchNorm1d(2 * n_channel)
        self.pool4 = nn.MaxPool1d(4)
        self.fc1 = nn.Linear(2 * n_channel, n_output)

    def forward(self, x: Tensor) -> Tensor:
        for conv, bn, pool in ((self.conv1, self.bn1, self.pool1), (self.conv2, self.bn2, self.pool2),
                               (self.conv3, self.bn3, self.pool3), (self.conv4, self.bn4, self.pool4)):  # fmt: skip
            x = pool(F.relu(bn(conv(x))))
        x = x.mean(dim=-1, keepdim=True).permute(0, 2, 1)  # average over time: (N, 1, channels)
        return F.log_softmax(self.fc1(x), dim=2)


@register_model(
    modality="audio", task="keyword-spotting",
    description="M5 raw-waveform CNN for keyword spotting (architecture only; PyTorch's speech-command tutorial)",
    paper="https://arxiv.org/abs/1610.00087",
)  # fmt: skip
def m5(**kwargs: Any) -> M5:
    """M5 for the 35 Speech Commands labels at 8 kHz: 26,915 parameters."""
    return M5(**kwargs)
