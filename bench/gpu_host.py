"""Host time per call of the pieces a GPU layer is made of, hubkit beside torch: how long the host takes to
queue one call (tiny operands, so the GPU keeps up and the launch queue never fills). The GPU rows of
bench/gpu.py are host-bound where these add up to more than the device time.

    python bench/gpu_host.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

import hubkit
import hubkit.nn.functional as F
from hubkit import nn


def _per_call_us(fn: Callable[[], object], calls: int, synchronize: Callable[[], object]) -> float:
    """Best of three runs of ``calls`` back-to-back calls, per call, each run started and ended on an idle GPU."""
    for _ in range(20):
        fn()
    synchronize()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, time.perf_counter() - start)
        synchronize()
    return best / calls * 1e6


def _cases():
    """(name, hubkit callable, torch callable or None)."""
    import cupy
    import torch

    from hubkit.kernels import cuda, cudnn, cudnn_graph

    rng = np.random.default_rng(0)
    xs = rng.standard_normal((2, 16, 8, 8), dtype=np.float32)
    ws = rng.standard_normal((16, 16, 3, 3), dtype=np.float32) * 0.1
    x, w = cupy.asarray(xs), cupy.asarray(ws)
    xt, wt = hubkit.tensor(xs, device="cuda"), hubkit.tensor(ws, device="cuda")
    tx, tw = torch.tensor(xs, device="cuda"), torch.tensor(ws, device="cuda")
    args = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    cuda.conv2d(x, w, None, *args)  # builds the plan
    graph = next((g for k, g in cudnn._graphs.items() if k[0] == "forward" and g), None)
    y = cupy.empty_like(x)
    lib = cudnn._library
    handle = cudnn._handle(lib, cupy, cupy.cuda.Device().id)
    pointers = (x.data.ptr, w.data.ptr, y.data.ptr)
    conv = nn.Conv2d(16, 16, 3, padding=1, bias=False).to("cuda")
    tconv = torch.nn.Conv2d(16, 16, 3, padding=1, bias=False).cuda()
    bn = nn.BatchNorm2d(16).to("cuda").eval()
    tbn = torch.nn.BatchNorm2d(16).cuda().eval()
    small, tsmall = hubkit.ones(1000, device="cuda"), torch.ones(1000, device="cuda")
    raw = cupy.RawKernel(r"""
    extern "C" __global__ void hubkit_bench_relu(const float* x, float* y, long long n) {
        const long long step = (long long)blockDim.x * gridDim.x;
        for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += step)
            y[i] = x[i] > 0.f ? x[i] : 0.f;
    }""", "hubkit_bench_relu")
    raw_out = cupy.empty_like(small.array)
    cases = [
        ("cupy.empty(1000)", lambda: cupy.empty(1000, dtype=np.float32), lambda: torch.empty(1000, device="cuda")),
        ("cupy add (1000) / torch add", lambda: small.array + small.array, lambda: tsmall + tsmall),
        ("cupy maximum(x, 0) ufunc (1000)", lambda: cupy.maximum(small.array, np.float32(0)), None),
        ("ElementwiseKernel (relu_backward, 1000)", lambda: cuda.relu_backward(small.array, small.array), None),
        ("RawKernel relu into a kept output (1000)",
         lambda: raw((4,), (256,), (small.array, raw_out, np.int64(1000))), None),  # fmt: skip
        ("Tensor add", lambda: small + small, None),
        ("Tensor relu / torch relu", lambda: F.relu(small), lambda: torch.relu(tsmall)),
    ]
    if graph:
        cases += [
            ("cudnnBackendExecute, pack cached", lambda: cudnn_graph.execute(lib, handle, graph, pointers, None), None),
            ("variant pack built and destroyed",
             lambda: lib.dll.cudnnBackendDestroyDescriptor(cudnn_graph._variant_pack(lib.dll, pointers, None)[0]),
             None),  # fmt: skip
        ]
    cases += [
        ("kernels.cuda.conv2d", lambda: cuda.conv2d(x, w, None, *args), None),
        ("F.conv2d (no grad) / torch", lambda: _no_grad(lambda: F.conv2d(xt, wt, None, 1, 1)),
         lambda: _torch_no_grad(lambda: torch.nn.functional.conv2d(tx, tw, None, 1, 1))),  # fmt: skip
        ("nn.Conv2d (no grad) / torch", lambda: _no_grad(lambda: conv(xt)), lambda: _torch_no_grad(lambda: tconv(tx))),
        ("nn.BatchNorm2d eval / torch", lambda: _no_grad(lambda: bn(xt)), lambda: _torch_no_grad(lambda: tbn(tx))),
        ("F.conv2d with grad / torch", lambda: F.conv2d(xt.requires_grad_(), wt, None, 1, 1),
         lambda: torch.nn.functional.conv2d(tx.requires_grad_(), tw, None, 1, 1)),  # fmt: skip
    ]
    return cases


def _no_grad(fn):
    with hubkit.no_grad():
        return fn()


def _torch_no_grad(fn):
    import torch

    with torch.no_grad():
        return fn()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    print(f"{'host us per call':44s} {'hubkit':>8s} {'torch':>8s}")
    import cupy
    import torch

    for name, ours, theirs in _cases():
        mine = _per_call_us(ours, args.calls, cupy.cuda.Device().synchronize)
        other = _per_call_us(theirs, args.calls, torch.cuda.synchronize) if theirs else float("nan")
        print(f"{name:44s} {mine:8.1f} {other:8.1f}", flush=True)


if __name__ == "__main__":
    main()
