"""`keras-lstm serve --grpc-port P`: the KServe v2 gRPC service beside the HTTP routes.

`inference.GRPCInferenceService` (the Open Inference Protocol's gRPC form, as
Triton and KServe serve it): ServerLive, ServerReady, ServerMetadata,
ModelReady, ModelMetadata and ModelInfer. The other methods of the service
(streaming, repository, shared memory, statistics) answer UNIMPLEMENTED.

The server is a `grpc.aio` server on uvicorn's event loop, started and
stopped by the HTTP app's lifespan (`ModelServer.services`): both protocols
share the runtime, the batcher (a gRPC request and an HTTP one can go to the
runtime in one call) and the request checks. A ModelInfer request is turned
into the JSON form of a v2 infer request and answered by
`ModelServer.infer_answer`, the function the HTTP route calls; its answer is
turned back into a `ModelInferResponse` with the tensors in
`raw_output_contents` (what Triton sends and tritonclient reads).

A request the server refuses is the HTTP route's one-line message with a gRPC
status: INVALID_ARGUMENT (HTTP 400), NOT_FOUND (404), RESOURCE_EXHAUSTED (413),
never INTERNAL, which is kept for a fault of the server.

The message classes and the servicer base come generated with `tritonclient`
(`tritonclient.grpc.service_pb2`, `service_pb2_grpc`): no protobuf compiler at
build or run time (docs/design.md, "Serving").
"""

from __future__ import annotations

import hmac
import socket
import struct
import time

import numpy as np

from keras_lstm.app.observability import request_id
from keras_lstm.app.serving import BadRequest, ModelServer, Refused, _version
from keras_lstm.core.errors import ConfigError

try:
    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc
except ImportError as error:  # the [grpc] extra is not installed
    raise ConfigError(f"--grpc-port needs grpcio and tritonclient: pip install "
                      f"'keras-lstm[grpc]' ({error})") from None

__all__ = ["GRACE_SECONDS", "GRPCServer", "InferenceService", "check_port"]

GRACE_SECONDS = 60.0  # on shutdown, how long calls in flight may take to finish
STATUS = {400: grpc.StatusCode.INVALID_ARGUMENT, 401: grpc.StatusCode.UNAUTHENTICATED,
          404: grpc.StatusCode.NOT_FOUND, 413: grpc.StatusCode.RESOURCE_EXHAUSTED,
          429: grpc.StatusCode.RESOURCE_EXHAUSTED, 503: grpc.StatusCode.UNAVAILABLE,
          504: grpc.StatusCode.DEADLINE_EXCEEDED}
DTYPES = {"FP32": "<f4", "FP64": "<f8", "INT32": "<i4", "INT64": "<i8", "BOOL": "?"}


def check_port(host: str, port: int, workers: int = 1) -> None:
    """Raises a one-line `ConfigError` where the gRPC server could not listen.

    Checked before the model loads, so that a taken port is a one-line error
    rather than a failed start of the HTTP app.
    """
    if workers > 1:
        raise ConfigError("--grpc-port serves from one process: use it with --workers 1")
    if not 0 < port < 65536:
        raise ConfigError(f"--grpc-port: expected a port from 1 to 65535, got {port}")
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        raise ConfigError(f"--grpc-port {port}: cannot listen on {host}: "
                          f"{error.strerror or error}") from None


