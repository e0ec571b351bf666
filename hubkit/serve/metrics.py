"""Prometheus metrics in the text exposition format, without a client library.

Counters, gauges and histograms keyed by label values. Every update happens on the server's event loop, so no
locking is needed. TorchServe's names are kept where TorchServe has one (``ts_inference_requests_total``,
``ts_inference_latency_microseconds``, ``ts_queue_latency_microseconds``, ``Requests2XX/4XX/5XX``); hubkit's own
carry the ``hubkit_`` prefix.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

__all__ = ["Counter", "Gauge", "Histogram", "Registry", "ServeMetrics"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: tuple[str, str] | None = None) -> str:
    pairs = [f'{n}="{_escape(str(v))}"' for n, v in zip(names, values)]
    if extra is not None:
        pairs.append(f'{extra[0]}="{extra[1]}"')
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))


class _Metric:
    kind = ""

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help
        self.label_names = tuple(labels)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help, labels)
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def get(self, *labels: str) -> float:
        return self.values.get(labels, 0.0)

    def render(self) -> list[str]:
        return [*self.header(), *(f"{self.name}{_labels(self.label_names, k)} {_number(v)}"
                                  for k, v in sorted(self.values.items()))]  # fmt: skip


class Gauge(_Metric):
    """A gauge whose samples are computed at scrape time by ``collect() -> {label values: value}``."""

    kind = "gauge"

    def __init__(self, name: str, help: str, labels: Sequence[str], collect: Callable[[], dict]) -> None:
        super().__init__(name, help, labels)
        self.collect = collect

    def render(self) -> list[str]:
        return [*self.header(), *(f"{self.name}{_labels(self.label_names, k)} {_number(v)}"
                                  for k, v in sorted(self.collect().items()))]  # fmt: skip


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help: str, labels: Sequence[str], buckets: Iterable[float]) -> None:
        super().__init__(name, help, labels)
        self.buckets = tuple(sorted(buckets))
        self.values: dict[tuple[str, ...], list[float]] = {}  # per label set: bucket counts..., count, sum

    def observe(self, value: float, *labels: str) -> None:
        row = self.values.setdefault(labels, [0.0] * (len(self.buckets) + 2))
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                row[i] += 1
        row[-2] += 1
        row[-1] += value

    def count(self, *labels: str) -> float:
        return self.values.get(labels, [0.0, 0.0])[-2]

    def total(self, *labels: str) -> float:
        return self.values.get(labels, [0.0, 0.0])[-1]

    def render(self) -> list[str]:
        lines = self.header()
        for key, row in sorted(self.values.items()):
            for bound, n in zip(self.buckets, row):
                lines.append(f"{self.name}_bucket{_labels(self.label_names, key, ('le', _number(bound)))} {_number(n)}")
            lines.append(f"{self.name}_bucket{_labels(self.label_names, key, ('le', '+Inf'))} {_number(row[-2])}")
            lines.append(f"{self.name}_count{_labels(self.label_names, key)} {_number(row[-2])}")
            lines.append(f"{self.name}_sum{_labels(self.label_names, key)} {_number(row[-1])}")
        return lines


class Registry:
    def __init__(self) -> None:
        self.metrics: list[_Metric] = []

    def add(self, metric: _Metric) -> _Metric:
        self.metrics.append(metric)
        return metric

    def render(self, names: Iterable[str] | None = None) -> str:
        """The exposition text; ``names`` keeps only those metric families (TorchServe's ``?name[]=...``)."""
        wanted = set(names or ())
        lines: list[str] = []
        for metric in self.metrics:
            if not wanted or metric.name in wanted:
                lines.extend(metric.render())
        return "\n".join(lines) + "\n"


class ServeMetrics:
    """The server's metrics. ``store_view`` is called at scrape time for queue depths and worker counts."""

    def __init__(self, hostname: str, store_view: Callable[[], dict] | None = None) -> None:
        self.hostname = hostname
        self._view = store_view or (lambda: {})
        r = self.registry = Registry()
        model = ("model_name", "model_version")
        self.requests = r.add(Counter("ts_inference_requests_total", "Inference requests answered",
                                      (*model, "hostname")))  # fmt: skip
        self.inference_us = r.add(Counter("ts_inference_latency_microseconds",
                                          "Total inference latency (request in to answer out)", (*model, "hostname")))
        self.queue_us = r.add(Counter("ts_queue_latency_microseconds", "Total time requests waited in the queue",
                                      (*model, "hostname")))  # fmt: skip
        self.status_class = {c: r.add(Counter(f"Requests{c}XX", f"HTTP responses with a {c}xx status",
                                              ("Level", "Hostname"))) for c in (2, 4, 5)}  # fmt: skip
        self.http = r.add(Counter("hubkit_http_requests_total", "HTTP responses by listener and status",
                                  ("listener", "code")))  # fmt: skip
        self.latency = r.add(Histogram("hubkit_request_duration_seconds", "Inference request latency",
                                       ("model_name", "code"), LATENCY_BUCKETS))  # fmt: skip
        self.queue_latency = r.add(Histogram("hubkit_queue_latency_seconds", "Time from enqueue to batch start",
                                             ("model_name",), LATENCY_BUCKETS))  # fmt: skip
        self.batch_size = r.add(Histogram("hubkit_batch_size", "Requests per batch sent to a worker", ("model_name",),
                                          BATCH_BUCKETS))  # fmt: skip
        self.model_calls = r.add(Counter("hubkit_model_calls_total", "Forward passes run by the workers",
                                         ("model_name",)))  # fmt: skip
        self.rejected = r.add(Counter("hubkit_rejected_requests_total",
                                      "Requests refused before inference (queue full, no worker, timeout)",
                                      ("model_name", "reason")))  # fmt: skip
        r.add(Gauge("hubkit_queue_depth", "Requests waiting for a worker", ("model_name",),
                    lambda: {(name,): v["queue"] for name, v in self._view().items()}))  # fmt: skip
        r.add(Gauge("hubkit_requests_in_flight", "Requests accepted and not yet answered", ("model_name",),
                    lambda: {(name,): v["in_flight"] for name, v in self._view().items()}))  # fmt: skip
        r.add(Gauge("hubkit_workers", "Worker processes by status", ("model_name", "status"),
                    lambda: {(name, status): n for name, v in self._view().items()
                             for status, n in v["workers"].items()}))  # fmt: skip

    def response(self, listener: str, code: int) -> None:
        self.http.inc(listener, str(code))
        klass = code // 100
        if klass in self.status_class:
            self.status_class[klass].inc("Host", self.hostname)

    def render(self, names: Iterable[str] | None = None) -> str:
        return self.registry.render(names)
