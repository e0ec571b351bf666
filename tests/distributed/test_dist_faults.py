"""A rank that raises, is killed or stalls mid-step makes the others fail with a clear DistributedError, not hang."""

import pytest
from distjob import explain, hubkit_run, needs_mpi

pytestmark = [pytest.mark.distributed, needs_mpi]

TIMEOUT = 3.0  # the process group's timeout in these jobs (seconds)


def errors(out, ranks):
    found = {}
    for r in ranks:
        found[r] = tuple((out / f"error_{r}").read_text().split("\n", 1))
    return found


@pytest.mark.parametrize("nproc", [2, 3])
def test_a_rank_that_raises_mid_step_fails_the_others_at_once(tmp_path, nproc):
    result = hubkit_run("fault.py", nproc, tmp_path, "raise", TIMEOUT, timeout=120)
    assert result.returncode != 0, explain(result)
    assert "rank 1 failed in the middle of step 2" in result.stderr
    survivors = [r for r in range(nproc) if r != 1]
    for kind, message in errors(tmp_path, survivors).values():
        assert kind == "DistributedError"
        # the launcher's notice, not the timeout, ended the wait
        assert "all_reduce(SUM)" in message and "another process of this job exited abnormally" in message


def test_a_killed_rank_is_named_and_the_others_fail_with_a_clear_error(tmp_path):
    result = hubkit_run("fault.py", 3, tmp_path, "kill", TIMEOUT, timeout=120)
    assert result.returncode != 0, explain(result)
    assert "hubkit run: rank 1" in result.stderr and "was killed by SIGKILL" in result.stderr
    for kind, message in errors(tmp_path, [0, 2]).values():
        assert kind == "DistributedError" and "exited abnormally" in message


def test_a_stalled_rank_makes_the_others_time_out(tmp_path):
    result = hubkit_run("fault.py", 2, tmp_path, "stall", TIMEOUT, timeout=120)
    assert result.returncode != 0, explain(result)
    kind, message = errors(tmp_path, [0])[0]
    assert kind == "DistributedError"
    assert f"did not complete within {TIMEOUT:g} s" in message and "timeout=" in message
