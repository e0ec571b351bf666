"""Training-step and inference cases for bench/engine.py: LeNet-5 and a small MLP (one SGD step each), and
a conv-BN-ReLU stack in eval mode with and without ``hubkit.nn.fuse.fuse_for_inference``.

``bench/engine.py`` adds these to its ``CASES``; ``python bench/engine.py --only train`` runs the
training steps. Each case returns a zero-argument callable doing one full step on a fixed batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import hubkit
import hubkit.nn as nn
import hubkit.nn.functional as F
from hubkit import optim


def lenet5(mod: Any) -> Any:
    """LeNet-5 for 28x28 inputs built from ``mod`` (``hubkit.nn`` or ``torch.nn``): ``(N, 1, 28, 28) -> (N, 10)``."""
    return mod.Sequential(
        mod.Conv2d(1, 6, 5, padding=2), mod.ReLU(), mod.MaxPool2d(2),
        mod.Conv2d(6, 16, 5), mod.ReLU(), mod.MaxPool2d(2), mod.Flatten(),
        mod.Linear(400, 120), mod.ReLU(), mod.Linear(120, 84), mod.ReLU(), mod.Linear(84, 10),
    )


def mlp(mod: Any) -> Any:
    """784-256-256-10 MLP with ReLU: ``(N, 784) -> (N, 10)``."""
    return mod.Sequential(mod.Linear(784, 256), mod.ReLU(), mod.Linear(256, 256), mod.ReLU(), mod.Linear(256, 10))


def conv_bn_relu_stack(mod: Any) -> Any:
    """Three conv3x3-BN-ReLU blocks at 32x32 with 32 channels, then a stride-2 block: ``(N, 16, 32, 32)``."""
    layers: list[Any] = []
    for cin, cout, stride in [(16, 32, 1), (32, 32, 1), (32, 32, 1), (32, 64, 2)]:
        layers += [mod.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), mod.BatchNorm2d(cout), mod.ReLU()]
    return mod.Sequential(*layers)


def train_case(
    case_cls: type, label: str, build: Callable[[Any], Any], x: np.ndarray, y: np.ndarray, device: str = "cpu"
) -> Any:
    """One SGD (momentum 0.9) step of ``build(nn)`` vs ``build(torch.nn)`` on a fixed batch, on ``device``."""

    def hub() -> Callable[[], object]:
        hubkit.manual_seed(0)
        model = build(nn).to(device).train()
        opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        xt, yt = hubkit.tensor(x, device=device), hubkit.tensor(y, device=device)

        def step() -> object:
            opt.zero_grad()
            loss = F.cross_entropy(model(xt), yt)
            loss.backward()
            opt.step()
            return loss

        return step

    def tor() -> Callable[[], object]:
        import torch

        torch.manual_seed(0)
        model = build(torch.nn).to(device).train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        xt, yt = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)

        def step() -> object:
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt), yt)
            loss.backward()
            opt.step()
            return loss

        return step

    return case_cls(f"train {label} step", hub, tor)


def _inference_case(case_cls: type, label: str, fused: bool, x: np.ndarray) -> Any:
    rng = np.random.default_rng(1)

    def randomize_bn(model: Any) -> None:  # non-trivial statistics, so the fold does real work
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.array[...] = rng.normal(0, 0.5, m.num_features)
                m.running_var.array[...] = rng.uniform(0.5, 2, m.num_features)

    def hub() -> Callable[[], object]:
        hubkit.manual_seed(0)
        model = conv_bn_relu_stack(nn)
        randomize_bn(model)
        model.eval()
        if fused:
            model = nn.fuse.fuse_for_inference(model)
        xt = hubkit.from_numpy(x)

        def run() -> object:
            with hubkit.no_grad():
                return model(xt)

        return run

    def tor() -> Callable[[], object]:
        import torch

        model = conv_bn_relu_stack(torch.nn).eval()
        xt = torch.from_numpy(x)

        def run() -> object:
            with torch.no_grad():
                return model(xt)

        return run

    return case_cls(f"infer {label} eval{' fused' if fused else ''}", hub, tor)


def training_cases(case_cls: type) -> list[Any]:
    """The cases, built with bench/engine.py's ``Case(name, hubkit_setup, torch_setup)`` class."""
    rng = np.random.default_rng(0)
    images = rng.standard_normal((64, 1, 28, 28), dtype=np.float32)
    labels = rng.integers(0, 10, 64)
    flat = rng.standard_normal((128, 784), dtype=np.float32)
    flat_labels = rng.integers(0, 10, 128)
    stack_in = rng.standard_normal((32, 16, 32, 32), dtype=np.float32)
    return [
        train_case(case_cls, "LeNet-5 N=64", lenet5, images, labels),
        train_case(case_cls, "MLP 784-256-256-10 N=128", mlp, flat, flat_labels),
        _inference_case(case_cls, "conv-BN-ReLU x4 N=32", False, stack_in),
        _inference_case(case_cls, "conv-BN-ReLU x4 N=32", True, stack_in),
    ]
