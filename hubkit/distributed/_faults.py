"""How a process of a distributed job learns that another one failed, and how it leaves after a failure.

Three mechanisms, installed by ``init_process_group`` when the world has more than one process:

- The launcher's notice. MPICH's ``mpiexec -disable-auto-cleanup`` (what ``hubkit run`` starts) sends
  SIGUSR1 to the surviving processes when one exits abnormally, and ``hubkit run``'s local launcher does the
  same. The handler only sets a flag; a collective that is waiting sees it at its next poll and raises at
  once instead of waiting for its timeout.
- An uncaught exception. After Python has printed the traceback, the process leaves with ``os._exit(1)``
  instead of finalizing MPI: ``MPI_Finalize`` can wait for peers that are themselves blocked on this rank,
  and an exit without it is what makes the launcher send the notice above to the others.
- A broken group (a collective timed out or failed). The same ``os._exit(1)`` at interpreter exit: requests
  that never completed would make ``MPI_Finalize`` hang.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
from typing import Any

_state: dict[str, Any] = {"peer_failed": False, "broken": None, "uncaught": False, "installed": False}


def peer_failed() -> bool:
    """True once the launcher has reported that another process of the job exited abnormally."""
    return _state["peer_failed"]


def broken_reason() -> str | None:
    """Why the process's collectives cannot be trusted any more (None while they can)."""
    return _state["broken"]


def mark_broken(reason: str) -> None:
    if _state["broken"] is None:
        _state["broken"] = reason


def reset() -> None:
    """Forget a failure (``destroy_process_group`` followed by a fresh ``init_process_group``)."""
    _state["peer_failed"] = False
    _state["broken"] = None


def install() -> None:
    """Install the SIGUSR1 handler, the excepthook and the exit handler (once per process)."""
    if _state["installed"]:
        return
    _state["installed"] = True
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGUSR1) in (
            signal.SIG_DFL, None):
        signal.signal(signal.SIGUSR1, _on_peer_failure)
    previous_hook = sys.excepthook

    def excepthook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        if not issubclass(kind, KeyboardInterrupt):
            _state["uncaught"] = True
        previous_hook(kind, value, tb)

    sys.excepthook = excepthook
    # registered after mpi4py's finalizer (imported before this runs), so it runs first (atexit is LIFO)
    atexit.register(_exit_without_finalize_after_failure)


def _on_peer_failure(signum: int, frame: Any) -> None:
    _state["peer_failed"] = True


def _exit_without_finalize_after_failure() -> None:
    # Python resets its signal handlers to the default while it shuts down, and a late notice would then
    # kill this process by a signal (which MPICH answers by killing the whole job): ignore it from now on
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    if not (_state["uncaught"] or _state["broken"] is not None):
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
    os._exit(1)
