"""The parts of serving that need no server: model specs, config files (TorchServe's properties and TOML), flag
precedence, the metrics text format, label files, image limits, per-item batch errors, the CLI's parser."""

from __future__ import annotations

import io
import logging
import pickle
import socket
import struct
import zlib

import numpy as np
import pytest

from hubkit.serve.config import (
    ConfigError,
    ServeConfig,
    build_config,
    parse_address,
    parse_model_spec,
    read_config_file,
    read_properties,
)
from hubkit.serve.errors import HTTPError
from hubkit.serve.metrics import Counter, Histogram, Registry

# ---------------------------------------------------------------- model specs


def test_model_spec_forms(tmp_path):
    spec = parse_model_spec("resnet18")
    assert (spec.name, spec.arch, spec.tag, spec.checkpoint) == ("resnet18", "resnet18", None, None)
    spec = parse_model_spec("resnet50.IMAGENET1K_V1")
    assert (spec.name, spec.arch, spec.tag) == ("resnet50", "resnet50", "IMAGENET1K_V1")
    spec = parse_model_spec("mymodel=resnet18:weights/ft.safetensors", base_dir=tmp_path)
    assert spec.name == "mymodel" and spec.checkpoint == str(tmp_path / "weights" / "ft.safetensors")
    assert spec.url == f"resnet18:{tmp_path / 'weights' / 'ft.safetensors'}"
    spec = parse_model_spec("remote=resnet18:https://example.org/w.pt")
    assert spec.checkpoint == "https://example.org/w.pt"
    assert parse_model_spec("x=resnet18:/abs/w.pt").checkpoint == "/abs/w.pt"


@pytest.mark.parametrize(("spec", "fragment"), [
    ("", "non-empty"),
    ("resnet18:", "names no checkpoint"),
    ("resnet18.IMAGENET1K_V1:w.pt", "both a weight tag and a checkpoint"),
    ("https://example.org/w.pt", "bare URL"),
    ("bad name=resnet18", "served model name"),
    ("x=.tag", "names no architecture"),
])  # fmt: skip
def test_model_spec_errors(spec, fragment):
    with pytest.raises(ConfigError, match=fragment):
        parse_model_spec(spec)


