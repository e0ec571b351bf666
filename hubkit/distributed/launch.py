"""Start a program as N ranks: what ``hubkit run --nproc N [--hosts ...] script.py args`` does.

Two launchers:

- ``mpi`` (the default when ``mpiexec`` is installed, e.g. by the MPICH wheel of ``hubkit[distributed]``):
  ``mpiexec -n N [-hosts H] python _supervise.py python script.py args``. Each rank runs under a small
  supervisor (see ``_supervise.py``) and, with MPICH, ``-disable-auto-cleanup`` keeps the surviving ranks
  alive after one fails so they can report it. Works for both backends: ``"nccl"`` ranks read their rank from
  MPI's variables and exchange NCCL's id over MPI. ``--hosts`` runs the ranks on several machines (MPI
  starts them over ssh).
- ``local``: no MPI needed, one machine. One process per rank, each with torchrun's variables (``RANK``,
  ``LOCAL_RANK``, ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``): what the
  ``"nccl"`` backend needs, one process per GPU. When a rank fails, the others get SIGUSR1 so their
  collectives fail fast.

The exit code is 0 when every rank succeeded, else the first failing rank's.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from hubkit.errors import ArgumentError, MissingDependencyError

_SUPERVISOR = Path(__file__).with_name("_supervise.py")


def find_mpiexec() -> str | None:
    """The ``mpiexec`` beside this Python (where the MPICH/Open MPI wheels put it), else the one on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("mpiexec")


def _flavor(mpiexec: str) -> str:
    try:
        out = subprocess.run([mpiexec, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (out.stdout + out.stderr).lower()
    if "hydra" in text or "mpich" in text:
        return "mpich"
    if "open mpi" in text or "open-mpi" in text or "openrte" in text or "prte" in text:
        return "openmpi"
    return "unknown"


def mpi_command(nproc: int, program: list[str], hosts: str | None = None, mpiexec: str | None = None) -> list[str]:
    """The ``mpiexec`` command line that runs ``program`` (an argv) as ``nproc`` supervised ranks."""
    mpiexec = mpiexec or find_mpiexec()
    if mpiexec is None:
        raise MissingDependencyError("`hubkit run` with the mpi launcher needs mpiexec: pip install "
                                     "'hubkit[distributed]' (mpi4py and the MPICH wheel), or pass --launcher local "
                                     "for processes on this machine only")
    flavor = _flavor(mpiexec)
    cmd = [mpiexec]
    if flavor == "mpich":
        cmd += ["-disable-auto-cleanup"]
    cmd += ["-n", str(nproc)]
    if hosts:
        cmd += ["-hosts" if flavor == "mpich" else "--host", hosts]
    if flavor == "openmpi" and os.geteuid() == 0:
        cmd += ["--allow-run-as-root"]
    return cmd + [sys.executable, str(_SUPERVISOR), *program]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(nproc: int, program: list[str], hosts: str | None = None, launcher: str | None = None) -> int:
    """Run ``program`` (an argv, e.g. ``[sys.executable, "train.py", "--lr", "0.1"]``) as ``nproc`` ranks."""
    if nproc < 1:
        raise ArgumentError(f"--nproc {nproc}: use 1 or more processes")
    launcher = launcher or ("mpi" if find_mpiexec() is not None else "local")
    if launcher == "mpi":
        env = dict(os.environ)
        # for backend="nccl" outside MPI's rendezvous (init_method="env://" with mpi4py absent)
        env.setdefault("MASTER_ADDR", hosts.split(",")[0].split(":")[0] if hosts else "127.0.0.1")
        env.setdefault("MASTER_PORT", str(_free_port()))
        return subprocess.call(mpi_command(nproc, program, hosts), env=env)
    if launcher != "local":
        raise ArgumentError(f"--launcher {launcher!r}: use 'mpi' or 'local'")
    if hosts:
        raise ArgumentError("--hosts needs the mpi launcher (MPI starts the processes on the other machines); "
                            "install 'hubkit[distributed]' or leave --hosts out")
    return _run_local(nproc, program)


def _run_local(nproc: int, program: list[str]) -> int:
    port = str(_free_port())
    procs = []
    for rank in range(nproc):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(nproc),
                   LOCAL_WORLD_SIZE=str(nproc), MASTER_ADDR=os.environ.get("MASTER_ADDR", "127.0.0.1"),
                   MASTER_PORT=os.environ.get("MASTER_PORT", port))
        procs.append(subprocess.Popen(program, env=env))

    def forward(signum: int, frame: object) -> None:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    first_failure = 0
    try:
        running = set(range(nproc))
        while running:
            for rank in sorted(running):
                code = procs[rank].poll()
                if code is None:
                    continue
                running.discard(rank)
                if code != 0 and first_failure == 0:
                    how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
                    print(f"hubkit run: rank {rank} (pid {procs[rank].pid}) {how}", file=sys.stderr, flush=True)
                    first_failure = 128 - code if code < 0 else code
                    for other in running:  # the failure notice: their collectives stop waiting for this rank
                        procs[other].send_signal(signal.SIGUSR1)
            time.sleep(0.05)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return first_failure


def program_argv(target: str, args: list[str], module: bool = False) -> list[str]:
    """The argv that runs a script (or, with ``module``, ``python -m target``) with this Python."""
    return [sys.executable, *(["-m", target] if module else [target]), *args]


def relaunch_current_program(nproc: int) -> None:
    """Replace this process by a ``hubkit run`` of the same command line with ``nproc`` ranks (never returns)."""
    argv0 = sys.argv[0] if sys.argv else ""
    if argv0 in ("", "-c") or not (Path(argv0).is_file() or "-m" in sys.orig_argv):
        raise ArgumentError(f"this program cannot be restarted as {nproc} processes (it was not started from a "
                            f"script file); launch it with `hubkit run --nproc {nproc} script.py`")
    program = [sys.executable, *sys.orig_argv[1:]]
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os.execv(sys.executable, [sys.executable, "-m", "hubkit.distributed.launch", str(nproc), *program])


if __name__ == "__main__":  # python -m hubkit.distributed.launch NPROC PROGRAM... (what relaunch execs)
    sys.exit(run(int(sys.argv[1]), sys.argv[2:]))