class InferenceService(service_pb2_grpc.GRPCInferenceServiceServicer):
    """The v2 gRPC methods over a `ModelServer`'s models (async: on the server's event loop).

    Args:
        server: The `ModelServer` whose runtime, batcher and checks answer.
    """

    def __init__(self, server: ModelServer):
        self.server = server

    async def ServerLive(self, request, context):
        return service_pb2.ServerLiveResponse(live=True)

    async def ServerReady(self, request, context):
        return service_pb2.ServerReadyResponse(ready=self._ready())

    async def ServerMetadata(self, request, context):
        async def answer(_):
            return service_pb2.ServerMetadataResponse(name="keras-lstm", version=_version())
        return await self._observed("ServerMetadata", context, answer)

    async def ModelReady(self, request, context):
        async def answer(served):
            version = await self._checked(context, self.server.version, request.name,
                                          request.version)
            served[:] = [version.name, version.label]
            return service_pb2.ModelReadyResponse(ready=self._ready())
        return await self._observed("ModelReady", context, answer)

    async def ModelMetadata(self, request, context):
        async def answer(served):
            version = await self._checked(context, self.server.version, request.name,
                                          request.version)
            metadata = self.server.model_metadata(version)
            served[:] = [version.name, version.label]
            tensor = service_pb2.ModelMetadataResponse.TensorMetadata
            return service_pb2.ModelMetadataResponse(
                name=metadata["name"], versions=metadata["versions"],
                platform=metadata["platform"], inputs=[tensor(**t) for t in metadata["inputs"]],
                outputs=[tensor(**t) for t in metadata["outputs"]])
        return await self._observed("ModelMetadata", context, answer)

    async def ModelInfer(self, request, context):
        server = self.server

        async def answer(served):
            # Counted as the HTTP requests are, and admitted as they are: one queue bound
            # and one time limit for both protocols.
            server.requests += 1
            try:
                body = await server.run_admitted(self._checked(context, self._infer, request))
            except Refused as refused:
                await context.abort(STATUS[refused.status], str(refused))
            finally:
                server.requests -= 1
            served[:] = [body["model_name"], body["model_version"]]
            return _response(body)
        return await self._observed("ModelInfer", context, answer)

    # ----- helpers -----

    async def _observed(self, method, context, answer):
        """Runs `answer(served)` behind the token check, and counts the call as HTTP requests
        are counted (`ModelServer.record`: metrics, one access-log line, a request id)."""
        start = time.perf_counter()
        given = dict(context.invocation_metadata() or ()).get("x-request-id", "")
        call_id = request_id(given.encode("utf-8", "replace"))
        await context.send_initial_metadata((("x-request-id", call_id),))
        served, status = ["", ""], "OK"
        try:
            await self._authorized(context)
            return await answer(served)
        except BaseException:
            code = getattr(context, "code", lambda: None)()
            status = getattr(code, "name", None) or "UNKNOWN"
            raise
        finally:
            self.server.record(f"grpc {method}", status, time.perf_counter() - start,
                               call_id, tuple(served), client=context.peer(),
                               method="grpc", path=method)

    async def _authorized(self, context):
        """Aborts with UNAUTHENTICATED without the server's bearer token (HTTP's check: the
        `authorization` metadata, compared in constant time); health methods skip it."""
        token = getattr(self.server, "token", None)
        if token is None:
            return
        given = dict(context.invocation_metadata() or ()).get("authorization", "")
        if not hmac.compare_digest(given.encode(), b"Bearer " + token.encode()):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong token: send "
                                "the metadata 'authorization: Bearer <token>'")

    def _ready(self):
        # The HTTP readiness where the server has one (warmed, no SIGTERM yet).
        return bool(getattr(self.server, "ready_now", True))

    async def _checked(self, context, function, *args):
        """`function(*args)` (awaited); a `BadRequest` aborts the call with its status."""
        try:
            result = function(*args)
            if hasattr(result, "__await__"):
                result = await result
            return result
        except BadRequest as error:
            await context.abort(STATUS.get(error.status, grpc.StatusCode.INVALID_ARGUMENT),
                                " ".join(str(error).split()))

    async def _infer(self, request):
        return await self.server.infer_answer(_body(request), request.model_name,
                                              request.model_version)


