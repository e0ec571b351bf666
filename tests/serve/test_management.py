"""The management listener (TorchServe's API) with token auth: register, describe, scale, unregister; a model that
fails to load is reported, not a crash; a full queue answers 503 + Retry-After; a timeout answers 504 and the
worker is replaced."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from servekit import CAT, ServeProcess, require_serve_extra

require_serve_extra()
import requests  # noqa: E402

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def mserver(assets, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("management")
    config = workdir / "config.properties"
    config.write_text(
        "# TorchServe-style keys\n"
        "job_queue_size=2\n"
        f"allowed_urls=file://{assets.root}/.*,https://example.org/.*\n"
        f"load_models=good=shufflenet_v2_x0_5:{assets.shufflenet_v2_x0_5},missing=resnet18:/no/such/weights.pt\n"
        "number_of_netty_threads=4\n",
        encoding="utf-8",
    )
    proc = ServeProcess(["--config", str(config), "--access-log", "off"], workdir, env={"HUBKIT_SERVE_TOKEN": TOKEN})
    yield proc
    proc.stop()


def _m(method: str, server, path: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{server.management}{path}", headers=AUTH, timeout=180, **kwargs)


def _predict(server, name: str) -> requests.Response:
    return requests.post(f"{server.inference}/predictions/{name}", data=CAT.read_bytes(), timeout=180)


def _wait(condition, what: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _describe(server, name: str) -> dict:
    r = _m("GET", server, f"/models/{name}")
    assert r.status_code == 200, r.text
    (info,) = r.json()
    return info


def test_management_needs_the_token_and_inference_does_not(mserver):
    r = requests.get(f"{mserver.management}/models", timeout=30)
    assert r.status_code == 401 and r.json()["type"] == "TokenAuthorizationException"
    assert r.headers["www-authenticate"] == "Bearer"
    wrong = requests.get(f"{mserver.management}/models", headers={"Authorization": "Bearer nope"}, timeout=30)
    assert wrong.status_code == 401
    assert _m("GET", mserver, "/models").status_code == 200
    assert _predict(mserver, "good").status_code == 200


def test_a_model_that_fails_at_startup_is_reported_and_the_rest_serves(mserver):
    listing = {m["modelName"]: m for m in _m("GET", mserver, "/models").json()["models"]}
    assert listing["good"]["status"] == "READY"
    assert listing["missing"]["status"] == "FAILED" and "does not exist" in listing["missing"]["error"]
    assert mserver.startup_models == {"good": "READY", "missing": "FAILED"}
    assert "model missing: FAILED" in mserver.stdout()
    ping = requests.get(f"{mserver.inference}/ping", timeout=30)
    assert ping.status_code == 500 and ping.json() == {"status": "Unhealthy"}
    r = requests.post(f"{mserver.inference}/predictions/missing", data=b"x", timeout=30)
    assert r.status_code == 503 and "does not exist" in r.json()["message"]
    assert _predict(mserver, "good").status_code == 200
    assert _m("DELETE", mserver, "/models/missing").json() == {"status": 'Model "missing" unregistered'}
    assert requests.get(f"{mserver.inference}/ping", timeout=30).json() == {"status": "Healthy"}


def test_register_scale_and_unregister(mserver, assets):
    url = f"shufflenet_v2_x0_5:{assets.shufflenet_v2_x0_5}"
    r = _m("POST", mserver, "/models", params={"url": url, "model_name": "extra", "initial_workers": 1,
                                                "synchronous": "true", "batch_size": 4, "max_batch_delay": 20})
    assert r.status_code == 200, r.text
    assert r.json() == {"status": 'Model "extra" Version: 1.0 registered with 1 initial workers'}
    info = _describe(mserver, "extra")
    assert info["modelName"] == "extra" and info["modelVersion"] == "1.0" and info["modelUrl"] == url
    assert info["batchSize"] == 4 and info["maxBatchDelay"] == 20 and info["loadedAtStartup"] is False
    assert [w["status"] for w in info["workers"]] == ["READY"]
    assert info["jobQueueStatus"] == {"remainingCapacity": 2, "pendingRequests": 0}
    assert _predict(mserver, "extra").status_code == 200

    r = _m("PUT", mserver, "/models/extra", params={"min_worker": 2, "synchronous": "true"})
    assert r.status_code == 200 and r.json() == {"status": "Workers scaled to 2 for model: extra"}
    workers = _describe(mserver, "extra")["workers"]
    assert [w["status"] for w in workers] == ["READY", "READY"]
    assert len({w["pid"] for w in workers}) == 2 and all(w["memoryUsage"] > 0 for w in workers)
    assert mserver.metric("hubkit_workers", model_name="extra", status="READY") == 2
    assert all(_predict(mserver, "extra").status_code == 200 for _ in range(3))

    r = _m("PUT", mserver, "/models/extra/1.0", params={"min_worker": 0, "synchronous": "true"})
    assert r.status_code == 200
    assert _describe(mserver, "extra")["workers"] == []
    none = _predict(mserver, "extra")
    assert none.status_code == 503 and "has no worker to serve inference request" in none.json()["message"]

    r = _m("PUT", mserver, "/models/extra", params={"min_worker": 1})
    assert r.status_code == 202 and r.json() == {"status": "Processing worker updates..."}
    _wait(lambda: [w["status"] for w in _describe(mserver, "extra")["workers"]] == ["READY"], "a worker")
    assert _predict(mserver, "extra").status_code == 200

    assert _m("DELETE", mserver, "/models/extra/1.0").json() == {"status": 'Model "extra" unregistered'}
    assert _m("GET", mserver, "/models/extra").status_code == 404
    gone = _predict(mserver, "extra")
    assert gone.status_code == 404 and gone.json()["type"] == "ModelNotFoundException"


def test_register_defaults_to_no_workers_as_torchserve(mserver, assets):
    r = _m("POST", mserver, "/models", params={"url": f"resnet18:{assets.resnet18}", "model_name": "later"})
    assert r.status_code == 200 and "registered with 0 initial workers" in r.json()["status"]
    assert _describe(mserver, "later")["status"] == "NO_WORKERS"
    assert _predict(mserver, "later").status_code == 503
    assert _m("PUT", mserver, "/models/later", params={"min_worker": 1, "synchronous": "true"}).status_code == 200
    assert _predict(mserver, "later").status_code == 200
    assert _m("DELETE", mserver, "/models/later").status_code == 200


def test_register_errors(mserver, assets, tmp_path):
    def post(**params):
        return _m("POST", mserver, "/models", params=params)

    r = post()
    assert r.status_code == 400 and "url=" in r.json()["message"]
    r = post(url="resnet1800")
    assert r.status_code == 404 and r.json()["type"] == "ModelNotFoundException" and "resnet18" in r.json()["message"]
    r = post(url=f"shufflenet_v2_x0_5:{assets.shufflenet_v2_x0_5}", model_name="good")
    assert r.status_code == 409 and r.json()["type"] == "ConflictStatusException"
    outside = tmp_path / "w.safetensors"
    outside.write_bytes(assets.shufflenet_v2_x0_5.read_bytes())
    r = post(url=f"shufflenet_v2_x0_5:{outside}", model_name="outside")
    assert r.status_code == 400 and "allowed_urls" in r.json()["message"]
    r = post(url=f"resnet18:{assets.root}/nothing-here.pt")
    assert r.status_code == 400 and "does not exist" in r.json()["message"]
    r = post(url="resnet18", model_kwargs="{not json")
    assert r.status_code == 400 and "malformed JSON" in r.json()["message"]
    r = post(url="resnet18", batch_size="many")
    assert r.status_code == 400 and "batch_size" in r.json()["message"]
    r = post(url="resnet18", model_name="bad name!")
    assert r.status_code == 400 and "served model name" in r.json()["message"]
    r = post(url="all-MiniLM-L6-v2.NOT_A_TAG")
    assert r.status_code == 404
    assert {m["modelName"] for m in _m("GET", mserver, "/models").json()["models"]} >= {"good"}
    assert "outside" not in {m["modelName"] for m in _m("GET", mserver, "/models").json()["models"]}


def test_a_model_that_fails_to_load_is_reported_not_a_crash(mserver, assets):
    wrong = f"shufflenet_v2_x0_5:{assets.resnet18}"  # resnet18's weights do not fit shufflenet
    r = _m("POST", mserver, "/models", params={"url": wrong, "model_name": "broken", "initial_workers": 1})
    assert r.status_code == 202
    info = _wait(lambda: (d := _describe(mserver, "broken"))["status"] == "FAILED" and d, "the load failure")
    assert "failed to load" in info["error"] and "StateDictError" in info["error"]
    row = next(m for m in _m("GET", mserver, "/models").json()["models"] if m["modelName"] == "broken")
    assert row["status"] == "FAILED" and "StateDictError" in row["error"]
    r = _predict(mserver, "broken")
    assert r.status_code == 503 and "failed to load" in r.json()["message"]
    assert requests.get(f"{mserver.inference}/ping", timeout=30).status_code == 500
    assert _predict(mserver, "good").status_code == 200
    sync = _m("POST", mserver, "/models", params={"url": wrong, "model_name": "broken2", "initial_workers": 1,
                                                   "synchronous": "true"})
    assert sync.status_code == 500 and "Failed to start workers for model broken2" in sync.json()["message"]
    assert _m("GET", mserver, "/models/broken2").status_code == 404
    assert _m("DELETE", mserver, "/models/broken").status_code == 200
    assert requests.get(f"{mserver.inference}/ping", timeout=30).json() == {"status": "Healthy"}


def test_a_full_queue_answers_503_with_retry_after(mserver, assets):
    r = _m("POST", mserver, "/models", params={"url": f"resnet18:{assets.resnet18}", "model_name": "busy",
                                                "initial_workers": 1, "synchronous": "true"})
    assert r.status_code == 200
    n = 12  # one in the worker, two in the queue (job_queue_size=2), the rest refused
    barrier = threading.Barrier(n)

    def call(_):
        barrier.wait()
        return _predict(mserver, "busy")

    with ThreadPoolExecutor(n) as pool:
        answers = list(pool.map(call, range(n)))
    codes = sorted(a.status_code for a in answers)
    refused = [a for a in answers if a.status_code == 503]
    assert refused and set(codes) == {200, 503}, codes
    for a in refused:
        assert a.json()["type"] == "ServiceUnavailableException" and "queue is full" in a.json()["message"]
        assert int(a.headers["retry-after"]) >= 1
    assert mserver.metric("hubkit_rejected_requests_total", model_name="busy", reason="queue_full") == len(refused)
    assert _predict(mserver, "busy").status_code == 200  # room again once the queue drained
    assert _m("DELETE", mserver, "/models/busy").status_code == 200


def test_a_timeout_answers_504_and_the_worker_is_replaced(mserver, assets):
    r = _m("POST", mserver, "/models", params={"url": f"resnet18:{assets.resnet18}", "model_name": "hasty",
                                                "initial_workers": 1, "synchronous": "true",
                                                "response_timeout": 0.001})  # no forward pass is that fast
    assert r.status_code == 200
    before = _describe(mserver, "hasty")["workers"][0]
    late = _predict(mserver, "hasty")
    assert late.status_code == 504 and late.json()["type"] == "TimeoutException"
    after = _wait(lambda: (w := _describe(mserver, "hasty")["workers"]) and w[0]["restarts"] == 1
                  and w[0]["status"] == "READY" and w[0], "the replacement worker")  # fmt: skip
    assert after["pid"] != before["pid"]
    assert _predict(mserver, "good").status_code == 200
    assert _m("DELETE", mserver, "/models/hasty").status_code == 200


def test_fine_tuned_heads_and_label_files(mserver, assets, tmp_path):
    def register(name: str, url: str, **extra) -> None:
        params = {"url": url, "model_name": name, "initial_workers": 1, "synchronous": "true", **extra}
        r = _m("POST", mserver, "/models", params=params)
        assert r.status_code == 200, r.text

    ten = json.dumps({"num_classes": 10})
    register("tuned", f"shufflenet_v2_x0_5:{assets.tuned}", model_kwargs=ten)
    answer = _predict(mserver, "tuned").json()
    assert len(answer) == 5 and all(label.startswith("digit-") for label in answer)  # index_to_name.json beside it
    register("bare", f"shufflenet_v2_x0_5:{assets.tuned_bare}", model_kwargs=ten)
    bare = _predict(mserver, "bare").json()
    assert [f"digit-{k}" for k in bare] == list(answer)  # no label file: class indices, as TorchServe
    register("relabelled", f"shufflenet_v2_x0_5:{assets.shufflenet_v2_x0_5}", labels=str(assets.labels))
    assert all(label.startswith("class-") for label in _predict(mserver, "relabelled").json())
    outside = tmp_path / "labels.json"
    outside.write_text("{}")
    r = _m("POST", mserver, "/models", params={"url": "resnet18", "model_name": "x", "labels": str(outside)})
    assert r.status_code == 400 and "labels file" in r.json()["message"]
    wrong = _m("POST", mserver, "/models", params={"url": f"shufflenet_v2_x0_5:{assets.tuned}", "model_name": "w",
                                                   "initial_workers": 1, "synchronous": "true"})
    assert wrong.status_code == 500 and "StateDictError" in wrong.json()["message"]  # 10 classes, built with 1000
    for name in ("tuned", "bare", "relabelled"):
        assert _m("DELETE", mserver, f"/models/{name}").status_code == 200


def test_list_pages_and_versions(mserver, assets):
    for name in ("page_a", "page_b"):
        params = {"url": f"shufflenet_v2_x0_5:{assets.shufflenet_v2_x0_5}", "model_name": name}
        assert _m("POST", mserver, "/models", params=params).status_code == 200
    first = _m("GET", mserver, "/models", params={"limit": 1}).json()
    assert first["nextPageToken"] == "1" and [m["modelName"] for m in first["models"]] == ["good"]
    rest = _m("GET", mserver, "/models", params={"limit": 5, "next_page_token": first["nextPageToken"]}).json()
    assert [m["modelName"] for m in rest["models"]] == ["page_a", "page_b"] and "nextPageToken" not in rest
    assert _m("GET", mserver, "/models/good/1.0").status_code == 200
    assert _m("GET", mserver, "/models/good/all").status_code == 200
    missing = _m("GET", mserver, "/models/good/2.0")
    assert missing.status_code == 404 and missing.json()["type"] == "ModelVersionNotFoundException"
    bad = _m("PUT", mserver, "/models/good", params={"min_worker": 2, "max_worker": 1})
    assert bad.status_code == 400 and "max_worker" in bad.json()["message"]
    assert _m("GET", mserver, "/models/nope").json()["type"] == "ModelNotFoundException"
    for name in ("page_a", "page_b"):
        assert _m("DELETE", mserver, f"/models/{name}").status_code == 200
    assert json.loads(_m("GET", mserver, "/models").text) == {
        "models": [{"modelName": "good", "modelUrl": f"shufflenet_v2_x0_5:{assets.shufflenet_v2_x0_5}",
                    "status": "READY"}]}  # fmt: skip
