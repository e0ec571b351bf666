"""hub.formats without torch: the committed torch fixtures, round trips, containers, damaged files."""

from __future__ import annotations

import json
import mmap
import os
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from checkpoint_builders import FIXTURES, state_pickle, tensor, torch_zip

from hubkit.errors import CheckpointError, HubkitError
from hubkit.hub.checkpoint import _zip
from hubkit.hub.checkpoint.formats import checkpoint_format, load_checkpoint, save_checkpoint

EXPECTED = np.load(FIXTURES / "expected.npz")
META = json.loads((FIXTURES / "expected.json").read_text())
TORCH_FIXTURES = ["zip.pth", "legacy.pth", "legacy.tar", "big_endian.pth"]
FORMATS = {"zip.pth": "torch", "legacy.pth": "torch-legacy", "legacy.tar": "torch-tar",
           "big_endian.pth": "torch", "nested.pth": "torch"}


def _backed_by_mmap(array: np.ndarray) -> bool:
    base = array
    while isinstance(base, np.ndarray):
        base = base.base
    return isinstance(getattr(base, "obj", base), mmap.mmap)  # np.frombuffer keeps a memoryview


# ---------------------------------------------------------------- files written by torch


@pytest.mark.parametrize("mmap_mode", [True, False])
@pytest.mark.parametrize("name", TORCH_FIXTURES)
def test_torch_fixture_reads_to_exact_recorded_values(name, mmap_mode):
    state = load_checkpoint(FIXTURES / name, mmap=mmap_mode)
    meta = META[name]["tensors"]
    assert list(state) == list(meta)
    for key, array in state.items():
        expected = EXPECTED[f"{name}/{key}"]
        assert array.dtype == expected.dtype, key
        assert array.shape == tuple(meta[key]["shape"]), key
        np.testing.assert_array_equal(array, expected, err_msg=key)


@pytest.mark.parametrize("name", TORCH_FIXTURES)
def test_format_is_detected_from_bytes(name):
    assert checkpoint_format(FIXTURES / name) == FORMATS[name]


