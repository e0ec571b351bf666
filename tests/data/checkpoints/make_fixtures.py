"""Write the checkpoint fixtures in this folder with PyTorch, once; the tests read them without torch.

    python tests/data/checkpoints/make_fixtures.py      # needs torch (made with torch 2.14.1)

Outputs, each a few KB:

- ``zip.pth``          ``torch.save`` zip format: every dtype, views, shared storages, 0-d, empty
- ``legacy.pth``       the same state with ``_use_new_zipfile_serialization=False``
- ``legacy.tar``       the pre-0.4 tar format; torch can no longer write it, so it is written here
                       member by member following ``torch.serialization.legacy_load`` and then read
                       back with ``torch.load(weights_only=False)`` to prove torch accepts it
- ``big_endian.pth``   ``zip.pth``'s simple tensors with byte-swapped records and ``byteorder=big``,
                       checked the same way
- ``nested.pth``       a training checkpoint ``{"epoch", "model", "optimizer"}``
- ``expected.npz``     every tensor's values as torch reports them (``<fixture>/<name>``; bfloat16
                       as float32, which is exact)
- ``expected.json``    per fixture: dtype, shape, element strides, and groups of names that share
                       a storage in the file
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import tarfile
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent


def mixed_state() -> OrderedDict:
    g = torch.Generator().manual_seed(0)
    base = torch.randn(4, 6, generator=g)
    shared = torch.arange(10, dtype=torch.float32)
    tagged = torch.tensor([7.0, 8.0])
    tagged.note = "a tensor with a Python attribute pickles through _rebuild_from_type_v2"
    state = OrderedDict()
    state["float32"] = base
    state["float32.slice"] = base[1:3, ::2]  # storage offset 6, strides (6, 2), same storage as base
    state["float32.t"] = base.t()
    state["float64"] = torch.randn(3, generator=g, dtype=torch.float64)
    state["float16"] = torch.randn(2, 3, generator=g).half()
    state["bfloat16"] = torch.randn(5, generator=g).bfloat16()
    state["int8"] = torch.tensor([-128, 0, 127], dtype=torch.int8)
    state["int16"] = torch.tensor([-32768, 1, 32767], dtype=torch.int16)
    state["int32"] = torch.tensor([[-(2**31), 5], [2**31 - 1, 0]], dtype=torch.int32)
    state["int64"] = torch.tensor([-(2**63), 2**62, 2**63 - 1], dtype=torch.int64)
    state["uint8"] = torch.tensor([0, 1, 255], dtype=torch.uint8)
    state["uint16"] = torch.tensor([0, 65535], dtype=torch.uint16)
    state["bool"] = torch.tensor([True, False, True])
    state["complex64"] = torch.tensor([1 + 2j, -3.5j], dtype=torch.complex64)
    state["complex64.conj"] = torch.tensor([1 + 2j, 3 - 1j], dtype=torch.complex64).conj()
    state["float32.neg"] = torch._neg_view(torch.tensor([1.0, -2.0]))
    state["scalar"] = torch.tensor(3.25)
    state["num_batches_tracked"] = torch.tensor(17)
    state["empty"] = torch.zeros(0, 3)
    state["expanded"] = torch.tensor([1.0, 2.0, 3.0]).expand(2, 3)
    state["tied.a"] = shared
    state["tied.b"] = shared
    state["tied.view"] = shared[4:8]
    state["parameter"] = torch.nn.Parameter(torch.tensor([0.5, 1.5]))
    state["tagged"] = tagged
    return state


def legacy_state() -> OrderedDict:
    """What the legacy stream format can hold: it has no conj/neg bits and no uint16 storages."""
    return OrderedDict((k, v) for k, v in mixed_state().items() if k not in ("complex64.conj", "float32.neg",
                                                                           "uint16", "tagged"))


def nested_checkpoint() -> dict:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    return {"epoch": 3, "model": model.state_dict(), "optimizer": opt.state_dict(), "note": "trained 3 epochs"}


# ---------------------------------------------------------------- the legacy tar format, by hand


class _TensorIds(pickle.Pickler):
    def __init__(self, file: io.BytesIO, keys: dict[int, int]) -> None:
        super().__init__(file, protocol=2)
        self.keys = keys

    def persistent_id(self, obj: object) -> str | None:
        if torch.is_tensor(obj):
            return str(self.keys[id(obj)])
        return None


def write_legacy_tar(state: OrderedDict, path: Path) -> None:
    storages: dict[int, tuple[int, torch.Tensor]] = {}  # data_ptr -> (key, storage as a 1-d tensor)
    tensors = []
    keys: dict[int, int] = {}
    for i, tensor in enumerate(state.values()):
        ptr = tensor.untyped_storage().data_ptr()
        if ptr not in storages:
            flat = torch.empty(0, dtype=tensor.dtype).set_(tensor.untyped_storage())
            storages[ptr] = (1000 + len(storages), flat)
        keys[id(tensor)] = i
        tensors.append((i, storages[ptr][0], tensor))
    out = io.BytesIO()
    pickle.dump(len(storages), out, protocol=2)
    for key, flat in storages.values():
        pickle.dump((key, "cpu", _storage_class(flat.dtype)), out, protocol=2)
        out.write(struct.pack("<q", flat.numel()))
        out.write(flat.numpy().tobytes())
    pickle.dump([], out, protocol=2)  # no storage views
    storages_member = out.getvalue()
    out = io.BytesIO()
    pickle.dump(len(tensors), out, protocol=2)
    for key, storage_key, tensor in tensors:
        tensor_class = getattr(torch, _storage_class(tensor.dtype).__name__.replace("Storage", "Tensor"))
        pickle.dump((key, storage_key, tensor_class), out, protocol=2)
        out.write(struct.pack("<i4x", tensor.dim()))
        out.write(struct.pack(f"<{tensor.dim()}q", *tensor.shape))
        out.write(struct.pack(f"<{tensor.dim()}q", *tensor.stride()))
        out.write(struct.pack("<q", tensor.storage_offset()))
    tensors_member = out.getvalue()
    out = io.BytesIO()
    _TensorIds(out, keys).dump(OrderedDict(state))
    pickle_member = out.getvalue()
    sys_info = pickle.dumps({"protocol_version": 1001, "little_endian": True,
                             "type_sizes": {"short": 2, "int": 4, "long": 8}}, protocol=2)
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (("sys_info", sys_info), ("pickle", pickle_member), ("storages", storages_member),
                           ("tensors", tensors_member)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _storage_class(dtype: torch.dtype) -> type:
    return {torch.float32: torch.FloatStorage, torch.float64: torch.DoubleStorage, torch.int64: torch.LongStorage,
            torch.uint8: torch.ByteStorage}[dtype]


# ---------------------------------------------------------------- big-endian zip, by rewriting a torch one


def write_big_endian(state: OrderedDict, path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    dtypes = {str(i): t.dtype for i, t in enumerate(state.values())}  # one storage per tensor, in order
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as out:
        for info in source.infolist():
            data = source.read(info)
            folder, _, record = info.filename.partition("/")
            if record == "byteorder":
                data = b"big"
            elif record.startswith("data/"):
                width = torch.empty(0, dtype=dtypes[record[5:]]).element_size()
                data = np.frombuffer(data, dtype=f"<u{width}").byteswap().tobytes()
            out.writestr(f"{folder}/{record}", data)


# ---------------------------------------------------------------- expected values


def describe(state: dict) -> dict:
    out, groups = {}, {}
    for name, t in state.items():
        out[name] = {"dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape),
                     "stride": list(t.stride())}
        groups.setdefault(t.untyped_storage().data_ptr(), []).append(name)
    return {"tensors": out, "shared": [g for g in groups.values() if len(g) > 1]}


def values(t: torch.Tensor) -> np.ndarray:
    t = t.detach().resolve_conj().resolve_neg()
    return (t.float() if t.dtype == torch.bfloat16 else t).numpy().copy()


def main() -> None:
    legacy, mixed = legacy_state(), mixed_state()
    tar_names = ("float32", "float32.t", "float64", "int64", "uint8", "tied.a", "tied.b", "expanded")
    big_names = ("float32.t", "float64", "float16", "int16", "int64", "uint8")  # one storage each
    made = {
        "zip.pth": (mixed, lambda s, p: torch.save(s, p)),
        "legacy.pth": (legacy, lambda s, p: torch.save(s, p, _use_new_zipfile_serialization=False)),
        "legacy.tar": (OrderedDict((k, legacy[k]) for k in tar_names), write_legacy_tar),
        "big_endian.pth": (OrderedDict((k, mixed[k]) for k in big_names), write_big_endian),
    }
    expected_arrays, expected_meta = {}, {}
    for filename, (state, write) in made.items():
        path = HERE / filename
        write(state, path)
        reread = torch.load(path, weights_only=filename != "legacy.tar")  # torch refuses tar when weights_only
        for name, tensor in state.items():
            assert torch.equal(reread[name], tensor.detach()), (filename, name)
            expected_arrays[f"{filename}/{name}"] = values(tensor)
        expected_meta[filename] = describe(state)
    nested = nested_checkpoint()
    torch.save(nested, HERE / "nested.pth")
    for name, tensor in nested["model"].items():
        expected_arrays[f"nested.pth/{name}"] = values(tensor)
    expected_meta["nested.pth"] = describe(nested["model"])
    expected_meta["torch_version"] = torch.__version__
    np.savez(HERE / "expected.npz", **expected_arrays)
    (HERE / "expected.json").write_text(json.dumps(expected_meta, indent=1) + "\n")
    for path in sorted(HERE.iterdir()):
        print(f"{path.name:20s} {path.stat().st_size:7d} bytes")


if __name__ == "__main__":
    main()
