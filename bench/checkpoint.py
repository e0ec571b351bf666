"""Checkpoint loading: hubkit ``load_checkpoint`` vs ``torch.load`` on a ResNet-50-sized torch zip file.

    python bench/checkpoint.py                # ~100 MB resnet50 state dict, 7 timed loads per method
    python bench/checkpoint.py --repeat 15

The file is written once by ``torch.save`` (torchvision ``resnet50(weights=None).state_dict()``, 320 tensors,
~102 MB) and read warm from the page cache. Each method runs in its own fresh process, so the peak-memory
numbers do not mix; imports happen before anything is measured. Methods:

- ``hubkit mmap``:   ``load_checkpoint(path)`` (mmap=True, the default): arrays are views of a private
                     copy-on-write mapping, so nothing is read until it is used.
- ``hubkit read``:   ``load_checkpoint(path, mmap=False)``: every tensor read into its own memory.
- ``torch``:         ``torch.load(path, weights_only=True)`` (mmap=False, torch's default).
- ``torch mmap``:    ``torch.load(path, weights_only=True, mmap=True)``.

Reported per method: median load time; median time to load and then touch every page of every tensor
(reading one byte per 4 KiB page through numpy, the same for all methods, so lazy and eager loaders are
compared on equal work); and the peak resident memory above the pre-load level (``VmHWM`` after
``/proc/self/clear_refs``), after the load alone and after touching everything. Ratios are against
``torch`` (mmap=False). Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "bench" / "_data"
METHODS = ["hubkit mmap", "hubkit read", "torch", "torch mmap"]


def _status() -> dict[str, int]:
    """VmRSS and VmHWM of this process, in bytes."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    return out


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def _touch(arrays) -> int:
    """Read one byte of every 4 KiB page of every array; returns a checksum so nothing is skipped."""
    import numpy as np

    total = 0
    for a in arrays:
        flat = a.reshape(-1).view(np.uint8)
        total += int(flat[::4096].sum()) + int(flat[-1:].sum())
    return total


def run_method(method: str, path: str, repeat: int) -> dict:
    """One method in this (fresh) process: peak memory of a first load, then the timings."""
    import gc

    import numpy as np

    if method.startswith("hubkit"):
        from hubkit.hub import load_checkpoint

        mmap = method == "hubkit mmap"

        def load():
            return load_checkpoint(path, mmap=mmap)

        def arrays(state):
            return state.values()
    else:
        import torch

        torch.set_num_threads(1)
        mmap = method == "torch mmap"

        def load():
            return torch.load(path, weights_only=True, mmap=mmap)

        def arrays(state):
            return (t.numpy() for t in state.values())

    np.zeros(1).sum()
    gc.collect()
    peak_ok = _reset_peak()
    before = _status()["VmRSS"]
    state = load()
    peak_load = _status()["VmHWM"] - before
    checksum = _touch(arrays(state))
    peak_touch = _status()["VmHWM"] - before
    largest = max(a.nbytes for a in arrays(state))
    del state
    gc.collect()

    load_times, touch_times = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        state = load()
        loaded = time.perf_counter()
        _touch(arrays(state))
        touched = time.perf_counter()
        load_times.append(loaded - start)
        touch_times.append(touched - start)
        del state
        gc.collect()
    return {"method": method, "load_s": statistics.median(load_times), "load_touch_s": statistics.median(touch_times),
            "peak_load": peak_load, "peak_touch": peak_touch, "peak_ok": peak_ok, "checksum": checksum,
            "largest": largest}


def make_checkpoint(path: Path) -> None:
    import torch
    import torchvision

    torch.manual_seed(0)
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed loads per method (median reported)")
    parser.add_argument("--method", help=argparse.SUPPRESS)  # internal: run one method in this process
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.method:
        print(json.dumps(run_method(args.method, args.path, args.repeat)))
        return

    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / "resnet50_state.pth"
    if not path.exists():
        make_checkpoint(path)
    path.read_bytes()  # warm the page cache
    size = path.stat().st_size
    results = {}
    for method in METHODS:
        out = subprocess.run([sys.executable, __file__, "--method", method, "--path", str(path),
                              "--repeat", str(args.repeat)], check=True, capture_output=True, text=True)
        results[method] = json.loads(out.stdout.strip().splitlines()[-1])
    checksums = {r["checksum"] for r in results.values()}
    assert len(checksums) == 1, f"methods disagree on the data: {results}"

    import numpy as np
    import torch

    mib = 1 << 20
    largest = results["hubkit mmap"]["largest"]
    print("## Checkpoint loading (bench/checkpoint.py)\n")
    machine = (f"{platform.machine()}, {os.cpu_count()} cores, {_mem_gib():.0f} GiB RAM, "
               f"Python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}")
    print(f"{machine}. File: torchvision resnet50 state dict written by torch.save, {size / mib:.1f} MiB, "
          f"320 tensors, largest tensor {largest / mib:.1f} MiB; page cache warm; median of {args.repeat} "
          "loads, each method in a fresh process.\n")
    print("| method | load | vs torch | load + touch all pages | vs torch | peak RSS after load | "
          "peak RSS after touch |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    base = results["torch"]
    for method in METHODS:
        r = results[method]
        print(f"| {method} | {r['load_s'] * 1e3:.1f} ms | {r['load_s'] / base['load_s']:.2f}x | "
              f"{r['load_touch_s'] * 1e3:.1f} ms | {r['load_touch_s'] / base['load_touch_s']:.2f}x | "
              f"+{r['peak_load'] / mib:.1f} MiB | +{r['peak_touch'] / mib:.1f} MiB |")
    ours, theirs = results["hubkit mmap"], results["torch mmap"]
    print(f"\nhubkit mmap vs torch mmap: {ours['load_s'] / theirs['load_s']:.2f}x (load), "
          f"{ours['load_touch_s'] / theirs['load_touch_s']:.2f}x (load + touch)")
    if not all(r["peak_ok"] for r in results.values()):
        print("\n(peak RSS could not be reset; peaks include everything since process start)")


def _mem_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)


if __name__ == "__main__":
    main()