def _body(request) -> dict:
    """A `ModelInferRequest` → the JSON form of the same v2 request (what HTTP gets)."""
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise BadRequest(f"raw_input_contents: {len(raw)} buffers for {len(request.inputs)} "
                         "inputs")
    inputs = []
    for i, tensor in enumerate(request.inputs):
        entry = {"name": tensor.name, "datatype": tensor.datatype, "shape": list(tensor.shape)}
        if tensor.datatype == "BYTES":
            items = _split_bytes(raw[i], i) if raw else list(tensor.contents.bytes_contents)
            entry["data"] = [_text(item, f"inputs[{i}].data[{j}]") for j, item in
                             enumerate(items)]
        inputs.append(entry)  # other types: the checks refuse the datatype, data unread
    body = {"inputs": inputs}
    if request.id:
        body["id"] = request.id
    if request.parameters:
        body["parameters"] = {key: _parameter(value) for key, value in request.parameters.items()}
    if request.outputs:
        body["outputs"] = [{"name": output.name} for output in request.outputs]
    return body


def _split_bytes(buffer: bytes, index: int) -> list[bytes]:
    """Triton's raw BYTES tensor: each element a 4-byte little-endian length, then the bytes."""
    items, at = [], 0
    while at < len(buffer):
        if at + 4 > len(buffer):
            raise BadRequest(f"raw_input_contents[{index}]: a length prefix cut short")
        (length,) = struct.unpack_from("<I", buffer, at)
        at += 4
        if at + length > len(buffer):
            raise BadRequest(f"raw_input_contents[{index}]: an element of {length} bytes "
                             "runs past the end")
        items.append(buffer[at:at + length])
        at += length
    return items


def _text(item: bytes, field: str) -> str:
    try:
        return item.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"{field}: not UTF-8") from None


def _parameter(value):
    choice = value.WhichOneof("parameter_choice")
    return None if choice is None else getattr(value, choice)


def _response(answer: dict):
    """The JSON form of a v2 infer answer → a `ModelInferResponse` (tensors as raw bytes)."""
    response = service_pb2.ModelInferResponse(model_name=answer["model_name"],
                                              model_version=answer["model_version"],
                                              id=answer.get("id", ""))
    for tensor in answer["outputs"]:
        response.outputs.add(name=tensor["name"], datatype=tensor["datatype"],
                             shape=tensor["shape"])
        if tensor["datatype"] == "BYTES":
            items = [value.encode("utf-8") for value in tensor["data"]]
            raw = b"".join(struct.pack("<I", len(item)) + item for item in items)
        else:
            raw = np.asarray(tensor["data"], DTYPES[tensor["datatype"]]).tobytes()
        response.raw_output_contents.append(raw)
    return response


class GRPCServer:
    """The gRPC server of one `ModelServer`, a service of its HTTP app's lifespan.

    Args:
        server: The `ModelServer` to answer with.
        host, port: Where to listen (port 0: a free one, then in `port`).
        grace: On `stop`, how long the calls in flight may take to finish.

    Example:

    ```python
    server = load_server("runs/reviews")
    server.services.append(GRPCServer(server, "127.0.0.1", 8081))
    uvicorn.run(server.app(), port=8080)  # HTTP on 8080, gRPC on 8081
    ```
    """

    def __init__(self, server: ModelServer, host: str, port: int,
                 grace: float = GRACE_SECONDS):
        self.server = server
        self.host = host
        self.port = port
        self.grace = grace
        self.grpc = None

    async def start(self) -> None:
        """Listens (on the running event loop: uvicorn's)."""
        limit = self.server.max_body_bytes
        self.grpc = grpc.aio.server(options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", -1),
            # Without this, a second server could bind the same port and take half the calls.
            ("grpc.so_reuseport", 0)])
        service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
            InferenceService(self.server), self.grpc)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.port = self.grpc.add_insecure_port(f"{host}:{self.port}")
        await self.grpc.start()

    async def stop(self) -> None:
        """Refuses new calls, lets those in flight finish (up to `grace` seconds)."""
        if self.grpc is not None:
            await self.grpc.stop(self.grace)
            self.grpc = None
