"""Seedable random number generation: one global generator, and ``Generator`` objects like torch's.

Everything random in hubkit (``rand``, ``randn``, dropout, weight init, shuffling, random
transforms) draws from a ``Generator``. ``hubkit.manual_seed(s)`` reseeds the global one, so a
seeded script gives the same numbers on every run and every machine.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_DEFAULT_SEED = 67280421310721
_STATE_BYTES = 16 + 16 + 1 + 4  # PCG64's 128-bit state and increment, the buffered-uint32 flag and value


class Generator:
    """A seedable source of randomness (numpy's PCG64 underneath).

    ``Generator().manual_seed(0)`` mirrors ``torch.Generator().manual_seed(0)``; the
    numbers drawn differ from torch's, but are reproducible across runs.
    """

    def __init__(self, seed: int | None = None) -> None:
        self._seed = _DEFAULT_SEED if seed is None else int(seed)
        self._rng = np.random.Generator(np.random.PCG64(self._seed))

    def manual_seed(self, seed: int) -> Generator:
        self._seed = int(seed)
        self._rng = np.random.Generator(np.random.PCG64(self._seed))
        return self

    def seed(self) -> int:
        """Reseed from the operating system's entropy and return the new seed."""
        new = int(np.random.SeedSequence().entropy % (2**63))
        self.manual_seed(new)
        return new

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> Any:
        """The generator's state as a uint8 Tensor (like ``torch.Generator.get_state``): save it with a
        checkpoint and give it to ``set_state`` to continue the same random stream."""
        from hubkit.tensor import Tensor

        state = self._rng.bit_generator.state
        raw = (state["state"]["state"].to_bytes(16, "little") + state["state"]["inc"].to_bytes(16, "little")
               + bytes([state["has_uint32"]]) + int(state["uinteger"]).to_bytes(4, "little"))
        return Tensor._make(np.frombuffer(raw, dtype=np.uint8).copy())

    def set_state(self, new_state: Any) -> Generator:
        """Restore a state ``get_state()`` returned."""
        from hubkit.errors import ArgumentError

        raw = bytes(np.asarray(getattr(new_state, "array", new_state), dtype=np.uint8).reshape(-1))
        if len(raw) != _STATE_BYTES:
            raise ArgumentError(f"set_state expects the {_STATE_BYTES}-byte uint8 tensor get_state() returns, "
                                f"got {len(raw)} bytes")
        self._rng.bit_generator.state = {
            "bit_generator": "PCG64",
            "state": {"state": int.from_bytes(raw[:16], "little"), "inc": int.from_bytes(raw[16:32], "little")},
            "has_uint32": raw[32], "uinteger": int.from_bytes(raw[33:37], "little"),
        }
        return self

    @property
    def numpy(self) -> np.random.Generator:
        """The underlying ``numpy.random.Generator`` to draw from."""
        return self._rng

    def randint_seed(self) -> int:
        """Draw a 63-bit integer, e.g. to derive a seed for a worker or a child generator."""
        return int(self._rng.integers(0, 2**63 - 1))


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the global generator (and return it), like ``torch.manual_seed``."""
    return default_generator.manual_seed(seed)


def initial_seed() -> int:
    return default_generator.initial_seed()


def seed() -> int:
    """Reseed the global generator from the operating system's entropy; returns the seed (``torch.seed``)."""
    return default_generator.seed()


def get_rng_state() -> Any:
    """The global generator's state as a uint8 Tensor (``torch.get_rng_state``)."""
    return default_generator.get_state()


def set_rng_state(new_state: Any) -> None:
    """Restore the global generator from a ``get_rng_state()`` tensor."""
    default_generator.set_state(new_state)


def get_rng(generator: Generator | None = None) -> np.random.Generator:
    """The numpy generator to draw from: ``generator``'s, or the global one."""
    return (generator or default_generator).numpy


def uniform_array(shape: tuple[int, ...], dtype: Any, device: Any = None, generator: Generator | None = None) -> Any:
    """Uniform samples in [0, 1) as a raw array of ``dtype`` on ``device`` (numpy for the CPU, cupy for CUDA).

    CUDA samples are drawn on the GPU by a cupy generator seeded from ``generator``, so seeded runs
    stay reproducible without copying random numbers from the host.
    """
    from hubkit._backend import Device, xp_for_device

    dtype = np.dtype(dtype)
    draw_dtype = dtype if dtype in (np.float32, np.float64) else np.float64
    if device is None or Device(device).type == "cpu":
        return get_rng(generator).random(shape, dtype=draw_dtype).astype(dtype, copy=False)
    cp = xp_for_device(device)
    seed = (generator or default_generator).randint_seed()
    with cp.cuda.Device(Device(device).index):
        return cp.random.default_rng(seed).random(shape, dtype=draw_dtype).astype(dtype, copy=False)
