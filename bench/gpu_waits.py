"""Which host calls of a GPU step wait for the GPU. Each cuDNN call (graph-API execute, legacy convolution and
batch-norm calls) and each cupy allocation of a ResNet-18 training step (N=32) and inference (N=64) is timed on
the host, with whether the stream had work queued before it and none left right after it: a call that finds the
stream busy and returns with it idle waited for the queue, and the host cannot run ahead of the GPU past it.

    python bench/gpu_waits.py [--steps 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict

from gpu_profile import _infer, _resnet18_step

_records: dict[str, list[tuple[float, bool]]] = defaultdict(list)
_active = False


def _wrap(owner, name: str, label: str, name_at: int | None = None) -> None:
    """Time ``owner.name``; ``name_at``: the argument that names the call (the cuDNN function of a legacy call)."""
    import cupy

    real = getattr(owner, name)

    def timed(*args, **kwargs):
        if not _active:
            return real(*args, **kwargs)
        stream = cupy.cuda.get_current_stream()
        busy = not stream.done
        start = time.perf_counter()
        out = real(*args, **kwargs)
        spent = time.perf_counter() - start
        _records[label if name_at is None else f"{label} {args[name_at]}"].append((spent, busy and stream.done))
        return out

    setattr(owner, name, timed)


def _report(title: str, per_step: float, steps: int) -> None:
    print(f"\n=== {title}: {per_step * 1e3:.2f} ms per step ===")
    print(f"{'call':58s} {'per step':>8s} {'median us':>10s} {'max us':>8s} {'waited':>7s}")
    for label, rows in sorted(_records.items(), key=lambda kv: -sum(r[0] for r in kv[1])):
        times = [r[0] for r in rows]
        waited = sum(r[1] for r in rows)
        print(f"{label[:58]:58s} {len(rows) / steps:8.0f} {statistics.median(times) * 1e6:10.1f} "
              f"{max(times) * 1e6:8.0f} {waited:7d}")  # fmt: skip
    _records.clear()


def main() -> None:
    global _active
    import cupy

    from hubkit.kernels import cudnn, cudnn_graph

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    _wrap(cudnn_graph, "execute", "cudnnBackendExecute (graph plan)")
    _wrap(cudnn._Library, "check", "legacy", name_at=1)
    _wrap(cudnn._Library, "call", "legacy", name_at=1)
    for name in ("conv2d", "conv2d_grad_input", "conv2d_grad_weight", "batch_norm_training", "batch_norm_inference",
                 "batch_norm_backward"):  # fmt: skip
        _wrap(cudnn, name, f"kernels.cudnn.{name} (whole call)")
    _wrap(cupy, "empty", "cupy.empty")
    _wrap(cupy, "empty_like", "cupy.empty_like")

    # the same steps bench/gpu_profile.py profiles
    for label, build in (("resnet18 train step N=32", _resnet18_step), ("resnet18 inference N=64",
                                                                         _infer("resnet18", 64))):  # fmt: skip
        fn = build()
        for _ in range(3):
            fn()
        cupy.cuda.Device().synchronize()
        _active = True
        start = time.perf_counter()
        for _ in range(args.steps):
            fn()
        cupy.cuda.Device().synchronize()
        _active = False
        _report(label, (time.perf_counter() - start) / args.steps, args.steps)

if __name__ == "__main__":
    main()
