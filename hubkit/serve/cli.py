"""``hubkit serve``: the command-line verb. Only argparse is imported until the command runs, so ``hubkit --help``
works without the ``serve`` extra."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from typing import Any

__all__ = ["add_parser"]

_EPILOG = """\
models:
  resnet18                           a registry model with its DEFAULT weights (downloaded, verified, cached)
  resnet50.IMAGENET1K_V1             a weight tag
  mymodel=resnet18:ft.safetensors    your checkpoint (torch, safetensors or npz) for a registry architecture
  st=all-MiniLM-L6-v2:./my-st-folder a Hugging Face sentence-transformers folder

examples:
  hubkit serve resnet18 all-MiniLM-L6-v2 wav2vec2_asr_base_960h --port 8080
  hubkit serve mymodel=resnet18:weights/finetuned.safetensors --port 8080 --management-port 8081
  curl http://127.0.0.1:8080/predictions/resnet18 -T cat.jpg
  hubkit serve --config config.properties      (TorchServe's keys; or a .toml file)
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "serve", help="serve models over HTTP: TorchServe's inference and management APIs, metrics, a web page",
        description="Serve zoo models or your checkpoints behind TorchServe's HTTP API. Listens on 127.0.0.1 only "
                    "unless --host says otherwise. Flags override the config file.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("models", nargs="*", metavar="MODEL", help="[NAME=]ARCH[.TAG] or NAME=ARCH:CHECKPOINT")
    p.add_argument("--config", metavar="FILE", help="config.properties (TorchServe's keys) or a .toml file")
    p.add_argument("--host", help="address of all three listeners (default 127.0.0.1; 0.0.0.0 exposes them)")
    p.add_argument("--port", type=int, help="inference port (default 8080; 0 picks a free one)")
    p.add_argument("--management-port", type=int, help="management port (default 8081)")
    p.add_argument("--metrics-port", type=int, help="metrics port (default 8082)")
    p.add_argument("--workers", type=int, dest="default_workers_per_model", metavar="N",
                   help="worker processes per model (default 1)")
    p.add_argument("--batch-size", type=int, metavar="N", help="requests per batch (default 1: no batching)")
    p.add_argument("--max-batch-delay", type=float, metavar="MS",
                   help="milliseconds a batch waits to fill (default 100)")
    p.add_argument("--response-timeout", type=float, dest="default_response_timeout", metavar="S",
                   help="seconds before a request fails with 504 (default 120)")
    p.add_argument("--job-queue-size", type=int, metavar="N",
                   help="requests waiting per model before 503 + Retry-After (default 100)")
    p.add_argument("--max-request-size", type=_size, metavar="SIZE",
                   help="largest request body, e.g. 6553500 or 20M (default 6553500 bytes; 413 beyond)")
    p.add_argument("--max-image-pixels", type=int, metavar="N",
                   help="largest decoded image in pixels (default 40000000; 413 beyond)")
    p.add_argument("--management-token", metavar="TOKEN",
                   help="require 'Authorization: Bearer TOKEN' on the management API (or set HUBKIT_SERVE_TOKEN)")
    p.add_argument("--device", help="cpu (default), cuda or cuda:N")
    p.add_argument("--threads-per-worker", type=int, metavar="N",
                   help="BLAS threads in each worker (default: the cores but one, shared by all workers)")
    p.add_argument("--startup-timeout", type=float, metavar="S", help="seconds a model may take to load (120)")
    p.add_argument("--graceful-timeout", type=float, metavar="S",
                   help="seconds to finish requests in flight at shutdown (default: the response timeout)")
    p.add_argument("--access-log", metavar="PATH", help="JSON access log: '-' stderr (default), a file, or 'off'")
    p.add_argument("--ready-file", metavar="PATH",
                   help="write the listeners' URLs as JSON here once the startup models are loaded")
    p.set_defaults(func=_cmd_serve)


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def _size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]?)(?:I?B)?\s*", text.upper())
    if match is None:
        raise argparse.ArgumentTypeError(f"expected a size like 6553500, 500K or 20M, got {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def _setup_access_log(target: str) -> logging.Handler | None:
    log = logging.getLogger("hubkit.serve.access")
    log.propagate = False
    if target == "off":
        log.setLevel(logging.WARNING)
        return None
    handler: logging.Handler = (logging.StreamHandler(sys.stderr) if target == "-"
                                else logging.FileHandler(target, encoding="utf-8"))  # fmt: skip
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def _cmd_serve(args: argparse.Namespace) -> int:
    from hubkit.errors import MissingDependencyError

    try:
        import multipart  # noqa: F401  (python-multipart, for form bodies)
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise MissingDependencyError(f"hubkit serve needs the serve extra ({e.name} is missing): "
                                     "pip install 'hubkit[serve]'") from None  # fmt: skip
    from hubkit.serve.config import build_config
    from hubkit.serve.server import Server

    keys = ("default_workers_per_model", "batch_size", "max_batch_delay", "default_response_timeout",
            "job_queue_size", "max_request_size", "max_image_pixels", "device", "threads_per_worker",
            "startup_timeout", "graceful_timeout", "access_log")  # fmt: skip
    overrides = {k: getattr(args, k) for k in keys}
    overrides["management_token"] = args.management_token or os.environ.get("HUBKIT_SERVE_TOKEN") or None
    config = build_config(config_file=args.config, models=args.models, overrides=overrides, host=args.host,
                          ports={"inference": args.port, "management": args.management_port,
                                 "metrics": args.metrics_port})  # fmt: skip
    handler = _setup_access_log(config.access_log)
    serve_log = logging.getLogger("hubkit.serve")
    if serve_log.getEffectiveLevel() > logging.WARNING:
        serve_log.setLevel(logging.WARNING)
    exposed = [k for k in ("inference_address", "management_address") if not _is_loopback(getattr(config, k))]
    if "management_address" in exposed and not config.management_token:
        print("hubkit serve: warning: the management API is reachable from the network without a token; "
              "set --management-token or HUBKIT_SERVE_TOKEN", file=sys.stderr)  # fmt: skip
    if not config.models:
        print("hubkit serve: no models given; register some with POST /models on the management API",
              file=sys.stderr)  # fmt: skip

    def announce(server: Server) -> None:
        print(f"hubkit serve: inference  {server.urls['inference']}  (page: {server.urls['inference']}/)")
        print(f"hubkit serve: management {server.urls['management']}")
        print(f"hubkit serve: metrics    {server.urls['metrics']}/metrics")
        for name, model in server.store.models.items():
            detail = f" ({model.error})" if model.error else ""
            print(f"hubkit serve: model {name}: {model.status}{detail}")
        sys.stdout.flush()

    try:
        Server(config, on_ready=announce).run(ready_file=args.ready_file)
    finally:
        if handler is not None:
            logging.getLogger("hubkit.serve.access").removeHandler(handler)
            handler.close()
    print("hubkit serve: stopped")
    return 0


def _is_loopback(address: str) -> bool:
    from hubkit.serve.config import parse_address

    host = parse_address(address)[0]
    return host in ("localhost", "::1") or host.startswith("127.")
