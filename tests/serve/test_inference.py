"""The inference listener of a real ``hubkit serve`` (uvicorn on 127.0.0.1, ephemeral ports, a subprocess), driven
with requests: TorchServe's request forms and answers, the server agreeing with the library, every bad input as
a JSON 4xx while the server keeps serving, metrics, OpenAPI, headers and the access log."""

from __future__ import annotations

import base64
import json
import struct
import time
import zlib

import numpy as np
import pytest
from servekit import (
    CAT,
    close_top5,
    library_embeddings,
    library_top5,
    library_transcript,
    require_serve_extra,
    tone,
    wav_bytes,
)

require_serve_extra()
import requests  # noqa: E402


def _error(response, code: int, type_: str, fragment: str) -> dict:
    assert response.status_code == code, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code and body["type"] == type_, body
    assert fragment in body["message"], body["message"]
    assert response.headers["connection"] == "close"  # TorchServe closes the connection on errors
    return body


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header announces width x height pixels, with a tiny (invalid) body: a decompression bomb as
    the header sees it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


# ---------------------------------------------------------------- health, page, descriptions


def test_ping_page_static_and_the_served_models(server):
    ping = requests.get(f"{server.inference}/ping", timeout=30)
    assert ping.status_code == 200 and ping.json() == {"status": "Healthy"}
    assert ping.text.endswith("}\n") and "\n  " in ping.text  # pretty-printed like TorchServe
    page = requests.get(f"{server.inference}/", timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<select id="model">' in page.text and "/static/app.js" in page.text
    js = requests.get(f"{server.inference}/static/app.js", timeout=30)
    assert js.status_code == 200 and "/predictions/" in js.text
    listed = {m["name"]: m for m in requests.get(f"{server.inference}/api/models", timeout=30).json()}
    assert listed["shuf"]["modality"] == "vision" and listed["shuf"]["task"] == "image-classification"
    assert listed["st"]["task"] == "sentence-embedding" and listed["asr"]["task"] == "speech-recognition"
    assert {m["status"] for m in listed.values()} == {"READY"}
    assert server.startup_models == {"shuf": "READY", "st": "READY", "asr": "READY"}


def test_openapi_on_every_listener_and_options_root(server):
    spec = requests.get(f"{server.inference}/openapi.json", timeout=30).json()
    assert spec["openapi"] == "3.0.1"
    assert {"/ping", "/predictions/{model_name}", "/predictions/{model_name}/{model_version}"} <= set(spec["paths"])
    assert requests.options(f"{server.inference}/", timeout=30).json() == spec
    management = requests.get(f"{server.management}/openapi.json", timeout=30).json()
    assert set(management["paths"]["/models"]) == {"get", "post"}
    assert set(management["paths"]["/models/{model_name}"]) == {"get", "put", "delete"}
    assert "/metrics" in requests.get(f"{server.metrics}/openapi.json", timeout=30).json()["paths"]


def test_common_headers_and_request_ids(server):
    r = requests.get(f"{server.inference}/ping", headers={"X-Request-Id": "my-trace-7"}, timeout=30)
    assert r.headers["x-request-id"] == "my-trace-7"
    assert r.headers["cache-control"] == "no-cache; no-store, must-revalidate, private"
    assert r.headers["pragma"] == "no-cache" and r.headers["expires"].startswith("Thu, 01 Jan 1970")
    generated = requests.get(f"{server.inference}/ping", headers={"X-Request-Id": "bad id\x7f"}, timeout=30)
    assert len(generated.headers["x-request-id"]) == 32  # an unusable id is replaced by a fresh one


# ---------------------------------------------------------------- answers


def test_image_classifier_answers_like_torchserves_handler_and_like_the_library(server, assets):
    want = library_top5("shufflenet_v2_x0_5", assets.shufflenet_v2_x0_5, CAT)
    raw = requests.post(f"{server.inference}/predictions/shuf", data=CAT.read_bytes(),
                        headers={"Content-Type": "image/jpeg"}, timeout=120)  # fmt: skip
    assert raw.status_code == 200, raw.text
    got = raw.json()
    assert isinstance(got, dict) and len(got) == 5
    assert close_top5(got, want), (got, want)
    assert list(got.values()) == sorted(got.values(), reverse=True)
    # the other request forms TorchServe takes give the same answer
    multipart = requests.post(f"{server.inference}/predictions/shuf", files={"data": ("cat.jpg", CAT.read_bytes())},
                              timeout=120).json()  # fmt: skip
    put = requests.put(f"{server.inference}/predictions/shuf", data=CAT.read_bytes(), timeout=120).json()
    b64 = requests.post(f"{server.inference}/predictions/shuf",
                        json={"data": base64.b64encode(CAT.read_bytes()).decode()}, timeout=120).json()  # fmt: skip
    versioned = requests.post(f"{server.inference}/predictions/shuf/1.0", data=CAT.read_bytes(), timeout=120).json()
    for other in (multipart, put, b64, versioned):
        assert close_top5(other, got, tol=1e-6)


def test_sentence_encoder_answers_json_arrays_like_the_library(server, assets):
    texts = ["the cat sat on the mat", "a dog", "hello world"]
    want = library_embeddings(assets.text, texts)
    many = requests.post(f"{server.inference}/predictions/st", json=texts, timeout=120)
    assert many.status_code == 200, many.text
    got = np.array(many.json())
    assert got.shape == (3, 16)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    one = requests.post(f"{server.inference}/predictions/st", json={"text": "a dog"}, timeout=120).json()
    np.testing.assert_allclose(one, want[1], rtol=1e-5, atol=1e-6)
    plain = requests.post(f"{server.inference}/predictions/st", data=b"a dog",
                          headers={"Content-Type": "text/plain; charset=utf-8"}, timeout=120).json()  # fmt: skip
    np.testing.assert_allclose(plain, want[1], rtol=1e-5, atol=1e-6)
    keyed = requests.post(f"{server.inference}/predictions/st", json={"texts": texts[:2]}, timeout=120).json()
    np.testing.assert_allclose(keyed, want[:2], rtol=1e-5, atol=1e-6)


def test_speech_recognizer_answers_the_transcript_as_text(server, assets):
    want = library_transcript(assets.asr, assets.wav)
    r = requests.post(f"{server.inference}/predictions/asr", data=assets.wav.read_bytes(),
                      headers={"Content-Type": "audio/wav"}, timeout=120)  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain") and r.text == want
    form = requests.post(f"{server.inference}/predictions/asr", files={"data": ("a.wav", assets.wav.read_bytes())},
                         timeout=120)  # fmt: skip
    assert form.text == want
    resampled = requests.post(f"{server.inference}/predictions/asr", data=assets.wav_8k.read_bytes(), timeout=120)
    assert resampled.status_code == 200 and resampled.text == library_transcript(assets.asr, assets.wav_8k)


def test_explanations_are_not_implemented(server):
    _error(requests.post(f"{server.inference}/explanations/shuf", data=b"x", timeout=30), 501,
           "NotImplementedException", "explanations")  # fmt: skip
    _error(requests.post(f"{server.inference}/explanations/nope", data=b"x", timeout=30), 404,
           "ModelNotFoundException", "nope")  # fmt: skip


# ---------------------------------------------------------------- bad input: JSON 4xx, and the server keeps serving


def test_unknown_model_version_and_path(server):
    body = _error(requests.post(f"{server.inference}/predictions/resnet1000", data=b"x", timeout=30), 404,
                  "ModelNotFoundException", "Model not found: resnet1000")  # fmt: skip
    assert "Served models: asr, shuf, st" in body["message"] and body["models"] == ["asr", "shuf", "st"]
    _error(requests.post(f"{server.inference}/predictions/shuf/9.9", data=b"x", timeout=30), 404,
           "ModelVersionNotFoundException", "9.9")  # fmt: skip
    _error(requests.get(f"{server.inference}/no/such/path", timeout=30), 404, "ResourceNotFoundException",
           "Requested resource is not found")  # fmt: skip
    _error(requests.get(f"{server.inference}/predictions/shuf", timeout=30), 405, "MethodNotAllowedException", "GET")


def test_wrong_content_types(server, assets):
    _error(requests.post(f"{server.inference}/predictions/shuf", data=b"hello", headers={"Content-Type": "text/plain"},
                         timeout=30), 415, "UnsupportedMediaTypeException", "image model")  # fmt: skip
    _error(requests.post(f"{server.inference}/predictions/st", data=CAT.read_bytes(),
                         headers={"Content-Type": "image/jpeg"}, timeout=30),
           415, "UnsupportedMediaTypeException", "text model")  # fmt: skip
    _error(requests.post(f"{server.inference}/predictions/asr", json={"a": 1}, timeout=30), 415,
           "UnsupportedMediaTypeException", "speech model")  # fmt: skip


def test_undecodable_truncated_and_bomb_images(server):
    url = f"{server.inference}/predictions/shuf"
    _error(requests.post(url, data=b"this is not an image at all", timeout=30), 400, "BadRequestException",
           "not an image")  # fmt: skip
    truncated = CAT.read_bytes()[:2000]
    _error(requests.post(url, data=truncated, timeout=30), 400, "BadRequestException", "cannot be decoded")
    bomb = _png_header_only(30000, 30000)
    assert len(bomb) < 200
    body = _error(requests.post(url, data=bomb, timeout=30), 413, "RequestEntityTooLargeException", "900,000,000")
    assert "max_image_pixels" in body["message"]
    _error(requests.post(url, json={"data": "%%% not base64 %%%"}, timeout=30), 400, "BadRequestException", "base64")
    _error(requests.post(url, json=[1, 2, 3], timeout=30), 400, "BadRequestException", "base64 string")


def test_oversized_and_empty_bodies(server):
    url = f"{server.inference}/predictions/shuf"
    big = b"\0" * (2 * 1024 * 1024 + 1)
    _error(requests.post(url, data=big, timeout=60), 413, "RequestEntityTooLargeException", "max_request_size")

    def chunked():  # no Content-Length: the limit is enforced while reading
        for _ in range(40):
            yield b"\0" * 65536

    _error(requests.post(url, data=chunked(), timeout=60), 413, "RequestEntityTooLargeException", "over 2,097,152")
    _error(requests.post(url, data=b"", timeout=30), 400, "BadRequestException", "empty")
    _error(requests.post(url, files={"data": ("empty.jpg", b"")}, timeout=30), 400, "BadRequestException", "empty")


def test_malformed_json_and_texts(server):
    url = f"{server.inference}/predictions/st"
    json_type = {"Content-Type": "application/json"}
    _error(requests.post(url, data=b'{"texts": ["a", ', headers=json_type, timeout=30), 400, "BadRequestException",
           "malformed JSON")  # fmt: skip
    _error(requests.post(url, data=b"[" * 100000, headers=json_type, timeout=30), 400, "BadRequestException",
           "malformed JSON")  # fmt: skip
    _error(requests.post(url, json={"sentences": ["a"]}, timeout=30), 400, "BadRequestException", '"texts"')
    _error(requests.post(url, json=[], timeout=30), 400, "BadRequestException", "empty")
    _error(requests.post(url, json=["a", 3], timeout=30), 400, "BadRequestException", "non-string")
    _error(requests.post(url, json=42, timeout=30), 400, "BadRequestException", "int")
    _error(requests.post(url, data=b"\xff\xfe bad", headers={"Content-Type": "text/plain"}, timeout=30), 400,
           "BadRequestException", "UTF-8")  # fmt: skip


def test_unreadable_wavs(server, assets):
    url = f"{server.inference}/predictions/asr"
    _error(requests.post(url, data=b"definitely not audio", timeout=30), 400, "BadRequestException", "not a WAV")
    good = assets.wav.read_bytes()
    _error(requests.post(url, data=good[:60], timeout=30), 400, "BadRequestException", "truncated")
    short = wav_bytes(tone(16000, 0.0005), 16000)  # 8 samples: not one frame of the model
    _error(requests.post(url, data=short, timeout=30), 400, "BadRequestException", "too short")
    float_wav = bytearray(good)
    float_wav[20:22] = struct.pack("<H", 3)  # IEEE-float format code: not PCM
    _error(requests.post(url, data=bytes(float_wav), timeout=30), 400, "BadRequestException", "WAV")


def test_malformed_multipart(server):
    url = f"{server.inference}/predictions/shuf"
    no_boundary = {"Content-Type": "multipart/form-data"}
    _error(requests.post(url, data=b"--x\r\n\r\n", headers=no_boundary, timeout=30), 400, "BadRequestException",
           "multipart")  # fmt: skip
    fields = requests.post(url, data={"other": ""}, timeout=30)  # urlencoded, one empty field
    assert fields.status_code == 400 and fields.json()["type"] == "BadRequestException"


def test_the_server_keeps_serving_after_bad_input(server, assets):
    for _ in range(3):
        requests.post(f"{server.inference}/predictions/shuf", data=b"garbage", timeout=30)
        requests.post(f"{server.inference}/predictions/asr", data=b"RIFF\0\0\0\0WAVEjunk", timeout=30)
    assert requests.get(f"{server.inference}/ping", timeout=30).json() == {"status": "Healthy"}
    r = requests.post(f"{server.inference}/predictions/shuf", data=CAT.read_bytes(), timeout=120)
    assert r.status_code == 200 and len(r.json()) == 5
    workers = requests.get(f"{server.management}/models/shuf", timeout=30).json()[0]["workers"]
    assert [w["restarts"] for w in workers] == [0]  # bad input never cost a worker


# ---------------------------------------------------------------- metrics and the access log


def test_prometheus_metrics(server):
    requests.post(f"{server.inference}/predictions/shuf", data=CAT.read_bytes(), timeout=120).raise_for_status()
    text = requests.get(f"{server.metrics}/metrics", timeout=30)
    assert text.headers["content-type"].startswith("text/plain; version=0.0.4")
    body = text.text
    for family, kind in (("ts_inference_requests_total", "counter"), ("ts_inference_latency_microseconds", "counter"),
                         ("ts_queue_latency_microseconds", "counter"), ("Requests2XX", "counter"),
                         ("Requests4XX", "counter"), ("hubkit_request_duration_seconds", "histogram"),
                         ("hubkit_batch_size", "histogram"), ("hubkit_queue_depth", "gauge"),
                         ("hubkit_model_calls_total", "counter"), ("hubkit_workers", "gauge")):  # fmt: skip
        assert f"# TYPE {family} {kind}" in body, family
    assert server.metric("ts_inference_requests_total", model_name="shuf") >= 1
    assert server.metric("hubkit_queue_depth", model_name="shuf") == 0
    assert server.metric("hubkit_workers", model_name="shuf", status="READY") == 1
    assert server.metric("hubkit_request_duration_seconds_count", model_name="shuf", code="200") >= 1
    assert server.metric("hubkit_request_duration_seconds_bucket", model_name="shuf", code="200", le="+Inf") >= 1
    only = requests.get(f"{server.metrics}/metrics", params={"name[]": ["hubkit_queue_depth", "Requests2XX"]},
                        timeout=30).text  # fmt: skip
    families = {line.split()[2] for line in only.splitlines() if line.startswith("# TYPE")}
    assert families == {"hubkit_queue_depth", "Requests2XX"}


def test_structured_access_log(server):
    r = requests.post(f"{server.inference}/predictions/nope", data=b"x", headers={"X-Request-Id": "log-me-1"},
                      timeout=30)  # fmt: skip
    assert r.status_code == 404
    deadline = time.monotonic() + 30
    while True:  # the line is written once the response has gone out, so it may trail the client a little
        lines = [json.loads(line) for line in server.stderr().splitlines() if line.startswith("{")]
        mine = [entry for entry in lines if entry.get("request_id") == "log-me-1"]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(mine) == 1
    entry = mine[0]
    assert entry["status"] == 404 and entry["method"] == "POST" and entry["path"] == "/predictions/nope"
    assert entry["model"] == "nope" and entry["listener"] == "inference" and entry["bytes_out"] == len(r.content)
    assert entry["client"].startswith("127.0.0.1:") and entry["duration_ms"] >= 0


def test_binds_loopback_only_by_default(server):
    for url in (server.inference, server.management, server.metrics):
        assert url.startswith("http://127.0.0.1:")


@pytest.mark.parametrize("listener", ["management", "metrics"])
def test_other_listeners_answer_json_404(server, listener):
    base = getattr(server, listener)
    _error(requests.get(f"{base}/predictions/shuf", timeout=30), 404, "ResourceNotFoundException", "not found")
