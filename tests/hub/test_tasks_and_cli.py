"""What a user hits first (issue 13, items 6 and 8): inputs are checked before weights are fetched, the hints
of ``hubkit.load`` name arguments it takes, and the CLI ends without a traceback when its reader goes away
or an image is a decompression bomb."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

import hubkit
from hubkit import tasks
from hubkit.errors import ArgumentError, AudioFileError, CheckpointError, StateDictError


@pytest.fixture
def offline(monkeypatch):
    """No weights can be fetched: any attempt is an OfflineError, so a test sees what is checked first."""
    monkeypatch.setenv("HUBKIT_OFFLINE", "1")


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels (Pillow refuses it when it opens it)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


# ---------------------------------------------------------------- item 8: inputs before weights


def test_predict_checks_its_images_before_fetching_weights(tmp_path, offline):
    with pytest.raises(ArgumentError, match="does not exist"):
        tasks.predict("squeezenet1_1", [tmp_path / "missing.png"])


def test_transcribe_checks_its_audio_before_fetching_weights(tmp_path, offline):
    with pytest.raises(AudioFileError):
        tasks.transcribe("wav2vec2_asr_base_960h", [tmp_path / "missing.wav"])


def test_the_predict_command_names_the_missing_image_not_the_download(tmp_path, offline, capsys):
    from hubkit.cli import main

    assert main(["predict", "squeezenet1_1", str(tmp_path / "missing.png")]) == 1
    err = capsys.readouterr().err
    assert "missing.png" in err and "does not exist" in err and "Offline" not in err


# ---------------------------------------------------------------- item 6: a decompression bomb


def test_a_decompression_bomb_image_is_an_argument_error_with_the_fix(tmp_path, offline, capsys):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(100_000, 100_000))
    with pytest.raises(ArgumentError, match="MAX_IMAGE_PIXELS"):
        tasks.predict("squeezenet1_1", [bomb])
    from hubkit.cli import main

    assert main(["predict", "squeezenet1_1", str(bomb)]) == 1
    assert "hubkit: error:" in capsys.readouterr().err


# ---------------------------------------------------------------- item 8: hints that work


def test_the_key_and_strict_hints_of_a_failed_load_work_with_hubkit_load(tmp_path):
    state = hubkit.load("lenet5").state_dict()
    hubkit.save({"epoch": 3, "model": state}, tmp_path / "ckpt.pt")
    with pytest.raises(CheckpointError, match="key='model'"):
        hubkit.load("lenet5", weights=tmp_path / "ckpt.pt")
    model = hubkit.load("lenet5", weights=tmp_path / "ckpt.pt", key="model")
    assert not model.training
    np.testing.assert_array_equal(model.state_dict()["features.0.weight"].numpy(), state["features.0.weight"].numpy())

    partial = {k: v for k, v in state.items() if not k.startswith("classifier.4")}
    hubkit.save(partial, tmp_path / "partial.pt")
    with pytest.raises(StateDictError, match="strict=False"):
        hubkit.load("lenet5", weights=tmp_path / "partial.pt")
    model = hubkit.load("lenet5", weights=tmp_path / "partial.pt", strict=False)
    np.testing.assert_array_equal(model.state_dict()["classifier.0.bias"].numpy(), state["classifier.0.bias"].numpy())


def test_key_and_strict_without_weights_or_for_a_file_are_refused(tmp_path):
    with pytest.raises(ArgumentError, match="apply to weights being loaded"):
        hubkit.load("lenet5", strict=False)
    hubkit.save({"w": hubkit.zeros(2)}, tmp_path / "c.pt")
    with pytest.raises(ArgumentError, match="strict=, key= are for model names"):
        hubkit.load(tmp_path / "c.pt", strict=False, key="w")


# ---------------------------------------------------------------- item 6: hubkit models | head


def test_a_closed_pipe_ends_the_command_without_a_traceback():
    code = "import sys; from hubkit.cli import main; sys.exit(main(['models']))"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader (head) went away before the first line
    _, err = proc.communicate(timeout=120)
    assert b"Traceback" not in err and b"BrokenPipeError" not in err, err.decode()[-2000:]
    assert proc.returncode == 141
