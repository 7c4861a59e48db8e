"""`keras-lstm serve`: KServe v2 and /predict answers equal `keras-lstm predict`'s, dynamic
batching answers equal serial ones, bad requests are one-line 4xx errors, SIGTERM lets
in-flight requests finish and exits 0, no TensorFlow in the server, the page in Chromium."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import browser_missing, free_ports, uvicorn_thread, wait_until_ready

# Trains, exports or runs a subprocess per test: CI runs it; `pytest -m "not slow"` skips it.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["质量很好", "太差了，不买", "一般般吧", "物流很快 包装也好", "退货", "This was not good"]


def cli(*args, check=True, **kwargs):
    result = subprocess.run([sys.executable, "-m", "keras_lstm", *args], capture_output=True,
                            text=True, timeout=600, check=False, cwd=ROOT, **kwargs)
    if check:
        assert result.returncode == 0, result.stderr[-2000:]
    return result


def cli_rows(target, *texts, runtime="onnx", beam=None):
    extra = ["--beam", str(beam)] if beam else []
    output = cli("predict", str(target), "--runtime", runtime, *extra, *texts).stdout
    return [json.loads(line) for line in output.splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    cli("train", "sentiment", "--out", str(root / "reviews"), "--preset", "none", "--units", "4",
        "--embedding-dim", "4", "--epochs", "1", "--max-examples", "300")
    cli("export", str(root / "reviews"), "--formats", "onnx,tflite", "--quantize", "float32")
    # Trained enough (25 quick epochs) that the translations are not all empty.
    cli("train", "translation", "--out", str(root / "dates"), "--preset", "none", "--units",
        "16", "--embedding-dim", "16", "--epochs", "25", "--max-examples", "400")
    cli("export", str(root / "dates"), "--formats", "onnx,tflite,saved_model")
    sources = [line.split("\t")[0] for line in
               (root / "dates" / "splits" / "test.tsv").read_text("utf-8").splitlines()][:12]
    return {"sentiment": root / "reviews", "translation": root / "dates", "sources": sources}


@pytest.fixture(scope="module")
def plain_translation(tmp_path_factory):
    """A translation run without attention (served by the keras runtime: no export needed)."""
    run = tmp_path_factory.mktemp("serve") / "plain"
    cli("train", "translation", "--out", str(run), "--preset", "none", "--units", "4",
        "--embedding-dim", "4", "--epochs", "1", "--max-examples", "100", "--no-attention")
    return run


@contextlib.contextmanager
def in_process(target, **options):
    """The app on uvicorn in a thread of this process; yields (url, ModelServer)."""
    from keras_lstm.app.serving import load_server

    server = load_server(str(target), **options)
    port = free_ports()[0]
    with uvicorn_thread(server.app(), port):
        yield f"http://127.0.0.1:{port}", server


def call(url, path, body=None, raw=None, method=None, headers=None):
    """(status, parsed JSON answer) of one request."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def infer_body(texts, **parameters):
    body = {"inputs": [{"name": "texts", "datatype": "BYTES", "shape": [len(texts)],
                        "data": texts}]}
    if parameters:
        body["parameters"] = parameters
    return body


@pytest.mark.parametrize("runtime", ["onnx", "tflite"])
def test_sentiment_routes_answer_what_predict_prints(runs, runtime):
    expected = cli_rows(runs["sentiment"], *TEXTS, runtime=runtime)
    with in_process(runs["sentiment"], runtime=runtime) as (url, server):
        assert server.name == "reviews"
        assert call(url, "/v2/health/live") == (200, {"live": True})
        assert call(url, "/v2/health/ready") == (200, {"ready": True})
        assert call(url, "/v2/models/reviews/ready") == (200, {"name": "reviews", "version": "1",
                                                               "ready": True})
        status, metadata = call(url, "/v2/models/reviews")
        assert status == 200
        assert metadata["inputs"] == [{"name": "texts", "datatype": "BYTES", "shape": [-1]}]
        assert metadata["outputs"] == [
            {"name": "labels", "datatype": "BYTES", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}]
        assert metadata["platform"] == f"keras-lstm-{runtime}"

        assert call(url, "/predict", {"texts": TEXTS}) == (200, {"predictions": expected})

        status, answer = call(url, "/v2/models/reviews/infer", {"id": "7", **infer_body(TEXTS)})
        assert status == 200 and answer["id"] == "7" and answer["model_name"] == "reviews"
        labels, probabilities = answer["outputs"]
        assert labels == {"name": "labels", "datatype": "BYTES", "shape": [len(TEXTS)],
                          "data": [row["label"] for row in expected]}
        assert probabilities["datatype"] == "FP32"
        assert probabilities["shape"] == [len(TEXTS), 2]
        printed = [[row["probabilities"][label] for label in ("negative", "positive")]
                   for row in expected]
        np.testing.assert_allclose(np.reshape(probabilities["data"], (len(TEXTS), 2)), printed,
                                   atol=5e-7, rtol=0)
        # Asking for one output gives that one.
        body = {**infer_body(TEXTS[:1]), "outputs": [{"name": "labels"}]}
        status, answer = call(url, "/v2/models/reviews/infer", body)
        assert [o["name"] for o in answer["outputs"]] == ["labels"]


