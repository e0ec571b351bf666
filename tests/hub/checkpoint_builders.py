"""Build torch checkpoint files byte by byte, without torch, for the format and safety tests.

Pickles are written as raw opcodes so that a test controls exactly what the reader sees,
including things no honest writer emits.
"""

from __future__ import annotations

import pickle
import struct
import zipfile
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "checkpoints"

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C


def s(text: str) -> bytes:
    """BINUNICODE."""
    raw = text.encode("utf-8")
    return b"X" + struct.pack("<I", len(raw)) + raw


def i(value: int) -> bytes:
    """BININT (or LONG1 for large values)."""
    if -(2**31) <= value < 2**31:
        return b"J" + struct.pack("<i", value)
    raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def glob(module: str, name: str) -> bytes:
    """GLOBAL."""
    return f"c{module}\n{name}\n".encode()


def tup(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def call(module: str, name: str, *args: bytes) -> bytes:
    """GLOBAL module.name, then REDUCE on a tuple of already-encoded arguments."""
    return glob(module, name) + tup(*args) + b"R"


def ordered_dict() -> bytes:
    return glob("collections", "OrderedDict") + b")R"


def storage_id(key: str, numel: int, storage_class: str = "FloatStorage", location: str = "cpu") -> bytes:
    """The zip-format persistent id ('storage', class, key, location, numel), then BINPERSID."""
    return tup(s("storage"), glob("torch", storage_class), s(key), s(location), i(numel)) + b"Q"


def tensor(key: str, numel: int, shape: tuple[int, ...], stride: tuple[int, ...], offset: int = 0,
           storage_class: str = "FloatStorage") -> bytes:
    """``torch._utils._rebuild_tensor_v2(storage, offset, shape, stride, False, OrderedDict())``."""
    return call("torch._utils", "_rebuild_tensor_v2", storage_id(key, numel, storage_class), i(offset),
                tup(*map(i, shape)), tup(*map(i, stride)), b"\x89", ordered_dict())


def neg_view(key: str, numel: int, shape: tuple[int, ...], stride: tuple[int, ...],
             storage_class: str = "FloatStorage") -> bytes:
    """``_rebuild_tensor_v2`` of a view with torch's neg bit set (its 7th argument, the metadata dict)."""
    metadata = b"}" + s("neg") + b"\x88" + b"s"
    return call("torch._utils", "_rebuild_tensor_v2", storage_id(key, numel, storage_class), i(0),
                tup(*map(i, shape)), tup(*map(i, stride)), b"\x89", ordered_dict(), metadata)


def state_pickle(entries: dict[str, bytes]) -> bytes:
    """A protocol-2 pickle of ``{name: <encoded value>}``."""
    body = b"".join(s(name) + value for name, value in entries.items())
    return b"\x80\x02}(" + body + b"u."


def torch_zip(path: Path, data_pkl: bytes, records: dict[str, bytes] | None = None, *, folder: str = "archive",
              compression: int = zipfile.ZIP_STORED, byteorder: str = "little") -> Path:
    """A torch zip checkpoint with the given ``data.pkl`` and ``data/<key>`` records."""
    with zipfile.ZipFile(path, "w", compression) as zf:
        zf.writestr(f"{folder}/data.pkl", data_pkl)
        zf.writestr(f"{folder}/byteorder", byteorder)
        for key, data in (records or {}).items():
            zf.writestr(f"{folder}/data/{key}", data)
        zf.writestr(f"{folder}/version", "3\n")
    return path


def legacy_stream(path: Path, main_pickle: bytes, storages: list[tuple[str, int, bytes]]) -> Path:
    """A legacy ``torch.save`` stream: magic, version, sys_info, ``main_pickle``, keys, storages."""
    parts = [pickle.dumps(MAGIC_NUMBER, protocol=2), pickle.dumps(1001, protocol=2),
             pickle.dumps({"protocol_version": 1001, "little_endian": True,
                           "type_sizes": {"short": 2, "int": 4, "long": 8}}, protocol=2),
             main_pickle, pickle.dumps([key for key, _, _ in storages], protocol=2)]
    for _, count, data in storages:
        parts.append(struct.pack("<q", count) + data)
    path.write_bytes(b"".join(parts))
    return path