@pytest.mark.parametrize("name", ["zip.pth", "legacy.pth", "legacy.tar"])
def test_mmap_load_returns_views_with_torch_strides(name):
    state = load_checkpoint(FIXTURES / name, mmap=True)
    for key, info in META[name]["tensors"].items():
        array = state[key]
        if info["dtype"] in ("bfloat16", "complex64") or key == "float32.neg" or 0 in info["shape"]:
            continue  # converted copies (bfloat16, conj, neg) and empty tensors have no file bytes
        assert _backed_by_mmap(array), key
        assert tuple(s // array.itemsize for s in array.strides) == tuple(info["stride"]), key


@pytest.mark.parametrize("name", ["zip.pth", "legacy.pth", "legacy.tar"])
def test_tensors_sharing_a_storage_share_memory(name):
    state = load_checkpoint(FIXTURES / name)
    assert META[name]["shared"], "the fixture is meant to contain shared storages"
    for group in META[name]["shared"]:
        for other in group[1:]:
            assert np.shares_memory(state[group[0]], state[other]), (group[0], other)
    assert not np.shares_memory(state["float32"], state["float64"])


def test_mmap_false_gives_independent_writable_copies():
    state = load_checkpoint(FIXTURES / "zip.pth", mmap=False)
    assert not any(_backed_by_mmap(a) for a in state.values())
    state["float32"][0, 0] = 123.0
    assert state["float32.t"][0, 0] == 123.0  # still one storage, as in torch
    assert load_checkpoint(FIXTURES / "zip.pth")["float32"][0, 0] != 123.0


def test_writing_to_a_mapped_array_never_changes_the_file(tmp_path):
    path = tmp_path / "copy.pth"
    path.write_bytes((FIXTURES / "zip.pth").read_bytes())
    before = path.read_bytes()
    state = load_checkpoint(path, mmap=True)
    state["float32"][...] = -1.0
    assert path.read_bytes() == before
    assert load_checkpoint(path)["float32"][0, 0] == EXPECTED["zip.pth/float32"][0, 0]


def test_bfloat16_can_be_returned_as_raw_bits():
    raw = load_checkpoint(FIXTURES / "zip.pth", bfloat16="uint16")["bfloat16"]
    assert raw.dtype == np.uint16
    widened = EXPECTED["zip.pth/bfloat16"]
    np.testing.assert_array_equal(raw, (widened.view(np.uint32) >> 16).astype(np.uint16))
    with pytest.raises(CheckpointError, match="bfloat16"):
        load_checkpoint(FIXTURES / "zip.pth", bfloat16="float16")


def test_big_endian_records_are_swapped_to_native_order():
    state = load_checkpoint(FIXTURES / "big_endian.pth")
    for key, array in state.items():
        assert array.dtype.isnative, key
        np.testing.assert_array_equal(array, EXPECTED[f"big_endian.pth/{key}"])


# ---------------------------------------------------------------- nested containers


def test_nested_checkpoint_error_lists_top_level_keys_and_the_candidate():
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(FIXTURES / "nested.pth")
    message = str(err.value)
    for key in ("'epoch'", "'model'", "'optimizer'", "'note'", "key="):
        assert key in message
    assert "key='model'" in message
    assert "nested.pth" in message


@pytest.mark.parametrize("key", ["model", ("model",), ["model"]])
def test_nested_checkpoint_unwraps_on_request(key):
    state = load_checkpoint(FIXTURES / "nested.pth", key=key)
    assert list(state) == list(META["nested.pth"]["tensors"])
    for name, array in state.items():
        np.testing.assert_array_equal(array, EXPECTED[f"nested.pth/{name}"])
    assert state["1.num_batches_tracked"].dtype == np.int64


def test_unknown_key_lists_what_is_there():
    with pytest.raises(CheckpointError, match=r"'state_dict' not found.*'epoch'.*'model'"):
        load_checkpoint(FIXTURES / "nested.pth", key="state_dict")
    with pytest.raises(CheckpointError, match="not found under"):
        load_checkpoint(FIXTURES / "nested.pth", key=("model", "0.weight", "x"))


def test_key_that_is_not_a_state_dict_is_refused():
    with pytest.raises(CheckpointError, match="holds a int"):
        load_checkpoint(FIXTURES / "nested.pth", key="epoch")
    with pytest.raises(CheckpointError, match="single tensor"):
        load_checkpoint(FIXTURES / "nested.pth", key=("model", "0.weight"))


def test_key_on_a_flat_format_is_an_error(tmp_path):
    save_checkpoint({"a": np.zeros(2, np.float32)}, tmp_path / "f.safetensors")
    with pytest.raises(CheckpointError, match="nothing to unwrap"):
        load_checkpoint(tmp_path / "f.safetensors", key="model")


# ---------------------------------------------------------------- round trips through every writer


def _awkward_state() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    base = rng.standard_normal((4, 6)).astype(np.float32)
    state = {
        "f32": base,
        "f32.t": base.T,  # non-contiguous view of f32
        "f32.cols": base[:, 1::2],  # offset + strides
        "f64.fortran": np.asfortranarray(rng.standard_normal((3, 5))),
        "f16": rng.standard_normal((2, 2)).astype(np.float16),
        "i8": np.array([-128, 127], np.int8),
        "i16": np.array([-5, 7], np.int16),
        "i32": np.array([[1, -2]], np.int32),
        "i64": np.array([-(2**63), 2**63 - 1], np.int64),
        "u8": np.arange(256, dtype=np.uint8),
        "u16": np.array([0, 65535], np.uint16),
        "u32": np.array([2**32 - 1], np.uint32),
        "u64": np.array([2**64 - 1], np.uint64),
        "bool": np.array([True, False, True]),
        "c64": np.array([1 + 2j], np.complex64),
        "scalar": np.array(2.5, np.float32),
        "empty": np.zeros((0, 3), np.float32),
        "big_endian": np.arange(5, dtype=">i4"),
        "zero_stride": np.broadcast_to(np.arange(3, dtype=np.float32), (4, 3)),
    }
    state["tied"] = state["f32"]
    return state


@pytest.mark.parametrize("mmap_mode", [True, False])
@pytest.mark.parametrize("fmt", ["torch", "safetensors", "npz"])
def test_round_trip_preserves_values_dtypes_and_shapes(tmp_path, fmt, mmap_mode):
    state = _awkward_state()
    if fmt == "torch":
        state["c128"] = np.array([1 - 1j], np.complex128)
    if fmt == "safetensors":
        state.pop("c64")
    path = tmp_path / "ckpt.bin"
    save_checkpoint(state, path, format=fmt)
    back = load_checkpoint(path, mmap=mmap_mode)
    assert list(back) == list(state) or fmt == "safetensors"  # safetensors orders by offset
    assert set(back) == set(state)
    for name, array in state.items():
        assert back[name].dtype == array.dtype.newbyteorder("="), name
        assert back[name].shape == array.shape, name
        np.testing.assert_array_equal(back[name], array, err_msg=name)


def test_torch_writer_shares_storage_between_overlapping_arrays(tmp_path):
    state = _awkward_state()
    save_checkpoint(state, tmp_path / "w.pth", format="torch")
    back = load_checkpoint(tmp_path / "w.pth")
    for view in ("f32.t", "f32.cols", "tied"):
        assert np.shares_memory(back["f32"], back[view]), view
    assert not np.shares_memory(back["f32"], back["f16"])
    with zipfile.ZipFile(tmp_path / "w.pth") as zf:
        records = [n for n in zf.namelist() if "/data/" in n]
    assert len(records) == len(state) - 3  # four names over the f32 buffer, everything else its own storage


def test_torch_writer_does_not_inflate_a_small_view_of_a_big_buffer(tmp_path):
    big = np.zeros(1_000_000, np.float32)
    save_checkpoint({"piece": big[10:20]}, tmp_path / "p.pth", format="torch")
    assert os.path.getsize(tmp_path / "p.pth") < 4096


def test_mapped_checkpoint_can_be_saved_again_with_tied_weights_kept(tmp_path):
    state = load_checkpoint(FIXTURES / "zip.pth", mmap=True)
    save_checkpoint(state, tmp_path / "again.pth", format="torch")
    back = load_checkpoint(tmp_path / "again.pth")
    assert np.shares_memory(back["tied.a"], back["tied.b"])
    for name in state:
        np.testing.assert_array_equal(back[name], state[name])


@pytest.mark.parametrize("fmt", ["torch", "npz"])
def test_every_record_is_64_byte_aligned(tmp_path, fmt):
    path = tmp_path / f"a.{fmt}"
    save_checkpoint({"a": np.ones(3, np.int8), "b": np.ones(7, np.float64), "c": np.ones((5, 3), np.float32)},
                    path, format=fmt)
    from hubkit.hub.checkpoint._filebuf import FileBuffer

    with FileBuffer(path, mmap=False) as buf, zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            assert _zip.data_offset(buf, info) % 64 == 0, info.filename


def test_torch_writer_layout_matches_torch_save(tmp_path):
    save_checkpoint({"w": np.ones(2, np.float32)}, tmp_path / "my model.pth", format="torch")
    with zipfile.ZipFile(tmp_path / "my model.pth") as zf:
        names = zf.namelist()
        assert names[0] == "my_model/data.pkl"
        assert zf.read("my_model/byteorder") == b"little"
        assert zf.read("my_model/version") == b"3\n"
        assert all(info.compress_type == zipfile.ZIP_STORED for info in zf.infolist())
        assert zf.read("my_model/data.pkl").startswith(b"\x80\x02ccollections\nOrderedDict\n")


def test_npz_output_is_readable_by_numpy(tmp_path):
    state = {"a/b.weight": np.arange(6.0).reshape(2, 3), "file": np.array(1)}
    save_checkpoint(state, tmp_path / "x.npz", format="npz")
    with np.load(tmp_path / "x.npz", allow_pickle=False) as npz:
        assert set(npz.files) == set(state)
        np.testing.assert_array_equal(npz["a/b.weight"], state["a/b.weight"])


def test_numpy_savez_and_savez_compressed_are_read(tmp_path):
    a = np.arange(12, dtype=np.int16).reshape(3, 4)
    np.savez(tmp_path / "plain.npz", a=a, f=np.asfortranarray(a))
    np.savez_compressed(tmp_path / "small.npz", a=a, s=np.float64(3.0))
    plain = load_checkpoint(tmp_path / "plain.npz", mmap=True)
    assert _backed_by_mmap(plain["a"])
    np.testing.assert_array_equal(plain["f"], a)
    small = load_checkpoint(tmp_path / "small.npz")
    np.testing.assert_array_equal(small["a"], a)
    assert small["s"].shape == () and small["s"] == 3.0


def test_npz_with_object_arrays_is_refused_without_unpickling(tmp_path):
    np.savez(tmp_path / "obj.npz", a=np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(CheckpointError, match="object arrays are never unpickled"):
        load_checkpoint(tmp_path / "obj.npz")


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "m.pth"
    target.write_bytes(b"previous good file")
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(*args, **kwargs)

    real = _zip.write_aligned
    monkeypatch.setattr(_zip, "write_aligned", failing)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"w": np.ones(3, np.float32)}, target, format="torch")
    assert target.read_bytes() == b"previous good file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pth"]


