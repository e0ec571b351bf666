"""Checkpoints cost what their bytes justify, and a loaded checkpoint survives its file changing (issue 13,
items 4 and 7).

A 1 KB file must not become gigabytes (lazy views, as torch keeps them), a damaged pickle fails before it
is inflated, hostile dict keys cannot make loading quadratic, and the default load does not die with
SIGBUS when ``torch.save`` rewrites the file in place.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import tracemalloc
import zipfile

import numpy as np
import pytest
from checkpoint_builders import i, neg_view, state_pickle, tensor, torch_zip

from hubkit.errors import CheckpointError
from hubkit.hub.checkpoint._torch_pickle import unpickle
from hubkit.hub.checkpoint.formats import load_checkpoint

SIDE = 4000  # a (4000, 4000) float32 view is 64 MB when expanded


def _peak(fn):
    """``(result, peak bytes allocated while fn ran)``."""
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ---------------------------------------------------------------- item 4: views stay views


@pytest.mark.parametrize("kind", ["neg", "big-endian", "bfloat16"])
def test_a_tiny_checkpoint_with_a_stride_0_view_stays_tiny(tmp_path, kind):
    shape, stride = (SIDE, SIDE), (0, 0)
    if kind == "neg":
        pkl, record, order, expected = neg_view("0", 1, shape, stride), struct.pack("<f", 1.5), "little", -1.5
    elif kind == "big-endian":
        pkl, record, order, expected = tensor("0", 1, shape, stride), struct.pack(">f", 1.5), "big", 1.5
    else:  # 0x3FC0 is 1.5 in bfloat16
        pkl, record, order, expected = (tensor("0", 1, shape, stride, storage_class="BFloat16Storage"),
                                        struct.pack("<H", 0x3FC0), "little", 1.5)
    path = torch_zip(tmp_path / "tiny.pth", state_pickle({"w": pkl}), {"0": record}, byteorder=order)
    assert path.stat().st_size < 1024
    state, peak = _peak(lambda: load_checkpoint(path))
    w = state["w"]
    assert w.shape == shape and w.strides == (0, 0) and w.dtype == np.float32
    assert w[0, 0] == w[-1, -1] == expected
    assert peak < 1 << 20  # not 64 MB


def test_tied_tensors_with_the_neg_bit_share_one_converted_storage(tmp_path):
    pkl = state_pickle({"a": neg_view("0", 4, (4,), (1,)), "b": neg_view("0", 4, (2,), (2,))})
    path = torch_zip(tmp_path / "tied.pth", pkl, {"0": np.arange(4, dtype="<f4").tobytes()})
    state = load_checkpoint(path)
    np.testing.assert_array_equal(state["a"], [0, -1, -2, -3])
    np.testing.assert_array_equal(state["b"], [0, -2])
    assert np.shares_memory(state["a"], state["b"])


def test_a_deflated_pickle_is_inflated_only_as_far_as_it_is_read(tmp_path):
    bad = b"\xff" + bytes(64 << 20)  # not a pickle from its first byte on, 64 MB once inflated
    path = torch_zip(tmp_path / "x.pth", bad, compression=zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="not one torch writes"):
            load_checkpoint(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_a_deflated_pickle_of_an_honest_checkpoint_still_loads(tmp_path):
    pkl = state_pickle({"w": tensor("0", 6, (2, 3), (3, 1))})
    path = torch_zip(tmp_path / "d.pth", pkl, {"0": np.arange(6, dtype="<f4").tobytes()},
                     compression=zipfile.ZIP_DEFLATED)
    np.testing.assert_array_equal(load_checkpoint(path)["w"], np.arange(6, dtype=np.float32).reshape(2, 3))


@pytest.mark.parametrize("container", ["dict", "frozenset"])
def test_keys_that_all_hash_alike_are_refused(container):
    colliding = [i(k * (2**61 - 1)) for k in range(1, 5001)]  # every one hashes to 0
    if container == "dict":
        pkl = b"\x80\x02}(" + b"".join(key + b"N" for key in colliding) + b"u."
    else:
        pkl = b"\x80\x04(" + b"".join(colliding) + b"\x91."
    with pytest.raises(CheckpointError, match="share a hash value"):
        unpickle(pkl, 0, persistent_load=lambda pid: None, where="test")


def test_many_honest_integer_keys_load(tmp_path):
    pkl = b"\x80\x02}(" + b"".join(i(k) + b"N" for k in range(5000)) + b"u."
    value, _ = unpickle(pkl, 0, persistent_load=lambda pid: None, where="test")
    assert sorted(value) == list(range(5000))


# ---------------------------------------------------------------- item 7: files that change underneath

REWRITE = r"""
import sys
import numpy as np
import hubkit
from hubkit.hub import load_checkpoint, save_checkpoint

path = sys.argv[1]
save_checkpoint({"w": np.arange(1 << 20, dtype=np.float32)}, path, format="torch")
state = load_checkpoint(path)
tensors = hubkit.load_state(path)
with open(path, "wb") as f:  # what torch.save(obj, path) does first: truncate the file in place
    f.write(b"PK")
print(float(state["w"].sum()), float(tensors["w"].sum()))
"""


def test_the_default_load_survives_the_file_being_rewritten_in_place(tmp_path):
    result = subprocess.run([sys.executable, "-c", REWRITE, str(tmp_path / "c.pth")], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, f"exit {result.returncode} (-7 is SIGBUS): {result.stderr[-2000:]}"
    expected = float(np.arange(1 << 20, dtype=np.float32).sum())
    assert [float(v) for v in result.stdout.split()] == [expected, expected]
