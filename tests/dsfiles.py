"""Builders of small dataset files in the real upstream formats, and helpers to serve them locally."""

from __future__ import annotations

import bz2
import dataclasses
import gzip
import hashlib
import io
import json
import lzma
import pickle
import stat
import struct
import tarfile
import wave
import zipfile

import numpy as np

from hubkit.datasets._files import resource_filename
from hubkit.hub.transport.verify import Expect

# ---------------------------------------------------------------- formats


def idx_bytes(arr: np.ndarray) -> bytes:
    """An IDX file: 00 00 <type> <ndim>, big-endian uint32 dims, big-endian payload."""
    codes = {np.dtype(np.uint8): 8, np.dtype(np.int8): 9, np.dtype(np.int16): 11, np.dtype(np.int32): 12}
    code = codes[arr.dtype]
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def xz(data: bytes) -> bytes:
    return lzma.compress(data)


def tar_gz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A zip as Info-ZIP writes it on Unix: regular-file mode bits in ``external_attr``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2017, 1, 1, 0, 0, 0))
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return buf.getvalue()


def cifar_batch(data: np.ndarray, labels: list[int], key: str = "labels") -> bytes:
    """A CIFAR batch pickle (protocol 2, like the Python 2 originals): data (N, 3072) uint8 CHW rows."""
    return pickle.dumps({"batch_label": "test", key: labels, "data": data, "filenames": []}, protocol=2)


def wav_bytes(samples: np.ndarray, rate: int = 8000) -> bytes:
    """A 16-bit mono PCM WAV."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return buf.getvalue()


def riff_wav(samples: np.ndarray, rate: int, fmt_tag: int, *, extensible: bool = False) -> bytes:
    """A WAV written field by field: ``samples`` (frames, channels) stored as their dtype (little-endian).

    ``fmt_tag`` is 1 (integer PCM) or 3 (IEEE float). ``extensible`` wraps it as WAVE_FORMAT_EXTENSIBLE
    (tag 0xFFFE, a 22-byte extension whose subformat GUID starts with ``fmt_tag``), as libsndfile and
    most DAWs write files with more than 16 bits or more than two channels. A ``fact`` chunk precedes
    ``data`` for non-PCM formats, as the spec asks.
    """
    frames, channels = samples.shape
    width = samples.dtype.itemsize if samples.dtype != np.dtype("V3") else 3
    block = channels * width
    tag = 0xFFFE if extensible else fmt_tag
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, 8 * width)
    if extensible:
        guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt += struct.pack("<HHI", 22, 8 * width, (1 << channels) - 1) + struct.pack("<H", fmt_tag) + guid_tail
    elif fmt_tag != 1:
        fmt += struct.pack("<H", 0)
    data = samples.tobytes()
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    if fmt_tag != 1 or extensible:
        chunks += b"fact" + struct.pack("<II", 4, frames)
    chunks += b"data" + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) % 2 else b"")
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def int24(samples: np.ndarray) -> np.ndarray:
    """int32 values in the 24-bit range as packed 3-byte little-endian samples (dtype ``V3``)."""
    raw = samples.astype("<i4").view(np.uint8).reshape(*samples.shape, 4)[..., :3]
    return np.ascontiguousarray(raw).view("V3").reshape(samples.shape)


def bz2_bytes(data: bytes) -> bytes:
    return bz2.compress(data)


def coco_json(images: list[dict], annotations: list[dict], categories: list[dict] | None) -> bytes:
    """A COCO annotation file; caption files have no ``categories`` key, as upstream's."""
    doc = {"images": images, "annotations": annotations}
    if categories is not None:
        doc["categories"] = categories
    return json.dumps(doc).encode()


# ---------------------------------------------------------------- serving


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def serve(server, monkeypatch, owner, payloads: dict[str, bytes], prefix: str = "") -> dict[str, str]:
    """Serve ``payloads`` (by resource file name) and point ``owner.resources`` at the server.

    Each served resource gets the payload's md5 (and sha256/size where upstream records one), so the
    download is verified exactly as a real one; where the owner records what a file holds once
    decompressed (MNIST's ``decompressed``), the served payload's decompressed digest is recorded instead.
    Resources without a payload point at a 404 path. Returns ``{file name: server path}`` for request counting.
    """
    paths, new = {}, []
    prefix = prefix or getattr(owner, "__name__", "ds").rsplit(".", 1)[-1]
    for res in owner.resources:
        name = resource_filename(res)
        path = f"/{prefix}/{name}"
        if name in payloads:
            data = payloads[name]
            url = server.add(path, data)
            new.append(dataclasses.replace(
                res, url=url, mirrors=(), filename=name, md5=md5(data),
                sha256=sha256(data) if res.sha256 else None, size=len(data) if res.size else None,
            ))
        else:
            new.append(dataclasses.replace(res, url=server.url(path), mirrors=(), filename=name))
        paths[name] = path
    monkeypatch.setattr(owner, "resources", tuple(new))
    recorded = getattr(owner, "decompressed", None)
    if recorded:
        plain = {n: gzip.decompress(payloads[n]) for n in recorded if n in payloads}
        digests = {n: Expect.of(sha256=sha256(d), size=len(d)) for n, d in plain.items()}
        monkeypatch.setattr(owner, "decompressed", digests)
    return paths


def total_gets(server) -> int:
    return sum(1 for r in server.requests if r.method == "GET")