@pytest.mark.parametrize("fmt", ["torch", "safetensors", "npz"])
def test_unsupported_dtypes_are_refused_before_writing(tmp_path, fmt):
    with pytest.raises(CheckpointError, match="'names'") as err:
        save_checkpoint({"ok": np.ones(1), "names": np.array(["a", "b"])}, tmp_path / "x", format=fmt)
    assert isinstance(err.value, HubkitError)
    assert list(tmp_path.iterdir()) == []


def test_save_checkpoint_checks_its_arguments(tmp_path):
    with pytest.raises(CheckpointError, match="format="):
        save_checkpoint({}, tmp_path / "x", format="pickle")
    with pytest.raises(CheckpointError, match="expected a numpy array"):
        save_checkpoint({"a": [1, 2]}, tmp_path / "x")
    with pytest.raises(CheckpointError, match="keys must be strings"):
        save_checkpoint({1: np.ones(1)}, tmp_path / "x")
    with pytest.raises(CheckpointError, match="does not exist"):
        save_checkpoint({}, tmp_path / "missing" / "x")


def test_empty_state_round_trips(tmp_path):
    for fmt in ("torch", "safetensors", "npz"):
        save_checkpoint({}, tmp_path / fmt, format=fmt)
        assert load_checkpoint(tmp_path / fmt) == {}


