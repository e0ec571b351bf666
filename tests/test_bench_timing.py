"""bench/_timing.py's worker processes (``--processes`` in the bench scripts): the protocol, the turns, and the
torch side's allocator setting. No torch: the workers here are tiny scripts."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import _timing  # noqa: E402

WORKER = """
import os, sys, time
sys.path.insert(0, {bench!r})
from _timing import serve
seconds, report = float(sys.argv[1]), sys.argv[2]
calls = []

def fn():
    calls.append(1)
    with open(report, "w") as f:
        f.write(f"{{len(calls)}} {{os.environ.get('HUBKIT_MALLOC_TUNING', 'unset')}}")
    time.sleep(seconds)

if seconds < 0:
    raise SystemExit("cannot build this side")
serve(fn)
"""


def _script(tmp_path: Path) -> Path:
    path = tmp_path / "worker.py"
    path.write_text(WORKER.format(bench=str(BENCH)))
    return path


def test_workers_take_turns_and_report_their_own_call_times(tmp_path, monkeypatch):
    monkeypatch.setattr(_timing, "SETTLE_SECONDS", 0.0)
    script = _script(tmp_path)
    fast, slow = tmp_path / "fast.txt", tmp_path / "slow.txt"
    command = [sys.executable, str(script)]
    best = _timing.best_of_processes([(command + ["0.01", str(fast)], False), (command + ["0.05", str(slow)], True)],
                                     repeat=3)  # fmt: skip
    assert len(best) == 2 and best[0] >= 0.01 and best[1] >= 0.05  # each side's own call, in order
    # one untimed call, then one per round; only the torch side runs without hubkit's allocator tuning
    assert fast.read_text() == f"4 {os.environ.get('HUBKIT_MALLOC_TUNING', 'unset')}"
    assert slow.read_text() == "4 0"


def test_a_worker_that_cannot_build_its_side_stops_the_run_with_its_status(tmp_path):
    script = _script(tmp_path)
    with pytest.raises(SystemExit, match="status 1"):
        _timing.best_of_processes([([sys.executable, str(script), "-1", str(tmp_path / "r.txt")], False)], repeat=1)


def test_the_header_says_where_hubkits_cpu_products_run(monkeypatch):
    import hubkit
    from hubkit.kernels import _mkl, _sgemm

    monkeypatch.setattr(hubkit.backends.mkl, "enabled", False)
    monkeypatch.setattr(_sgemm, "_enabled", False)
    assert _timing.products_description().startswith("hubkit CPU products: numpy's BLAS (MKL not used: ")
    monkeypatch.setattr(_sgemm, "_enabled", True)
    own = _sgemm.microkernels() is not None and hubkit.kernels._jit.compiled() is not None
    assert ("hubkit's AVX-512 kernel for float32" in _timing.products_description()) == own
    monkeypatch.setattr(hubkit.backends.mkl, "enabled", True)
    if _mkl.library() is not None:
        assert _timing.products_description().startswith("hubkit CPU products: MKL (")
    else:
        assert hubkit.backends.mkl.unavailable_reason() in _timing.products_description()
