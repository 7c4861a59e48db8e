"""`keras-lstm serve --grpc-port`: the KServe v2 gRPC service answers what the HTTP routes
answer (tritonclient.grpc against /v2), refuses bad requests with the HTTP route's one line
as INVALID_ARGUMENT / NOT_FOUND (never INTERNAL), and lets calls in flight finish on
shutdown. On the committed small exports: no training, each test a few seconds."""

import contextlib
import inspect
import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import free_ports, uvicorn_thread

grpcclient = pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is not installed")
from tritonclient.grpc import service_pb2  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

from keras_lstm.app.grpc_server import GRPCServer, _body  # noqa: E402
from keras_lstm.app.serving import ModelServer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "legacy_73ab711"
SENTIMENT = FIXTURES / "sentiment" / "export"
TRANSLATION = FIXTURES / "translation" / "export"
TEXTS = ["质量很好", "太差了，不买", "一般般吧", "物流很快 包装也好", "退货"]


@contextlib.contextmanager
def serving(target, name="m", **options):
    """HTTP (uvicorn, in a thread) and gRPC on one ModelServer; yields (http url, gRPC client,
    ModelServer, uvicorn server)."""
    from keras_lstm.app.serving import load_server

    http_port, grpc_port = free_ports(2)
    server = load_server(str(target), runtime="onnx", name=name, **options)
    server.services.append(GRPCServer(server, "127.0.0.1", grpc_port))
    with uvicorn_thread(server.app(), http_port) as running:
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        try:
            yield f"http://127.0.0.1:{http_port}", client, server, running
        finally:
            client.close()


def http(url, path, body=None):
    """(status, JSON answer) of one HTTP request."""
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def http_infer(url, name, texts, datatype="BYTES", input_name="texts", **parameters):
    body = {"inputs": [{"name": input_name, "datatype": datatype, "shape": [len(texts)],
                        "data": texts}]}
    if parameters:
        body["parameters"] = parameters
    return http(url, f"/v2/models/{name}/infer", body)


def grpc_infer(client, name, texts, datatype="BYTES", input_name="texts", version="",
               headers=None, **parameters):
    tensor = grpcclient.InferInput(input_name, [len(texts)], datatype)
    tensor.set_data_from_numpy(np.array(texts, dtype=object if datatype == "BYTES" else None))
    return client.infer(name, [tensor], model_version=version, headers=headers,
                        parameters=parameters or None)


def grpc_refusal(call):
    """(gRPC status name, message) of a call the server refuses."""
    with pytest.raises(InferenceServerException) as caught:
        call()
    return caught.value.status(), caught.value.message()


def tensors(metadata):
    """The TensorMetadata list of a gRPC ModelMetadataResponse as HTTP's JSON form."""
    return [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in metadata]


def test_sentiment_over_grpc_is_what_http_answers():
    with serving(SENTIMENT) as (url, client, _, _):
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("m")
        assert client.get_server_metadata().name == "keras-lstm"

        status, expected = http(url, "/v2/models/m")
        assert status == 200
        metadata = client.get_model_metadata("m")
        assert (metadata.name, list(metadata.versions), metadata.platform) == (
            expected["name"], expected["versions"], expected["platform"])
        assert tensors(metadata.inputs) == expected["inputs"]
        assert tensors(metadata.outputs) == expected["outputs"] == [
            {"name": "labels", "datatype": "BYTES", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}]

        status, answer = http_infer(url, "m", TEXTS)
        assert status == 200
        labels, probabilities = answer["outputs"]
        result = grpc_infer(client, "m", TEXTS)
        assert [label.decode() for label in result.as_numpy("labels")] == labels["data"]
        assert result.as_numpy("probabilities").shape == (len(TEXTS), 2)
        np.testing.assert_allclose(result.as_numpy("probabilities").ravel(),
                                   probabilities["data"], atol=1e-6, rtol=0)
        response = result.get_response()
        assert (response.model_name, response.model_version) == ("m", "1")

        # The id comes back; asking for one output gives that one.
        tensor = grpcclient.InferInput("texts", [1], "BYTES")
        tensor.set_data_from_numpy(np.array(TEXTS[:1], dtype=object))
        result = client.infer("m", [tensor], request_id="7",
                              outputs=[grpcclient.InferRequestedOutput("labels")])
        assert result.get_response().id == "7"
        assert [o.name for o in result.get_response().outputs] == ["labels"]
        assert result.as_numpy("labels")[0].decode() == labels["data"][0]


