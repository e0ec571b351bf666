"""Worker processes: each holds one copy of one model and answers batches sent over a pipe.

Protocol (tuples, pickled by ``multiprocessing.Connection``)::

    worker -> server   ("ready", describe)  |  ("failed", message)        once, after loading
    server -> worker   ("batch", [payload, ...])  ->  ("done", [("ok", answer) | ("err", HTTPError)], calls)
    server -> worker   ("stop",)                                          finish and exit

Workers are started with ``spawn`` (never ``fork``: the server's event loop and threads must not be copied) and
ignore SIGINT, so Ctrl+C in a terminal stops the server gracefully instead of killing requests mid-batch.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from typing import Any

__all__ = ["WorkerDied", "WorkerProcess", "WorkerTimeout", "worker_main"]

_ENV_LOCK = threading.Lock()
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class WorkerDied(Exception):
    """The worker process exited (crashed, was killed) while it held a batch."""


class WorkerTimeout(Exception):
    """The worker did not answer within the response timeout; it has been killed."""


def worker_main(conn: Any, spec: dict[str, Any]) -> None:
    """Entry point of a worker process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import logging

    logging.basicConfig(level=logging.WARNING, format=f"hubkit worker {spec['name']} [%(process)d]: %(message)s")
    from hubkit.serve.handlers import build_handler, run_batch

    try:
        handler = build_handler(spec)
    except BaseException as e:  # report every load failure, then exit
        conn.send(("failed", f"{type(e).__name__}: {e}"))
        return
    conn.send(("ready", handler.describe))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "stop":
            return
        results, calls = run_batch(handler, message[1])
        conn.send(("done", results, calls))


class WorkerProcess:
    """The server's handle on one worker process. Every method blocks: call it from a thread."""

    def __init__(self, spec: dict[str, Any], *, threads: int | None = None) -> None:
        self.spec = spec
        self.threads = threads
        self.process: Any = None
        self.conn: Any = None
        self.started_at: float | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self, timeout: float) -> tuple[bool, Any]:
        """Spawn the process and wait until the model is loaded: ``(True, describe)`` or ``(False, message)``."""
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        process = ctx.Process(target=worker_main, args=(child, self.spec), daemon=True,
                              name=f"hubkit-worker-{self.spec['name']}")  # fmt: skip
        with _thread_env(self.threads):
            process.start()
        child.close()
        self.process, self.conn, self.started_at = process, parent, time.time()
        try:
            ready = parent.poll(timeout)
            message = parent.recv() if ready else None
        except (EOFError, OSError):
            process.join(5)
            return False, f"the worker process exited while loading the model (exit code {process.exitcode})"
        if message is None:
            self.kill()
            return False, f"the model did not load within {timeout:g} s (startup_timeout)"
        if message[0] != "ready":
            process.join(5)
            return False, message[1]
        return True, message[1]

    def infer(self, payloads: list[Any], timeout: float) -> tuple[list[tuple[str, Any]], int]:
        """Send a batch and wait for its answers; raises WorkerTimeout (worker killed) or WorkerDied."""
        try:
            self.conn.send(("batch", payloads))
            if not self.conn.poll(timeout):
                self.kill()
                raise WorkerTimeout(f"no answer within {timeout:g} s (response_timeout)")
            _, results, calls = self.conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            self.process.join(5)
            raise WorkerDied(f"the worker process died (exit code {self.process.exitcode})") from None
        return results, calls

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the worker to exit; kill it if it has not within ``timeout`` seconds."""
        if self.process is None:
            return
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(("stop",))
        self.process.join(timeout)
        if self.process.is_alive():
            self.kill()
        with contextlib.suppress(OSError):
            self.conn.close()

    def kill(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.process.kill()
            self.process.join(5)

    def memory_usage(self) -> int:
        """Resident set size in bytes (Linux /proc), 0 where unknown."""
        pid = self.pid
        if pid is None:
            return 0
        try:
            with open(f"/proc/{pid}/status", encoding="ascii") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
        return 0


@contextlib.contextmanager
def _thread_env(threads: int | None):
    """BLAS reads its thread count when numpy is imported, which in a spawned worker happens before any code of
    ours runs; so the count travels in the environment the child inherits, set only around ``start()``."""
    if threads is None:
        yield
        return
    with _ENV_LOCK:
        saved = {k: os.environ.get(k) for k in _THREAD_VARS}
        os.environ.update({k: str(threads) for k in _THREAD_VARS})
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
