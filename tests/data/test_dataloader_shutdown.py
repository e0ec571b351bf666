"""DataLoader workers never outlive their use: not when they ignore SIGTERM, not when the main process is killed.

Each case runs a small training script in its own process (a hang must fail the test, not the test run)
and then looks at the worker processes it reported. Linux only: the workers are forked there.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork and /proc are Linux's")

REPO = Path(__file__).resolve().parents[2]
# Generous: each script needs a few seconds; only a hang comes near this.
HANG = 90


def _exited(pid: int) -> bool:
    """Gone, or a zombie waiting for an init that does not reap (it holds no memory any more)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def _wait_exited(pids: list[int], within: float) -> list[int]:
    end = time.monotonic() + within
    while time.monotonic() < end and not all(_exited(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if not _exited(p)]


def _run(script: str) -> tuple[subprocess.Popen, list[int]]:
    """Start ``script``; return it and the worker pids it prints as its first line."""
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], stdout=subprocess.PIPE, text=True,
                            cwd=REPO, start_new_session=True)
    line = proc.stdout.readline()
    assert line, "the script printed no worker pids"
    return proc, json.loads(line)


def _cleanup(proc: subprocess.Popen, pids: list[int]) -> None:
    for pid in [proc.pid, *pids]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.parametrize("how", ["inherited-handler", "worker-ignores"])
def test_workers_that_ignore_sigterm_are_killed_and_the_loader_returns(how):
    script = f"""
        import json, signal, sys, time
        from hubkit.data import DataLoader, Dataset
        from hubkit.errors import DataLoaderError

        class Stuck(Dataset):
            def __len__(self):
                return 4
            def __getitem__(self, i):
                while True:
                    time.sleep(0.2)

        def ignore_sigterm(worker_id):
            signal.signal(signal.SIGTERM, signal.SIG_IGN)

        # a training script that checkpoints on SIGTERM; fork hands the handler to every worker
        signal.signal(signal.SIGTERM, lambda signum, frame: None)
        init = ignore_sigterm if {how!r} == "worker-ignores" else None
        it = iter(DataLoader(Stuck(), num_workers=2, timeout=0.5, worker_init_fn=init))
        print(json.dumps([w.pid for w in it._workers]), flush=True)
        try:
            next(it)
        except DataLoaderError as e:
            print("timed out:", e, flush=True)
    """
    proc, pids = _run(script)
    try:
        out, _ = proc.communicate(timeout=HANG)
    except subprocess.TimeoutExpired:
        _cleanup(proc, pids)
        pytest.fail("the DataLoader hung waiting for workers that ignore SIGTERM")
    assert proc.returncode == 0 and "timed out" in out
    assert _wait_exited(pids, within=HANG) == []


def test_workers_holding_large_batches_exit_when_the_main_process_is_killed():
    script = """
        import json, time
        import numpy as np
        from hubkit.data import DataLoader, Dataset

        class Big(Dataset):
            def __len__(self):
                return 64
            def __getitem__(self, i):
                return np.full(1 << 20, i, np.float32)  # 4 MiB: a batch never fits in the pipe

        loader = DataLoader(Big(), batch_size=2, num_workers=2, collate_fn=lambda b: np.stack(b))
        it = iter(loader)
        next(it)
        time.sleep(1.0)  # the workers have produced the next batches and wait to hand them over
        print(json.dumps([w.pid for w in it._workers]), flush=True)
        time.sleep(3600)
    """
    proc, pids = _run(script)
    os.kill(proc.pid, signal.SIGKILL)  # the OOM killer, or `kill -9` on the training script
    proc.wait()
    alive = _wait_exited(pids, within=HANG)
    _cleanup(proc, alive)
    assert alive == [], "workers outlived the main process"