def test_translation_over_grpc_is_what_http_answers():
    sources = ["I like tea.", "Where is the station?", "Good morning."]
    with serving(TRANSLATION, name="dates") as (url, client, _, _):
        status, expected = http(url, "/v2/models/dates")
        metadata = client.get_model_metadata("dates")
        assert tensors(metadata.outputs) == expected["outputs"]
        for parameters in ({}, {"beam": 1}, {"beam": 3}):
            status, answer = http_infer(url, "dates", sources, **parameters)
            assert status == 200, answer
            translations = grpc_infer(client, "dates", sources, **parameters).as_numpy(
                "translations")
            assert [t.decode() for t in translations] == answer["outputs"][0]["data"]


def test_bad_requests_are_the_http_line_as_invalid_argument():
    with serving(SENTIMENT) as (url, client, _, _):
        cases = [  # (HTTP request, gRPC call, gRPC status)
            (lambda: http_infer(url, "m", ["a"], input_name="text"),
             lambda: grpc_infer(client, "m", ["a"], input_name="text"), "INVALID_ARGUMENT"),
            (lambda: http_infer(url, "m", [1.5], datatype="FP32"),
             lambda: grpc_infer(client, "m", np.array([1.5], np.float32), datatype="FP32"),
             "INVALID_ARGUMENT"),
            (lambda: http_infer(url, "m", ["a"], beam=2),
             lambda: grpc_infer(client, "m", ["a"], beam=2), "INVALID_ARGUMENT"),
            (lambda: http_infer(url, "nope", ["a"]),
             lambda: grpc_infer(client, "nope", ["a"]), "NOT_FOUND"),
        ]
        for http_call, grpc_call, code in cases:
            status, answer = http_call()
            assert status in (400, 404), answer
            assert grpc_refusal(grpc_call) == (f"StatusCode.{code}", answer["error"])
        # What only gRPC can send: bytes that are not UTF-8, an empty tensor.
        assert grpc_refusal(lambda: grpc_infer(client, "m", [b"\xff\xfe"])) == (
            "StatusCode.INVALID_ARGUMENT", "inputs[0].data[0]: not UTF-8")
        status, message = grpc_refusal(lambda: client.get_model_metadata("m", "2"))
        assert status == "StatusCode.NOT_FOUND" and "\n" not in message
        # The server goes on.
        assert grpc_infer(client, "m", ["a"]).as_numpy("labels").shape == (1,)


def test_the_request_contents_field_reads_as_raw_bytes():
    """Clients other than tritonclient may send BYTES in `contents`, not raw buffers."""
    request = service_pb2.ModelInferRequest(model_name="m", id="x")
    tensor = request.inputs.add(name="texts", datatype="BYTES", shape=[2])
    tensor.contents.bytes_contents.extend(["好".encode(), b"b"])
    request.parameters["beam"].int64_param = 2
    request.outputs.add(name="labels")
    assert _body(request) == {
        "inputs": [{"name": "texts", "datatype": "BYTES", "shape": [2], "data": ["好", "b"]}],
        "id": "x", "parameters": {"beam": 2}, "outputs": [{"name": "labels"}]}


def test_shutdown_lets_the_call_in_flight_finish():
    with serving(SENTIMENT) as (_, client, server, running):
        results = {}
        caller = threading.Thread(target=lambda: results.update(
            labels=grpc_infer(client, "m", TEXTS[:2]).as_numpy("labels")))
        with runtime_held(server) as held:
            caller.start()
            assert held.wait(30), "the call did not reach the runtime"
            running.should_exit = True  # what SIGTERM does
            time.sleep(0.5)
        caller.join(30)
        assert results["labels"].shape == (2,)


