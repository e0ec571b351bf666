"""Engine benchmarks: hubkit against PyTorch on the CPU, side by side in one run.

    python bench/engine.py                 # every case
    python bench/engine.py --only conv     # cases whose name contains "conv"
    python bench/engine.py --repeat 5
    python bench/engine.py --threads 1     # one BLAS thread and torch.set_num_threads(1)
    OPENBLAS_NUM_THREADS=1 python bench/engine.py   # hubkit's own kernel threads instead of BLAS's
    python bench/engine.py --device cuda   # cupy vs PyTorch CUDA (runs bench/gpu.py)
    BENCH_MNIST_IMAGES=6400 python bench/engine.py --only MNIST   # a tenth of the MNIST epoch
    python bench/engine.py --processes     # each library in a worker process of its own

Issue 14's CPU rows: ``--only "train LeNet"``, ``--only MNIST`` (one epoch, 60,000 images, at most 2 timed
rounds), ``--only "train resnet18"``, ``--only "train mobilenet"``, ``--only "peak RSS"`` (ResNet-18 training
memory, each side in a fresh process); inference rows are in bench/models.py, text and audio in
bench/text.py and bench/audio.py.

Each case is a name plus two setup functions (hubkit, torch) that build inputs and return a
zero-argument callable to time. Both run in this process, where torch's libgomp is loaded first and numba's
OpenMP threads share it with its default 300,000-iteration spin (``hubkit/kernels/_jit.py``), which a process
running only hubkit does not have (hubkit sets 10,000), and where torch allocates with hubkit's allocator
settings (``hubkit/kernels/_malloc.py``, process-wide), which make it faster than it is for its own users
(the MNIST network's step 41.8 -> 35.8 ms). ``--processes`` runs each side in a worker process of its own (this
script with ``--worker``; bench/_timing.py), the parent telling them in turn to run a round: what a user of
either library gets (bench/RESULTS.md, 2026-12-03).
Timings are the best of ``--repeat`` rounds after one warm-up, a round of a short case being as many
back-to-back calls as fill ``ROUND_SECONDS`` (0.25 s; the time per call is reported), as training runs its
steps; the ratio is hubkit time / torch time (lower is better, 1.0 = parity). torch runs with as many threads as
numpy's BLAS uses, so both get the same cores. The CPU-time ratio (best ``time.process_time`` of each
side) is printed too: on a machine shared with other jobs it moves much less than wall time, though
with several threads it also counts the time BLAS/OpenMP workers spend spinning. Add a section by
appending cases to ``CASES``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from _timing import SETTLE_SECONDS, Worker, products_description, serve

import hubkit
import hubkit.nn.functional as F

Setup = Callable[[], Callable[[], object]]


@dataclass
class Case:
    name: str
    hubkit: Setup
    torch: Setup | None
    repeat: int | None = None  # at most this many timed rounds (the MNIST epoch is long)


CASES: list[Case] = []


# ---------------------------------------------------------------- conv layers (ResNet shapes)

# label, in channels, input size, out channels, kernel, stride, padding
CONV_LAYERS = [
    ("stem 3->64 224 7x7 s2", 3, 224, 64, 7, 2, 3),
    ("64->64 56 3x3", 64, 56, 64, 3, 1, 1),
    ("64->128 56 3x3 s2", 64, 56, 128, 3, 2, 1),
    ("128->128 28 3x3", 128, 28, 128, 3, 1, 1),
    ("256->256 14 3x3", 256, 14, 256, 3, 1, 1),
    ("512->512 7 3x3", 512, 7, 512, 3, 1, 1),
    ("256->64 56 1x1", 256, 56, 64, 1, 1, 0),
    ("64->128 56 1x1 s2", 64, 56, 128, 1, 2, 0),
]


def _conv_case(
    label: str, n: int, c: int, size: int, oc: int, k: int, s: int, p: int, backward: bool, device: str = "cpu"
) -> Case:
    """One conv layer, forward or forward+backward, both sides on ``device`` (bench/gpu.py uses "cuda")."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, size, size), dtype=np.float32)
    w = (rng.standard_normal((oc, c, k, k), dtype=np.float32) * 0.05).astype(np.float32)
    out = (size + 2 * p - k) // s + 1
    gy = rng.standard_normal((n, oc, out, out), dtype=np.float32)

    def hub() -> Callable[[], object]:
        xt, wt, g = (hubkit.tensor(a, device=device) for a in (x, w, gy))
        if not backward:

            def run() -> object:
                with hubkit.no_grad():
                    return F.conv2d(xt, wt, None, s, p)

            return run
        xt.requires_grad_(True)
        wt.requires_grad_(True)

        def run_bwd() -> object:
            xt.grad = wt.grad = None
            F.conv2d(xt, wt, None, s, p).backward(g)
            return xt.grad

        return run_bwd

    def tor() -> Callable[[], object]:
        import torch

        xt, wt, g = (torch.from_numpy(a).to(device) for a in (x, w, gy))
        if not backward:

            def run() -> object:
                with torch.no_grad():
                    return torch.nn.functional.conv2d(xt, wt, None, s, p)

            return run
        xt.requires_grad_(True)
        wt.requires_grad_(True)

        def run_bwd() -> object:
            xt.grad = wt.grad = None
            torch.nn.functional.conv2d(xt, wt, None, s, p).backward(g)
            return xt.grad

        return run_bwd

    kind = "fwd+bwd" if backward else "fwd"
    return Case(f"conv {label} N={n} {kind}", hub, tor)


