"""`keras_lstm.app.gate.GatedHttpToolsProtocol`: at the queue bound, uvicorn's protocol answers
the 503 itself, before the ASGI app, and the connection goes on as HTTP/1.1 says: keep-alive,
pipelining, a body arriving after its headers, `Connection: close`, HTTP/1.0. What it cannot
judge (a missing token, `Expect: 100-continue`) goes the usual way.

A real uvicorn server in a thread of this process, raw sockets, and a fake runtime; the queue
is made full by setting the server's `admitted` count."""

import contextlib
import json
import socket
import time

import pytest

from keras_lstm.app.gate import GatedHttpToolsProtocol
from keras_lstm.app.serving import ModelServer
from tests.helpers import HeldRuntime, free_ports, uvicorn_thread

REFUSAL = {"error": "overloaded: 2 requests queued, the limit is 2; retry later"}


@contextlib.contextmanager
def running(**options):
    """A ModelServer (a held fake runtime, --max-queue 2) on uvicorn with the gated protocol;
    yields (port, server, log lines, paths that reached the ASGI gate)."""
    lines, reached = [], []
    server = ModelServer(HeldRuntime(), "held", max_queue=2, log=lines.append, **options)
    gate = server.gate

    async def spy(app, scope, receive, send):
        reached.append(scope["path"])
        await gate(app, scope, receive, send)

    server.gate = spy
    port = free_ports()[0]
    with uvicorn_thread(server.app(), port, http=GatedHttpToolsProtocol):
        yield port, server, lines, reached


def request(method, path, body=b"", headers=(), version="1.1"):
    head = [f"{method} {path} HTTP/{version}", "Host: test", f"Content-Length: {len(body)}",
            *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class Answers:
    """Reads HTTP/1.1 answers (status, lower-case headers, body) from a socket."""

    def __init__(self, sock):
        self.sock, self.buffer = sock, b""

    def fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("the server closed the connection")
        self.buffer += chunk

    def next(self):
        while b"\r\n\r\n" not in self.buffer:
            self.fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", 0))
        while len(self.buffer) < length:
            self.fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(status_line.split()[1]), headers, body

    def closed(self):
        """Whether the server closes the connection (within 5 s)."""
        self.sock.settimeout(5)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True


def connect(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock, Answers(sock)


PREDICT = json.dumps({"texts": ["a"]}).encode()


def test_at_the_bound_the_protocol_answers_503_before_the_app_and_keeps_the_connection():
    with running() as (port, server, lines, reached):
        server.admitted = 2  # the queue is full
        sock, answers = connect(port)
        with sock:
            sock.sendall(request("POST", "/predict", PREDICT, ["X-Request-ID: r1"]))
            status, headers, body = answers.next()
            sock.sendall(request("POST", "/v2/models/held/versions/1/infer", b"{}"))
            versioned = answers.next()
            sock.sendall(request("GET", "/v2/health/live"))  # the same connection goes on
            live = answers.next()
        server.admitted = 0
    assert (status, json.loads(body)) == (503, REFUSAL)
    assert headers["retry-after"] == "1" and headers["x-request-id"] == "r1"
    assert headers["content-type"] == "application/json" and "connection" not in headers
    assert versioned[0] == 503 and len(versioned[1]["x-request-id"]) == 32  # made
    assert live[0] == 200
    assert reached == ["/v2/health/live"]  # neither refusal reached the app
    # Counted and logged as the ASGI path does.
    logged = [json.loads(line) for line in lines]
    refused = [line for line in logged if line["status"] == 503]
    assert [(line["request_id"], line["path"], line["client"]) for line in refused] == [
        ("r1", "/predict", "127.0.0.1"),
        (versioned[1]["x-request-id"], "/v2/models/held/versions/1/infer", "127.0.0.1")]
    assert server.metrics.requests.labels("", "", "/predict", "503")._value.get() == 1


def test_pipelined_requests_and_a_body_that_comes_later_are_answered_in_order():
    with running() as (port, server, _, reached):
        server.admitted = 2
        sock, answers = connect(port)
        with sock:
            # Three requests in one write: two refused here, one for the app, in order.
            sock.sendall(request("POST", "/predict", PREDICT, ["X-Request-ID: p1"])
                         + request("POST", "/predict", PREDICT, ["X-Request-ID: p2"])
                         + request("GET", "/v2/health/live"))
            pipelined = [answers.next() for _ in range(3)]
            # The headers now, the body later: the 503 does not wait, the body is skipped.
            whole = request("POST", "/predict", PREDICT, ["X-Request-ID: late"])
            sock.sendall(whole[:-len(PREDICT)])
            early = answers.next()
            time.sleep(0.1)
            sock.sendall(whole[-len(PREDICT):] + request("GET", "/v2/health/ready"))
            after = answers.next()
        server.admitted = 0
    assert [(s, h.get("x-request-id")) for s, h, _ in pipelined][:2] == [(503, "p1"),
                                                                         (503, "p2")]
    assert pipelined[2][0] == 200
    assert (early[0], early[1]["x-request-id"]) == (503, "late")
    assert after[0] == 200 and json.loads(after[2]) == {"ready": True}
    assert reached == ["/v2/health/live", "/v2/health/ready"]


@pytest.mark.parametrize("headers, version", [(["Connection: close"], "1.1"), ([], "1.0")])
def test_a_refusal_that_ends_the_connection_closes_it_after_the_answer(headers, version):
    with running() as (port, server, _, reached):
        server.admitted = 2
        sock, answers = connect(port)
        with sock:
            sock.sendall(request("POST", "/predict", PREDICT, headers, version))
            status, answer_headers, body = answers.next()
            closed = answers.closed()
        server.admitted = 0
    assert (status, json.loads(body)) == (503, REFUSAL)
    assert answer_headers["connection"] == "close" and closed
    assert reached == []


def test_what_the_protocol_cannot_judge_goes_to_the_app():
    with running(token="secret") as (port, server, _, reached):
        server.admitted = 2
        sock, answers = connect(port)
        with sock:
            sock.sendall(request("POST", "/predict", PREDICT))  # no token: 401 first
            no_token = answers.next()
            sock.sendall(request("POST", "/predict", PREDICT, ["Authorization: Bearer secret"]))
            refused_here = answers.next()
            sock.sendall(request("POST", "/predict", PREDICT,
                                 ["Authorization: Bearer secret", "Expect: 100-continue"]))
            continued = answers.next()
            while continued[0] == 100:
                continued = answers.next()
        server.admitted = 0
    assert no_token[0] == 401
    assert (refused_here[0], json.loads(refused_here[2])) == (503, REFUSAL)
    assert (continued[0], json.loads(continued[2])) == (503, REFUSAL)  # by the ASGI gate
    assert reached == ["/predict", "/predict"]  # the 401 and the 100-continue one


def test_a_forwarded_client_is_logged_as_uvicorn_trusts_it():
    with running() as (port, server, lines, _):
        server.admitted = 2
        sock, answers = connect(port)
        with sock:  # from 127.0.0.1, which uvicorn trusts as a proxy by default
            sock.sendall(request("POST", "/predict", PREDICT, ["X-Forwarded-For: 203.0.113.9"]))
            assert answers.next()[0] == 503
        server.admitted = 0
    assert [json.loads(line)["client"] for line in lines] == ["203.0.113.9"]