def test_the_cli_serves_grpc_and_exits_0_on_sigterm():
    http_port, grpc_port = free_ports(2)
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_lstm", "serve", str(SENTIMENT), "--name", "m", "--port",
         str(http_port), "--grpc-port", str(grpc_port)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the gRPC server did not start in 60 s"
            with contextlib.suppress(InferenceServerException):
                if client.is_server_ready():
                    break
            time.sleep(0.1)
        assert grpc_infer(client, "m", TEXTS).as_numpy("labels").shape == (len(TEXTS),)
        client.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def test_grpc_port_errors_are_one_line():
    def serve(*args):
        return subprocess.run([sys.executable, "-m", "keras_lstm", "serve", str(SENTIMENT),
                               "--port", str(free_ports()[0]), *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = serve("--grpc-port", str(taken.getsockname()[1]))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--grpc-port" in result.stderr, result.stderr
    result = serve("--grpc-port", str(free_ports()[0]), "--workers", "2")
    assert result.returncode == 2
    assert result.stderr == ("keras-lstm: error: --grpc-port serves from one process: use it "
                             "with --workers 1\n")


@contextlib.contextmanager
def runtime_held(server):
    """Holds the runtime calls until the block ends; yields an Event set once one is held."""
    held, release, run = threading.Event(), threading.Event(), server.version().batcher.run

    def slow(key, texts):
        held.set()
        release.wait(30)
        return run(key, texts)

    server.version().batcher.run = slow
    try:
        yield held
    finally:
        release.set()
        server.version().batcher.run = run


def test_the_token_queue_bound_and_time_limit_apply_to_grpc_too():
    with serving(SENTIMENT) as (_, client, server, _):
        server.token = "s3cret"
        assert client.is_server_live() and client.is_server_ready()  # health: no token
        status, message = grpc_refusal(lambda: client.is_model_ready("m"))
        assert status == "StatusCode.UNAUTHENTICATED" and "\n" not in message
        assert grpc_refusal(lambda: client.get_model_metadata(
            "m", headers={"authorization": "Bearer wrong"}))[0] == "StatusCode.UNAUTHENTICATED"
        assert client.is_model_ready("m", headers={"authorization": "Bearer s3cret"})
        server.token = None

        # The bound HTTP counts against (`--max-queue`, landing with the operations of issue
        # 26 in the same round): once ModelServer takes it, gRPC must share it.
        if "max_queue" in inspect.signature(ModelServer).parameters:
            server.max_queue = 1
            caller = threading.Thread(target=lambda: grpc_infer(client, "m", ["a"]))
            with runtime_held(server) as held:
                caller.start()
                assert held.wait(30)
                status, message = grpc_refusal(lambda: grpc_infer(client, "m", ["b"]))
                assert status == "StatusCode.UNAVAILABLE" and message.startswith("overloaded: ")
            caller.join(30)
            server.max_queue = None

        server.timeout_ms = 50
        with runtime_held(server):
            assert grpc_refusal(lambda: grpc_infer(client, "m", ["c"])) == (
                "StatusCode.DEADLINE_EXCEEDED", "not answered within 50 ms")
        server.timeout_ms = None
        assert grpc_infer(client, "m", ["d"]).as_numpy("labels").shape == (1,)


def test_without_grpcio_the_flag_is_one_line_naming_the_extra():
    script = ("import sys; sys.modules['grpc'] = None\n"
              "from keras_lstm.app.cli import main\n"
              f"sys.exit(main(['serve', {str(SENTIMENT)!r}, '--grpc-port', '1']))")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("keras-lstm: error: --grpc-port needs grpcio and "
                                    "tritonclient: pip install 'keras-lstm[grpc]'")
    assert result.stderr.count("\n") == 1


def test_versions_of_a_repository_and_grpc_calls_in_the_metrics_and_the_log(tmp_path):
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    for name, source, version in (("reviews", SENTIMENT, 1), ("reviews", SENTIMENT, 2),
                                  ("dates", TRANSLATION, 1)):
        shutil.copytree(source, tmp_path / name / str(version))
    lines = []
    with serving(tmp_path, name=None, versions=2, log=lines.append) as (url, client, _, _):
        newest = grpc_infer(client, "reviews", TEXTS[:2], headers={"x-request-id": "abc-1"})
        first = grpc_infer(client, "reviews", TEXTS[:2], version="1")
        assert (newest.get_response().model_version, first.get_response().model_version) == (
            "2", "1")
        assert newest.as_numpy("labels").tolist() == first.as_numpy("labels").tolist()
        assert grpc_refusal(lambda: grpc_infer(client, "reviews", TEXTS[:1], version="7")) == (
            "StatusCode.NOT_FOUND", "model 'reviews' has no version '7' loaded; loaded: 2, 1")
        metadata = client.get_model_metadata("reviews", as_json=True)
        assert metadata["versions"] == ["2", "1"]
        assert client.is_model_ready("dates") and client.is_model_ready("reviews", "1")
        assert grpc_infer(client, "dates", ["15:30"]).get_response().model_name == "dates"
        with urllib.request.urlopen(url + "/metrics", timeout=30) as answer:
            families = text_string_to_metric_families(answer.read().decode())
        counted = {(s.labels["route"], s.labels["model"], s.labels["version"], s.labels["code"]):
                   s.value for f in families if f.name == "keras_lstm_requests"
                   for s in f.samples if s.name == "keras_lstm_requests_total"}
    assert counted[("grpc ModelInfer", "reviews", "2", "OK")] == 1
    assert counted[("grpc ModelInfer", "reviews", "1", "OK")] == 1
    assert counted[("grpc ModelInfer", "dates", "1", "OK")] == 1
    assert counted[("grpc ModelInfer", "", "", "NOT_FOUND")] == 1
    logged = [json.loads(line) for line in lines if '"grpc"' in line]
    first_call = next(entry for entry in logged if entry["path"] == "ModelInfer")
    assert first_call["request_id"] == "abc-1" and first_call["status"] == "OK"
    assert (first_call["model"], first_call["version"]) == ("reviews", "2")
