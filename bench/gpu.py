"""GPU benchmarks: hubkit (cupy) against PyTorch (CUDA) on the same card, side by side in one run.

    python bench/gpu.py                  # every case
    python bench/gpu.py --only train     # cases whose name contains "train"
    python bench/gpu.py --repeat 20

Cases: single conv layers (forward, forward+backward) at ResNet shapes, full training steps (LeNet-5,
an MLP, ResNet-18) and ResNet-18 inference. Each side is synchronised (``cupy``'s device and
``torch.cuda``) after every call, so the times are wall time of finished GPU work. Timings are the
median of ``--repeat`` interleaved rounds after two warm-up calls (kernel compilation, allocator pools);
the ratio is hubkit time / torch time (lower is better, 1.0 = parity). hubkit's convolutions run on cuDNN
when NVIDIA's wheel is installed (torch's CUDA builds bring it), with torch's defaults (TF32 for float32
convolutions); ``--no-cudnn`` times hubkit's own im2col + cuBLAS convolutions instead.
Model bench (inference with pretrained-shaped weights): ``python bench/models.py --device cuda``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from engine import CONV_LAYERS, Case, _conv_case  # bench/engine.py: the same cases, built for a device
from engine_training import lenet5, mlp, train_case

import hubkit
import hubkit.nn as nn

CASES: list[Case] = []


def _sync() -> None:
    import cupy
    import torch

    cupy.cuda.Device().synchronize()
    torch.cuda.synchronize()


# ---------------------------------------------------------------- single conv layers (bench/engine.py's, on the GPU)

_GPU_LAYERS = ("stem 3->64 224 7x7 s2", "64->64 56 3x3", "128->128 28 3x3", "256->256 14 3x3", "512->512 7 3x3",
               "256->64 56 1x1")  # fmt: skip

for _layer in CONV_LAYERS:
    if _layer[0] in _GPU_LAYERS:
        for _bwd in (False, True):
            CASES.append(_conv_case(_layer[0], 32, *_layer[1:], backward=_bwd, device="cuda"))


# ---------------------------------------------------------------- training steps


def _resnet18(mod):
    if mod is nn:
        return hubkit.load("resnet18")
    import torchvision

    return torchvision.models.resnet18(weights=None)


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
    train_case(Case, "LeNet-5 N=64", lenet5, _rng.standard_normal((64, 1, 28, 28), dtype=np.float32),
               _rng.integers(0, 10, 64), device="cuda"),
    train_case(Case, "LeNet-5 N=512", lenet5, _rng.standard_normal((512, 1, 28, 28), dtype=np.float32),
               _rng.integers(0, 10, 512), device="cuda"),
    train_case(Case, "MLP 784-256-256-10 N=128", mlp, _rng.standard_normal((128, 784), dtype=np.float32),
               _rng.integers(0, 10, 128), device="cuda"),
    train_case(Case, "ResNet-18 224px N=32", _resnet18, _rng.standard_normal((32, 3, 224, 224), dtype=np.float32),
               _rng.integers(0, 1000, 32), device="cuda"),
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
    parser.add_argument("--no-cudnn", action="store_true", help="hubkit's im2col convolutions instead of cuDNN")
    args = parser.parse_args(argv)
    if args.no_cudnn:
        hubkit.backends.cudnn.enabled = False

    try:
        import cupy
        import torch
    except ImportError as e:
        raise SystemExit(f"bench/gpu.py needs cupy and torch with a CUDA device ({e})") from None

    props = cupy.cuda.runtime.getDeviceProperties(0)
    ours = hubkit.backends.cudnn
    convs = (f"cuDNN {ours.version()}, TF32 {ours.allow_tf32}" if ours.enabled and ours.is_available() else
             f"im2col + cuBLAS ({'disabled' if not ours.enabled else ours.unavailable_reason()})")  # fmt: skip
    print(f"GPU: {props['name'].decode()}; cupy {cupy.__version__}, hubkit convolutions: {convs}; torch "
          f"{torch.__version__} (cuDNN {torch.backends.cudnn.version()}); numpy {np.__version__}")  # fmt: skip
    print(f"{'case':<44} {'hubkit ms':>10} {'torch ms':>10} {'ratio':>7}")
    for case in CASES:
        if args.only not in case.name:
            continue
        hub_s, torch_s = _median_interleaved([case.hubkit(), case.torch()], args.repeat)
        print(f"{case.name:<44} {hub_s * 1e3:>10.3f} {torch_s * 1e3:>10.3f} {hub_s / torch_s:>6.2f}x", flush=True)


if __name__ == "__main__":
    main()