def test_a_standard_kserve_client_works(runs):
    tritonclient = pytest.importorskip("tritonclient.http",
                                       reason="tritonclient[http] is not installed")
    expected = cli_rows(runs["sentiment"], *TEXTS)
    with in_process(runs["sentiment"], name="reviews-v2") as (url, _):
        client = tritonclient.InferenceServerClient(url=url.removeprefix("http://"))
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("reviews-v2")
        assert client.get_model_metadata("reviews-v2")["outputs"][0]["name"] == "labels"
        texts = tritonclient.InferInput("texts", [len(TEXTS)], "BYTES")
        texts.set_data_from_numpy(np.array(TEXTS, dtype=object), binary_data=False)
        outputs = [tritonclient.InferRequestedOutput(name, binary_data=False)
                   for name in ("labels", "probabilities")]
        result = client.infer("reviews-v2", [texts], outputs=outputs)
        assert [label.decode() if isinstance(label, bytes) else label
                for label in result.as_numpy("labels")] == [row["label"] for row in expected]
        np.testing.assert_allclose(
            result.as_numpy("probabilities"),
            [[row["probabilities"][k] for k in ("negative", "positive")] for row in expected],
            atol=5e-7, rtol=0)
        client.close()


@pytest.mark.parametrize("runtime", ["onnx", "tflite"])
def test_translation_routes_answer_what_predict_prints(runs, runtime):
    sources = runs["sources"]
    default = cli_rows(runs["translation"], *sources, runtime=runtime)
    beam = cli_rows(runs["translation"], *sources, runtime=runtime, beam=3)
    assert len({row["translation"] for row in default}) > 3  # the model says different things
    with in_process(runs["translation"], runtime=runtime) as (url, _):
        status, metadata = call(url, "/v2/models/dates")
        assert metadata["outputs"] == [{"name": "translations", "datatype": "BYTES",
                                        "shape": [-1]}]
        assert call(url, "/predict", {"texts": sources}) == (200, {"predictions": default})
        assert call(url, "/predict", {"texts": sources, "beam": 3}) == (200, {"predictions": beam})
        status, answer = call(url, "/v2/models/dates/infer", infer_body(sources, beam=3))
        assert status == 200
        assert answer["outputs"] == [{"name": "translations", "datatype": "BYTES",
                                      "shape": [len(sources)],
                                      "data": [row["translation"] for row in beam]}]


