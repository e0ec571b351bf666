"""Device-side view of a GPU step: every CUDA kernel and CUDA API call, hubkit's and torch's, per step.

torch.profiler's CUDA activity comes from CUPTI, which sees every kernel launched in the process, cupy's and
cuDNN's included, so the same table covers both libraries. For each case it prints the kernels by device
time and the host-side CUDA calls (launches, synchronizations, allocations) by host time, per step.

    python bench/gpu_kernels.py [--only train] [--steps 5] [--rows 25] [--trace DIR]
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from engine_training import resnet18, train_case

import hubkit

_rng = np.random.default_rng(0)
_X = _rng.standard_normal((32, 3, 224, 224), dtype=np.float32)
_Y = _rng.integers(0, 1000, 32)


class _Case:
    def __init__(self, name, hubkit, torch):
        self.name, self.hubkit, self.torch = name, hubkit, torch


def _infer(batch: int) -> _Case:
    x = _rng.standard_normal((batch, 3, 224, 224), dtype=np.float32)

    def hub():
        model = hubkit.load("resnet18").to("cuda").eval()
        xt = hubkit.tensor(x, device="cuda")

        def run():
            with hubkit.no_grad():
                return model(xt)

        return run

    def tor():
        import torch
        import torchvision

        model = torchvision.models.resnet18(weights=None).cuda().eval()
        xt = torch.from_numpy(x).cuda()

        def run():
            with torch.no_grad():
                return model(xt)

        return run

    return _Case(f"infer ResNet-18 N={batch}", hub, tor)


CASES = [train_case(_Case, "ResNet-18 224px N=32", resnet18, _X, _Y, device="cuda"), _infer(64)]


def _table(prof, sort: str, rows: int, steps: int) -> None:
    events = list(prof.key_averages())
    key = "self_device_time_total" if hasattr(events[0], "self_device_time_total") else "self_cuda_time_total"
    if sort == "device":
        chosen = sorted((e for e in events if getattr(e, key) > 0), key=lambda e: -getattr(e, key))
        total = sum(getattr(e, key) for e in chosen)
        launches = sum(e.count for e in chosen) // steps
        print(f"  device time per step: {total / steps / 1e3:.3f} ms in {launches} kernels")
        for e in chosen[:rows]:
            print(f"  {getattr(e, key) / steps / 1e3:9.3f} ms {e.count // steps:5d}x  {e.key[:110]}")
    else:
        calls = (e for e in events if e.key.startswith(("cuda", "cu", "cudnn")))
        chosen = sorted(calls, key=lambda e: -e.self_cpu_time_total)
        for e in chosen[:rows]:
            print(f"  {e.self_cpu_time_total / steps / 1e3:9.3f} ms {e.count // steps:5d}x  host {e.key[:100]}")


def main() -> None:
    import cupy
    import torch
    from torch.profiler import ProfilerActivity, profile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rows", type=int, default=25)
    parser.add_argument("--trace", default="", help="write Chrome traces (one per case and library) here")
    args = parser.parse_args()
    for case in CASES:
        if args.only not in case.name:
            continue
        for lib, build in (("hubkit", case.hubkit), ("torch", case.torch)):
            fn = build()
            for _ in range(3):
                fn()
            cupy.cuda.Device().synchronize()
            torch.cuda.synchronize()
            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                for _ in range(args.steps):
                    fn()
                cupy.cuda.Device().synchronize()
                torch.cuda.synchronize()
            print(f"\n=== {case.name}: {lib}")
            _table(prof, "device", args.rows, args.steps)
            _table(prof, "host", 12, args.steps)
            if args.trace:
                os.makedirs(args.trace, exist_ok=True)
                prof.export_chrome_trace(os.path.join(args.trace, f"{case.name.split()[0]}-{lib}.json"))


if __name__ == "__main__":
    main()
