"""Where a GPU step's time goes: cProfile of hubkit's ResNet-18 training step (N=32), ResNet-18
inference (N=64) and ViT-B/16 inference (N=1) on the GPU, top functions by own time. Kernel time shows
up as time in cupy's synchronize; everything else is host-side Python work that the GPU waits for. The
header line also gives the host's time to queue a call against the call's whole time.

    python bench/gpu_profile.py [--top 25]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import numpy as np

import hubkit
import hubkit.nn.functional as F
from hubkit import optim


def _resnet18_step():
    hubkit.manual_seed(0)
    model = hubkit.load("resnet18").to("cuda").train()
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    x = hubkit.tensor(rng.standard_normal((32, 3, 224, 224), dtype=np.float32), device="cuda")
    y = hubkit.tensor(rng.integers(0, 1000, 32), device="cuda")

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def _infer(name: str, batch: int):
    def build():
        hubkit.manual_seed(0)
        model = hubkit.load(name).to("cuda").eval()
        x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224), dtype=np.float32)
        xt = hubkit.tensor(x, device="cuda")

        def run():
            with hubkit.no_grad():
                model(xt)

        return run

    return build


def main() -> None:
    import cupy

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--only", default="", help="the cases whose label contains this text")
    cases = (("resnet18 train step N=32", _resnet18_step), ("resnet18 infer N=64", _infer("resnet18", 64)),
             ("vit_b_16 infer N=1", _infer("vit_b_16", 1)))  # fmt: skip
    args = parser.parse_args()
    for label, build in cases:
        if args.only not in label:
            continue
        fn = build()
        for _ in range(2):
            fn()
        cupy.cuda.Device().synchronize()
        start = time.perf_counter()
        for _ in range(args.steps):
            fn()
        issued = (time.perf_counter() - start) / args.steps  # host time to queue the work (waits included)
        cupy.cuda.Device().synchronize()
        wall = (time.perf_counter() - start) / args.steps
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(args.steps):
            fn()
        cupy.cuda.Device().synchronize()
        profile.disable()
        print(f"\n=== {label}: {wall * 1e3:.2f} ms per call (unprofiled); the host had queued it after "
              f"{issued * 1e3:.2f} ms (close to the total: host-bound or a sync inside) ===")  # fmt: skip
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
