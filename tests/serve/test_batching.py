"""Dynamic batching: concurrent requests to a model with ``batch_size`` > 1 reach the worker in fewer forward
passes, and each gets the same answer it gets from the same model served without batching."""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from servekit import CAT, ServeProcess, close_top5, library_embeddings, require_serve_extra

require_serve_extra()
import requests  # noqa: E402
from PIL import Image  # noqa: E402


@pytest.fixture(scope="module")
def batching_server(assets, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("batching")
    config = workdir / "config.toml"
    config.write_text(f"""
[models.one]
url = "shufflenet_v2_x0_5:{assets.shufflenet_v2_x0_5}"
batch_size = 1

[models.many]
url = "shufflenet_v2_x0_5:{assets.shufflenet_v2_x0_5}"
batch_size = 8
max_batch_delay = 1500

[models.st8]
url = "all-MiniLM-L6-v2:{assets.text}"
batch_size = 8
max_batch_delay = 1500
""", encoding="utf-8")
    proc = ServeProcess(["--config", str(config), "--access-log", "off"], workdir)
    yield proc
    proc.stop()


def _images(n: int) -> list[bytes]:
    """``n`` different images: the cat cropped, flipped and turned."""
    out = []
    with Image.open(CAT) as cat:
        cat = cat.convert("RGB")
        for i in range(n):
            im = cat.crop((i * 7, i * 5, cat.width - i * 3, cat.height - i * 4))
            if i % 2:
                im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            im = im.rotate(i * 9, expand=True)
            buf = io.BytesIO()
            im.save(buf, format="PNG")
            out.append(buf.getvalue())
    return out


def _concurrently(fn, items: list) -> list:
    barrier = threading.Barrier(len(items))

    def call(item):
        barrier.wait()
        return fn(item)

    with ThreadPoolExecutor(len(items)) as pool:
        return list(pool.map(call, items))


def test_concurrent_images_are_batched_and_answered_as_unbatched(batching_server):
    s = batching_server
    images = _images(8)
    before_calls = s.metric("hubkit_model_calls_total", model_name="many")
    before_batches = s.metric("hubkit_batch_size_count", model_name="many")
    responses = _concurrently(
        lambda body: requests.post(f"{s.inference}/predictions/many", data=body, timeout=120), images)
    assert [r.status_code for r in responses] == [200] * 8
    calls = s.metric("hubkit_model_calls_total", model_name="many") - before_calls
    batches = s.metric("hubkit_batch_size_count", model_name="many") - before_batches
    assert 1 <= calls < len(images) and calls == batches
    assert s.metric("hubkit_batch_size_sum", model_name="many") == len(images)
    # the same model unbatched, one request at a time
    unbatched = [requests.post(f"{s.inference}/predictions/one", data=body, timeout=120).json() for body in images]
    assert s.metric("hubkit_model_calls_total", model_name="one") == len(images)
    for got, want in zip((r.json() for r in responses), unbatched):
        assert close_top5(got, want), (got, want)
    assert len({tuple(round(p, 6) for p in a.values()) for a in unbatched}) == len(images)  # inputs really differ


def test_a_partial_batch_goes_when_the_delay_expires(batching_server):
    s = batching_server
    before = s.metric("hubkit_model_calls_total", model_name="many")
    responses = _concurrently(
        lambda body: requests.post(f"{s.inference}/predictions/many", data=body, timeout=120), _images(3))
    assert [r.status_code for r in responses] == [200] * 3
    assert s.metric("hubkit_model_calls_total", model_name="many") - before == 1


def test_concurrent_texts_are_batched_and_match_the_library(batching_server, assets):
    s = batching_server
    requests_texts = [["the cat sat"], ["a dog", "hello world"], ["the mat"], ["a cat on the mat", "dogs run"],
                      ["hello"], ["the dog sat on a cat"]]  # fmt: skip
    before = s.metric("hubkit_model_calls_total", model_name="st8")
    responses = _concurrently(
        lambda texts: requests.post(f"{s.inference}/predictions/st8", json=texts, timeout=120), requests_texts)
    assert [r.status_code for r in responses] == [200] * len(requests_texts)
    assert s.metric("hubkit_model_calls_total", model_name="st8") - before < len(requests_texts)
    for texts, r in zip(requests_texts, responses):
        np.testing.assert_allclose(np.array(r.json()), library_embeddings(assets.text, texts), rtol=1e-5, atol=1e-6)


def test_a_bad_request_in_a_batch_fails_alone(batching_server):
    s = batching_server
    bodies = [*_images(3), b"not an image", b"\x89PNG\r\n\x1a\n broken"]
    responses = _concurrently(
        lambda body: requests.post(f"{s.inference}/predictions/many", data=body, timeout=120), bodies)
    assert [r.status_code for r in responses] == [200, 200, 200, 400, 400]
    assert all(r.json()["type"] == "BadRequestException" for r in responses[3:])
