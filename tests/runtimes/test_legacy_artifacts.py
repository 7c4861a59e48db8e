"""Run folders and exports made before the code was layered still load and predict the same.

tests/fixtures/legacy_73ab711 holds a small sentiment run and a small translation run, each
with its ONNX and TFLite export, made by keras-lstm at commit 73ab711 (the last main before
issue 25 moved the modules), and `expected.json`: what that code's runtimes returned for
them. Regenerate nothing here: the point is that these files stay as that version wrote them.
"""

import json

import numpy as np
import pytest

from keras_lstm import runtimes
from tests.helpers import LEGACY

EXPECTED = json.loads((LEGACY / "expected.json").read_text(encoding="utf-8"))
CASES = [("keras", "sentiment"), ("onnx", "sentiment/export"), ("tflite", "sentiment/export")]


@pytest.mark.parametrize(("backend", "folder"), CASES)
def test_a_legacy_sentiment_run_and_export_predict_the_same(backend, folder):
    runtime = runtimes.load(LEGACY / folder, backend)
    found = runtime.predict_proba(EXPECTED["texts"])
    np.testing.assert_allclose(found, EXPECTED["sentiment"][backend], atol=1e-6)


@pytest.mark.parametrize(("backend", "folder"), [(b, f.replace("sentiment", "translation"))
                                                 for b, f in CASES])
def test_a_legacy_translation_run_and_export_translate_the_same(backend, folder):
    runtime = runtimes.load(LEGACY / folder, backend)
    expected = EXPECTED["translation"][backend]
    assert runtime.translate(EXPECTED["sources"], beam=1) == expected["greedy"]
    assert runtime.translate(EXPECTED["sources"]) == expected["beam"]


def test_a_legacy_keras_file_loads_in_safe_mode():
    from keras_lstm.runs import load_model

    model = load_model(LEGACY / "sentiment")
    ids = np.array([[5, 6, 7, 0]], np.int32)
    assert model(ids).shape == (1, len(EXPECTED["sentiment"]["keras"][0]))
