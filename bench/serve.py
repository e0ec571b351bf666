"""Serving: p50/p99 latency and throughput of resnet18 behind ``hubkit serve``, without and with dynamic batching,
against torch's resnet18 behind a minimal Starlette handler, at concurrency 1, 8 and 32, in one run, on loopback.

    python bench/serve.py                          # 48 requests per level, at most 90 s per level
    python bench/serve.py --requests 32 --levels 1,8 --max-seconds 30

Weights are random (no download; timings do not depend on the values): hubkit's resnet18 built with a fixed seed,
saved to a temporary safetensors file, served by hubkit from that file and loaded by key into torchvision's
resnet18 for the baseline, so both sides compute the same function (the script checks that their answers agree).
Every request posts examples/cat.jpg; both sides decode it with Pillow, resize 256 / crop 224 / normalize (hubkit
with its registry preprocessing, torch with torchvision.transforms) and answer the top-5 ``{label: probability}``.

Servers, each in its own process and measured one at a time (hubkit's workers get the default BLAS threads: the
cores but one, shared among the workers):
- ``hubkit``: ``hubkit serve`` with one worker process, batch_size 1;
- ``hubkit batched``: the same with batch_size 8, max_batch_delay 10 ms;
- ``hubkit, 2 workers``: batch_size 1, two worker processes;
- ``torch``: uvicorn + a Starlette app whose one async endpoint runs the model in Starlette's thread pool
  (``torch.inference_mode``), no batching.
Clients are threads with one keep-alive session each, all in this process; latency is per request (send to last
byte), throughput is answered requests / wall time of the level.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CAT = REPO / "examples" / "cat.jpg"


# ---------------------------------------------------------------- the torch baseline server (a subprocess)


def torch_server(checkpoint: str, categories_file: str, port_file: str) -> None:
    import socket

    import torch
    import torchvision
    import uvicorn
    from PIL import Image
    from safetensors.numpy import load_file
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from torchvision import transforms

    model = torchvision.models.resnet18()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in load_file(checkpoint).items()})
    model.eval()
    categories = json.loads(Path(categories_file).read_text())
    preprocess = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
                                     transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])

    def classify(body: bytes) -> dict:
        import io

        with Image.open(io.BytesIO(body)) as im:
            x = preprocess(im.convert("RGB")).unsqueeze(0)
        with torch.inference_mode():
            p = torch.softmax(model(x).double(), dim=1)[0]
        values, idx = p.topk(5)
        return {categories[i]: float(v) for v, i in zip(values.tolist(), idx.tolist())}

    async def predict(request: Request) -> JSONResponse:
        return JSONResponse(await run_in_threadpool(classify, await request.body()))

    app = Starlette(routes=[Route("/predictions/{name}", predict, methods=["POST"])])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    Path(port_file).write_text(str(sock.getsockname()[1]))
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])


# ---------------------------------------------------------------- load generation


def run_level(url: str, body: bytes, concurrency: int, total: int, max_seconds: float) -> dict:
    """``total`` requests (fewer if ``max_seconds`` passes first) from ``concurrency`` threads."""
    import requests

    lock = threading.Lock()
    issued = [0]
    latencies: list[float] = []
    failures: list[str] = []
    start = time.perf_counter()
    deadline = start + max_seconds

    def client() -> None:
        session = requests.Session()
        while True:
            with lock:
                if issued[0] >= total or time.perf_counter() > deadline:
                    return
                issued[0] += 1
            t0 = time.perf_counter()
            r = session.post(url, data=body, headers={"Content-Type": "image/jpeg"}, timeout=600)
            elapsed = time.perf_counter() - t0
            with lock:
                (latencies.append(elapsed) if r.status_code == 200 else failures.append(r.text[:200]))

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    lat = np.array(latencies) * 1000
    return {"n": len(latencies), "failed": len(failures), "p50": float(np.percentile(lat, 50)) if lat.size else 0.0,
            "p99": float(np.percentile(lat, 99)) if lat.size else 0.0, "rps": len(latencies) / wall}  # fmt: skip


def _wait_file(path: Path, proc: subprocess.Popen, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text().strip():
        if proc.poll() is not None:
            raise SystemExit(f"a server exited with {proc.returncode}")
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("a server did not start in time")
        time.sleep(0.1)
    time.sleep(0.05)
    return path.read_text()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=48, help="requests per concurrency level (default 48)")
    parser.add_argument("--levels", default="1,8,32", help="concurrency levels (default 1,8,32)")
    parser.add_argument("--max-seconds", type=float, default=90.0, help="time limit per level (default 90)")
    parser.add_argument("--no-torch", action="store_true", help="skip the torch baseline")
    parser.add_argument("--threads-per-worker", type=int, help="BLAS threads in hubkit's worker (default: all)")
    parser.add_argument("--torch-server", nargs=3, metavar=("CKPT", "CATEGORIES", "PORTFILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.torch_server:
        torch_server(*args.torch_server)
        return
    levels = [int(x) for x in args.levels.split(",")]

    import requests

    import hubkit
    from hubkit.hub import api, save_checkpoint

    tmp = Path(tempfile.mkdtemp(prefix="hubkit-bench-serve-"))
    hubkit.manual_seed(0)
    model = hubkit.load("resnet18").eval()
    from PIL import Image

    with Image.open(CAT) as im:
        pixels = api.get_weights("resnet18").transforms()(im.convert("RGB")).numpy()[None]
    with hubkit.no_grad():  # random weights: zero the bias and widen the logits (std 3) so the top 5 are apart
        model.fc.bias.array[...] = 0
        model.fc.weight.array[...] *= np.float32(3.0 / model(hubkit.from_numpy(pixels)).numpy().std())
    ckpt = tmp / "resnet18.safetensors"
    save_checkpoint({k: np.array(v.numpy()) for k, v in model.state_dict().items()}, ckpt, format="safetensors")
    categories = tmp / "categories.json"
    categories.write_text(json.dumps(api.get_weights("resnet18").meta["categories"]))
    body = CAT.read_bytes()
    env = {**os.environ, "HUBKIT_OFFLINE": "1", "HUBKIT_HOME": str(tmp / "home")}

    servers: list[tuple[str, list[str], str]] = [
        ("hubkit", ["plain=resnet18:" + str(ckpt), "--batch-size", "1"], "plain"),
        ("hubkit batched (8, 10 ms)", ["batched=resnet18:" + str(ckpt), "--batch-size", "8", "--max-batch-delay", "10"],
         "batched"),
        ("hubkit, 2 workers", ["two=resnet18:" + str(ckpt), "--batch-size", "1", "--workers", "2"], "two"),
    ]  # fmt: skip
    results: dict[str, dict[int, dict]] = {}
    answers: dict[str, dict] = {}
    for label, serve_args, name in servers:
        ready = tmp / f"{name}.json"
        cmd = [sys.executable, "-m", "hubkit.cli", "serve", *serve_args, "--port", "0", "--management-port", "0",
               "--metrics-port", "0", "--access-log", "off", "--ready-file", str(ready)]  # fmt: skip
        if args.threads_per_worker:
            cmd += ["--threads-per-worker", str(args.threads_per_worker)]
        with open(tmp / f"{name}.log", "wb") as log:  # the server's own messages stay out of the table
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            url = json.loads(_wait_file(ready, proc))["inference"] + f"/predictions/{name}"
            answers[label] = requests.post(url, data=body, timeout=600).json()
            results[label] = {c: run_level(url, body, c, args.requests, args.max_seconds) for c in levels}
        finally:
            proc.terminate()
            proc.wait(120)

    if not args.no_torch:
        port_file = tmp / "torch.port"
        proc = subprocess.Popen([sys.executable, __file__, "--torch-server", str(ckpt), str(categories),
                                 str(port_file)], stdout=subprocess.DEVNULL)  # fmt: skip
        try:
            url = f"http://127.0.0.1:{_wait_file(port_file, proc).strip()}/predictions/resnet18"
            deadline = time.monotonic() + 60
            while True:
                try:
                    answers["torch + starlette"] = requests.post(url, data=body, timeout=600).json()
                    break
                except requests.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            results["torch + starlette"] = {c: run_level(url, body, c, args.requests, args.max_seconds)
                                            for c in levels}  # fmt: skip
        finally:
            proc.terminate()
            proc.wait(120)

    print(f"# resnet18 (random weights) on {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, numpy {np.__version__}; {args.requests} requests per level, "
          f"max {args.max_seconds:g} s; body examples/cat.jpg ({len(body):,} bytes)")  # fmt: skip
    reference = answers.get("hubkit")
    for label, answer in answers.items():
        same = list(answer) == list(reference) and all(abs(answer[k] - reference[k]) < 1e-3 for k in reference)
        print(f"#   {label}: top-1 {next(iter(answer))!r} ({answer[next(iter(answer))]:.4f})"
              + ("" if same else "  <-- DIFFERS from hubkit"))
    print()
    print("| server | concurrency | requests | p50 ms | p99 ms | req/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, per_level in results.items():
        for c, r in per_level.items():
            failed = f" ({r['failed']} failed)" if r["failed"] else ""
            print(f"| {label} | {c} | {r['n']}{failed} | {r['p50']:.0f} | {r['p99']:.0f} | {r['rps']:.2f} |")
    if "torch + starlette" in results:
        print()
        print("throughput ratio hubkit / torch (higher is better):")
        for label in [k for k in results if k != "torch + starlette"]:
            ratios = ", ".join(f"c={c}: {results[label][c]['rps'] / results['torch + starlette'][c]['rps']:.2f}x"
                               for c in levels)  # fmt: skip
            print(f"  {label}: {ratios}")


if __name__ == "__main__":
    main()
