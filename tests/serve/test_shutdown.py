"""Graceful shutdown: SIGTERM with requests in flight stops new connections at once, answers every accepted
request, then retires the workers and exits 0. Also the server as a library (``Server`` in a thread)."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from servekit import CAT, ServeProcess, close_top5, library_top5, require_serve_extra

require_serve_extra()
import requests  # noqa: E402


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_sigterm_finishes_the_requests_in_flight(assets, tmp_path):
    s = ServeProcess([f"slow=resnet18:{assets.resnet18}", "--batch-size", "1"], tmp_path)
    try:
        worker_pids = [w["pid"] for w in requests.get(f"{s.management}/models/slow", timeout=30).json()[0]["workers"]]
        want = library_top5("resnet18", assets.resnet18, CAT)
        n = 6
        with ThreadPoolExecutor(n) as pool:
            futures = [pool.submit(requests.post, f"{s.inference}/predictions/slow", data=CAT.read_bytes(),
                                   timeout=300) for _ in range(n)]  # fmt: skip
            deadline = time.monotonic() + 60
            while s.metric("hubkit_requests_in_flight", model_name="slow") < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
            s.terminate()
            refused = False
            deadline = time.monotonic() + 30
            while not refused and time.monotonic() < deadline:  # the listeners close at once...
                try:
                    requests.get(f"{s.inference}/ping", timeout=5)
                    time.sleep(0.02)
                except requests.ConnectionError:
                    refused = True
            answers = [f.result() for f in futures]  # ...while the accepted requests are still answered
        assert refused
        assert [a.status_code for a in answers] == [200] * n
        assert all(close_top5(a.json(), want) for a in answers)
        assert s.wait(120) == 0
        log = s.stderr()
        finishing = int(log.split("shutting down: finishing ")[1].split()[0])
        assert finishing >= 1, log
        assert s.stdout().rstrip().endswith("hubkit serve: stopped")
        assert not any(_alive(pid) for pid in worker_pids)
    finally:
        s.kill()


def test_server_as_a_library_in_a_thread(assets):
    from hubkit.serve import Server, build_config

    config = build_config(models=[f"shuf=shufflenet_v2_x0_5:{assets.shufflenet_v2_x0_5}"],
                          overrides={"access_log": "off"}, ports={"inference": 0, "management": 0, "metrics": 0})
    server = Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        assert server.ready.wait(180)
        assert all(url.startswith("http://127.0.0.1:") for url in server.urls.values())
        r = requests.post(f"{server.urls['inference']}/predictions/shuf", data=CAT.read_bytes(), timeout=120)
        assert r.status_code == 200
        assert close_top5(r.json(), library_top5("shufflenet_v2_x0_5", assets.shufflenet_v2_x0_5, CAT))
        pid = server.store.models["shuf"].slots[9000].process.pid
    finally:
        server.shutdown()
        thread.join(120)
    assert not thread.is_alive()
    assert not _alive(pid) and os.getpid() != pid
