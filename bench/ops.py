"""Core-op benchmarks: hubkit's elementwise, activation, softmax, loss and normalization ops against
PyTorch on the CPU, forward + backward, side by side in one run.

    python bench/ops.py                 # every case
    python bench/ops.py --only softmax  # cases whose name contains "softmax"

Each case builds float32 inputs of a transformer-ish size (a batch of 64 x 512 x 768 activations would
not fit a 2-core machine's patience, so 32 x 128 x 768 = 3.1M elements), runs forward, sums the
output and runs backward. Timings are the best of ``--repeat`` runs after a warm-up, hubkit and torch
interleaved; the ratio is hubkit time / torch time (lower is better). Module cases (a Transformer encoder
layer; RNN, LSTM and GRU layers) build the same module in each framework and time forward + backward through
its parameters.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import numpy as np

import hubkit
import hubkit.nn.functional as F

SHAPE = (32, 128, 768)


def _inputs(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = SHAPE[0] * SHAPE[1]
    return {
        "x": rng.standard_normal(SHAPE, dtype=np.float32),
        "w": rng.standard_normal(SHAPE[-1], dtype=np.float32),
        "b": rng.standard_normal(SHAPE[-1], dtype=np.float32),
        "logits": rng.standard_normal((n, 1000), dtype=np.float32),
        "target": rng.integers(0, 1000, n),
        "table": rng.standard_normal((30000, 768), dtype=np.float32),
        "ids": rng.integers(0, 30000, (32, 128)),
    }


# name -> fn(m, t) where m is hubkit.nn.functional or torch.nn.functional and t maps names to tensors
CASES: dict[str, Callable] = {
    "add+mul (broadcast)": lambda m, t: t["x"] * t["w"] + t["b"],
    "gelu (erf)": lambda m, t: m.gelu(t["x"]),
    "gelu (tanh)": lambda m, t: m.gelu(t["x"], approximate="tanh"),
    "silu": lambda m, t: m.silu(t["x"]),
    "softmax (last dim)": lambda m, t: m.softmax(t["x"], -1),
    "log_softmax (last dim)": lambda m, t: m.log_softmax(t["x"], -1),
    "layer_norm": lambda m, t: m.layer_norm(t["x"], (768,), t["w"], t["b"]),
    "cross_entropy (4096 x 1000)": lambda m, t: m.cross_entropy(t["logits"], t["target"], label_smoothing=0.1),
    "embedding (30000 x 768)": lambda m, t: m.embedding(t["ids"], t["table"]),
    "var (last dim)": lambda m, t: t["x"].var(-1),
}


def _setup(framework: str, fn: Callable, arrays: dict[str, np.ndarray]) -> Callable[[], object]:
    if framework == "hubkit":
        tensors = {k: hubkit.tensor(a, requires_grad=a.dtype.kind == "f") for k, a in arrays.items()}
        module = F
    else:
        import torch
        import torch.nn.functional as TF

        tensors = {k: torch.tensor(a, requires_grad=a.dtype.kind == "f") for k, a in arrays.items()}
        module = TF

    def run() -> object:
        for v in tensors.values():
            v.grad = None
        out = fn(module, tensors)
        out.sum().backward()
        return out

    return run


def _transformer_encoder_layer(framework: str) -> Callable[[], object]:
    """One encoder layer of a small text model: d_model 256, 8 heads, feed-forward 1024, batch first, train
    mode with dropout 0.1, on a (16, 64, 256) batch."""
    if framework == "hubkit":
        lib = hubkit
    else:
        import torch as lib
    layer = lib.nn.TransformerEncoderLayer(256, 8, 1024, dropout=0.1, batch_first=True).train()
    x = lib.tensor(np.random.default_rng(0).standard_normal((16, 64, 256), dtype=np.float32), requires_grad=True)

    def run() -> object:
        layer.zero_grad()
        x.grad = None
        out = layer(x)
        out.sum().backward()
        return out

    return run


def _recurrent(kind: str) -> Callable[[str], Callable[[], object]]:
    """One ``kind`` (RNN, LSTM, GRU) layer, 128 -> 256 features, over a (64 steps, batch 32) sequence: the time
    loop is sequential, so this measures the per-step cost (a 32 x 256 GEMM plus the gate math) and backprop
    through time to the input and every parameter."""

    def make(framework: str) -> Callable[[], object]:
        if framework == "hubkit":
            lib = hubkit
        else:
            import torch as lib
        layer = getattr(lib.nn, kind)(128, 256)
        x = lib.tensor(np.random.default_rng(0).standard_normal((64, 32, 128), dtype=np.float32), requires_grad=True)

        def run() -> object:
            layer.zero_grad()
            x.grad = None
            out, _ = layer(x)
            out.sum().backward()
            return out

        return run

    return make


# name -> make(framework), which builds a module in hubkit or torch and returns its forward + backward step
MODULE_CASES: dict[str, Callable[[str], Callable[[], object]]] = {
    "TransformerEncoderLayer (d256, 8 heads, 16 x 64)": _transformer_encoder_layer,
    "RNN (tanh, 128 -> 256, 64 steps x 32)": _recurrent("RNN"),
    "LSTM (128 -> 256, 64 steps x 32)": _recurrent("LSTM"),
    "GRU (128 -> 256, 64 steps x 32)": _recurrent("GRU"),
}


def _best(fns: list[Callable[[], object]], repeat: int) -> list[float]:
    for f in fns:
        f()
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, f in enumerate(fns):
            start = time.perf_counter()
            f()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        have_torch = True
    except ImportError:
        have_torch = False
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; numpy {np.__version__}"
          + (f"; torch {torch.__version__}, {torch.get_num_threads()} threads" if have_torch else "; no torch"))
    arrays = _inputs()
    print("| op (forward + backward, float32) | hubkit | torch | ratio |\n|---|---:|---:|---:|")
    makers = {name: (lambda framework, fn=fn: _setup(framework, fn, arrays)) for name, fn in CASES.items()}
    makers.update(MODULE_CASES)
    for name, make in makers.items():
        if args.only not in name:
            continue
        times = _best([make("hubkit")] + ([make("torch")] if have_torch else []), args.repeat)
        if have_torch:
            print(f"| {name} | {times[0] * 1e3:.1f} ms | {times[1] * 1e3:.1f} ms | {times[0] / times[1]:.2f} |")
        else:
            print(f"| {name} | {times[0] * 1e3:.1f} ms | - | - |")


if __name__ == "__main__":
    main()
