"""Every collective, on 2 and 3 ranks over loopback, against numpy (the checks run inside ranks/collectives.py)."""

import pytest
from distjob import explain, hubkit_run, needs_mpi

import hubkit.distributed as dist
from hubkit.errors import DistributedError

pytestmark = [pytest.mark.distributed, needs_mpi]


@pytest.mark.parametrize("nproc", [2, 3])
def test_every_collective_matches_numpy_on_every_rank(tmp_path, nproc):
    result = hubkit_run("collectives.py", nproc, tmp_path, timeout=180)
    assert result.returncode == 0, explain(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"ok_{r}" for r in range(nproc)], explain(result)


def test_a_world_of_one_works_in_this_process():
    dist.init_process_group("mpi", timeout=10)
    try:
        assert (dist.get_rank(), dist.get_world_size(), dist.get_local_rank()) == (0, 1, 0)
        import hubkit

        t = hubkit.tensor([1.0, 2.0])
        dist.all_reduce(t, op=dist.ReduceOp.AVG)
        assert t.tolist() == [1.0, 2.0]
        with pytest.raises(DistributedError, match="twice"):
            dist.init_process_group("mpi")
    finally:
        dist.destroy_process_group()
    assert not dist.is_initialized()


def test_collectives_before_init_say_what_to_call():
    import hubkit

    with pytest.raises(DistributedError, match="init_process_group"):
        dist.all_reduce(hubkit.zeros(1))
    with pytest.raises(DistributedError, match="init_process_group"):
        dist.get_rank()


def test_unknown_backend_and_store_are_argument_errors():
    from hubkit.errors import ArgumentError

    with pytest.raises(ArgumentError, match="'mpi'"):
        dist.init_process_group("ucc")
    with pytest.raises(ArgumentError, match="Store"):
        dist.init_process_group("mpi", store=object())
    assert not dist.is_initialized()