def test_every_entry_point_decodes_with_the_one_default(runs, monkeypatch, capsys):
    from keras_lstm import presets, runtimes, tasks
    from keras_lstm.app.cli import main
    from lstm_text import decoding

    calls, beam_decode = [], decoding.beam_decode

    def spy(step, h, c, start_id, end_id, max_length, beam_size, length_penalty):
        calls.append((beam_size, length_penalty))
        return beam_decode(step, h, c, start_id, end_id, max_length, beam_size, length_penalty)

    monkeypatch.setattr(decoding, "beam_decode", spy)
    # Another default than the shipped one: each entry point must read the constant.
    monkeypatch.setitem(presets.DECODING, "beam", 3)
    monkeypatch.setitem(presets.DECODING, "length_penalty", 1.0)
    sources, task = runs["sources"][:4], tasks.get("translation")
    run, export = runs["translation"], runs["translation"] / "export"

    def decoded_by_default(work, *args, **kwargs):
        calls.clear()
        result = work(*args, **kwargs)
        assert calls and set(calls) == {(3, 1.0)}, calls
        return result

    for runtime in (runtimes.load(run, "keras"), runtimes.load(export, "tflite"),
                    runtimes.load(export, "onnx")):
        expected = runtime.translate(sources, beam=3, length_penalty=1.0)
        assert decoded_by_default(runtime.translate, sources) == expected
        assert decoded_by_default(runtime.rows, sources) == [
            {"text": s, "translation": t} for s, t in zip(sources, expected)]
        assert decoded_by_default(runtime.infer, sources) == [
            {"translations": t} for t in expected]
        metrics = decoded_by_default(task.evaluate, runtime, max_examples=5)
        assert (metrics["beam"], metrics["length_penalty"]) == (3, 1.0)
    # The last runtime is onnx: the CLI and the server on onnx give its translations.
    assert decoded_by_default(main, ["predict", str(export), "--runtime", "onnx",
                                     *sources]) == 0
    assert [json.loads(line)["translation"] for line in
            capsys.readouterr().out.splitlines()] == expected
    assert decoded_by_default(main, ["evaluate", str(run), "--max-examples", "5",
                                     "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["beam"] == 3
    with in_process(run, runtime="onnx") as (url, server):
        rows = decoded_by_default(call, url, "/predict", {"texts": sources})[1]
        assert [row["translation"] for row in rows["predictions"]] == expected
        answer = decoded_by_default(call, url, "/v2/models/dates/infer", infer_body(sources))[1]
        assert answer["outputs"][0]["data"] == expected
        with urllib.request.urlopen(url + "/", timeout=60) as response:
            assert '"beam": 3' in response.read().decode()  # the page selects the default

    # Greedy one flag away: `--beam 1` is greedy_decode on the runtime's own steps.
    onnx = runtimes.load(export, "onnx")
    ids = onnx.encode(sources)
    outputs, h, c = onnx._encoder(ids)

    def step(tokens, h, c):
        logits, h, c, _ = onnx._decoder(tokens[:, None], h, c, outputs, ids != 0)
        return decoding.log_softmax(np.asarray(logits, np.float64)), h, c

    target = onnx.preprocessors["target"]
    greedy = [target.decode(row) for row in decoding.greedy_decode(
        step, h, c, target.start_id, target.end_id, onnx.max_output_length)]
    calls.clear()
    assert [row["translation"] for row in cli_rows(export, *sources, beam=1)] == greedy
    assert onnx.translate(sources, beam=1) == greedy and not calls
    # The SavedModel's graph decodes greedily only: its default is greedy, and evaluate says so.
    saved_model = runtimes.load(export, "saved_model")
    assert saved_model.translate(sources) == greedy
    assert task.evaluate(saved_model, max_examples=5)["beam"] == 1


def test_attention_maps_are_the_runtimes_and_keras_numbers(runs):
    from keras_lstm import runtimes
    from keras_lstm.inference import Translator, attention_map

    sources = runs["sources"][:6]
    translator = Translator(runs["translation"])
    keras = [attention_map(translator, text) for text in sources]
    answers = {}
    for runtime in ("onnx", "tflite"):
        greedy = cli_rows(runs["translation"], *sources, runtime=runtime, beam=1)
        own = runtimes.load(runs["translation"] / "export", backend=runtime)
        with in_process(runs["translation"], runtime=runtime) as (url, _):
            status, metadata = call(url, "/v2/models/dates")
            assert metadata["parameters"]["attention"] is True
            status, answer = call(url, "/predict", {"texts": sources, "attention": True})
            assert status == 200, answer
            assert call(url, "/predict", {"texts": sources, "attention": True, "beam": 1}) == (
                200, answer)
        answers[runtime] = rows = answer["predictions"]
        target = own.preprocessors["target"]
        for row, printed, text, (source, target_tokens, weights) in zip(rows, greedy, sources,
                                                                         keras):
            # The map explains the greedy translation `predict` prints, token for token.
            assert {k: v for k, v in row.items() if k != "attention"} == printed
            found = row["attention"]
            assert target.tokenizer.detokenize(found["target"]) == row["translation"]
            assert found["source"] == own.preprocessors["source"].tokenize(text) == source
            assert found["target"] == target_tokens
            served = np.array(found["weights"], np.float64).reshape(-1, len(found["source"]))
            assert served.shape == (len(found["target"]), len(found["source"]))
            np.testing.assert_allclose(served.sum(axis=1), 1, atol=1e-5)
            expected = own.attention_map(text)
            assert expected["translation"] == row["translation"]
            np.testing.assert_allclose(served, expected["weights"], atol=5e-7, rtol=0)
            np.testing.assert_allclose(served, weights, atol=1e-4, rtol=0)
    assert sum(len(row["attention"]["target"]) for row in answers["onnx"]) > len(sources)
    for onnx_row, tflite_row in zip(answers["onnx"], answers["tflite"]):
        np.testing.assert_allclose(onnx_row["attention"]["weights"],
                                   tflite_row["attention"]["weights"], atol=1e-4, rtol=0)


def test_attention_needs_a_model_with_attention(plain_translation):
    with in_process(plain_translation) as (url, server):
        assert server.runtime.backend == "keras"
        assert call(url, "/v2/models/plain")[1]["parameters"]["attention"] is False
        assert call(url, "/predict", {"texts": ["1"], "attention": True}) == (
            400, {"error": "attention: this translation model has no attention (it was trained "
                           "with --no-attention)"})
        status, answer = call(url, "/predict", {"texts": ["1"], "attention": False})
        assert status == 200 and "attention" not in answer["predictions"][0]


def test_explanations_are_what_predict_explain_prints(runs):
    output = cli("predict", str(runs["sentiment"]), "--runtime", "onnx", "--explain",
                 *TEXTS).stdout
    expected = [json.loads(line) for line in output.splitlines()]
    assert all(len(row["explanation"]["weights"]) == len(row["explanation"]["tokens"]) > 0
               for row in expected)
    with in_process(runs["sentiment"]) as (url, _):
        assert call(url, "/predict", {"texts": TEXTS, "explain": True}) == (
            200, {"predictions": expected})
        assert call(url, "/predict", {"texts": TEXTS, "explain": False}) == (
            200, {"predictions": [{k: v for k, v in row.items() if k != "explanation"}
                                  for row in expected]})
    with in_process(runs["translation"]) as (url, _):
        assert call(url, "/predict", {"texts": ["15:30"], "explain": True}) == (
            400, {"error": "explain: explanations are for sentiment models; this is a "
                           "translation model"})
    result = cli("predict", str(runs["translation"]), "--runtime", "onnx", "--explain", "15:30",
                 check=False)
    assert (result.returncode, result.stdout, result.stderr) == (
        2, "", f"keras-lstm: error: --explain: explanations are for sentiment models; "
               f"{runs['translation']} is a translation model\n")


def test_the_saved_model_runtime_gives_no_attention(runs):
    with in_process(runs["translation"], runtime="saved_model") as (url, _):
        assert call(url, "/v2/models/dates")[1]["parameters"]["attention"] is False
        assert call(url, "/predict", {"texts": ["1"], "attention": True}) == (
            400, {"error": "attention: the saved_model runtime gives no attention weights; "
                           "serve with --runtime onnx, tflite or keras"})


@contextlib.contextmanager
def first_call_held(server, requests):
    """Holds the first runtime call until the server holds `requests` requests, so that the
    others queue up behind it however fast or loaded the machine is."""
    run, released = server.version().batcher.run, threading.Event()

    def held(key, texts):
        deadline = time.monotonic() + 30
        while not released.is_set() and server.requests < requests and \
                time.monotonic() < deadline:
            time.sleep(0.005)
        released.set()
        return run(key, texts)

    server.version().batcher.run = held
    try:
        yield
    finally:
        server.version().batcher.run = run


def concurrent_answers(url, bodies, path="/predict", threads=64):
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda body: call(url, path, body), bodies))


