"""Distributed data-parallel training on this machine: ResNet-18 training-step throughput with 1 and 2 processes,
and the time to all-reduce ResNet-18's 11.7M float32 gradients with hubkit.distributed, with mpi4py alone and
with torch.distributed's gloo backend (when torch is installed).

    python bench/distributed.py [--batch 16] [--size 64] [--steps 5] [--repeat 10]

Every job is started the way a user starts one (``hubkit run``, or ``--launcher local`` for gloo, which reads
torchrun's variables). Each worker prints one JSON line that rank 0 of the job writes; this script gathers
them and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESNET18_PARAMS = 11_689_512  # torchvision's resnet18(), 1000 classes


# ---------------------------------------------------------------- workers (one per rank)


def worker_step(batch: int, size: int, steps: int) -> dict:
    """ResNet-18 SGD steps; with more than one rank, through DistributedDataParallel."""
    import hubkit
    import hubkit.distributed as dist
    import hubkit.nn.functional as F
    from hubkit import optim
    from hubkit.nn.parallel import DistributedDataParallel
    from hubkit.zoo.vision.resnet import resnet18

    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    hubkit.manual_seed(0)
    model = resnet18()
    net = DistributedDataParallel(model) if world > 1 else model
    opt = optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(rank)
    x = hubkit.from_numpy(rng.standard_normal((batch, 3, size, size), dtype=np.float32))
    y = hubkit.from_numpy(rng.integers(0, 1000, batch))
    times = []
    for i in range(steps + 1):  # the first step warms up (allocations, buckets)
        dist.barrier()
        start = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
        elapsed = time.perf_counter() - start
        slowest = hubkit.tensor([elapsed], dtype=hubkit.float64)
        dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
        if i:
            times.append(slowest.item())
    step = statistics.median(times)
    return {"rank": rank, "world": world, "step_s": step, "images_per_s": world * batch / step}


def worker_allreduce(repeat: int) -> dict:
    """All-reduce of 11.7M float32: hubkit.distributed, then mpi4py's blocking and non-blocking calls."""
    import hubkit
    import hubkit.distributed as dist

    dist.init_process_group("mpi")
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    array = np.ones(RESNET18_PARAMS, dtype=np.float32)
    tensor = hubkit.from_numpy(array)

    def timed(fn) -> float:
        fn()
        times = []
        for _ in range(repeat):
            comm.Barrier()
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    results = {
        "hubkit all_reduce": timed(lambda: dist.all_reduce(tensor)),
        "mpi4py Allreduce": timed(lambda: comm.Allreduce(MPI.IN_PLACE, array)),
        "mpi4py Iallreduce+Wait": timed(lambda: comm.Iallreduce(MPI.IN_PLACE, array).Wait()),
    }
    return {"rank": dist.get_rank(), "world": dist.get_world_size(), **results}


def worker_gloo(repeat: int) -> dict:
    """torch.distributed all_reduce of 11.7M float32 on gloo (env:// from the local launcher)."""
    import torch
    import torch.distributed as tdist

    tdist.init_process_group("gloo")
    tensor = torch.ones(RESNET18_PARAMS, dtype=torch.float32)
    tdist.all_reduce(tensor)
    times = []
    for _ in range(repeat):
        tdist.barrier()
        start = time.perf_counter()
        tdist.all_reduce(tensor)
        times.append(time.perf_counter() - start)
    result = {"rank": tdist.get_rank(), "world": tdist.get_world_size(),
              "torch.distributed gloo all_reduce": statistics.median(times)}
    tdist.destroy_process_group()
    return result


# ---------------------------------------------------------------- driver


def _job(nproc: int, args: list[str], threads: int, launcher: str | None = None) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), HUBKIT_NO_PROGRESS="1")
    cmd = [sys.executable, "-c", "import sys; from hubkit.cli import main; sys.exit(main(sys.argv[1:]))", "run",
           "--nproc", str(nproc)]
    if launcher:
        cmd += ["--launcher", launcher]
    cmd += [str(Path(__file__).resolve()), "--worker", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"job {args} failed:\n{done.stderr[-3000:]}")
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return next(line for line in lines if line["rank"] == 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=16, help="images per process per step")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps")
    parser.add_argument("--repeat", type=int, default=10, help="timed all-reduces")
    parser.add_argument("--worker", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        kind, *rest = args.worker
        result = {"step": lambda: worker_step(*map(int, rest)), "allreduce": lambda: worker_allreduce(int(rest[0])),
                  "gloo": lambda: worker_gloo(int(rest[0]))}[kind]()
        print(json.dumps(result), flush=True)
        return

    cores = os.cpu_count()
    print(f"# hubkit.distributed on this machine: {cores} cores, MPI over shared memory (loopback)\n")
    step = ["step", str(args.batch), str(args.size), str(args.steps)]
    rows = [("1 process, 1 BLAS thread", _job(1, step, threads=1)),
            (f"1 process, {cores} BLAS threads", _job(1, step, threads=cores)),
            ("2 processes (DDP), 1 BLAS thread each", _job(2, step, threads=1))]
    print(f"ResNet-18 training step, {args.batch} images of {args.size}x{args.size} per process, SGD momentum")
    print("| setup | step (s) | images/s |\n| --- | --- | --- |")
    for name, r in rows:
        print(f"| {name} | {r['step_s']:.3f} | {r['images_per_s']:.1f} |")

    timings = _job(2, ["allreduce", str(args.repeat)], threads=1)
    try:
        import torch  # noqa: F401

        timings.update(_job(2, ["gloo", str(args.repeat)], threads=1, launcher="local"))
    except ImportError:
        print("(torch is not installed: no gloo comparison)")
    megabytes = RESNET18_PARAMS * 4 / 1e6
    print(f"\nall-reduce of {RESNET18_PARAMS:,} float32 ({megabytes:.1f} MB) between 2 processes, median of "
          f"{args.repeat}")
    print("| implementation | time (ms) | GB/s (algorithm bandwidth) |\n| --- | --- | --- |")
    for name, seconds in timings.items():
        if name in ("rank", "world"):
            continue
        print(f"| {name} | {seconds * 1e3:.1f} | {megabytes / 1e3 / seconds:.2f} |")


if __name__ == "__main__":
    main()
