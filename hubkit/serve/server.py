"""Run the model store and its three listeners (inference, management, metrics) on one event loop.

Each listener is a uvicorn server on a socket bound here (so port 0 works and the chosen ports are known before
anything is served). Signals are handled once for all three: the first SIGTERM or SIGINT stops accepting
connections, lets every request in flight finish (up to ``graceful_timeout``), then retires the workers after
their queues are empty; a second SIGINT forces the exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from hubkit.serve.app import create_inference_app, create_management_app, create_metrics_app
from hubkit.serve.config import ServeConfig, format_address, parse_address
from hubkit.serve.errors import ConfigError
from hubkit.serve.metrics import ServeMetrics
from hubkit.serve.store import ModelStore

__all__ = ["Server"]

logger = logging.getLogger("hubkit.serve")

LISTENERS = ("inference", "management", "metrics")


class _Listener(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Any:  # the Server owns the signals, for all three listeners at once
        yield


def _bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]  # fmt: skip
        sock = socket.socket(family, kind, proto)
    except OSError as e:
        raise ConfigError(f"cannot listen on {format_address(host, port)}: {e.strerror or e}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise ConfigError(f"cannot listen on {format_address(host, port)}: {e.strerror or e}") from None
    sock.setblocking(False)
    return sock


class Server:
    """``hubkit serve`` as a library: ``Server(config).run()`` blocks until a signal (or :meth:`shutdown`).

    ``urls`` maps ``inference``/``management``/``metrics`` to their base URLs once bound; ``ready`` is set when
    the listeners accept connections and every startup model has loaded (or failed to).
    """

    def __init__(self, config: ServeConfig, *, on_ready: Callable[[Server], None] | None = None) -> None:
        self.config = config
        self.on_ready = on_ready
        self.urls: dict[str, str] = {}
        self.ready = threading.Event()
        self.store: ModelStore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listeners: list[_Listener] = []
        self._signals = 0

    def run(self, *, ready_file: str | os.PathLike | None = None) -> None:
        """Serve until stopped; signal handlers are installed when called from the main thread."""
        main = threading.current_thread() is threading.main_thread()
        asyncio.run(self.serve(ready_file=ready_file, install_signals=main))

    def shutdown(self) -> None:
        """Stop gracefully, as SIGTERM does; safe to call from any thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._begin_shutdown)

    async def serve(self, *, ready_file: str | os.PathLike | None = None, install_signals: bool = False) -> None:
        config = self.config
        self._loop = loop = asyncio.get_running_loop()
        store = self.store = ModelStore(config, ServeMetrics(socket.gethostname()))
        sockets: dict[str, socket.socket] = {}
        try:
            for key in LISTENERS:
                sockets[key] = _bind(*parse_address(getattr(config, f"{key}_address")))
        except ConfigError:
            for sock in sockets.values():
                sock.close()
            raise
        apps = {"inference": create_inference_app(store), "management": create_management_app(store),
                "metrics": create_metrics_app(store)}  # fmt: skip
        for key, sock in sockets.items():
            host, port = sock.getsockname()[:2]
            self.urls[key] = f"http://{format_address(host, port)}"
        self._listeners = [
            _Listener(uvicorn.Config(apps[key], lifespan="off", access_log=False, log_config=None,
                                     timeout_graceful_shutdown=max(int(config.shutdown_timeout), 1),
                                     server_header=False))
            for key in LISTENERS
        ]  # fmt: skip
        if install_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            for model in config.models:
                store.register(model, loaded_at_startup=True, strict=False)
            tasks = [loop.create_task(listener.serve(sockets=[sockets[key]]), name=f"listener-{key}")
                     for listener, key in zip(self._listeners, LISTENERS)]  # fmt: skip
            while not all(listener.started for listener in self._listeners):
                if any(t.done() for t in tasks):
                    break
                await asyncio.sleep(0.01)
            if all(listener.started for listener in self._listeners) and not self._signals:
                await self._announce(store, ready_file)
            await asyncio.gather(*tasks)
        finally:
            logger.info("listeners closed; stopping the workers")
            await store.close()
            if install_signals:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
            for sock in sockets.values():
                sock.close()

    async def _announce(self, store: ModelStore, ready_file: str | os.PathLike | None) -> None:
        startup = asyncio.ensure_future(store.wait_startup(self.config.startup_timeout))
        while not startup.done() and not self._signals:  # a signal during loading stops the wait
            await asyncio.sleep(0.05)
        if not startup.done():
            startup.cancel()
            return
        self.ready.set()
        if ready_file is not None:
            info = {"pid": os.getpid(), **self.urls,
                    "models": {name: m.status for name, m in store.models.items()}}  # fmt: skip
            path = Path(ready_file)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, path)
        if self.on_ready is not None:
            self.on_ready(self)

    def _on_signal(self, sig: int) -> None:
        self._signals += 1
        if self._signals > 1 and sig == signal.SIGINT:
            logger.warning("second interrupt: exiting without waiting for requests in flight")
            for listener in self._listeners:
                listener.force_exit = True
            return
        self._begin_shutdown()

    def _begin_shutdown(self) -> None:
        self._signals = max(self._signals, 1)
        store = self.store
        busy = sum(m.in_flight for m in store.models.values()) if store is not None else 0
        logger.warning("shutting down: finishing %d request(s) in flight", busy)
        for listener in self._listeners:
            listener.should_exit = True