def test_concurrent_requests_are_batched_and_answered_as_serial_ones(runs):
    rng = np.random.default_rng(0)
    bodies = [{"texts": [TEXTS[j] for j in rng.integers(0, len(TEXTS), rng.integers(1, 4))]}
              for _ in range(96)]
    with in_process(runs["sentiment"], max_batch=1) as (url, _):
        serial = [call(url, "/predict", body) for body in bodies]
        serial_infer = [call(url, "/v2/models/reviews/infer", infer_body(body["texts"]))
                        for body in bodies[:32]]
    with in_process(runs["sentiment"], max_batch=32, max_wait_ms=20) as (url, server):
        with first_call_held(server, 64):
            answers = concurrent_answers(url, bodies)
        calls = server.version().batcher.batches
        infer = concurrent_answers(url, [infer_body(b["texts"]) for b in bodies[:32]],
                                   "/v2/models/reviews/infer")
    assert all(status == 200 for status, _ in serial)
    assert answers == serial
    assert infer == serial_infer
    assert calls < len(bodies) / 2, f"{calls} runtime calls for {len(bodies)} requests"


NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None and os.environ.get("CI") != "true",
                    reason="node not found on PATH: bench/load_client.mjs cannot be run here")
def test_the_bench_load_client_counts_requests_and_wrong_answers(runs, tmp_path):
    """bench/serve_http.py's Node client: every request sent, each answer checked."""
    with in_process(runs["sentiment"], max_batch=32) as (url, _):
        cases = [{"text": text, "expected": call(url, "/predict", {"texts": [text]})[1]
                  ["predictions"][0]} for text in TEXTS]
        cases[0]["expected"]["label"] += "?"  # one case whose answer will not match
        path = tmp_path / "cases.jsonl"
        path.write_text("".join(json.dumps(case, ensure_ascii=False) + "\n" for case in cases),
                        encoding="utf-8")
        port = url.rsplit(":", 1)[1]
        out = subprocess.run([NODE or "node", str(ROOT / "bench" / "load_client.mjs"), port, "4",
                              "30", "60", str(path)], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert (result["sent"], result["errors"]) == (30, 0)
    assert result["differing"] == 5  # requests 0, 6, 12, 18, 24 carry the first case
    assert 0 < result["p50"] <= result["p99"] and result["rate"] > 0


WRK = shutil.which("wrk")


@pytest.mark.skipif(WRK is None and os.environ.get("CI") != "true",
                    reason="wrk not found on PATH (apt-get install wrk): bench/load_client.lua "
                           "cannot be run here")
def test_the_bench_wrk_client_counts_requests_and_wrong_answers(runs, tmp_path):
    """bench/serve_http.py's wrk script: each answer is checked against the serial ones."""
    with in_process(runs["sentiment"], max_batch=32) as (url, _):
        bodies = [json.dumps({"texts": [text]}, ensure_ascii=False) for text in TEXTS]
        answers = [json.dumps(call(url, "/predict", json.loads(body))[1], ensure_ascii=False,
                              separators=(",", ":")) for body in bodies]
        answers[2] = answers[2].replace('"label":"', '"label":"?')  # will not match
        pairs = tmp_path / "cases.pairs"
        pairs.write_text("".join(f"{b}\n{a}\n" for b, a in zip(bodies, answers)),
                         encoding="utf-8")
        out = subprocess.run([WRK or "wrk", "-t1", "-c1", "-d3s", "-s",
                              str(ROOT / "bench" / "load_client.lua"), url + "/predict", "--",
                              str(pairs)], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    sent = result["sent"]
    # Every case at least once (a loaded CI machine answers far fewer than the usual hundreds).
    assert sent >= len(TEXTS) and result["errors"] == 0
    # One connection: request i carries case i % 6, and every third case's answer differs.
    # wrk's count ("sent") can miss the last answer, which arrives as the run ends but still
    # reaches the script's response(): its case counts too, if it is one that differs.
    assert result["differing"] in {sum(1 for i in range(n) if i % len(TEXTS) == 2)
                                   for n in (sent, sent + 1)}
    assert 0 < result["p50"] <= result["p99"]


def test_concurrent_translations_with_mixed_beams_match_serial(runs):
    sources = runs["sources"]
    bodies = [{"texts": sources[i % 12: i % 12 + 2], "beam": 1 + i % 2} for i in range(24)]
    with in_process(runs["translation"], max_batch=1) as (url, _):
        serial = [call(url, "/predict", body) for body in bodies]
    with in_process(runs["translation"], max_batch=16, max_wait_ms=20) as (url, server):
        with first_call_held(server, len(bodies)):
            answers = concurrent_answers(url, bodies, threads=24)
        # Behind the first call: 12 requests of each beam, 1-2 texts each, interleaved. Each
        # beam's fill 2 batches of up to 16 texts when a request of the other beam waits for
        # the next batch instead of closing this one.
        assert server.version().batcher.batches <= 6, f"{server.version().batcher.batches} calls for 24 requests"
    assert answers == serial


def test_bad_requests_are_one_line_errors_and_the_server_goes_on(runs):
    long_text = "质量很好 " * 80_000  # over 1 MB of UTF-8 (2 MB JSON-escaped)
    assert len(long_text.encode()) > 1_000_000
    predict = "/predict"
    infer = "/v2/models/reviews/infer"
    cases = [
        (predict, {"raw": b'{"texts": ["a"'}, 400,
         "request body is not valid JSON: Expecting ',' delimiter: line 1 column 15 (char 14)"),
        (predict, {"raw": b"\xff\xfe"}, 400, "request body is not UTF-8"),
        (predict, {"body": ["a"]}, 400, "request body must be a JSON object, got a list"),
        (predict, {"body": {}}, 400, "missing field 'texts' (a list of strings)"),
        (predict, {"body": {"text": ["a"]}}, 400,
         "unknown field 'text'; expected texts, model, (sentiment) explain and (translation) beam, "
         "attention"),
        (predict, {"body": {"texts": "a"}}, 400, "texts: expected a list of strings, got a string"),
        (predict, {"body": {"texts": ["a", 3]}}, 400, "texts[1]: expected a string, got a number"),
        (predict, {"body": {"texts": ["a", None]}}, 400, "texts[1]: expected a string, got null"),
        (predict, {"body": {"texts": []}}, 400, "texts: empty list; give at least one text"),
        (predict, {"body": {"texts": ["a"] * 1025}}, 413,
         "texts: 1025 texts is over the limit of 1024 per request"),
        (predict, {"body": {"texts": ["a"], "beam": 2}}, 400,
         "beam does not apply to a sentiment model"),
        (predict, {"body": {"texts": ["a"], "attention": True}}, 400,
         "attention does not apply to a sentiment model"),
        (predict, {"body": {"texts": ["a"], "explain": "yes"}}, 400,
         'explain: expected true or false, got "yes"'),
        (predict, {"raw": b'{"texts": ["' + b"a" * (4 * 1024 * 1024) + b'"]}'}, 413,
         "request body of 4194319 bytes is over the limit of 4194304 bytes"),
        (predict, {"method": "GET"}, 405, "Method Not Allowed"),
        ("/v2/models/nope/infer", {"body": infer_body(["a"])}, 404,
         "unknown model 'nope'; this server serves 'reviews'"),
        ("/v2/models/nope", {}, 404, "unknown model 'nope'; this server serves 'reviews'"),
        ("/nowhere", {}, 404, "Not Found"),
        (infer, {"body": {"inputs": []}}, 400, 'inputs: expected a list of one tensor, {"name": '
         '"texts", "datatype": "BYTES", "shape": [N], "data": [...]}'),
        (infer, {"body": {"inputs": [{**infer_body(["a"])["inputs"][0], "name": "x"}]}}, 400,
         "inputs[0].name: expected 'texts', got \"x\""),
        (infer, {"body": {"inputs": [{**infer_body(["a"])["inputs"][0], "datatype": "FP32"}]}},
         400, "inputs[0].datatype: expected 'BYTES', got \"FP32\""),
        (infer, {"body": {"inputs": [{**infer_body(["a"])["inputs"][0], "shape": [2]}]}}, 400,
         "inputs[0].shape: expected [1] for 1 texts, got [2]"),
        (infer, {"body": {**infer_body(["a"]), "outputs": [{"name": "logits"}]}}, 400,
         "outputs: unknown output 'logits'; expected labels or probabilities"),
        (infer, {"raw": b"{}", "headers": {"Inference-Header-Content-Length": "2"}}, 400,
         "the binary tensor data extension is not supported: send JSON (tritonclient: "
         "binary_data=False)"),
    ]
    with in_process(runs["sentiment"]) as (url, _):
        for path, request, status, error in cases:
            assert call(url, path, **request) == (status, {"error": error}), (path, request)
        # A 1 MB text is served: cut to the model's max length, it is its first tokens.
        status, answer = call(url, "/predict", {"texts": [long_text, "质量很好 " * 1000]})
        assert status == 200
        first, short = answer["predictions"]
        assert first["text"] == long_text
        assert {k: v for k, v in first.items() if k != "text"} == \
            {k: v for k, v in short.items() if k != "text"}
        # ... and after all of that, a good request is answered.
        assert call(url, "/predict", {"texts": TEXTS}) == (
            200, {"predictions": cli_rows(runs["sentiment"], *TEXTS)})


def test_translation_refuses_a_bad_beam(runs):
    with in_process(runs["translation"]) as (url, _):
        for beam, shown in ((0, "0"), (17, "17"), ("2", '"2"'), (True, "true"), (1.5, "1.5")):
            assert call(url, "/predict", {"texts": ["1"], "beam": beam}) == (
                400, {"error": f"beam: expected an integer from 1 to 16, got {shown}"})
        assert call(url, "/v2/models/dates/infer", infer_body(["1"], beam=0)) == (
            400, {"error": "parameters.beam: expected an integer from 1 to 16, got 0"})
        assert call(url, "/predict", {"texts": ["1"], "beam": 4, "attention": True}) == (
            400, {"error": "attention: the map is given for greedy decoding only; ask without "
                           "beam (got beam 4)"})
        assert call(url, "/predict", {"texts": ["1"], "attention": "yes"}) == (
            400, {"error": 'attention: expected true or false, got "yes"'})


def start_server(target, *args):
    port = free_ports()[0]
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_lstm", "serve", str(target), "--port", str(port), *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    wait_until_ready(process, url)
    return process, port


def test_sigterm_lets_the_request_in_flight_finish_then_exits_0(runs):
    process, port = start_server(runs["sentiment"], "--runtime", "onnx")
    try:
        body = json.dumps({"texts": TEXTS}).encode()
        connection = socket.create_connection(("127.0.0.1", port), timeout=30)
        # Half the body: the request is in flight when SIGTERM arrives.
        connection.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                           b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:10])
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert process.poll() is None, "the server exited with a request in flight"
        # It stops taking new connections (soon: a loaded machine may take a moment).
        deadline = time.time() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
            except OSError:
                break
            assert time.time() < deadline, "new connections still accepted 15 s after SIGTERM"
            time.sleep(0.1)
        connection.sendall(body[10:])
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
        connection.close()
        head, _, payload = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        assert json.loads(payload) == {"predictions": cli_rows(runs["sentiment"], *TEXTS)}
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


