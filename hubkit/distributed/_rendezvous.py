"""Rank 0 hands a few bytes to every other rank over TCP (``MASTER_ADDR``:``MASTER_PORT``).

NCCL needs one ``ncclUniqueId`` made by rank 0 on every rank before the communicator exists; when the
processes were not started by MPI this is how it travels (torch uses its TCPStore for the same job).
Rank 0 listens; each other rank connects (retrying while rank 0 starts), says who it is, and reads the
payload. Everything is bounded by the timeout, so a missing rank is an error, not a hang.
"""

from __future__ import annotations

import socket
import struct
import time

from hubkit.errors import DistributedError

_HELLO = struct.Struct("!qq")  # rank, world size
_LENGTH = struct.Struct("!q")


def share_from_rank0(payload: bytes | None, rank: int, world_size: int, addr: str, port: int,
                     timeout: float) -> bytes:
    """Return rank 0's ``payload`` on every rank (rank 0 passes it, the others pass None)."""
    if rank == 0:
        if payload is None:
            raise DistributedError("rank 0 must provide the payload to share")
        if world_size > 1:
            _serve(payload, world_size, addr, port, timeout)
        return payload
    return _fetch(rank, world_size, addr, port, timeout)


def _serve(payload: bytes, world_size: int, addr: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    try:
        server = socket.create_server((addr, port), reuse_port=False)
    except OSError as e:
        raise DistributedError(f"rank 0 cannot listen on {addr}:{port} (MASTER_ADDR:MASTER_PORT) for the other "
                               f"ranks: {e}; pick a free MASTER_PORT on an address of this machine") from None
    seen: set[int] = set()
    with server:
        while len(seen) < world_size - 1:
            left = deadline - time.monotonic()
            if left <= 0:
                missing = sorted(set(range(1, world_size)) - seen)
                raise DistributedError(f"rank 0 waited {timeout:g} s on {addr}:{port} but rank(s) {missing} of "
                                       f"{world_size} never connected: start every rank with the same "
                                       "MASTER_ADDR/MASTER_PORT and WORLD_SIZE, or raise timeout=")
            server.settimeout(left)
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(max(deadline - time.monotonic(), 0.1))
                rank, size = _HELLO.unpack(_read(conn, _HELLO.size))
                if size != world_size or not 0 < rank < world_size or rank in seen:
                    reason = (f"world size {size} where rank 0 has {world_size}" if size != world_size
                              else f"rank {rank}, which is out of range or already joined")
                    conn.sendall(_LENGTH.pack(-1))
                    raise DistributedError(f"a process joined the rendezvous on {addr}:{port} with {reason}: "
                                           "give every process a distinct RANK and the same WORLD_SIZE")
                conn.sendall(_LENGTH.pack(len(payload)) + payload)
                seen.add(rank)


def _fetch(rank: int, world_size: int, addr: str, port: int, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((addr, port), timeout=max(deadline - time.monotonic(), 0.1)) as conn:
                conn.sendall(_HELLO.pack(rank, world_size))
                (length,) = _LENGTH.unpack(_read(conn, _LENGTH.size))
                if length < 0:
                    raise DistributedError(f"rank 0 at {addr}:{port} refused rank {rank} of {world_size}: another "
                                           "process already joined with this rank, or the world sizes differ")
                return _read(conn, length)
        except OSError as e:  # rank 0 not listening yet, or it went away mid-answer
            if time.monotonic() >= deadline:
                raise DistributedError(f"rank {rank} could not reach rank 0 at {addr}:{port} (MASTER_ADDR:"
                                       f"MASTER_PORT) within {timeout:g} s ({e}): check that rank 0 is running "
                                       "and that the address and port are right") from None
            time.sleep(0.05)


def _read(conn: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = conn.recv(n - got)
        if not chunk:
            raise ConnectionResetError("the other side closed the connection")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
