"""The queue bound's 503, answered where it costs least: in uvicorn's HTTP protocol.

Under overload most requests are refused, and what a refusal costs the server decides how much
of it is left for the requests it admits. Through the ASGI app (uvicorn's request cycle, an
asyncio task, the middleware, two `send`s) a 503 cost the server about 110 µs of CPU; an
answered request of the small translation model about 1.5 ms, so at 4x capacity the refusals
took a fifth of the server (bench/README.md, serve_overload.py). `GatedHttpToolsProtocol` is
uvicorn's httptools protocol with one change: when the request's headers are complete and the
server says it refuses it (`refuses`), it writes the prebuilt 503 to the socket at once, with no
task, scope or app call, and skips the request's body as it arrives.

Everything else is uvicorn's: a request the server would not refuse here (the queue has room,
another method or path, a wrong token, a browser's request that needs CORS headers, a
`100-continue`, a pipelined request behind one in progress, a percent-encoded path) goes the
usual way, where the ASGI gate and `run_admitted` apply the same bound. The server is found on
the app uvicorn was given (`model_server`, an attribute `ModelServer.app` sets), through the
middleware uvicorn wraps around it; without one this protocol is uvicorn's.

The server's side, duck-typed: `refuses(method, path, headers) -> route | None`, `refusal`
(the 503's body and headers), `record(route, status, seconds, request_id, **fields)`.
"""

from __future__ import annotations

import time

import httptools
import uvicorn
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from keras_lstm.app.observability import header_request_id

__all__ = ["TESTED_UVICORN", "GatedHttpToolsProtocol", "http_protocol", "inference_route"]

TESTED_UVICORN = ("0.54.",)  # the uvicorn releases whose protocol internals tests/app/test_gate.py checked


def inference_route(path: str) -> str | None:
    """The route template of an inference path (`/predict`, `/v2/models/NAME[/versions/V]/infer`),
    or None, without Starlette's routing (the gate's cheap test).

    >>> inference_route("/v2/models/reviews/versions/2/infer")
    '/v2/models/{name}/versions/{version}/infer'
    >>> inference_route("/v2/models/reviews") is None
    True
    """
    if path == "/predict":
        return "/predict"
    parts = path.split("/")
    if len(parts) < 5 or parts[1] != "v2" or parts[2] != "models" or not parts[3] \
            or parts[-1] != "infer":
        return None
    if len(parts) == 5:
        return "/v2/models/{name}/infer"
    if len(parts) == 7 and parts[4] == "versions" and parts[5]:
        return "/v2/models/{name}/versions/{version}/infer"
    return None


def http_protocol(version: str = uvicorn.__version__):
    """What `serve` gives uvicorn as its `http` protocol: `GatedHttpToolsProtocol` on a uvicorn
    release it was tested with, else uvicorn's default ("auto"; the ASGI gate then answers
    every 503): it extends a class that is not uvicorn's public API.

    >>> http_protocol("0.54.0").__name__, http_protocol("0.99.0")
    ('GatedHttpToolsProtocol', 'auto')
    """
    return GatedHttpToolsProtocol if version.startswith(TESTED_UVICORN) else "auto"


class _Answered:
    """Stands for the request cycle of a request answered here: complete, so uvicorn's
    parser callbacks drop its body; `keep_alive` says whether the connection stays open."""

    response_complete = True
    disconnected = False

    def __init__(self, keep_alive: bool):
        self.keep_alive = keep_alive

    class message_event:  # noqa: N801  (uvicorn sets a cycle's event on connection loss)
        @staticmethod
        def set():
            pass


def _found(app, kind=None, attribute=None):
    """The first app in the chain of middleware (`.app`) that is a `kind` or has `attribute`."""
    while app is not None:
        if (kind is not None and isinstance(app, kind)) or (
                attribute is not None and getattr(app, attribute, None) is not None):
            return app
        app = getattr(app, "app", None)
    return None


class GatedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that answers the server's 503s itself (see the module)."""

    head_cache = None  # (default headers, refusal, head bytes, body): see `answer_head`

    def connection_made(self, transport):
        super().connection_made(transport)
        holder = _found(self.app, attribute="model_server")
        self.model_server = holder.model_server if holder is not None else None
        self.proxy = _found(self.app, kind=ProxyHeadersMiddleware)

    def on_headers_complete(self):
        server = self.model_server
        if (server is None or not server.saturated or self.expect_100_continue
                or (self.cycle is not None and not self.cycle.response_complete)
                or self.root_path or self.parser.should_upgrade()):
            super().on_headers_complete()
            return
        raw_path = httptools.parse_url(self.url).path
        path = raw_path.decode("ascii", "replace")
        route = None if b"%" in raw_path else server.refuses(
            self.parser.get_method(), path, self.headers)
        if route is None:
            super().on_headers_complete()
            return
        start = time.perf_counter()
        answer_id = header_request_id(self.headers)
        head, body = self.answer_head(server.refusal)
        keep_alive = self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
        self.cycle = _Answered(keep_alive)
        self.transport.write(b"".join((head, b"x-request-id: ", answer_id.encode("ascii"),
                                       b"\r\n\r\n" if keep_alive else
                                       b"\r\nconnection: close\r\n\r\n", body)))
        server.record(route, 503, time.perf_counter() - start, answer_id,
                      client=self.client_host(), method="POST",
                      path=path, bytes=len(body))
        if keep_alive:
            self.on_response_complete()  # the keep-alive timer, as after any answer

    def answer_head(self, refusal):
        """(the 503's status line and headers but the request id, its body), built once per
        `refusal` and per uvicorn's default headers (their `date` changes each second)."""
        defaults = self.server_state.default_headers
        cached = GatedHttpToolsProtocol.head_cache
        if cached is None or cached[0] is not defaults or cached[1] is not refusal:
            body, headers = refusal
            head = STATUS_LINE[503] + b"".join(name + b": " + value + b"\r\n"
                                               for name, value in (*defaults, *headers))
            cached = GatedHttpToolsProtocol.head_cache = (defaults, refusal, head, body)
        return cached[2], cached[3]

    def on_message_complete(self):
        if isinstance(self.cycle, _Answered):
            if not self.cycle.keep_alive:  # closed once the body is read: no reset
                self.transport.close()
                self.on_response_complete()
            return
        super().on_message_complete()

    def client_host(self) -> str:
        """The client's address as the access log of the ASGI path writes it: the peer's, or
        the `X-Forwarded-For` client through uvicorn's own trusted-proxy rule."""
        host = self.client[0] if self.client else ""
        if self.proxy is not None and host in self.proxy.trusted_hosts:
            forwarded = [value for name, value in self.headers if name == b"x-forwarded-for"]
            if forwarded:
                client, _ = self.proxy.trusted_hosts.get_trusted_client_address(
                    b", ".join(forwarded).decode("latin1"))
                host = client or host
        return host