SERVER_SCRIPT = textwrap.dedent("""
    import json, os, signal, sys, threading, urllib.request

    from keras_lstm.app.cli import main

    PORT = int(sys.argv[2])
    seen = {}

    def client():
        import time
        url = f"http://127.0.0.1:{PORT}"
        for _ in range(600):
            try:
                urllib.request.urlopen(url + "/v2/health/ready", timeout=5).read()
                break
            except OSError:
                time.sleep(0.05)
        body = sys.argv[4].encode()
        seen["predict"] = urllib.request.urlopen(
            urllib.request.Request(url + "/predict", data=body), timeout=30).status
        infer = {"inputs": [{"name": "texts", "datatype": "BYTES", "shape": [1],
                             "data": ["质量很好"]}]}
        seen["infer"] = urllib.request.urlopen(urllib.request.Request(
            url + "/v2/models/m/infer", data=json.dumps(infer).encode()), timeout=30).status
        seen["page"] = urllib.request.urlopen(url + "/", timeout=30).status
        seen["heavy"] = sorted(m for m in ("tensorflow", "keras", "tf_keras") if m in sys.modules)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=client, daemon=True).start()
    code = main(["serve", sys.argv[1], "--port", str(PORT), "--name", "m", "--runtime",
                 sys.argv[3]])
    print(json.dumps({"exit": code, **seen}))
""")


