"""Device-side view of a GPU step: every CUDA kernel and CUDA API call, hubkit's and torch's, per step.

torch.profiler's CUDA activity comes from CUPTI, which sees every kernel launched in the process, cupy's and
cuDNN's included, so the same table covers both libraries. For each case it prints the kernels by device
time and the host-side CUDA calls (launches, synchronizations, allocations) by host time, per step.

    python bench/gpu_kernels.py [--only TEXT] [--steps 5] [--rows 25] [--trace DIR]

Cases are bench/gpu.py's; by default its ResNet-18 training step (N=32) and inference (N=64).
"""

from __future__ import annotations

import argparse
import os

from gpu import CASES  # bench/gpu.py's cases: the same models, batches and data

# without --only: the two ResNet-18 rows of issue 14's table
DEFAULT = ("train ResNet-18 224px N=32 step", "infer ResNet-18 224px N=64")


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
    parser.add_argument("--only", default="", help="bench/gpu.py's cases whose name contains this text")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rows", type=int, default=25)
    parser.add_argument("--trace", default="", help="write Chrome traces (one per case and library) here")
    args = parser.parse_args()
    for case in CASES:
        if (args.only not in case.name) if args.only else (case.name not in DEFAULT):
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
                prof.export_chrome_trace(os.path.join(args.trace, f"{'-'.join(case.name.split()[:2])}-{lib}.json"))


if __name__ == "__main__":
    main()
