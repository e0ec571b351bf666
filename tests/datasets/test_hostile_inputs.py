"""Files that are not what a dataset expects: each is a DatasetError naming the file and the fix.

COCO annotations with ids of mixed types or an image without ``file_name``, an image that declares more
pixels than Pillow will decode, and WAV files in the formats real tools write (IEEE float, and
WAVE_FORMAT_EXTENSIBLE holding PCM or float), which must be read rather than refused.
"""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest
from dsfiles import int24, riff_wav

from hubkit.datasets import CocoDetection, ImageFolder
from hubkit.datasets.audio.wav import read_wav
from hubkit.datasets.vision.coco import COCO
from hubkit.errors import DatasetError

Image = pytest.importorskip("PIL.Image")


def coco_tree(tmp_path, images, annotations=()):
    folder = tmp_path / "val2017"
    folder.mkdir()
    for img in images:
        if "file_name" in img:
            Image.fromarray(np.zeros((2, 3, 3), np.uint8)).save(folder / img["file_name"])
    ann = tmp_path / "instances.json"
    ann.write_text(json.dumps({"images": images, "annotations": list(annotations), "categories": []}))
    return folder, ann


def test_coco_image_ids_of_mixed_types_are_a_dataset_error(tmp_path):
    folder, ann = coco_tree(tmp_path, [{"id": 1, "file_name": "a.png"}, {"id": "2", "file_name": "b.png"}])
    with pytest.raises(DatasetError, match="ids") as info:
        CocoDetection(folder, ann)
    assert str(ann) in str(info.value) and "'2'" in str(info.value)


def test_coco_image_without_file_name_is_reported_at_construction(tmp_path):
    folder, ann = coco_tree(tmp_path, [{"id": 1, "file_name": "a.png"}, {"id": 7, "height": 2, "width": 3}])
    with pytest.raises(DatasetError, match="file_name") as info:
        CocoDetection(folder, ann)
    assert "7" in str(info.value) and str(ann) in str(info.value)


def test_coco_annotation_path_that_is_a_folder_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="annFile="):
        COCO(tmp_path)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares ``width`` x ``height`` 1-bit pixels, followed by one tiny IDAT."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def test_a_decompression_bomb_in_an_image_folder_is_a_dataset_error_with_the_fix(tmp_path):
    (tmp_path / "cats").mkdir()
    bomb = tmp_path / "cats" / "bomb.png"
    bomb.write_bytes(_png_header_only(200_000, 200_000))  # 4e10 pixels in 70 bytes
    ds = ImageFolder(tmp_path)
    with pytest.raises(DatasetError, match="MAX_IMAGE_PIXELS") as info:
        ds[0]
    assert str(bomb) in str(info.value) and "decompression bomb" in str(info.value)


# ---------------------------------------------------------------- WAV formats


FLOATS = np.array([[0.5, -0.25], [1.0, -1.0], [0.125, 0.0], [-0.75, 0.3]], np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("extensible", [False, True])
def test_ieee_float_wav_is_read_as_is(dtype, extensible, tmp_path):
    path = tmp_path / "float.wav"
    path.write_bytes(riff_wav(FLOATS.astype(dtype), 22050, 3, extensible=extensible))
    wave, rate = read_wav(path)
    assert rate == 22050 and wave.dtype == np.float32 and wave.shape == (2, 4)
    np.testing.assert_array_equal(wave, FLOATS.T)


def test_extensible_pcm_wav_is_scaled_like_plain_pcm(tmp_path):
    pcm16 = np.array([[-32768, 32767], [1, -1], [0, 16384]], np.int16)
    path = tmp_path / "pcm16.wav"
    path.write_bytes(riff_wav(pcm16, 16000, 1, extensible=True))
    wave, rate = read_wav(path)
    assert rate == 16000
    np.testing.assert_array_equal(wave, pcm16.T / np.float32(32768))

    pcm24 = np.array([[-(1 << 23), (1 << 23) - 1, 3]], np.int32).T  # (frames, 1)
    path.write_bytes(riff_wav(int24(pcm24), 48000, 1, extensible=True))
    wave, rate = read_wav(path)
    assert rate == 48000 and wave.shape == (1, 3)
    np.testing.assert_array_equal(wave[0], (pcm24[:, 0] << 8) / np.float32(2**31))


def test_wav_files_libsndfile_writes_are_read(tmp_path):
    sf = pytest.importorskip("soundfile")
    for fmt, subtype in (("WAV", "FLOAT"), ("WAVEX", "FLOAT"), ("WAVEX", "PCM_16"), ("WAV", "DOUBLE")):
        path = tmp_path / f"{fmt}-{subtype}.wav"
        sf.write(path, FLOATS, 8000, format=fmt, subtype=subtype)
        wave, rate = read_wav(path)
        expected, _ = sf.read(path, dtype="float32", always_2d=True)
        assert rate == 8000
        np.testing.assert_array_equal(wave, expected.T)


def test_other_wav_codecs_are_refused_by_name(tmp_path):
    mulaw = bytearray(riff_wav(np.zeros((4, 1), np.uint8), 8000, 1))
    mulaw[20:22] = struct.pack("<H", 7)  # WAVE_FORMAT_MULAW
    path = tmp_path / "mulaw.wav"
    path.write_bytes(bytes(mulaw))
    with pytest.raises(DatasetError, match="format 7"):
        read_wav(path)
