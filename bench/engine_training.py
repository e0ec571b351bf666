"""Training-step and inference cases for bench/engine.py: LeNet-5, a small MLP, ResNet-18 and MobileNet-V2
(one SGD step each), one epoch of pytorch/examples' MNIST network (Adadelta), and a conv-BN-ReLU stack in eval
mode with and without ``hubkit.nn.fuse.fuse_for_inference``.

``bench/engine.py`` adds these to its ``CASES``; ``python bench/engine.py --only train`` runs the
training steps. Each case returns a zero-argument callable doing one full step (or epoch) on fixed data.
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


def resnet18(mod: Any) -> Any:
    """ResNet-18 (torchvision's architecture) from hubkit's zoo or torchvision, training mode."""
    if mod is nn:
        return hubkit.load("resnet18")
    import torchvision

    return torchvision.models.resnet18(weights=None)


def mobilenet_v2(mod: Any) -> Any:
    """MobileNet-V2 (torchvision's architecture) from hubkit's zoo or torchvision."""
    if mod is nn:
        return hubkit.load("mobilenet_v2")
    import torchvision

    return torchvision.models.mobilenet_v2(weights=None)


def mnist_net(mod: Any) -> Any:
    """pytorch/examples mnist/main.py's ``Net`` as a Sequential: ``(N, 1, 28, 28) -> (N, 10)`` log-probabilities."""
    return mod.Sequential(
        mod.Conv2d(1, 32, 3, 1), mod.ReLU(), mod.Conv2d(32, 64, 3, 1), mod.ReLU(), mod.MaxPool2d(2),
        mod.Dropout(0.25), mod.Flatten(), mod.Linear(9216, 128), mod.ReLU(), mod.Dropout(0.5), mod.Linear(128, 10),
        mod.LogSoftmax(dim=1),
    )


def mnist_epoch_case(case_cls: type, images: int, batch: int = 64) -> Any:
    """One epoch of pytorch/examples' MNIST training loop (``Net``, Adadelta lr=1.0, nll_loss, batch 64) over
    ``images`` MNIST-shaped normalized images held in memory, reshuffled every epoch; hubkit vs torch.

    The data path is left out on purpose (both sides index one in-memory array), so the row measures the
    engine: bench/data.py measures the loaders."""
    data: list[np.ndarray] = []

    def batches(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
        if not data:  # built on first use: 60,000 images are 188 MB, too much to build at import
            rng = np.random.default_rng(3)
            data.extend([rng.standard_normal((images, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, images)])
        x, y = data
        order = np.random.default_rng(seed).permutation(images)
        return [(x[order[i : i + batch]], y[order[i : i + batch]]) for i in range(0, images, batch)]

    def hub() -> Callable[[], object]:
        hubkit.manual_seed(0)
        model = mnist_net(nn).train()
        opt = optim.Adadelta(model.parameters(), lr=1.0)
        epoch = [0]

        def run() -> object:
            epoch[0] += 1
            for xb, yb in batches(epoch[0]):
                opt.zero_grad()
                loss = F.nll_loss(model(hubkit.from_numpy(xb)), hubkit.from_numpy(yb))
                loss.backward()
                opt.step()
            return loss

        return run

    def tor() -> Callable[[], object]:
        import torch

        torch.manual_seed(0)
        model = mnist_net(torch.nn).train()
        opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
        epoch = [0]

        def run() -> object:
            epoch[0] += 1
            for xb, yb in batches(epoch[0]):
                opt.zero_grad()
                loss = torch.nn.functional.nll_loss(model(torch.from_numpy(xb)), torch.from_numpy(yb))
                loss.backward()
                opt.step()
            return loss

        return run

    return case_cls(f"train MNIST-net epoch {images} images N={batch}", hub, tor, repeat=2)


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


def training_cases(case_cls: type, mnist_images: int = 60000) -> list[Any]:
    """The cases, built with bench/engine.py's ``Case(name, hubkit_setup, torch_setup)`` class; the MNIST epoch
    runs over ``mnist_images`` images (60,000: a real epoch)."""
    rng = np.random.default_rng(0)
    images = rng.standard_normal((64, 1, 28, 28), dtype=np.float32)
    labels = rng.integers(0, 10, 64)
    flat = rng.standard_normal((128, 784), dtype=np.float32)
    flat_labels = rng.integers(0, 10, 128)
    stack_in = rng.standard_normal((32, 16, 32, 32), dtype=np.float32)
    return [
        train_case(case_cls, "LeNet-5 N=64", lenet5, images, labels),
        train_case(case_cls, "MLP 784-256-256-10 N=128", mlp, flat, flat_labels),
        train_case(case_cls, "resnet18 224px N=16", resnet18, rng.standard_normal((16, 3, 224, 224), dtype=np.float32),
                   rng.integers(0, 1000, 16)),
        train_case(case_cls, "mobilenet_v2 112px N=16", mobilenet_v2,
                   rng.standard_normal((16, 3, 112, 112), dtype=np.float32), rng.integers(0, 1000, 16)),
        mnist_epoch_case(case_cls, mnist_images),
        _inference_case(case_cls, "conv-BN-ReLU x4 N=32", False, stack_in),
        _inference_case(case_cls, "conv-BN-ReLU x4 N=32", True, stack_in),
    ]


# ---------------------------------------------------------------- peak memory of a training step


def _rss_peak_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def _rss_now_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def peak_training_memory(side: str, steps: int = 3, batch: int = 16) -> tuple[float, float]:
    """Peak resident memory (MiB) that ``steps`` ResNet-18 SGD steps at ``batch`` add above the process once the
    model, optimizer, batch and the engine's libraries exist, for ``side`` "hubkit" or "torch" (run each in a
    fresh process: Linux's peak RSS is per process; it is reset through /proc/self/clear_refs before the
    steps). The first step's gradients and momentum buffers are part of the peak on both sides. Returns
    ``(added MiB, the process's peak RSS in MiB)``."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, 224, 224), dtype=np.float32)
    y = rng.integers(0, 1000, batch)
    fake_case = lambda name, hub, tor: (hub, tor)  # noqa: E731
    hub, tor = train_case(fake_case, "resnet18", resnet18, x, y)
    step = hub() if side == "hubkit" else tor()
    if side == "hubkit":
        # libraries load before the baseline on both sides (torch's are by then): numba, if installed, and
        # its code generator, which the first compiled call starts (about 150 MB of RSS together, once)
        hubkit.get_num_threads()
        try:
            from hubkit.kernels import _jit
        except ImportError:  # an older hubkit, without compiled kernels
            _jit = None
        jit = None if _jit is None else _jit.compiled()
        if jit is not None:
            one = np.zeros(1, dtype=np.float32)
            jit.clamp(one, np.float32(0), np.float32(1), one)
    import gc

    gc.collect()
    start = _rss_now_kib()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    for _ in range(steps):
        step()
    return (_rss_peak_kib() - start) / 1024, _rss_peak_kib() / 1024


if __name__ == "__main__":
    import sys

    added, total = peak_training_memory(sys.argv[1])
    print(f"{added:.1f} {total:.1f}")
