"""Start a script from ``ranks/`` as a job of N processes, the way a user does (``hubkit run``).

Every job runs on this machine over loopback, with one BLAS thread per rank so 3 ranks share 2 cores
without thrashing. Tests marked ``distributed`` skip, saying why, when mpi4py or mpiexec is missing.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hubkit.distributed.launch import find_mpiexec

RANKS = Path(__file__).with_name("ranks")

_MISSING = [what for what, ok in (("mpi4py", importlib.util.find_spec("mpi4py") is not None),
                                  ("mpiexec", find_mpiexec() is not None)) if not ok]
needs_mpi = pytest.mark.skipif(bool(_MISSING), reason=f"distributed test: {' and '.join(_MISSING)} missing; "
                                                      "pip install 'hubkit[distributed]' (mpi4py and mpich)")

_CLI = "import sys; from hubkit.cli import main; sys.exit(main(sys.argv[1:]))"


def job_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               HUBKIT_NO_PROGRESS="1", PYTHONUNBUFFERED="1", **extra)
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return env


def hubkit_run(script: str, nproc: int, *args: object, launcher: str | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess:
    """``hubkit run --nproc N ranks/<script> args...``; returns the finished process (stdout and stderr as text)."""
    cmd = [sys.executable, "-c", _CLI, "run", "--nproc", str(nproc)]
    if launcher:
        cmd += ["--launcher", launcher]
    cmd += [str(RANKS / script), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=job_env())


def python(script: str, *args: object, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python ranks/<script> args...`` with no launcher."""
    return subprocess.run([sys.executable, str(RANKS / script), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=job_env())


def explain(result: subprocess.CompletedProcess) -> str:
    return f"exit code {result.returncode}\n--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-6000:]}"