@pytest.mark.parametrize("runtime", ["onnx", "tflite"])
@pytest.mark.parametrize("task", ["sentiment", "translation"])
def test_the_server_never_imports_tensorflow(runs, runtime, task):
    body = {"texts": ["质量很好"], "explain": True} if task == "sentiment" else {
        "texts": runs["sources"][:2], "attention": True}
    result = subprocess.run([sys.executable, "-c", SERVER_SCRIPT, str(runs[task]),
                             str(free_ports()[0]), runtime, json.dumps(body)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.splitlines()[-1]) == {
        "exit": 0, "predict": 200, "infer": 200, "page": 200, "heavy": []}


def test_serve_errors_are_one_line(runs, tmp_path):
    result = cli("serve", str(tmp_path / "missing"), check=False)
    assert result.returncode == 2
    assert result.stderr == f"keras-lstm: error: {tmp_path / 'missing'}: no such file or folder\n"
    result = cli("serve", str(runs["sentiment"]), "--max-batch", "0", check=False)
    assert (result.returncode, result.stderr) == (
        2, "keras-lstm: error: --max-batch: expected a positive number\n")


# ----- the page in a real browser -----

MISSING = browser_missing()
needs_browser = pytest.mark.skipif(bool(MISSING), reason=f"{MISSING} not installed: the page "
                                                         "cannot be tested in a browser here")


def submit(browser, url, text, beam=None, page="/"):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser.get(url + page)
    box = browser.find_element(By.ID, "text")
    box.clear()
    box.send_keys(text)
    if beam:
        Select(browser.find_element(By.ID, "beam")).select_by_value(str(beam))
    browser.find_element(By.ID, "run").click()
    WebDriverWait(browser, 30).until(
        lambda d: d.find_element(By.ID, "result").get_attribute("data-state") in ("done", "error"))
    assert browser.find_element(By.ID, "error").text == ""
    return By


@pytest.mark.slow
@needs_browser
def test_the_page_shows_the_label_and_probabilities(runs, browser, tmp_path):
    expected = cli_rows(runs["sentiment"], "质量很好")[0]
    with in_process(runs["sentiment"]) as (url, _):
        by = submit(browser, url, "质量很好")
        assert browser.find_element(by.ID, "label").text == expected["label"]
        bars = [bar.text.split() for bar in browser.find_elements(by.CSS_SELECTOR, "#bars .bar")]
        assert bars == [[label, f"{p:.4f}"] for label, p in expected["probabilities"].items()]
        browser.save_screenshot(str(tmp_path / "sentiment.png"))
    assert (tmp_path / "sentiment.png").stat().st_size > 1000


@pytest.mark.slow
@needs_browser
def test_the_page_of_each_model_in_a_repository(browser, tmp_path):
    import shutil

    from tests.helpers import LEGACY

    for name, task in (("reviews", "sentiment"), ("dates", "translation")):
        shutil.copytree(LEGACY / task / "export", tmp_path / "models" / name / "1")
    with in_process(tmp_path / "models", access_log=False) as (url, _):
        expected = call(url, "/predict", {"texts": ["质量很好"], "model": "reviews"})[1]
        by = submit(browser, url, "质量很好", page="/?model=reviews")
        assert browser.title == "reviews (version 1)"
        assert browser.find_element(by.ID, "label").text == expected["predictions"][0]["label"]
        expected = call(url, "/predict", {"texts": ["15:30"], "model": "dates"})[1]
        by = submit(browser, url, "15:30")  # without ?model: the first model by name
        assert browser.title == "dates (version 1)"
        assert browser.find_element(by.ID, "translation").text == \
            expected["predictions"][0]["translation"].strip()


@pytest.mark.slow
@needs_browser
def test_the_page_highlights_each_tokens_weight(runs, browser, tmp_path):
    text = "质量很好，但是物流太慢了"
    with in_process(runs["sentiment"]) as (url, _):
        status, answer = call(url, "/predict", {"texts": [text], "explain": True})
        assert status == 200, answer
        expected = answer["predictions"][0]
        by = submit(browser, url, text)
        assert browser.find_element(by.ID, "explanation").is_displayed()
        assert browser.find_element(by.ID, "legend-label").text == expected["label"]
        spans = browser.find_elements(by.CSS_SELECTOR, "#tokens .token")
        assert [span.get_attribute("textContent") for span in spans] == \
            expected["explanation"]["tokens"]
        weights = [float(span.get_attribute("data-weight")) for span in spans]
        assert weights == expected["explanation"]["weights"]
        # Green toward the label, red against it, as opaque as |weight| over the largest.
        largest = max(abs(w) for w in weights)
        for span, weight in zip(spans, weights):
            color = span.value_of_css_property("background-color")
            channels = [float(v) for v in color[color.index("(") + 1:-1].split(",")]
            alpha = channels[3] if len(channels) == 4 else 1.0
            assert channels[:3] == ([46, 160, 67] if weight >= 0 else [215, 58, 73]), color
            assert abs(alpha - abs(weight) / largest) < 0.01, (color, weight)
        browser.save_screenshot(str(tmp_path / "explanation.png"))
    assert (tmp_path / "explanation.png").stat().st_size > 1000


@pytest.mark.slow
@needs_browser
def test_the_page_shows_the_translation(runs, browser, tmp_path):
    source = runs["sources"][0]
    expected = cli_rows(runs["translation"], source, beam=4)[0]["translation"]
    with in_process(runs["translation"]) as (url, _):
        by = submit(browser, url, source)  # the decoding selected: the default, beam 4
        assert browser.find_element(by.ID, "beam").get_attribute("value") == "4"
        assert browser.find_element(by.CSS_SELECTOR, "#beam option:checked").text == \
            "beam 4 (default)"
        assert browser.find_element(by.ID, "translation").text == expected.strip()
        # The model has attention, but the map is for greedy decoding: the page says so.
        assert not browser.find_element(by.ID, "attention").is_displayed()
        assert browser.find_element(by.ID, "attention-note").text == \
            "The attention map is drawn for greedy decoding."
        browser.save_screenshot(str(tmp_path / "translation.png"))
    assert (tmp_path / "translation.png").stat().st_size > 1000


@pytest.mark.slow
@needs_browser
def test_the_page_draws_the_attention_map(runs, browser, tmp_path):
    source = max(runs["sources"], key=len)
    with in_process(runs["translation"]) as (url, server):
        assert server.runtime.backend == "onnx"
        status, answer = call(url, "/predict", {"texts": [source], "attention": True})
        expected = answer["predictions"][0]
        assert status == 200 and expected["attention"]["target"]
        by = submit(browser, url, source, beam=1)  # the map is drawn for greedy decoding
        shown = browser.find_element(by.ID, "translation").get_attribute("textContent")
        assert shown == expected["translation"]
        assert browser.find_element(by.ID, "attention").is_displayed()
        assert not browser.find_element(by.ID, "attention-note").is_displayed()

        def texts(selector):
            return [cell.get_attribute("textContent")
                    for cell in browser.find_elements(by.CSS_SELECTOR, selector)]

        assert texts("#attention thead th")[1:] == expected["attention"]["source"]
        assert texts("#attention tbody th") == expected["attention"]["target"]
        rows = browser.find_elements(by.CSS_SELECTOR, "#attention tbody tr")
        weights = [[float(cell.get_attribute("data-weight")) for cell in
                    row.find_elements(by.TAG_NAME, "td")] for row in rows]
        assert weights == expected["attention"]["weights"]
        # Each cell is as opaque as its weight, relative to the largest in the map.
        largest = max(max(row) for row in weights)
        for row, row_weights in zip(rows, weights):
            for cell, weight in zip(row.find_elements(by.TAG_NAME, "td"), row_weights):
                color = cell.value_of_css_property("background-color")
                alpha = float(color.rsplit(",", 1)[1].rstrip(")")) if color.startswith(
                    "rgba") else 1.0
                assert abs(alpha - weight / largest) < 0.01, (color, weight)
        size = browser.get_window_size()
        browser.set_window_size(900, 1600)  # the whole map in the screenshot
        try:
            browser.save_screenshot(str(tmp_path / "attention.png"))
        finally:
            browser.set_window_size(size["width"], size["height"])
    assert (tmp_path / "attention.png").stat().st_size > 1000