for _layer in CONV_LAYERS:
    for _n in (1, 32):
        for _bwd in (False, True):
            CASES.append(_conv_case(_layer[0], _n, *_layer[1:], backward=_bwd))

# Small layers, where the direct convolution runs (hubkit/kernels/cpu_wide.py, with numba): LeNet-5's two
# layers at batch 64 and a CIFAR-style 16-channel layer; ``--only direct``.
DIRECT_LAYERS = [
    ("direct LeNet 1->6 28 5x5", 64, 1, 28, 6, 5, 1, 2),
    ("direct LeNet 6->16 14 5x5", 64, 6, 14, 16, 5, 1, 0),
    ("direct 16->16 32 3x3", 64, 16, 32, 16, 3, 1, 1),
]
for _layer in DIRECT_LAYERS:
    for _bwd in (False, True):
        CASES.append(_conv_case(_layer[0], *_layer[1:], backward=_bwd))

# ---------------------------------------------------------------- training steps and fused inference

from engine_training import training_cases  # noqa: E402  (bench/engine_training.py: training steps, fuse)

CASES.extend(training_cases(Case, int(os.environ.get("BENCH_MNIST_IMAGES", "60000"))))


def _peak_memory_row(label: str) -> None:
    """Peak RSS of ResNet-18 training at batch 16, each side in a fresh process (bench/engine_training.py)."""
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "engine_training.py")
    mib, total = {}, {}
    for side in ("hubkit", "torch"):
        out = subprocess.run([sys.executable, script, side], capture_output=True, text=True, check=True)
        mib[side], total[side] = (float(v) for v in out.stdout.split()[-2:])
    print(f"{label:<46} {mib['hubkit']:>8.0f}MiB {mib['torch']:>8.0f}MiB {mib['hubkit'] / mib['torch']:>6.2f}x",
          flush=True)  # fmt: skip
    print(f"{'  whole process peak RSS (MiB)':<46} {total['hubkit']:>8.0f}MiB {total['torch']:>8.0f}MiB "
          f"{total['hubkit'] / total['torch']:>6.2f}x", flush=True)  # fmt: skip


# ---------------------------------------------------------------- runner


# A round of a short case calls it back to back until the round lasts at least this long, and reports the mean
# per call: training runs steps back to back, so a lone step right after the other library's (cold caches,
# sleeping worker threads) is not what a user waits for. Both sides are timed the same way.
ROUND_SECONDS = 0.25


def _interleaved_best(fns: list[Callable[[], object]], repeat: int) -> tuple[list[float], list[float]]:
    """Best wall time and best CPU time per call of each callable, running them in turn each round so that
    load from other processes on a shared machine hits both sides alike. After an untimed first call (it
    loads and compiles), the time of a second call sets how many back-to-back calls make its round (see
    ``ROUND_SECONDS``): sizing rounds by the cold first call made them a few calls long, most of them cold."""
    calls = []
    for fn in fns:
        fn()  # the first call loads and compiles what the case uses
        start = time.perf_counter()
        fn()
        calls.append(max(1, math.ceil(ROUND_SECONDS / max(time.perf_counter() - start, 1e-6))))
    best = [float("inf")] * len(fns)
    best_cpu = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(calls[i]):
                fn()
            best[i] = min(best[i], (time.perf_counter() - start) / calls[i])
            best_cpu[i] = min(best_cpu[i], (time.process_time() - start_cpu) / calls[i])
    return best, best_cpu