def test_addresses():
    assert parse_address("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_address("http://0.0.0.0:80/") == ("0.0.0.0", 80)
    assert parse_address("[::1]:0") == ("::1", 0)
    with pytest.raises(ConfigError, match="TLS"):
        parse_address("https://127.0.0.1:8443")
    with pytest.raises(ConfigError, match="HOST:PORT"):
        parse_address("8080")
    with pytest.raises(ConfigError, match="out of range"):
        parse_address("localhost:70000")


# ---------------------------------------------------------------- config files


def test_java_properties_syntax():
    text = ("# comment\n! also a comment\n\nplain=1\nspaced : two words\nbare value\n"
            "long=a,\\\n    b,\\\n    c\nescaped=tab\\there\\\\x\nempty=\n")  # fmt: skip
    assert read_properties(text) == {"plain": "1", "spaced": "two words", "bare": "value", "long": "a,b,c",
                                     "escaped": "tab\there\\x", "empty": ""}  # fmt: skip


def test_torchserve_config_properties(tmp_path, caplog):
    store = tmp_path / "store"
    store.mkdir()
    path = tmp_path / "config.properties"
    path.write_text(
        "inference_address=http://127.0.0.1:9080\nmanagement_address=http://127.0.0.1:9081\n"
        "model_store=store\nload_models=a=resnet18:a.pt,resnet34\n"
        'models={"a": {"1.0": {"defaultVersion": true, "minWorkers": 2, "batchSize": 4, "maxBatchDelay": 50, '
        '"responseTimeout": 30}}, "b": {"2.1": {"marName": "lenet5:b.pt", "batchSize": 2}}}\n'
        "job_queue_size=7\ndefault_response_timeout=60\nnumber_of_netty_threads=8\nmystery_key=1\n"
        "allowed_urls=file://.*,https://example.org/.*\n",
        encoding="utf-8",
    )
    with caplog.at_level(logging.INFO, logger="hubkit.serve"):
        settings, models = read_config_file(path)
    assert settings["inference_address"] == "http://127.0.0.1:9080" and settings["job_queue_size"] == 7
    assert settings["default_response_timeout"] == 60.0
    assert settings["allowed_urls"] == ("file://.*", "https://example.org/.*")
    by_name = {m.name: m for m in models}
    assert list(by_name) == ["a", "resnet34", "b"]
    a = by_name["a"]
    assert a.checkpoint == str(store.resolve() / "a.pt")  # relative to model_store
    assert (a.min_workers, a.batch_size, a.max_batch_delay, a.response_timeout) == (2, 4, 50.0, 30.0)
    b = by_name["b"]
    assert b.version == "2.1" and b.batch_size == 2 and b.checkpoint == str(store.resolve() / "b.pt")
    assert "mystery_key" in caplog.text and "number_of_netty_threads" in caplog.text
    config = build_config(config_file=path)
    assert config.resolve(by_name["resnet34"]).response_timeout == 60.0  # the server default
    assert config.resolve(by_name["resnet34"]).batch_size == 1


def test_toml_config(tmp_path):
    path = tmp_path / "serve.toml"
    path.write_text("""
metrics_address = "127.0.0.1:0"
batch_size = 3
load_models = ["resnet18"]

[models.mine]
url = "resnet18:ckpt/w.safetensors"
batch_size = 8
max_batch_delay = 5
min_workers = 2
model_kwargs = {num_classes = 10}
labels = "ckpt/index_to_name.json"
topk = 3
""", encoding="utf-8")
    config = build_config(config_file=path)
    assert config.batch_size == 3 and config.metrics_address == "127.0.0.1:0"
    resnet, mine = config.models
    assert config.resolve(resnet).batch_size == 3
    assert mine.checkpoint == str(tmp_path / "ckpt" / "w.safetensors")
    assert mine.model_kwargs == {"num_classes": 10} and mine.topk == 3
    assert mine.labels == str(tmp_path / "ckpt" / "index_to_name.json")
    resolved = config.resolve(mine)
    assert (resolved.batch_size, resolved.max_batch_delay, resolved.min_workers, resolved.max_workers) == (8, 5, 2, 2)


@pytest.mark.parametrize(("text", "suffix", "fragment"), [
    ("load_models=all\n", ".properties", "load_models=all"),
    ("job_queue_size=lots\n", ".properties", "must be a number"),
    ("job_queue_size=1.5\n", ".properties", "whole number"),
    ('models={"a": {"1.0": {}, "2.0": {}}}\n', ".properties", "one version"),
    ("models={broken\n", ".properties", "JSON"),
    ("[models.a]\nbatch_size = 2\n", ".toml", "no url"),
    ('[models.a]\nurl = "resnet18"\nworkers = 2\n', ".toml", "unknown setting 'workers'"),
    ("this is = = not toml", ".toml", "not valid TOML"),
])  # fmt: skip
def test_config_file_errors(tmp_path, text, suffix, fragment):
    path = tmp_path / f"config{suffix}"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=fragment):
        build_config(config_file=path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the config file"):
        build_config(config_file=tmp_path / "nope.properties")


def test_flags_override_the_file_and_host_covers_every_listener(tmp_path):
    path = tmp_path / "config.properties"
    path.write_text("inference_address=127.0.0.1:9080\nbatch_size=2\njob_queue_size=5\n", encoding="utf-8")
    config = build_config(config_file=path, models=["resnet18"], overrides={"batch_size": 6, "job_queue_size": None},
                          host="0.0.0.0", ports={"inference": 8000, "management": None})  # fmt: skip
    assert config.batch_size == 6 and config.job_queue_size == 5
    assert config.inference_address == "0.0.0.0:8000" and config.management_address == "0.0.0.0:8081"
    assert config.metrics_address == "0.0.0.0:8082"
    defaults = ServeConfig()
    assert defaults.inference_address == "127.0.0.1:8080"  # loopback unless asked
    assert defaults.management_address == "127.0.0.1:8081" and defaults.metrics_address == "127.0.0.1:8082"
    assert (defaults.job_queue_size, defaults.max_request_size) == (100, 6553500)
    assert defaults.default_response_timeout == 120


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"batch_size": 0}, "batch_size"),
    ({"max_batch_delay": -1}, "max_batch_delay"),
    ({"default_response_timeout": 0}, "default_response_timeout"),
    ({"allowed_urls": ("([",)}, "allowed_urls"),
    ({"inference_address": "nowhere"}, "HOST:PORT"),
])  # fmt: skip
def test_invalid_settings(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        ServeConfig(**kwargs)


def test_duplicate_names_are_refused():
    with pytest.raises(ConfigError, match="given twice"):
        build_config(models=["resnet18", "resnet18:/w.pt"])


# ---------------------------------------------------------------- metrics text


def test_prometheus_text_format():
    registry = Registry()
    counter = registry.add(Counter("requests_total", "Requests", ("model",)))
    hist = registry.add(Histogram("latency_seconds", "Latency", ("model",), (0.1, 1.0)))
    counter.inc('we"ird\nname', amount=2)
    hist.observe(0.05, "m")
    hist.observe(0.5, "m")
    hist.observe(5.0, "m")
    text = registry.render()
    assert "# TYPE requests_total counter" in text and 'requests_total{model="we\\"ird\\nname"} 2' in text
    assert 'latency_seconds_bucket{model="m",le="0.1"} 1' in text
    assert 'latency_seconds_bucket{model="m",le="1"} 2' in text
    assert 'latency_seconds_bucket{model="m",le="+Inf"} 3' in text
    assert 'latency_seconds_count{model="m"} 3' in text and 'latency_seconds_sum{model="m"} 5.55' in text
    assert "requests_total" not in registry.render(["latency_seconds"])


# ---------------------------------------------------------------- the worker side, without processes


def test_label_files_follow_torchserve(tmp_path):
    from hubkit.serve.handlers import read_label_file

    path = tmp_path / "index_to_name.json"
    path.write_text('{"0": ["n01440764", "tench"], "1": "goldfish"}', encoding="utf-8")
    assert read_label_file(path, 3) == ["tench", "goldfish", "2"]
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ConfigError, match="JSON object"):
        read_label_file(path, 2)


