"""One rank of a ``hubkit run`` MPI job: runs the program as a child process and reports how it ended.

``mpiexec`` starts this file once per rank (``python _supervise.py python train.py ...``); it is a plain
script, so it imports nothing from hubkit. It exists for two reasons:

- MPICH's launcher kills the whole job, the survivors included, when a rank dies from a signal (an OOM
  kill, ``kill -9``), even with ``-disable-auto-cleanup``; a rank that merely exits with an error code only
  makes it send SIGUSR1 to the others. This parent turns a signal death into an exit code (128 + signal),
  so the other ranks live on long enough to raise a clear ``DistributedError`` instead of vanishing.
- It exports torch's variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``) from the MPI
  launcher's, so code written for torchrun finds them.

SIGUSR1 (the launcher's failure notice), SIGTERM and SIGINT are passed on to the child.
"""

import os
import signal
import subprocess
import sys

_FROM_MPI = {
    "RANK": ("PMI_RANK", "OMPI_COMM_WORLD_RANK"),
    "WORLD_SIZE": ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE"),
    "LOCAL_RANK": ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK"),
    "LOCAL_WORLD_SIZE": ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE"),
}


def main(command: list) -> int:
    env = dict(os.environ)
    for name, sources in _FROM_MPI.items():
        value = next((env[s] for s in sources if s in env), None)
        if value is not None:
            env.setdefault(name, value)
    # MPICH's PMI talks over an inherited descriptor: the child, which calls MPI_Init, must keep it
    keep = [int(env["PMI_FD"])] if env.get("PMI_FD", "").isdigit() else []
    try:
        child = subprocess.Popen(command, env=env, pass_fds=keep)
    except OSError as e:
        print(f"hubkit run: rank {env.get('RANK', '?')} could not start {command[0]!r}: {e}", file=sys.stderr)
        return 127
    for sig in (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: child.send_signal(signum))
    code = child.wait()
    # from here on a failure notice is moot; left at the default it would kill this process while Python
    # shuts down, and MPICH then kills the whole job for a death by signal
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    if code < 0:
        name = signal.Signals(-code).name
        print(f"hubkit run: rank {env.get('RANK', '?')} (pid {child.pid}) was killed by {name}", file=sys.stderr,
              flush=True)
        return 128 - code
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
