"""GPU benchmarks: hubkit (cupy) against PyTorch (CUDA) on the same card, side by side in one run.

    python bench/gpu.py                  # every case
    python bench/gpu.py --only train     # cases whose name contains "train"
    python bench/gpu.py --repeat 20

Cases: single conv layers (forward, forward+backward) at ResNet shapes, full training steps (LeNet-5,
an MLP, ResNet-18) and ResNet-18 inference. Each side is synchronised (``cupy``'s device and
``torch.cuda``) after every call, so the times are wall time of finished GPU work. Timings are the
median of ``--repeat`` interleaved rounds after two warm-up calls (kernel compilation, allocator pools);
the ratio is hubkit time / torch time (lower is better, 1.0 = parity). cupy 14 ships without cuDNN, so
hubkit's convolutions are im2col + cuBLAS while torch uses cuDNN: conv-heavy ratios measure exactly that.
Model bench (inference with pretrained-shaped weights): ``python bench/models.py --device cuda``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from engine_training import lenet5, mlp

import hubkit
import hubkit.nn as nn
import hubkit.nn.functional as F
from hubkit import optim

Setup = Callable[[], Callable[[], object]]


@dataclass
class Case:
    name: str
    hubkit: Setup
    torch: Setup


CASES: list[Case] = []


def _sync() -> None:
    import cupy
    import torch

    cupy.cuda.Device().synchronize()
    torch.cuda.synchronize()


# ---------------------------------------------------------------- single conv layers

CONV_LAYERS = [
    ("stem 3->64 224 7x7 s2", 3, 224, 64, 7, 2, 3),
    ("64->64 56 3x3", 64, 56, 64, 3, 1, 1),
    ("128->128 28 3x3", 128, 28, 128, 3, 1, 1),
    ("256->256 14 3x3", 256, 14, 256, 3, 1, 1),
    ("512->512 7 3x3", 512, 7, 512, 3, 1, 1),
    ("256->64 56 1x1", 256, 56, 64, 1, 1, 0),
]


def _conv_case(label: str, n: int, c: int, size: int, oc: int, k: int, s: int, p: int, backward: bool) -> Case:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, size, size), dtype=np.float32)
    w = (rng.standard_normal((oc, c, k, k), dtype=np.float32) * 0.05).astype(np.float32)
    out = (size + 2 * p - k) // s + 1
    gy = rng.standard_normal((n, oc, out, out), dtype=np.float32)

    def build(lib, conv, to_device):
        xt, wt, g = to_device(x), to_device(w), to_device(gy)
        if not backward:

            def run() -> object:
                with lib.no_grad():
                    return conv(xt, wt, None, s, p)

            return run
        xt.requires_grad_(True)
        wt.requires_grad_(True)

        def run_bwd() -> object:
            xt.grad = wt.grad = None
            conv(xt, wt, None, s, p).backward(g)
            return xt.grad

        return run_bwd

    def hub() -> Callable[[], object]:
        return build(hubkit, F.conv2d, lambda a: hubkit.tensor(a, device="cuda"))

    def tor() -> Callable[[], object]:
        import torch

        return build(torch, torch.nn.functional.conv2d, lambda a: torch.from_numpy(a).cuda())

    return Case(f"conv {label} N={n} {'fwd+bwd' if backward else 'fwd'}", hub, tor)


for _layer in CONV_LAYERS:
    for _bwd in (False, True):
        CASES.append(_conv_case(_layer[0], 32, *_layer[1:], backward=_bwd))


# ---------------------------------------------------------------- training steps


def _resnet18(mod):
    if mod is nn:
        return hubkit.load("resnet18")
    import torchvision

    return torchvision.models.resnet18(weights=None)


def _train_case(label: str, build, x: np.ndarray, y: np.ndarray) -> Case:
    def hub() -> Callable[[], object]:
        hubkit.manual_seed(0)
        model = build(nn).to("cuda").train()
        opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        xt, yt = hubkit.tensor(x, device="cuda"), hubkit.tensor(y, device="cuda")

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
        model = build(torch.nn).cuda().train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        xt, yt = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()

        def step() -> object:
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt), yt)
            loss.backward()
            opt.step()
            return loss

        return step

    return Case(f"train {label} step", hub, tor)


def _inference_case(label: str, batch: int) -> Case:
    x = np.random.default_rng(2).standard_normal((batch, 3, 224, 224)).astype(np.float32)

    def hub() -> Callable[[], object]:
        hubkit.manual_seed(0)
        model = hubkit.load("resnet18").to("cuda").eval()
        xt = hubkit.tensor(x, device="cuda")

        def run() -> object:
            with hubkit.no_grad():
                return model(xt)

        return run

    def tor() -> Callable[[], object]:
        import torch
        import torchvision

        model = torchvision.models.resnet18(weights=None).cuda().eval()
        xt = torch.from_numpy(x).cuda()

        def run() -> object:
            with torch.no_grad():
                return model(xt)

        return run

    return Case(f"infer {label} N={batch}", hub, tor)


_rng = np.random.default_rng(0)
CASES += [
    _train_case("LeNet-5 N=64", lenet5, _rng.standard_normal((64, 1, 28, 28), dtype=np.float32),
                _rng.integers(0, 10, 64)),
    _train_case("LeNet-5 N=512", lenet5, _rng.standard_normal((512, 1, 28, 28), dtype=np.float32),
                _rng.integers(0, 10, 512)),
    _train_case("MLP 784-256-256-10 N=128", mlp, _rng.standard_normal((128, 784), dtype=np.float32),
                _rng.integers(0, 10, 128)),
    _train_case("ResNet-18 224px N=32", _resnet18, _rng.standard_normal((32, 3, 224, 224), dtype=np.float32),
                _rng.integers(0, 1000, 32)),
    _inference_case("ResNet-18 224px", 1),
    _inference_case("ResNet-18 224px", 64),
]  # fmt: skip


# ---------------------------------------------------------------- runner


def _median_interleaved(fns: list[Callable[[], object]], repeat: int) -> list[float]:
    for _ in range(2):
        for fn in fns:
            fn()
    _sync()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            _sync()
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the cases whose name contains this text")
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args(argv)

    try:
        import cupy
        import torch
    except ImportError as e:
        raise SystemExit(f"bench/gpu.py needs cupy and torch with a CUDA device ({e})") from None

    props = cupy.cuda.runtime.getDeviceProperties(0)
    print(f"GPU: {props['name'].decode()}; cupy {cupy.__version__} (cuDNN: no); torch {torch.__version__} "
          f"(cuDNN {torch.backends.cudnn.version()}); numpy {np.__version__}")  # fmt: skip
    print(f"{'case':<44} {'hubkit ms':>10} {'torch ms':>10} {'ratio':>7}")
    for case in CASES:
        if args.only not in case.name:
            continue
        hub_s, torch_s = _median_interleaved([case.hubkit(), case.torch()], args.repeat)
        print(f"{case.name:<44} {hub_s * 1e3:>10.3f} {torch_s * 1e3:>10.3f} {hub_s / torch_s:>6.2f}x", flush=True)


if __name__ == "__main__":
    main()
