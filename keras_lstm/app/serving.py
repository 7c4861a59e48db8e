"""`keras-lstm serve`: a trained model behind HTTP (Starlette on uvicorn).

Routes (the model's name is NAME, default the run folder's name):

- the Open Inference Protocol (KServe v2) REST routes: `GET /v2/health/live`,
  `GET /v2/health/ready`, `GET /v2`, `GET /v2/models/NAME` (metadata),
  `GET /v2/models/NAME/ready` and `POST /v2/models/NAME/infer`: one BYTES
  input `texts` of shape [N] → sentiment: `labels` BYTES [N] and
  `probabilities` FP32 [N, classes]; translation: `translations` BYTES [N]
  (request parameter `beam`: 1 is greedy; default `lstm_text.decoding.DECODING`,
  beam search);
- `POST /predict` `{"texts": [...], "beam": k}` → `{"predictions": rows}`,
  the rows `keras-lstm predict` prints (the runtime's `rows`); a translation
  model with attention also takes `"attention": true` (then greedy decoding)
  and adds `"attention": {"source": [...], "target": [...], "weights": [[...]]}`
  to each row, one weights row per target token over the source tokens; a
  sentiment model takes `"explain": true` and adds `"explanation": {"tokens":
  [...], "weights": [...]}`, each token's weight toward the row's label;
- `GET /` a small page to try the model (with the attention map where there is one).

Dynamic batching: requests that arrive together go to the runtime in one
call (`keras_lstm.app.batcher.Batcher`). The call runs in a worker thread,
never on the event loop.
A batch closes when it holds `max_batch` texts, when `max_wait_ms` have
passed since its first request, or when every request the server holds is in
it (so a lone request never waits).

Every bad request is a 4xx answer with one JSON line `{"error": "..."}`; the
server goes on (nesting deeper than `MAX_DEPTH`, lone surrogates, NaN and
numbers out of range included: no client input is a 5xx).

Operations: `max_queue` bounds the inference requests admitted (503 with
`Retry-After` beyond it, at once); `timeout_ms` answers 504 to a request not
answered in time (its texts are dropped if their batch has not started);
`/v2/health/ready` is false until the model is warmed and from SIGTERM on;
`GET /metrics` (Prometheus text, a registry per server); one JSON access-log
line per request on stderr with its request id (`X-Request-ID`, echoed or
made); a bearer token for every route but the health routes; CORS origins. On SIGTERM uvicorn stops accepting connections, lets the
requests in flight finish, and the process exits 0.

TensorFlow-free with the onnx and tflite runtimes: neither this module nor
Starlette, uvicorn or those runtimes import TensorFlow or Keras.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import json
import math
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Match, Route

from keras_lstm.app.gate import http_protocol, inference_route
from keras_lstm.app.observability import ServerMetrics, header_request_id, stderr_line
from keras_lstm.app.repository import (
    BadRequest,
    Models,
    ServedVersion,
    one_line,
)
from keras_lstm.core.errors import ConfigError
from lstm_text.decoding import DECODING

__all__ = ["BadRequest", "ModelServer", "Refused", "app_from_environment", "load_server", "read_token", "serve"]

MAX_TEXTS = 1024  # texts per request
MAX_BODY_BYTES = 4 * 1024 * 1024  # a 1 MB text fits, even as JSON escapes
DRAIN_BYTES = 64 * 1024 * 1024  # a body over the limit is read (and dropped) up to this
PAGE = Path(__file__).with_name("serving_page.html")
ENVIRONMENT = "KERAS_LSTM_SERVE"  # the options, as JSON, for `--workers N` processes
MAX_DEPTH = 32  # JSON nesting; a v2 body needs 4 levels
HEALTH_ROUTES = ("/v2/health/live", "/v2/health/ready")  # open without the token


class Refused(BadRequest):
    """A request the server did not admit (503) or did not answer in time (504)."""


class ModelServer:
    """The models' versions, and the HTTP routes around them.

    Built on one runtime (`ModelServer(runtime, name)`: that model, version 1),
    or on serve targets (`ModelServer(targets=[...])`, what `load_server` does):
    run and export folders and model repositories (`keras_lstm.app.repository`),
    whose newest `versions` versions of each model are loaded, and rescanned
    (`reload`) every `poll_seconds` and on SIGHUP.

    Args:
        runtime: An `keras_lstm.runtimes` runtime (thread-safe).
        name: The model's name in the URLs.
        max_batch: Most texts per runtime call; 1 turns batching off (each
            request is its own call, calls run side by side in threads).
        max_wait_ms: How long a batch waits for more requests.
        max_texts: Most texts in one request.
        max_body_bytes: Largest request body.
        threads: Worker threads for the runtime calls.
        max_queue: Most inference requests admitted at once (waiting or
            running); beyond it a 503 with `Retry-After`. None: no bound.
        timeout_ms: A request not answered in this time gets a 504 (its texts
            are dropped if their runtime call has not started). None: no limit.
        access_log: One JSON line per request through `log`.
        token: The bearer token every route but the health routes needs.
        cors_origins: Origins whose browsers may call the server (CORS).
        log: Called with each access-log and event line (default: written to stderr).
        targets: Serve targets to load the models from (instead of `runtime`).
        backend: The runtime for every version loaded from `targets` (default:
            onnx where a version has an ONNX export, else the runtimes' default).
        versions: How many of each model's newest versions are served.
        poll_seconds: Rescan the targets this often (None: only on SIGHUP).
    """

    def __init__(self, runtime=None, name: str | None = None, max_batch: int = 32,
                 max_wait_ms: float = 2.0, max_texts: int = MAX_TEXTS,
                 max_body_bytes: int = MAX_BODY_BYTES, threads: int = 4,
                 max_queue: int | None = None, timeout_ms: float | None = None,
                 access_log: bool = True, token: str | None = None, cors_origins=(), log=None,
                 *, targets=None, backend: str | None = None, versions: int = 1,
                 poll_seconds: float | None = None):
        self.max_batch = max_batch
        self.max_wait_ms = max_wait_ms
        self.max_texts = max_texts
        self.max_body_bytes = max_body_bytes
        self.max_queue = max_queue
        self.timeout_ms = timeout_ms
        self.access_log = access_log
        self.token = token
        self.cors_origins = list(cors_origins or ())
        self.log = log or stderr_line
        self.poll_seconds = poll_seconds
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="runtime")
        self.requests = 0  # requests held now
        self.admitted = 0  # inference requests admitted and not answered (bounded by max_queue)
        self.warmed = False  # every version's first runtime call is done: ready
        self.draining = False  # SIGTERM came: not ready, requests in flight finish
        self.metrics = ServerMetrics(lambda name: self.models.get(name, {}).values())
        self.repository = Models(self.served, targets, name if targets else None, backend,
                                 versions, log=self.log, on_load=self.metrics.loaded)
        if runtime is not None:
            self.repository.add(self.served(runtime, name or "model", 1))
        elif targets:
            self.repository.load_targets()
        # Servers beside HTTP on the same event loop, runtimes and batchers (the gRPC one):
        # objects with `async start()` and `async stop()`, run by the app's lifespan.
        self.services = []

    # ----- the models (keras_lstm.app.repository.Models) -----

    @property
    def models(self) -> dict:
        """`{name: {version: ServedVersion}}`: what is served now."""
        return self.repository.models

    @property
    def name(self) -> str:
        """The model a request that names none gets (the only one, or the first by name)."""
        return min(self.models) if self.models else ""

    @property
    def runtime(self):
        """The runtime of that model's newest version."""
        return self.version().runtime

    @property
    def labels(self) -> list:
        return self.version().labels

    def version(self, name: str | None = None, number=None) -> ServedVersion:
        """The loaded version a request asks for (`Models.version`)."""
        return self.repository.version(name, number)

    async def reload(self):
        """Rescans the targets and swaps new versions in (`Models.reload`)."""
        await self.repository.reload()

    def served(self, runtime, name, number, path=None) -> ServedVersion:
        """A version with this server's batching, its calls observed by its metrics."""
        return ServedVersion(runtime, name, number, path, max_batch=self.max_batch,
                             max_wait_ms=self.max_wait_ms, executor=self.executor,
                             observe=self.observe_batch)

    async def start_versions(self):
        """Warms every loaded version; ready once all answered their check."""
        try:
            await self.repository.start()
        except Exception as error:  # noqa: BLE001  not ready, and one line says why
            self.log(json.dumps({"event": "warm-up failed", "error": one_line(error)}))
            return
        self.warmed = True

    def observe_batch(self, version, key, size, waits):
        """Metrics of a runtime call as it starts: its texts and its requests' queue waits."""
        self.metrics.batch_size.labels(version.name, version.label).observe(size)
        wait = self.metrics.queue_wait.labels(version.name, version.label)
        for seconds in waits:
            wait.observe(seconds)

    # ----- reading requests -----

    async def body(self, request: Request):
        """The request's JSON object; `BadRequest` for a body too large, not JSON, not an object."""
        length = request.headers.get("content-length")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                # Read on without keeping it (up to a bound), so that the client, still
                # sending, gets the answer rather than a reset connection.
                if size > DRAIN_BYTES:
                    break
                chunks = None
                continue
            chunks.append(chunk)
        if chunks is None or size > self.max_body_bytes:
            shown = f"of {int(length)} bytes " if length and length.isdigit() else ""
            raise BadRequest(f"request body {shown}is over the limit of {self.max_body_bytes} "
                             "bytes", 413)
        raw = b"".join(chunks)
        if request.headers.get("inference-header-content-length"):
            raise BadRequest("the binary tensor data extension is not supported: send JSON "
                             "(tritonclient: binary_data=False)")
        too_deep = f"request body is nested more than {MAX_DEPTH} levels deep"
        try:
            body = json.loads(raw.decode("utf-8-sig"), parse_constant=_no_constant,
                              parse_float=_finite_float)
        except UnicodeDecodeError:
            raise BadRequest("request body is not UTF-8") from None
        except RecursionError:  # the decoder's own guard, far below a 100 000-deep body
            raise BadRequest(too_deep) from None
        except ValueError as error:
            raise BadRequest(f"request body is not valid JSON: {error}") from None
        # Deep, but not deep enough for the decoder: it would be for json.dumps in a message.
        if _depth_over(body, MAX_DEPTH):
            raise BadRequest(too_deep)
        if not isinstance(body, dict):
            raise BadRequest(f"request body must be a JSON object, got {_json_type(body)}")
        return body

    def texts(self, value, field):
        if not isinstance(value, list):
            raise BadRequest(f"{field}: expected a list of strings, got {_json_type(value)}")
        if not value:
            raise BadRequest(f"{field}: empty list; give at least one text")
        if len(value) > self.max_texts:
            raise BadRequest(f"{field}: {len(value)} texts is over the limit of "
                             f"{self.max_texts} per request", 413)
        for i, text in enumerate(value):
            if not isinstance(text, str):
                raise BadRequest(f"{field}[{i}]: expected a string, got {_json_type(text)}")
            _check_unicode(text, f"{field}[{i}]")
        return value

    # ----- routes -----

    @staticmethod
    def mark(request, version: ServedVersion):
        """Which model and version answered (the request's metric labels and log line)."""
        request.scope["keras_lstm.served"] = (version.name, version.label)

    async def predict(self, request):
        body = await self.body(request)
        unknown = sorted(set(body) - {"texts", "beam", "attention", "explain", "model"})
        if unknown:
            raise BadRequest(f"unknown field {unknown[0]!r}; expected texts, model, (sentiment) "
                             "explain and (translation) beam, attention")
        name = body.get("model")
        if name is not None and not isinstance(name, str):
            raise BadRequest(f"model: expected a model's name (a string), got {_json_type(name)}")
        version = self.version(name)
        self.mark(request, version)
        if "texts" not in body:
            raise BadRequest("missing field 'texts' (a list of strings)")
        texts = self.texts(body["texts"], "texts")
        with version.held():
            beam = version.beam(body.get("beam"))
            route = "attention" if version.attention(body.get("attention"), beam) else "predict"
            if version.explain(body.get("explain")):
                route = "explain"
            rows = await version.answer((route, beam), texts)
        return JSONResponse({"predictions": rows})

    async def infer(self, request):
        params = request.path_params
        version = self.version(params["name"], params.get("version"))
        self.mark(request, version)
        body = await self.body(request)
        return JSONResponse(await self.infer_answer(body, version.name, version.label))

    async def infer_answer(self, body: dict, name: str | None = None,
                           number: str | None = None) -> dict:
        """A v2 infer request in its JSON form → the answer in its JSON form.

        The HTTP route and the gRPC service (`keras_lstm.app.grpc_server`) both
        call this: one mapping of requests to the runtime, one set of checks.
        `name` and `number` choose the model and version (default: the only
        model, its newest version), chosen again here: a version swapped out
        since the caller looked is not the one asked.

        Raises:
            BadRequest: a request that does not fit the model (one line).
        """
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
            raise BadRequest("inputs: expected a list of one tensor, "
                             '{"name": "texts", "datatype": "BYTES", "shape": [N], "data": [...]}')
        tensor = inputs[0]
        if tensor.get("name") != "texts":
            raise BadRequest(f"inputs[0].name: expected 'texts', got "
                             f"{json.dumps(tensor.get('name'))[:40]}")
        if tensor.get("datatype") != "BYTES":
            raise BadRequest(f"inputs[0].datatype: expected 'BYTES', got "
                             f"{json.dumps(tensor.get('datatype'))[:40]}")
        texts = self.texts(tensor.get("data"), "inputs[0].data")
        shape = tensor.get("shape")
        if shape != [len(texts)]:
            raise BadRequest(f"inputs[0].shape: expected [{len(texts)}] for {len(texts)} texts, "
                             f"got {json.dumps(shape)[:40]}")
        if "id" in body:  # echoed in the answer: a string that encodes (the protocol's type)
            if not isinstance(body["id"], str):
                raise BadRequest(f"id: expected a string, got {_json_type(body['id'])}")
            _check_unicode(body["id"], "id")
        parameters = body.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise BadRequest("parameters: expected an object")
        version = self.version(name, number)
        with version.held():
            beam = version.beam(parameters.get("beam"), "parameters.beam")
            wanted = self.output_names(version, body.get("outputs"))
            rows = await version.answer(("infer", beam), texts)
        outputs = []
        for tensor in version.outputs():
            if tensor["name"] not in wanted:
                continue
            values = [row[tensor["name"]] for row in rows]
            if len(tensor["shape"]) > 1:  # row-major, as the protocol's JSON form has it
                values = [v for row in values for v in row]
            outputs.append({**tensor, "shape": [len(texts), *tensor["shape"][1:]],
                            "data": values})
        answer = {"model_name": version.name, "model_version": version.label,
                  "outputs": outputs}
        if "id" in body:
            answer["id"] = body["id"]
        return answer

    @staticmethod
    def output_names(version, requested):
        names = [tensor["name"] for tensor in version.outputs()]
        if requested is None:
            return names
        if not isinstance(requested, list) or not all(
                isinstance(o, dict) and isinstance(o.get("name"), str) for o in requested):
            raise BadRequest('outputs: expected a list of {"name": ...}')
        for output in requested:
            if output["name"] not in names:
                raise BadRequest(f"outputs: unknown output {output['name']!r}; expected "
                                 f"{' or '.join(names)}")
        return [o["name"] for o in requested]

    async def metadata(self, request):
        params = request.path_params
        version = self.version(params["name"], params.get("version"))
        self.mark(request, version)
        return JSONResponse(self.model_metadata(version))

    def model_metadata(self, version: ServedVersion) -> dict:
        """The v2 model metadata of `version` (`GET /v2/models/NAME[/versions/V]`, gRPC
        ModelMetadata): its tensors, and every loaded version of its model, newest first."""
        return {
            "name": version.name,
            "versions": [str(n) for n in sorted(self.models[version.name], reverse=True)],
            "platform": f"keras-lstm-{version.runtime.backend}",
            "inputs": [{"name": "texts", "datatype": "BYTES", "shape": [-1]}],
            "outputs": version.outputs(),
            "parameters": {"task": version.runtime.task, "labels": version.labels,
                           "max_texts": self.max_texts, "attention": version.gives_attention,
                           "version": version.label}}

    async def repository_index(self, request):
        """Triton's repository index: every version loaded or refused, with its state."""
        rows = [{"name": v.name, "version": v.label, "state": "READY"}
                for versions in self.models.values() for v in versions.values()]
        rows += [{"name": name, "version": str(number), "state": "UNAVAILABLE",
                  "reason": "failed to load (see the server's log)"}
                 for (name, number) in self.repository.refused
                 if number not in self.models.get(name, {})]
        return JSONResponse(sorted(rows, key=lambda row: (row["name"], -int(row["version"]))))

    @property
    def ready_now(self) -> bool:
        """Ready for traffic: warmed, and no SIGTERM yet."""
        return self.warmed and not self.draining

    async def model_ready(self, request):
        params = request.path_params
        version = self.version(params["name"], params.get("version"))
        self.mark(request, version)
        ready = self.ready_now
        return JSONResponse({"name": version.name, "version": version.label, "ready": ready},
                            status_code=200 if ready else 503)

    async def server_metadata(self, request):
        return JSONResponse({"name": "keras-lstm", "version": _version(), "extensions": []})

    async def live(self, request):
        return JSONResponse({"live": True})

    async def ready(self, request):
        return JSONResponse({"ready": self.ready_now}, status_code=200 if self.ready_now else 503)

    async def scrape(self, request):
        return Response(generate_latest(self.metrics.registry),
                        headers={"Content-Type": CONTENT_TYPE_LATEST})

    # ----- operations: admission, timeouts, readiness, the access log, the token -----

    async def run_admitted(self, work):
        """Awaits the coroutine `work` behind the queue bound and the time limit.

        One admission for every protocol (the HTTP routes below, gRPC's ModelInfer).

        Raises:
            Refused: 503 when `max_queue` requests are already admitted (`work` is closed
                unstarted), 504 when `work` is not done within `timeout_ms`.
        """
        if self.max_queue is not None and self.admitted >= self.max_queue:
            work.close()
            raise Refused(f"overloaded: {self.admitted} requests queued, the limit is "
                          f"{self.max_queue}; retry later", 503)
        self.admitted += 1
        try:
            if self.timeout_ms is None:
                return await work
            # wait_for cancels the work: a request still queued in the batcher is
            # dropped from its batch; one in a running call loses only its answer.
            return await asyncio.wait_for(work, self.timeout_ms / 1000)
        except TimeoutError:
            raise Refused(f"not answered within {self.timeout_ms:g} ms", 504) from None
        finally:
            self.admitted -= 1

    def admitted_work(self, handler):
        """`handler` behind `run_admitted`: 503 (with Retry-After) at once, or 504."""
        async def endpoint(request):
            try:
                return await self.run_admitted(handler(request))
            except Refused as refused:
                return _error(refused, refused.status,
                              {"Retry-After": "1"} if refused.status == 503 else None)
        return endpoint

    async def gate(self, app, scope, receive, send):
        """Refuses an inference request while `max_queue` requests are admitted, before the
        routing, the middleware and the body: a prebuilt 503 with `Retry-After`, counted in the
        metrics and the access log like any answer.

        Under overload most requests are refused, and a refusal that went through Starlette's
        routing, the request-id/metrics middleware, a `Request` and a `JSONResponse` cost the
        event loop about as much as parsing an admitted one: at 4x capacity the loop was busy
        refusing, admitted requests waited behind the refusals, and goodput fell to half the
        capacity (`bench/serve_overload.py`; docs/design.md, "Admission"). A request this gate
        cannot judge cheaply (a wrong token: 401 first; a browser's, which needs CORS headers)
        takes the usual way, where `run_admitted` refuses it with the same answer.

        Served by `keras-lstm serve`, most refusals never get here: uvicorn's protocol
        (`keras_lstm.app.gate.GatedHttpToolsProtocol`) answers them from the same `refuses`
        before any ASGI work. This gate answers what that one passes on (a pipelined request
        behind one in progress, `Expect: 100-continue`), and any other ASGI server's.
        """
        route = self.refuses(scope["method"], scope["path"], scope["headers"])
        if route is None:
            await app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = header_request_id(scope["headers"])
        body, headers = self.refusal
        await send({"type": "http.response.start", "status": 503,
                    "headers": [*headers, (b"x-request-id", request_id.encode())]})
        await send({"type": "http.response.body", "body": body})
        client = scope.get("client") or ("", 0)
        self.record(route, 503, time.perf_counter() - start, request_id, client=client[0],
                    method="POST", path=scope["path"], bytes=len(body))

    @property
    def saturated(self) -> bool:
        """Whether `max_queue` requests are admitted: a new inference request gets a 503."""
        return self.max_queue is not None and self.admitted >= self.max_queue

    def refuses(self, method, path: str, headers) -> str | None:
        """The inference route of a request to answer 503 before anything else reads it, or
        None. `method` is str or bytes (the ASGI scope's, or the HTTP parser's).

        None too for what the cheap answer cannot judge: a request without the token (401
        comes first) and one with an `Origin` when CORS is on (its 503 needs CORS headers).
        """
        if not self.saturated or method not in ("POST", b"POST"):
            return None
        route = inference_route(path)
        if route is None or (self.token is not None and not self.authorized(headers)) or (
                self.cors_origins and any(name == b"origin" for name, _ in headers)):
            return None
        return route

    @property
    def refusal(self):
        """The gate's 503: (body, headers), built once (the request id is added per answer).
        The gate answers only when `admitted` is at the bound, which it never passes."""
        if getattr(self, "_refusal", None) is None:
            refused = _error(f"overloaded: {self.max_queue} requests queued, the limit is "
                             f"{self.max_queue}; retry later", 503, {"Retry-After": "1"})
            self._refusal = (refused.body, list(refused.raw_headers))
        return self._refusal

    def drain_on_sigterm(self):
        """From SIGTERM on, readiness is false (uvicorn's own handler, chained, drains).

        Returns a function that restores the previous handler. Only the main thread can
        set signal handlers: elsewhere (a test's server thread) nothing is installed.
        """
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = signal.getsignal(signal.SIGTERM)

        def on_sigterm(number, frame):
            self.draining = True
            if callable(previous):
                previous(number, frame)
            elif previous == signal.SIG_DFL:
                signal.signal(signal.SIGTERM, previous)
                signal.raise_signal(number)

        signal.signal(signal.SIGTERM, on_sigterm)
        return lambda: signal.signal(signal.SIGTERM, previous)

    def watch(self):
        """Rescans the targets every `poll_seconds` and on SIGHUP (from the main thread: a
        test's server thread gets the polling only). Returns a function that stops both."""
        if not self.repository.targets:
            return lambda: None
        loop = asyncio.get_running_loop()
        tasks = set()

        def rescan():
            task = loop.create_task(self.reload())
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        async def poll():
            while True:
                await asyncio.sleep(self.poll_seconds)
                await self.reload()

        poller = loop.create_task(poll()) if self.poll_seconds else None
        hangup = threading.current_thread() is threading.main_thread()
        if hangup:
            loop.add_signal_handler(signal.SIGHUP, rescan)

        def stop():
            if poller is not None:
                poller.cancel()
            for task in tasks:
                task.cancel()
            if hangup:
                loop.remove_signal_handler(signal.SIGHUP)
        return stop

    def authorized(self, headers) -> bool:
        """Whether the request's headers (ASGI's `[(name, value)]`) carry the bearer token."""
        given = dict(headers).get(b"authorization", b"")
        return hmac.compare_digest(given, b"Bearer " + self.token.encode())

    def template(self, scope) -> str:
        """The route's path template (a metric label: bounded, unlike the path)."""
        route = scope.get("route")
        if route is None:
            for candidate in self.routes:
                if candidate.matches(scope)[0] != Match.NONE:
                    route = candidate
                    break
        return getattr(route, "path", None) or "unmatched"

    async def observed(self, app, scope, receive, send):
        """Runs the app for one request: its request id, metrics and access-log line."""
        start = time.perf_counter()
        request_id = header_request_id(scope["headers"])
        answer = {"status": 500, "bytes": 0}

        async def sending(message):
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-request-id", request_id.encode())]}
            elif message["type"] == "http.response.body":
                answer["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await app(scope, receive, sending)
        finally:
            client = scope.get("client") or ("", 0)
            self.record(self.template(scope), answer["status"], time.perf_counter() - start,
                        request_id, scope.get("keras_lstm.served", ("", "")), client=client[0],
                        method=scope["method"], path=scope["path"], bytes=answer["bytes"])

    def record(self, route: str, status, seconds: float, request_id: str,
               served=("", ""), **fields):
        """Counts one answered request (HTTP or gRPC) and writes its access-log line.

        `route` is the path template or the gRPC method, `status` the HTTP
        status or the gRPC status name, `served` the model and version that
        answered; `fields` go into the log line.
        """
        model, version = served
        self.metrics.answered(model, version, route, str(status), seconds)
        if self.access_log:
            self.log(json.dumps({
                "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
                "request_id": request_id, **fields, "status": status,
                "ms": round(seconds * 1000, 3), "model": model, "version": version},
                ensure_ascii=False))

    async def guarded(self, app, scope, receive, send):
        """401 without the bearer token, but on the health routes (CORS, outside, answers
        the preflights, which carry no token)."""
        if scope["path"] not in HEALTH_ROUTES and not self.authorized(scope["headers"]):
            response = _error("missing or wrong token: send the header 'Authorization: Bearer "
                              "<token>'", 401, {"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        await app(scope, receive, send)

    async def page(self, request):
        """The page to try a model: the one `?model=NAME` names, or the default one."""
        version = self.version(request.query_params.get("model") or self.name)
        runtime = version.runtime
        settings = json.dumps({"name": version.name, "version": version.label,
                               "task": runtime.task, "labels": version.labels,
                               "backend": runtime.backend, "attention": version.gives_attention,
                               "explain": hasattr(runtime, "explain"),
                               # the decoding selected first: the server's default
                               "beam": 1 if getattr(runtime, "greedy_only", False)
                               else DECODING["beam"]},
                              ensure_ascii=False).replace("<", "\\u003c")
        return HTMLResponse(PAGE.read_text(encoding="utf-8").replace("{{SETTINGS}}", settings))

    def app(self) -> Starlette:
        """The ASGI application."""

        def counted(handler):
            async def endpoint(request):
                self.requests += 1
                try:
                    return await handler(request)
                except BadRequest as error:
                    return _error(str(error), error.status)
                finally:
                    self.requests -= 1
            return endpoint

        infer = counted(self.admitted_work(self.infer))
        routes = [
            Route("/", counted(self.page)),
            Route("/metrics", self.scrape),
            Route("/predict", counted(self.admitted_work(self.predict)), methods=["POST"]),
            Route("/v2", self.server_metadata),
            Route("/v2/health/live", self.live),
            Route("/v2/health/ready", self.ready),
            Route("/v2/repository/index", self.repository_index, methods=["GET", "POST"]),
            Route("/v2/models/{name}", counted(self.metadata)),
            Route("/v2/models/{name}/ready", counted(self.model_ready)),
            Route("/v2/models/{name}/infer", infer, methods=["POST"]),
            Route("/v2/models/{name}/versions/{version}", counted(self.metadata)),
            Route("/v2/models/{name}/versions/{version}/ready", counted(self.model_ready)),
            Route("/v2/models/{name}/versions/{version}/infer", infer, methods=["POST"]),
        ]
        self.routes = routes

        @contextlib.asynccontextmanager
        async def lifespan(app):
            # What is loaded now (modules, the model, the vocabulary) lives as long as the
            # process: moved out of the collector's reach, a full collection no longer walks
            # it (under load, 12 ms each, 3 % of the server's time at 5 000 requests/s).
            gc.collect()
            gc.freeze()
            restore = self.drain_on_sigterm()
            await self.start_versions()
            rescans = self.watch()
            try:
                for service in self.services:
                    await service.start()
                yield
            finally:
                self.draining = True
                restore()
                rescans()
                for service in self.services:  # their calls in flight finish first
                    await service.stop()
                for versions in self.models.values():
                    for version in versions.values():
                        await version.stop()
                await asyncio.gather(*self.repository.unloading, return_exceptions=True)
                self.executor.shutdown(wait=True)

        async def http_error(request, error):
            return _error(error.detail if isinstance(error.detail, str) else str(error.detail),
                          error.status_code)

        async def server_error(request, error):
            return _error(f"internal error: {type(error).__name__}: {error}", 500)

        # Outermost first: the gate refuses what the queue bound would, before everything
        # else; the request id, metrics and log see every answer (401s too); CORS answers
        # preflights (which carry no token) and adds its headers to 401s.
        middleware = [Middleware(_Wrap, handle=self.gate)] if self.max_queue is not None else []
        middleware.append(Middleware(_Wrap, handle=self.observed))
        if self.cors_origins:
            middleware.append(Middleware(
                CORSMiddleware, allow_origins=self.cors_origins,
                allow_methods=["GET", "POST"], expose_headers=["X-Request-ID"],
                allow_headers=["Authorization", "Content-Type", "X-Request-ID"]))
        if self.token is not None:
            middleware.append(Middleware(_Wrap, handle=self.guarded))
        app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware,
                        exception_handlers={HTTPException: http_error, Exception: server_error})
        app.model_server = self  # where GatedHttpToolsProtocol finds the server
        return app


class _Wrap:
    """An ASGI middleware that hands HTTP requests to `handle(app, scope, receive, send)`."""

    def __init__(self, app, handle):
        self.app = app
        self.handle = handle

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(self.app, scope, receive, send)


def _no_constant(name):
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _depth_over(value, limit):
    """Whether JSON `value` nests lists and objects more than `limit` deep (no recursion)."""
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, (dict, list)))
    return False


def _check_unicode(text, field):
    """A string from JSON may hold a lone surrogate ("\\ud800"): no UTF-8 has it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise BadRequest(f"{field}: not valid Unicode (a lone surrogate at character "
                         f"{error.start})") from None


def _error(message, status, headers=None):
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status,
                        headers=headers)


def _json_type(value):
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null", int: "a number", float: "a number"}.get(type(value),
                                                                        type(value).__name__)


def _version():
    try:
        from importlib.metadata import version

        return version("keras-lstm")
    except Exception:  # noqa: BLE001
        return "0"


def read_token(path) -> str:
    """The bearer token: the file's content, stripped.

    Raises:
        ConfigError: the file is missing, unreadable or empty (one line).
    """
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"--token-file {path}: cannot read it "
                          f"({getattr(error, 'strerror', None) or error})") from None
    if not token:
        raise ConfigError(f"--token-file {path}: the file is empty; put the token in it")
    return token


def load_server(target, runtime=None, name=None, max_batch=32, max_wait_ms=2.0,
                token_file=None, **options) -> ModelServer:
    """Loads the models of TARGET (a folder, or a list of them) into a `ModelServer`.

    Errors are `KerasLSTMError` lines. `options` are `ModelServer`'s (`versions`,
    `poll_seconds`, `max_queue`, ...).
    """
    token = read_token(token_file) if token_file is not None else None
    targets = [target] if isinstance(target, (str, Path)) else list(target)
    return ModelServer(name=name, max_batch=max_batch, max_wait_ms=max_wait_ms, token=token,
                       targets=targets, backend=runtime, **options)


def app_from_environment():
    """The app of a `--workers N` process: options from the environment (uvicorn's factory)."""
    return load_server(**json.loads(os.environ[ENVIRONMENT])).app()


def serve(target, runtime=None, name=None, host="127.0.0.1", port=8080, workers=1,
          max_batch=32, max_wait_ms=2.0, log_level="warning", announce=print,
          services=(), **operations) -> None:
    """Serves TARGET until SIGTERM or Ctrl-C (in-flight requests finish first).

    Args:
        target: A run folder, an export folder or a model repository
            (`REPO/NAME/VERSION/`), or a list of them.
        runtime: "onnx", "tflite", "saved_model" or "keras" (default: onnx
            where there is an ONNX export, else keras for a run folder).
        name: The model's name in the URLs (default: the run folder's name;
            a repository's models are named by their folders).
        host, port: Where to listen.
        workers: Server processes (each loads the models; the server is stateless).
        max_batch, max_wait_ms: Dynamic batching (max_batch 1: off).
        announce: Called with the line that says where the server listens.
        operations: `versions`, `poll_seconds`, `max_queue`, `timeout_ms`,
            `access_log`, `cors_origins` (as `ModelServer` takes them) and
            `token_file` (read by `read_token`).
        services: Callables that take the `ModelServer` and return a server
            to run beside HTTP (`ModelServer.services`), e.g. the gRPC one
            (`keras_lstm.app.grpc_server.GRPCServer`).
    """
    import uvicorn

    targets = [str(t) for t in ([target] if isinstance(target, (str, Path)) else target)]
    options = {"target": targets, "runtime": runtime, "name": name,
               "max_batch": max_batch, "max_wait_ms": max_wait_ms,
               **operations}
    server = load_server(**options)  # errors here are one line, before anything listens
    server.services.extend(service(server) for service in services)
    for name_, versions in sorted(server.models.items()):
        newest = versions[max(versions)]
        announce(f"serving {name_!r} version {', '.join(map(str, sorted(versions, reverse=True)))}"
                 f" ({newest.runtime.task}, {newest.runtime.backend}) on http://{host}:{port}/ "
                 f"(model routes under /v2/models/{name_}/)")
    # uvicorn answers SIGTERM with a graceful shutdown, then raises the signal again
    # with the previous handler restored: this one, so that the process exits 0.
    signal.signal(signal.SIGTERM, lambda number, frame: None)
    if workers > 1:
        os.environ[ENVIRONMENT] = json.dumps(options)
        server.executor.shutdown()
        del server
        uvicorn.run("keras_lstm.app.serving:app_from_environment", factory=True, host=host,
                    port=port, workers=workers, log_level=log_level,
                    http=http_protocol())
        return
    uvicorn.run(server.app(), host=host, port=port, log_level=log_level,
                timeout_graceful_shutdown=None, http=http_protocol())
