"""Malicious checkpoints are refused without running anything; damaged ones raise only CheckpointError.

Every payload here really does something when given to ``pickle.loads`` (the control tests prove
it by letting plain pickle create the canary file); hubkit must refuse each one, name the global it
refused, and leave the canary absent.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from checkpoint_builders import (
    FIXTURES,
    call,
    glob,
    i,
    legacy_stream,
    s,
    state_pickle,
    tensor,
    torch_zip,
    tup,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubkit.errors import CheckpointError, UnsafeCheckpointError
from hubkit.hub.checkpoint._torch_pickle import unpickle
from hubkit.hub.checkpoint.formats import load_checkpoint, save_checkpoint


def _payloads(canary: Path) -> dict[str, tuple[str, bytes]]:
    """name -> (the global hubkit must name, a pickle value that writes ``canary`` when unpickled)."""
    c = str(canary)
    code = f"open({c!r}, 'w').write('ran')"
    return {
        "os.system": ("os.system" if os.name != "nt" else "nt.system",
                      call("os" if os.name != "nt" else "nt", "system", s(f"touch {c}"))),
        "posix.system": ("posix.system", call("posix", "system", s(f"touch {c}"))),
        "builtins.eval": ("builtins.eval", call("builtins", "eval", s(code))),
        "builtins.exec": ("builtins.exec", call("builtins", "exec", s(code))),
        "subprocess.call": ("subprocess.call", call("subprocess", "call",
                                                    tup(s(sys.executable), s("-c"), s(code)))),
        "numpy.save": ("numpy.save", call("numpy", "save", s(c), i(0))),
        "runpy": ("runpy._run_code", call("runpy", "_run_code", s(code), b"}")),
    }


def _as_pickle(value: bytes) -> bytes:
    return b"\x80\x02" + value + b"."


PAYLOAD_NAMES = ["posix.system", "builtins.eval", "builtins.exec", "subprocess.call", "numpy.save", "runpy"]
if os.name != "nt":
    PAYLOAD_NAMES.append("os.system")


@pytest.mark.parametrize("name", PAYLOAD_NAMES)
def test_control_plain_pickle_really_runs_each_payload(tmp_path, name):
    canary = tmp_path / "canary"
    _, payload = _payloads(canary)[name]
    if name == "numpy.save":
        canary = canary.with_suffix(".npy")  # numpy.save appends .npy
    pickle.loads(_as_pickle(payload))
    assert canary.exists(), "the payload is not real: plain pickle should have created the canary"


@pytest.mark.parametrize("container", ["zip", "legacy"])
@pytest.mark.parametrize("name", PAYLOAD_NAMES)
def test_malicious_global_via_reduce_is_refused_and_nothing_runs(tmp_path, name, container):
    canary = tmp_path / "canary"
    qualname, payload = _payloads(canary)[name]
    if container == "zip":
        pkl = state_pickle({"weight": tensor("0", 1, (1,), (1,)), "evil": payload})
        path = torch_zip(tmp_path / "m.pth", pkl, {"0": b"\0" * 4})
    else:
        path = legacy_stream(tmp_path / "m.pth", state_pickle({"evil": payload}), [])
    with pytest.raises(UnsafeCheckpointError) as err:
        load_checkpoint(path)
    assert err.value.global_name == qualname
    assert qualname in str(err.value) and "m.pth" in str(err.value)
    assert not canary.exists() and not canary.with_suffix(".npy").exists()


def test_inst_opcode_is_refused_naming_the_global(tmp_path):
    canary = tmp_path / "canary"
    payload = b"(" + s(f"open({str(canary)!r}, 'w').write('ran')") + b"ibuiltins\nexec\n"
    pickle.loads(_as_pickle(payload))  # control: INST calls exec
    assert canary.exists()
    canary.unlink()
    path = torch_zip(tmp_path / "m.pth", state_pickle({"evil": payload}))
    with pytest.raises(UnsafeCheckpointError, match="builtins.exec.*INST") as err:
        load_checkpoint(path)
    assert err.value.global_name == "builtins.exec"
    assert not canary.exists()


def test_obj_opcode_is_refused_even_for_an_allowlisted_class(tmp_path):
    canary = tmp_path / "canary"
    exec_obj = b"(" + glob("builtins", "exec") + s(f"open({str(canary)!r}, 'w').write('ran')") + b"o"
    pickle.loads(_as_pickle(exec_obj))
    assert canary.exists()
    canary.unlink()
    for payload, named in ((exec_obj, "builtins.exec"), (b"(" + glob("collections", "OrderedDict") + b"o",
                                                        "collections.OrderedDict")):
        path = torch_zip(tmp_path / "m.pth", state_pickle({"evil": payload}))
        with pytest.raises(UnsafeCheckpointError) as err:
            load_checkpoint(path)
        assert err.value.global_name == named
    assert not canary.exists()


@pytest.mark.parametrize(
    "payload, named",
    [
        (glob("builtins", "object") + b")\x81", "builtins.object"),
        (glob("torch._utils", "_rebuild_tensor_v2") + b")\x81", "torch._utils._rebuild_tensor_v2"),
        (glob("collections", "OrderedDict") + b")}\x92", "collections.OrderedDict"),
    ],
)
def test_newobj_is_refused_for_anything_but_an_empty_ordered_dict(tmp_path, payload, named):
    path = torch_zip(tmp_path / "m.pth", state_pickle({"evil": payload}))
    with pytest.raises(UnsafeCheckpointError) as err:
        load_checkpoint(path)
    assert err.value.global_name == named


def test_build_cannot_set_state_on_a_global(tmp_path):
    # BUILD on a class object would set attributes on it (or call its __setstate__)
    payload = glob("collections", "OrderedDict") + b"}" + s("__setstate__") + glob("builtins", "exec") + b"sb"
    path = torch_zip(tmp_path / "m.pth", state_pickle({"evil": payload}))
    with pytest.raises(UnsafeCheckpointError, match="builtins.exec"):
        load_checkpoint(path)
    payload = glob("collections", "OrderedDict") + b"}b"
    path = torch_zip(tmp_path / "m.pth", state_pickle({"evil": payload}))
    with pytest.raises(UnsafeCheckpointError, match="OrderedDict through BUILD"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    "payload, named",
    [
        (s("os") + s("system") + b"\x93" + tup(s("true")) + b"R", "os.system"),  # STACK_GLOBAL
        (b"\x82\x01", "a copyreg extension code"),  # EXT1
        (call("torch", "load", s("x.pth")), "torch.load"),
        (call("torch.serialization", "load", s("x.pth")), "torch.serialization.load"),
        (call("torch._utils", "_rebuild_device_tensor_from_numpy", b"N", b"N", b"N", b"\x89"),
         "torch._utils._rebuild_device_tensor_from_numpy"),
        (call("numpy.core.multiarray", "_reconstruct", b"N", b"N", b"N"), "numpy.core.multiarray._reconstruct"),
        (call("_codecs", "encode", s("x"), s("latin1")), "_codecs.encode"),
        (call("torch", "FloatStorage", i(4)), "torch.FloatStorage"),  # a class, never called
        (s("not callable") + b")R", "'not callable'"),
    ],
)
def test_other_code_paths_are_refused(tmp_path, payload, named):
    path = torch_zip(tmp_path / "m.pth", state_pickle({"evil": payload}))
    with pytest.raises(UnsafeCheckpointError) as err:
        load_checkpoint(path)
    assert err.value.global_name == named


def test_module_persistent_id_is_refused(tmp_path):
    module_pid = tup(s("module"), glob("torch.nn", "Linear"), s("linear.py"), s("class Linear: ...")) + b"Q"
    with pytest.raises(UnsafeCheckpointError, match="torch.nn.Linear"):
        load_checkpoint(legacy_stream(tmp_path / "m.pth", state_pickle({"m": module_pid}), []))
    module_pid = tup(s("module"), s("Linear"), s("linear.py"), s("src")) + b"Q"
    with pytest.raises(UnsafeCheckpointError, match="nn.Module"):
        load_checkpoint(legacy_stream(tmp_path / "m.pth", state_pickle({"m": module_pid}), []))


@pytest.mark.parametrize(
    "pid, problem",
    [
        (i(7), "persistent id of type int"),
        (tup(s("module"), s("x")), "not a storage id"),
        (tup(s("storage"), s("FloatStorage"), s("0"), s("cpu"), i(1)), "not a torch storage class"),
        (tup(s("storage"), glob("torch", "float32"), s("0"), s("cpu"), i(1)), "torch.float32, not a torch storage"),
    ],
)
def test_persistent_ids_of_other_shapes_are_refused(tmp_path, pid, problem):
    path = torch_zip(tmp_path / "m.pth", state_pickle({"w": pid + b"Q"}), {"0": b"\0" * 4})
    with pytest.raises(CheckpointError, match=problem):
        load_checkpoint(path)


def test_quantized_and_sparse_tensors_are_unsupported_not_unsafe(tmp_path):
    for payload in (call("torch._utils", "_rebuild_qtensor", b"N"), glob("torch", "QInt8Storage"),
                    glob("torch", "float8_e4m3fn")):
        path = torch_zip(tmp_path / "q.pth", state_pickle({"q": payload}))
        with pytest.raises(CheckpointError, match="does not read") as err:
            load_checkpoint(path)
        assert not isinstance(err.value, UnsafeCheckpointError)


def test_unknown_opcodes_are_errors(tmp_path):
    for op in (b"P0\n", b"I1\n", b"S'x'\n", b"V\n", b"\x96\x00\x00\x00\x00\x00\x00\x00\x00"):
        path = torch_zip(tmp_path / "o.pth", state_pickle({"x": op}))
        with pytest.raises(CheckpointError, match="not one torch writes"):
            load_checkpoint(path)


def test_deeply_nested_pickle_cannot_crash_the_reader(tmp_path):
    deep = b"]" + b"\x85" * 200_000 + b"(" + b"]" * 50_000 + b"l"  # nested tuples, then a long list
    path = torch_zip(tmp_path / "d.pth", state_pickle({"x": deep + b"0"}))
    with pytest.raises(CheckpointError, match="not a flat state dict"):
        load_checkpoint(path)
    key = b"]" + b"\x85" * 100_000  # a nested tuple used as a dict key would hash recursively
    path = torch_zip(tmp_path / "k.pth", b"\x80\x02}" + key + b"Ns.")
    with pytest.raises(CheckpointError, match="scalar keys"):
        load_checkpoint(path)


# ---------------------------------------------------------------- fuzzing


def _valid_files() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        state = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.array([1, 2], np.int64),
                 "h": np.ones((2, 2), np.float16), "f": np.array([True])}
        state["t"] = state["w"].T
        files = {}
        for fmt in ("torch", "safetensors", "npz"):
            path = Path(tmp) / fmt
            save_checkpoint(state, path, format=fmt)
            files[fmt] = path.read_bytes()
    for name in ("zip.pth", "legacy.pth", "legacy.tar", "big_endian.pth"):
        files[name] = (FIXTURES / name).read_bytes()
    return files


VALID = _valid_files()
_FUZZ_DIR = tempfile.mkdtemp(prefix="hubkit-fuzz-")


def _load_mutated(data: bytes, mmap_mode: bool) -> None:
    path = os.path.join(_FUZZ_DIR, "ckpt")
    with open(path, "wb") as f:
        f.write(data)
    try:
        state = load_checkpoint(path, mmap=mmap_mode)
    except CheckpointError:
        return
    for array in state.values():  # the first and last element of every array must be readable memory
        if array.size:
            array[(0,) * array.ndim].tobytes()
            array[tuple(n - 1 for n in array.shape)].tobytes()


mutation = st.one_of(
    st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                                        min_size=1, max_size=8)),
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), st.floats(0, 1), st.integers(1, 64)),
)


def _mutate(data: bytes, how: tuple, lo: int = 0, hi: int | None = None) -> bytes:
    """Apply one mutation inside ``data[lo:hi]``."""
    hi = len(data) if hi is None else hi
    at = lambda frac: lo + int(frac * (hi - lo))  # noqa: E731
    buf = bytearray(data)
    kind = how[0]
    if kind == "flip":
        for frac, value in how[1]:
            if hi > lo:
                buf[at(frac)] = value
    elif kind == "truncate":
        del buf[at(how[1]):]
    elif kind == "insert":
        buf[at(how[1]):at(how[1])] = how[2]
    else:
        del buf[at(how[1]):at(how[1]) + how[2]]
    return bytes(buf)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.sampled_from(sorted(VALID)), how=mutation, mmap_mode=st.booleans())
def test_fuzz_mutated_files_raise_only_checkpoint_error(source, how, mmap_mode):
    _load_mutated(_mutate(VALID[source], how), mmap_mode)


def _zip_with_mutated_pickle(how: tuple) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(VALID["zip.pth"]))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for info in source.infolist():
            data = source.read(info)
            zf.writestr(info.filename, _mutate(data, how) if info.filename.endswith("data.pkl") else data)
    return out.getvalue()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(how=mutation)
def test_fuzz_mutated_zip_pickles_raise_only_checkpoint_error(how):
    _load_mutated(_zip_with_mutated_pickle(how), True)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(how=mutation)
def test_fuzz_mutated_legacy_headers_raise_only_checkpoint_error(how):
    data = VALID["legacy.pth"]
    _load_mutated(_mutate(data, how, 0, 1300), False)  # the pickles, not the raw storages


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=200))
def test_fuzz_the_pickle_machine_on_arbitrary_bytes(data):
    with contextlib.suppress(CheckpointError):
        unpickle(b"\x80\x02" + data, 0, persistent_load=lambda pid: pid, where="fuzz")