def test_image_limits_are_checked_before_decoding():
    pytest.importorskip("PIL")
    from PIL import Image

    from hubkit.serve.handlers import decode_image

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(buf, format="PNG")
    assert decode_image(buf.getvalue(), 10_000).size == (40, 30)
    with pytest.raises(HTTPError) as info:
        decode_image(buf.getvalue(), 1000)
    assert info.value.code == 413 and "1,200 pixels" in info.value.message
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 7_000, 7_000, 8, 2, 0, 0, 0)  # 49 megapixels declared, a few bytes sent
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 99)) + chunk(b"IEND", b"")
    with pytest.raises(HTTPError) as info:
        decode_image(bomb, 40_000_000)
    assert info.value.code == 413
    with pytest.raises(HTTPError) as info:
        decode_image(b"GIF89a nonsense", 10_000)
    assert info.value.code == 400


class _Handler:
    def preprocess(self, payload):
        if payload == "bad":
            raise HTTPError(400, "BadRequestException", "bad payload")
        if payload == "crash":
            raise RuntimeError("boom")
        return payload

    def infer(self, items):
        if "explode" in items:
            raise ValueError("model exploded")
        return [x.upper() for x in items], 1


def test_run_batch_keeps_failures_per_item():
    from hubkit.serve.handlers import run_batch

    results, calls = run_batch(_Handler(), ["a", "bad", "b", "crash"])
    assert calls == 1
    assert [r[0] for r in results] == ["ok", "err", "ok", "err"]
    assert results[0][1] == "A" and results[2][1] == "B"
    assert results[1][1].code == 400 and results[3][1].code == 500
    results, calls = run_batch(_Handler(), ["a", "explode"])
    assert [r[1].code for r in results] == [500, 500] and "model exploded" in results[0][1].message
    results, calls = run_batch(_Handler(), ["bad"])
    assert calls == 0 and results[0][0] == "err" and results[0][1].message == "bad payload"


def test_http_errors_cross_the_worker_pipe():
    error = HTTPError(503, "ServiceUnavailableException", "busy", headers={"Retry-After": "2"}, extra={"k": 1})
    again = pickle.loads(pickle.dumps(error))
    assert (again.code, again.type, again.message, again.headers, again.extra) == (503, error.type, "busy",
                                                                                   {"Retry-After": "2"}, {"k": 1})
    assert again.body() == {"code": 503, "type": "ServiceUnavailableException", "message": "busy", "k": 1}


# ---------------------------------------------------------------- the CLI


def test_cli_help_and_errors(capsys, tmp_path):
    from hubkit.cli import main

    for module in ("starlette", "uvicorn", "multipart"):
        pytest.importorskip(module, reason="hubkit serve needs the serve extra")
    assert main(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--management-port" in out and "NAME=ARCH:CHECKPOINT" in out and "curl" in out
    bad = tmp_path / "bad.properties"
    bad.write_text("batch_size=0\n", encoding="utf-8")
    assert main(["serve", "--config", str(bad)]) == 1
    assert "batch_size must be a whole number >= 1" in capsys.readouterr().err
    assert main(["serve", "x=resnet18:", "--port", "0"]) == 1
    assert "names no checkpoint" in capsys.readouterr().err
    assert main(["serve", "--max-request-size", "lots"]) == 2
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port), "--access-log", "off"]) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_size_flag():
    from hubkit.serve.cli import _size

    assert _size("6553500") == 6553500 and _size("20M") == 20 << 20 and _size("1.5K") == 1536
    assert np.isclose(_size("1G"), 1 << 30)