# ---------------------------------------------------------------- safetensors specifics


def _safetensors_bytes(header: dict, data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data


def test_safetensors_bfloat16_is_widened_to_float32(tmp_path):
    values = np.array([1.0, -2.5, 3.140625], np.float32)
    bits = (values.view(np.uint32) >> 16).astype("<u2")
    path = tmp_path / "bf.safetensors"
    path.write_bytes(_safetensors_bytes({"x": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]}},
                                        bits.tobytes()))
    np.testing.assert_array_equal(load_checkpoint(path)["x"], values)
    np.testing.assert_array_equal(load_checkpoint(path, bfloat16="uint16")["x"], bits)


def test_safetensors_float8_is_reported_unsupported(tmp_path):
    path = tmp_path / "f8.safetensors"
    path.write_bytes(_safetensors_bytes({"x": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}},
                                        b"\x01\x02"))
    with pytest.raises(CheckpointError, match="F8_E4M3"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    "header, data, problem",
    [
        ({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 7, "truncated"),
        ({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 9, "trailing byte"),
        ({"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8, "size mismatch"),
        ({"x": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8, "hole"),
        ({"__metadata__": {"a": 1}}, b"", "non-string metadata"),
    ],
)
def test_invalid_safetensors_raise_checkpoint_error(tmp_path, header, data, problem):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(_safetensors_bytes(header, data))
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        load_checkpoint(path)


# ---------------------------------------------------------------- wrong and damaged files


@pytest.mark.parametrize(
    "content, hint",
    [
        (b"", "empty"),
        (b"<!DOCTYPE html><html><body>404</body></html>", "HTML page"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n", "Git LFS pointer"),
        (b"\x93NUMPY\x01\x00" + b" " * 120, "single .npy"),
        (b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01.", "plain pickle"),
        (b"\x00\x01\x02garbage" * 4, "first bytes"),
    ],
)
def test_files_in_no_known_format_are_named_and_explained(tmp_path, content, hint):
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=hint) as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)


def test_missing_file_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "nope.pth")


@pytest.mark.parametrize("name", ["zip.pth", "legacy.pth", "legacy.tar", "nested.pth"])
def test_every_truncation_of_a_torch_fixture_raises_checkpoint_error(tmp_path, name):
    data = (FIXTURES / name).read_bytes()
    path = tmp_path / name
    key = "model" if name == "nested.pth" else None
    content_end = len(data)
    if name.endswith(".tar"):  # a tar ends in zero blocks that carry nothing
        with tarfile.open(FIXTURES / name) as tar:
            content_end = max(m.offset_data + m.size for m in tar.getmembers())
        path.write_bytes(data[: content_end + 512])
        assert set(load_checkpoint(path)) == set(META[name]["tensors"])
    step = max(1, content_end // 150)
    for cut in range(0, content_end, step):
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError):
            load_checkpoint(path, key=key)


def test_zip_that_is_neither_torch_nor_npz_is_explained(tmp_path):
    with zipfile.ZipFile(tmp_path / "x.zip", "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(CheckpointError, match="neither a torch checkpoint"):
        load_checkpoint(tmp_path / "x.zip")


def test_torchscript_archive_gets_a_hint(tmp_path):
    with zipfile.ZipFile(tmp_path / "ts.pt", "w") as zf:
        zf.writestr("ts/constants.pkl", b"\x80\x02).")
        zf.writestr("ts/data.pkl.bak", b"")
        zf.writestr("ts/version", b"3\n")
    with pytest.raises(CheckpointError, match="torch.jit.load"):
        load_checkpoint(tmp_path / "ts.pt")


def test_zip_records_outside_the_archive_folder_are_refused(tmp_path):
    pkl = state_pickle({"w": tensor("0", 2, (2,), (1,))})
    path = torch_zip(tmp_path / "a.pth", pkl, {"0": b"\0" * 8})
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("../evil", b"x")
    with pytest.raises(CheckpointError, match="outside the archive folder"):
        load_checkpoint(path)


def test_duplicate_zip_entries_are_refused(tmp_path):
    pkl = state_pickle({"w": tensor("0", 2, (2,), (1,))})
    path = torch_zip(tmp_path / "a.pth", pkl, {"0": b"\0" * 8})
    with pytest.warns(UserWarning), zipfile.ZipFile(path, "a") as zf:
        zf.writestr("archive/data/0", b"\1" * 8)
    with pytest.raises(CheckpointError, match="twice"):
        load_checkpoint(path)


def test_deflated_records_from_other_zip_tools_are_read(tmp_path):
    values = np.arange(6, dtype=np.float32)
    pkl = state_pickle({"w": tensor("0", 6, (2, 3), (3, 1))})
    path = torch_zip(tmp_path / "d.pth", pkl, {"0": values.tobytes()}, compression=zipfile.ZIP_DEFLATED)
    np.testing.assert_array_equal(load_checkpoint(path)["w"], values.reshape(2, 3))


@pytest.mark.parametrize(
    "entry, records, problem",
    [
        (tensor("0", 6, (2, 3), (3, 1)), {}, "record archive/data/0 is missing"),
        (tensor("0", 6, (2, 3), (3, 1)), {"0": b"\0" * 20}, "holds 20 bytes, expected 24"),
        (tensor("0", 6, (2, 3), (3, 1), offset=1), {"0": b"\0" * 24}, "reaches element 6"),
        (tensor("0", 6, (2, 3), (5, 1)), {"0": b"\0" * 24}, "reaches element 7"),
        (tensor("0", 6, (2, 3), (3,)), {"0": b"\0" * 24}, "different lengths"),
        (tensor("0", 1, (1,) * 40, (1,) * 40), {"0": b"\0" * 4}, "at most 32"),
        (tensor("0", -1, (1,), (1,)), {"0": b""}, "numel"),
        (tensor("0", 6, (-2, 3), (3, 1)), {"0": b"\0" * 24}, "integer >= 0"),
    ],
)
def test_inconsistent_tensor_records_are_caught_before_any_view(tmp_path, entry, records, problem):
    path = torch_zip(tmp_path / "t.pth", state_pickle({"w": entry}), records)
    with pytest.raises(CheckpointError, match=problem):
        load_checkpoint(path)


def test_storage_location_must_look_like_a_device(tmp_path):
    from checkpoint_builders import call, i, ordered_dict, s, tup

    bad_id = tup(s("storage"), b"ctorch\nFloatStorage\n", s("0"), s("/etc/passwd"), i(1)) + b"Q"
    entry = call("torch._utils", "_rebuild_tensor_v2", bad_id, i(0), tup(i(1)), tup(i(1)), b"\x89",
                 ordered_dict())
    path = torch_zip(tmp_path / "l.pth", state_pickle({"w": entry}), {"0": b"\0" * 4})
    with pytest.raises(CheckpointError, match="location"):
        load_checkpoint(path)


def test_error_classes_are_hubkit_errors():
    assert issubclass(CheckpointError, HubkitError) and issubclass(CheckpointError, ValueError)


def test_written_files_are_found_by_checkpoint_format(tmp_path):
    for fmt in ("torch", "safetensors", "npz"):
        save_checkpoint({"a": np.ones(2, np.float32)}, tmp_path / fmt, format=fmt)
        assert checkpoint_format(tmp_path / fmt) == fmt
    assert Path(tmp_path / "torch").stat().st_size > 0