def _interleaved_processes(case: Case, repeat: int, threads: int) -> tuple[list[float], list[float]]:
    """``_interleaved_best`` with each side in a worker process of its own, the two taking turns each round."""
    command = [sys.executable, os.path.abspath(__file__), "--case", case.name] + (
        ["--threads", str(threads)] if threads else [])  # fmt: skip
    workers = [Worker(command + ["--worker", "hubkit"]), Worker(command + ["--worker", "torch"], torch_side=True)]
    try:
        for w in workers:
            w.run(1)  # loads and compiles what the case uses
        calls = [max(1, math.ceil(ROUND_SECONDS / max(w.run(1)[0], 1e-6))) for w in workers]
        best, best_cpu = [float("inf")] * 2, [float("inf")] * 2
        for _ in range(repeat):
            for i, w in enumerate(workers):
                time.sleep(SETTLE_SECONDS)
                wall, cpu = w.run(calls[i])
                best[i], best_cpu[i] = min(best[i], wall / calls[i]), min(best_cpu[i], cpu / calls[i])
        return best, best_cpu
    finally:
        for w in workers:
            w.close()


def _worker_main(side: str, name: str, threads: int) -> None:
    """``--worker``: build ``side`` of the case called ``name``, then for each count read from stdin call it that
    many times and print ``@wall cpu`` (seconds)."""
    if threads:
        limiter = _limit_blas_threads(threads)  # noqa: F841  (held for the run)
    if side == "torch":
        import torch

        torch.set_num_threads(threads or os.cpu_count() or 1)
    case = next(c for c in CASES if c.name == name)
    setup = case.hubkit if side == "hubkit" else case.torch
    assert setup is not None
    serve(setup())


def _limit_blas_threads(threads: int) -> object:
    """Keep numpy's BLAS at ``threads`` threads (threadpoolctl); returns the limiter to hold."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError as exc:
        raise SystemExit("--threads needs threadpoolctl (pip install threadpoolctl)") from exc
    return threadpool_limits(threads, user_api="blas")


def _blas_description() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return "; ".join(f"{i['internal_api']} {i['version']} {i.get('architecture')} x{i['num_threads']}" for i in infos)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the cases whose name contains this text")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="BLAS and torch threads (default: all cores)")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda: the GPU cases of bench/gpu.py")
    parser.add_argument("--processes", action="store_true",
                        help="run each library in a worker process of its own")  # fmt: skip
    parser.add_argument("--worker", choices=("hubkit", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker_main(args.worker, args.case, args.threads)
        return
    if args.device != "cpu":
        import gpu  # bench/gpu.py: the same kind of cases with both sides on the GPU

        gpu.main((["--only", args.only] if args.only else []) + ["--repeat", str(args.repeat)])
        return

    try:
        import torch
    except ImportError:
        torch = None
    threads = args.threads or os.cpu_count() or 1
    limiter = _limit_blas_threads(args.threads) if args.threads else None  # noqa: F841  (held for the run)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {threads} threads; numpy {np.__version__}; "
          f"BLAS: {_blas_description()}")  # fmt: skip
    print("OPENBLAS_CORETYPE=" + os.environ.get("OPENBLAS_CORETYPE", "(unset)") + ", OPENBLAS_L2_SIZE="
          + os.environ.get("OPENBLAS_L2_SIZE", "(unset)"))  # fmt: skip
    print(products_description())
    print(f"hubkit kernel threads: {hubkit.get_num_threads()} "
          "(HUBKIT_NUM_THREADS, else the cores when OPENBLAS_NUM_THREADS=1, else 1)")  # fmt: skip
    if torch is not None:
        torch.set_num_threads(threads)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'case':<46} {'hubkit ms':>10} {'torch ms':>10} {'ratio':>7} {'cpu ratio':>10}")
    for case in CASES:
        if args.only not in case.name:
            continue
        repeat = min(args.repeat, case.repeat or args.repeat)
        if torch is not None and case.torch is not None:
            if args.processes:
                (hub_s, torch_s), (hub_cpu, torch_cpu) = _interleaved_processes(case, repeat, args.threads)
            else:
                (hub_s, torch_s), (hub_cpu, torch_cpu) = _interleaved_best([case.hubkit(), case.torch()], repeat)
            hub_ms, torch_ms = hub_s * 1e3, torch_s * 1e3
            cpu_ratio = hub_cpu / torch_cpu if torch_cpu > 0 else float("nan")
            print(f"{case.name:<46} {hub_ms:>10.2f} {torch_ms:>10.2f} {hub_ms / torch_ms:>6.2f}x {cpu_ratio:>9.2f}x",
                  flush=True)  # fmt: skip
        else:
            hub_ms = _interleaved_best([case.hubkit()], repeat)[0][0] * 1e3
            print(f"{case.name:<46} {hub_ms:>10.2f} {'-':>10} {'-':>7}", flush=True)
    label = "peak RSS resnet18 train N=16 (MiB)"
    if torch is not None and args.only in label:
        _peak_memory_row(label)


if __name__ == "__main__":
    main()
