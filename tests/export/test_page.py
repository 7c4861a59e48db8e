"""EXPORT/web/ in headless Chromium: the page's probabilities are Python onnxruntime's (1e-5)."""

import contextlib
import functools
import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from lstm_text.contract import TextEncoder
from tests.helpers import browser_missing

ORT = (Path(__file__).resolve().parents[2] / "web" / "node_modules" / "onnxruntime-web").is_dir()
MISSING = browser_missing(("onnxruntime-web (npm ci in web/)", ORT))
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(bool(MISSING), reason=f"{MISSING} not installed: the page "
                                                       f"cannot be tested in a browser here")]


def cli(*args):
    result = subprocess.run([sys.executable, "-m", "keras_lstm", *args], capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-2000:]


def make_page(export):
    """`keras-lstm export` wrote the contract and the page: check that the page has all it loads."""
    from export.web import ORT_FILES, page_inputs

    metadata = json.loads((export / "metadata.json").read_text(encoding="utf-8"))
    prefixes = [""] if metadata["task"] == "sentiment" else ["source_", "target_"]
    for prefix in prefixes:
        assert (export / f"{prefix}tokenizer.json").is_file()
        assert (export / f"{prefix}tokenizer_tests.jsonl").is_file()
    assert all((export / name).is_file() for name in page_inputs(export))
    assert (export / "web" / "index.html").is_file()
    # onnxruntime-web is installed (`npm ci` in web/), so the exporter copied its runtime.
    assert all((export / "web" / "ort" / name).is_file() for name in ORT_FILES)


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    run = tmp_path_factory.mktemp("web") / "sentiment"
    cli("train", "sentiment", "--out", str(run), "--max-examples", "300", "--epochs", "1",
        "--units", "8", "--embedding-dim", "8")
    cli("export", str(run), "--formats", "onnx")
    make_page(run / "export")
    held_out = [json.loads(line)["text"] for name in ("test", "validation")
                for line in (run / "splits" / f"{name}.jsonl").read_text("utf-8").splitlines()]
    return run / "export", held_out[:50]


@pytest.fixture(scope="module")
def translation_export(tmp_path_factory):
    run = tmp_path_factory.mktemp("web") / "translation"
    # Trained enough (40 fast epochs) that the greedy translations vary from text to text.
    cli("train", "translation", "--out", str(run), "--max-examples", "800", "--epochs", "40",
        "--units", "16", "--embedding-dim", "16")
    cli("export", str(run), "--formats", "onnx")
    held_out = [line.split("\t")[0] for name in ("test", "validation")
                for line in (run / "splits" / f"{name}.tsv").read_text("utf-8").splitlines()]
    make_page(run / "export")
    return run / "export", held_out[:50]


@contextlib.contextmanager
def serve(folder):
    """An HTTP server for `folder` on 127.0.0.1 in a thread; yields (url, requested paths)."""
    requested = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                          ".mjs": "text/javascript", ".wasm": "application/wasm"}

        def log_message(self, *args):
            requested.append(self.path.split("?")[0])

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", requested
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def server(export):
    with serve(export[0]) as served:
        yield served


def run_page(browser, url, texts):
    browser.get(f"{url}/web/index.html")
    result = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "window.kerasLstm.predict(arguments[0]).then(done, (e) => done({error: String(e)}));",
        texts)
    assert "error" not in result, result.get("error")
    return result


def test_page_probabilities_match_python_onnxruntime(export, server, browser):
    import onnxruntime

    folder, texts = export
    url, requested = server
    assert len(texts) == 50
    result = run_page(browser, url, texts)

    encoder = TextEncoder.from_json(folder / "tokenizer.json")
    ids = encoder.encode_batch(texts)
    np.testing.assert_array_equal(np.array(result["ids"], np.int32), ids)
    session = onnxruntime.InferenceSession(str(folder / "model.onnx"),
                                           providers=["CPUExecutionProvider"])
    expected = session.run(None, {session.get_inputs()[0].name: ids})[0]
    page = np.array(result["probabilities"], np.float64)
    assert page.shape == expected.shape == (50, 2)
    np.testing.assert_allclose(page, expected, atol=1e-5, rtol=0)
    assert result["labels"] == json.loads((folder / "metadata.json").read_text())["labels"]
    assert browser.find_element("id", "status").text.startswith("Ready: labels ")
    # Everything came from the export folder.
    assert {"/model.onnx", "/tokenizer.json", "/metadata.json",
            "/web/ort/ort-wasm-simd-threaded.wasm"} <= set(requested)


def test_page_classifies_what_is_typed(export, server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = server
    browser.get(f"{url}/web/index.html")
    WebDriverWait(browser, 60).until(
        lambda d: not d.find_element(By.ID, "run").get_attribute("disabled"))
    box = browser.find_element(By.ID, "text")
    box.clear()
    box.send_keys("质量很好\nThis was not good")
    browser.find_element(By.ID, "run").click()
    WebDriverWait(browser, 60).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results tbody tr")) == 2)
    first = browser.find_elements(By.CSS_SELECTOR, "#results tbody tr")[0].text
    assert first.startswith("质量很好 ") and "negative 0." in first and "positive 0." in first


def test_page_translations_match_the_python_onnx_runtime(translation_export, browser):
    folder, texts = translation_export
    assert len(texts) == 50
    with serve(folder) as (url, _):
        result = run_page(browser, url, texts)
    source = TextEncoder.from_json(folder / "source_tokenizer.json")
    np.testing.assert_array_equal(np.array(result["ids"], np.int32), source.encode_batch(texts))
    # The page decodes greedily (web/app.js): the CLI's greedy decoding is `--beam 1`.
    predicted = subprocess.run([sys.executable, "-m", "keras_lstm", "predict", str(folder),
                                "--runtime", "onnx", "--beam", "1", *texts],
                               capture_output=True, text=True, timeout=300, check=True)
    python = [json.loads(line)["translation"] for line in predicted.stdout.splitlines()]
    assert result["translations"] == python
    assert len(set(python)) > 10  # a model that says the same thing to everyone proves little
