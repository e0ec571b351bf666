"""Rank 0's NCCL id reaches every rank over TCP (MASTER_ADDR:MASTER_PORT); a missing or duplicate rank is an error."""

import socket
import threading

import pytest

from hubkit.distributed._rendezvous import share_from_rank0
from hubkit.errors import DistributedError


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(ranks, world_size, port, timeout=5.0, payload=b"\x01unique-id\x00" * 12):
    results, failures = {}, {}

    def rank_main(rank):
        try:
            results[rank] = share_from_rank0(payload if rank == 0 else None, rank, world_size, "127.0.0.1", port,
                                             timeout)
        except DistributedError as e:
            failures[rank] = str(e)

    threads = [threading.Thread(target=rank_main, args=(r,)) for r in ranks]
    for t in reversed(threads):  # the others start before rank 0 listens: they must retry
        t.start()
    for t in threads:
        t.join(30)
    return results, failures


def test_every_rank_gets_rank_zeros_bytes():
    payload = bytes(range(256)) * 3
    results, failures = run_ranks(range(4), 4, free_port(), payload=payload)
    assert failures == {}
    assert results == {r: payload for r in range(4)}


def test_rank_zero_names_the_ranks_that_never_came():
    results, failures = run_ranks([0, 2], 4, free_port(), timeout=0.6)
    assert "rank(s) [1, 3] of 4 never connected" in failures[0]
    assert 2 in results


def test_a_rank_without_rank_zero_gives_up_after_the_timeout():
    _, failures = run_ranks([1], 2, free_port(), timeout=0.3)
    assert "could not reach rank 0" in failures[1] and "MASTER_ADDR" in failures[1]


def test_two_processes_with_the_same_rank_are_refused():
    _, failures = run_ranks([0, 1, 1], 3, free_port(), timeout=2.0)
    assert "already joined" in failures[0]


def test_a_world_of_one_needs_no_network():
    assert share_from_rank0(b"id", 0, 1, "127.0.0.1", 1, 0.1) == b"id"
    with pytest.raises(DistributedError, match="payload"):
        share_from_rank0(None, 0, 1, "127.0.0.1", 1, 0.1)
