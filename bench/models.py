"""Model inference: hubkit vs torchvision, same weights, same inputs, side by side in one run.

    python bench/models.py                       # resnet18, resnet50, mobilenet_v2, vit_b_16, convnext_tiny,
                                                 # efficientnet_b0; CPU
    python bench/models.py --only resnet18 --repeat 10
    python bench/models.py --threads 2           # torch.set_num_threads (default 2, the machine's cores)
    python bench/models.py --device cuda         # both sides on the GPU (hubkit via cupy)
    python bench/models.py --processes           # each contender in a process of its own, as users run them

For each model: batch-1 latency (ms, best of ``--repeat``) and batch-16 throughput (images/s, best
batch time). Contenders: hubkit as ``hubkit.load`` returns it (eval mode), hubkit with BatchNorm folded
(``hubkit.hub.api.fuse_for_inference``, what ``hubkit predict`` runs), and torchvision with the same
state dict. Runs are interleaved round by round so load from other processes hits all alike. The
ratio is hubkit time / torch time (lower is better, 1.0 = parity). Outputs are checked to agree (in one
process; ``--processes`` times each contender in a worker process of its own: in one process torch also runs
with hubkit's allocator settings and is faster than for its own users, see bench/_timing.py).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable

import numpy as np
from _timing import best_of_processes, serve

import hubkit
from hubkit.hub.api import fuse_for_inference

MODELS = ["resnet18", "resnet50", "mobilenet_v2", "vit_b_16", "convnext_tiny", "efficientnet_b0"]


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import cupy
        import torch

        cupy.cuda.Device().synchronize()
        torch.cuda.synchronize()


def _best_interleaved(fns: list[Callable[[], object]], repeat: int, device: str) -> list[float]:
    for fn in fns:  # warm-up: allocations, BLAS threads, kernel compilation
        fn()
    _sync(device)
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            _sync(device)
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def _contenders(name: str, batch: int, device: str) -> list[Callable[[], object]]:
    """hubkit, hubkit fused and torch callables on the same weights and batch, checked to agree."""
    import torch
    import torchvision

    hubkit.manual_seed(0)
    model = hubkit.load(name).eval()
    state = {k: torch.from_numpy(np.array(v.numpy())) for k, v in model.state_dict().items()}
    fused = fuse_for_inference(model)
    tv = torchvision.models.get_model(name, weights=None)
    tv.load_state_dict(state)
    tv.eval()
    x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32)
    xh, xt = hubkit.from_numpy(x), torch.from_numpy(x)
    if device != "cpu":
        model, fused, xh = model.to(device), fused.to(device), xh.to(device)
        tv, xt = tv.to(device), xt.to(device)

    def run_hub() -> object:
        with hubkit.no_grad():
            return model(xh)

    def run_fused() -> object:
        with hubkit.no_grad():
            return fused(xh)

    def run_torch() -> object:
        with torch.no_grad():
            return tv(xt)

    expected = run_torch().cpu().numpy()
    for fn in (run_hub, run_fused):
        diff = float(np.abs(fn().cpu().numpy() - expected).max())
        if diff > 1e-3:
            raise SystemExit(f"{name}: hubkit and torchvision disagree (max abs logit difference {diff:.3g})")
    return [run_hub, run_fused, run_torch]


def _one_side(side: str, name: str, batch: int, threads: int) -> Callable[[], object]:
    """``--worker``: the callable of one contender (hubkit, fused or torch) on the CPU, with the weights and
    input ``_contenders`` uses; the torch side builds them through hubkit (seeded) and copies them over."""
    hubkit.manual_seed(0)
    model = hubkit.load(name).eval()
    x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32)
    if side != "torch":
        run_model = fuse_for_inference(model) if side == "fused" else model
        xh = hubkit.from_numpy(x)

        def run_hub() -> object:
            with hubkit.no_grad():
                return run_model(xh)

        return run_hub
    import torch
    import torchvision

    torch.set_num_threads(threads)
    tv = torchvision.models.get_model(name, weights=None)
    tv.load_state_dict({k: torch.from_numpy(np.array(v.numpy())) for k, v in model.state_dict().items()})
    tv.eval()
    del model
    xt = torch.from_numpy(x)

    def run_torch() -> object:
        with torch.no_grad():
            return tv(xt)

    return run_torch


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the models whose name contains this text")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds at batch 1 (batch 16: half, min 2)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--processes", action="store_true",
                        help="each contender in a worker process of its own (CPU; see bench/_timing.py)")  # fmt: skip
    parser.add_argument("--worker", choices=("hubkit", "fused", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        serve(_one_side(args.worker, args.model, args.batch, args.threads))
        return
    if args.processes and args.device != "cpu":
        parser.error("--processes times the CPU only")

    import torch

    torch.set_num_threads(args.threads)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; numpy {np.__version__}; torch {torch.__version__} "
          f"({torch.get_num_threads()} threads); device {args.device}")
    print(f"{'model':<14} {'batch':>5} {'hubkit':>12} {'fused':>12} {'torch':>12} {'hubkit/torch':>13} "
          f"{'fused/torch':>12}")
    for name in MODELS:
        if args.only not in name:
            continue
        for batch in (1, 16):
            repeat = args.repeat if batch == 1 else max(2, args.repeat // 2)
            if args.processes:
                command = [sys.executable, os.path.abspath(__file__), "--model", name, "--batch", str(batch),
                           "--threads", str(args.threads), "--worker"]  # fmt: skip
                sides = [(command + [side], side == "torch") for side in ("hubkit", "fused", "torch")]
                times = best_of_processes(sides, repeat)
            else:
                times = _best_interleaved(_contenders(name, batch, args.device), repeat, args.device)
            hub_s, fused_s, torch_s = times
            if batch == 1:
                cells = [f"{t * 1e3:9.1f} ms" for t in times]
            else:
                cells = [f"{batch / t:8.1f} im/s" for t in times]
            print(f"{name:<14} {batch:>5} {cells[0]:>12} {cells[1]:>12} {cells[2]:>12} {hub_s / torch_s:>12.2f}x "
                  f"{fused_s / torch_s:>11.2f}x", flush=True)


if __name__ == "__main__":
    main()
