"""What `keras-lstm serve` tells its operator: Prometheus metrics, request ids, log lines.

`ServerMetrics` holds the metric families in a registry of its own, so several servers in
one process (as in the tests) do not share counters; `request_id` is the one rule for the
id of a request, HTTP's `X-Request-ID` header and gRPC's metadata alike; `stderr_line`
writes the access log's and the events' JSON lines. The server (`keras_lstm.app.serving`)
and its gRPC service (`keras_lstm.app.grpc_server`) record into them; nothing here knows
HTTP routes or models beyond their labels.

Example:

>>> request_id(b"abc-123")
'abc-123'
>>> len(request_id(b"has spaces"))  # not a sane id: a new one
32
"""

from __future__ import annotations

import contextlib
import random
import sys
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["BATCH_BUCKETS", "LATENCY_BUCKETS", "ServerMetrics", "request_id",
           "header_request_id", "stderr_line"]

LATENCY_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
MAX_ID_BYTES = 200


class ServerMetrics:
    """The server's Prometheus metrics, in a registry of its own.

    Args:
        versions_of: `versions_of(name)` → the loaded versions of model `name` now (each with
            a `requests` count): the queue-depth gauge sums them when scraped.
    """

    def __init__(self, versions_of: Callable[[str], Iterable]):
        self.registry = registry = CollectorRegistry()
        self.requests = Counter("keras_lstm_requests", "Requests answered (HTTP and gRPC)",
                                ["model", "version", "route", "code"], registry=registry)
        self.latency = Histogram("keras_lstm_request_duration_seconds",
                                 "Time from request to answer", ["model", "version", "route"],
                                 buckets=LATENCY_BUCKETS, registry=registry)
        self.queue_wait = Histogram("keras_lstm_queue_wait_seconds",
                                    "Time a request waited for its runtime call to start",
                                    ["model", "version"], buckets=LATENCY_BUCKETS,
                                    registry=registry)
        self.batch_size = Histogram("keras_lstm_batch_size", "Texts per runtime call",
                                    ["model", "version"], buckets=BATCH_BUCKETS,
                                    registry=registry)
        self.depth = Gauge("keras_lstm_queue_depth",
                           "Requests for the model chosen and not answered yet", ["model"],
                           registry=registry)
        self.loaded_versions = Gauge("keras_lstm_model_loaded", "1 for each model version loaded",
                                     ["model", "version", "runtime"], registry=registry)
        self.versions_of = versions_of
        self.children = {}  # (model, version, route, code) → its counter and histogram

    def answered(self, model: str, version: str, route: str, code: str, seconds: float):
        """Counts one answer and observes its latency. The labelled children are kept: under
        overload, `labels()` (a lock and a lookup per family) was a tenth of a 503's cost."""
        key = (model, version, route, code)
        children = self.children.get(key)
        if children is None:
            children = self.children[key] = (self.requests.labels(*key),
                                             self.latency.labels(model, version, route))
        children[0].inc()
        children[1].observe(seconds)

    def loaded(self, version, on: bool):
        """The loaded gauge of a version that came (`on`) or went, and its model's depth gauge
        (set again on each load: the same function)."""
        labels = (version.name, version.label, str(version.runtime.backend))
        if on:
            versions_of, name = self.versions_of, version.name
            self.depth.labels(name).set_function(
                lambda: sum(v.requests for v in versions_of(name)))
            self.loaded_versions.labels(*labels).set(1)
        else:
            with contextlib.suppress(KeyError):
                self.loaded_versions.remove(*labels)


def request_id(given: bytes) -> str:
    """The client's request id if it is a sane one (printable ASCII, no spaces, at most 200
    bytes), else a new one: 128 random bits in 32 hex digits, the shape of `uuid4().hex`.
    (From `random`, not the system's entropy: an id needs to be unique, not secret, and
    `uuid4` was a tenth of a 503's cost.)"""
    if 0 < len(given) <= MAX_ID_BYTES and all(0x21 <= byte <= 0x7E for byte in given):
        return given.decode("ascii")
    return f"{random.getrandbits(128):032x}"


def header_request_id(headers) -> str:
    """The request id of an HTTP request from its headers (ASGI's `[(name, value)]`, names
    in lower case, as uvicorn's protocol holds them too): `X-Request-ID` by `request_id`."""
    return request_id(dict(headers).get(b"x-request-id", b""))


def stderr_line(line: str) -> None:
    """Writes one log line to stderr at once (the access log and the server's events)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
