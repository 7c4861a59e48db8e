"""TFLite signatures: the names and shapes a phone app sees, and the signature runner's
numbers against Keras (runs and exports made through the CLI)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from keras_lstm import runtimes
from tests.helpers import REPO

# Trains, exports or runs a subprocess per test: CI runs it; `pytest -m "not slow"` skips it.
pytestmark = pytest.mark.slow

TEXTS = ["这部电影很好看", "太难看了，浪费时间", "一般般吧", "演员不错但是剧情很差",
         "好", "非常非常喜欢这部电影！"]
VARIANTS = ("float32", "dynamic_range", "float16", "int8")


def _cli(*args):
    subprocess.run([sys.executable, "-m", "keras_lstm", "-q", *map(str, args)], cwd=REPO,
                   check=True, stdout=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def sentiment(tmp_path_factory):
    run = tmp_path_factory.mktemp("sentiment") / "run"
    _cli("train", "sentiment", "--out", run, "--preset", "fast", "--max-examples", 300,
         "--epochs", 1, "--units", 8, "--embedding-dim", 8)
    _cli("export", run, "--formats", "tflite")
    return run, run / "export"


@pytest.fixture(scope="module")
def translation(tmp_path_factory):
    run = tmp_path_factory.mktemp("translation") / "run"
    _cli("train", "translation", "--out", run, "--preset", "none", "--max-examples", 300,
         "--epochs", 1, "--units", 8, "--embedding-dim", 8, "--attention")
    _cli("export", run, "--formats", "tflite")
    return run, run / "export"


def _interpreter(path):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=str(path))


@pytest.mark.parametrize("variant", VARIANTS)
def test_sentiment_signature_takes_token_ids_and_returns_probabilities(sentiment, variant):
    _, folder = sentiment
    labels = json.loads((folder / "metadata.json").read_text())["labels"]
    interpreter = _interpreter(folder / f"model_{variant}.tflite")
    assert interpreter.get_signature_list() == {
        "serving_default": {"inputs": ["token_ids"], "outputs": ["probabilities"]}}
    runner = interpreter.get_signature_runner()  # the default key finds it
    token_ids = runner.get_input_details()["token_ids"]
    assert token_ids["dtype"] == np.int32
    assert token_ids["shape_signature"].tolist() == [1, -1]
    probabilities = runner.get_output_details()["probabilities"]
    assert probabilities["dtype"] == np.float32
    assert probabilities["shape_signature"].tolist() == [1, len(labels)]


def test_signature_runner_equals_keras(sentiment):
    run, folder = sentiment
    keras_runtime = runtimes.load(run, "keras")
    expected = keras_runtime.predict_proba(TEXTS)
    interpreter = _interpreter(folder / "model_float32.tflite")
    interpreter.allocate_tensors()
    runner = interpreter.get_signature_runner()
    for ids, reference in zip(keras_runtime.encode(TEXTS), expected):
        interpreter.reset_all_variables()
        result = runner(token_ids=np.asarray(ids, np.int32)[None, :])
        assert result["probabilities"].shape == (1, len(keras_runtime.labels))
        np.testing.assert_allclose(result["probabilities"][0], reference, atol=1e-5)


def test_state_carries_over_between_calls_of_the_same_length_until_reset(sentiment):
    """Why every snippet resets the variables: the fused op starts from the last state."""
    run, folder = sentiment
    keras_runtime = runtimes.load(run, "keras")
    ids = np.asarray(keras_runtime.encode(TEXTS[:1])[0], np.int32)[None, :]
    expected = keras_runtime.predict_proba(TEXTS[:1])[0]
    runner = _interpreter(folder / "model_float32.tflite").get_signature_runner()
    np.testing.assert_allclose(runner(token_ids=ids)["probabilities"][0], expected, atol=1e-5)
    again = runner(token_ids=ids)["probabilities"][0]  # same shape: no re-allocation
    assert np.abs(again - expected).max() > 1e-4


@pytest.mark.parametrize("variant", VARIANTS)
def test_tflite_runtime_uses_the_named_signature_and_matches_keras(sentiment, variant):
    run, folder = sentiment
    expected = runtimes.load(run, "keras").predict_proba(TEXTS)
    runtime = runtimes.load(folder, "tflite", artifact=f"model_{variant}.tflite")
    assert runtime.output_name == "probabilities"
    atol = 1e-5 if variant == "float32" else 0.05
    np.testing.assert_allclose(runtime.predict_proba(TEXTS), expected, atol=atol)
    # Twice in a row, the same lengths: the runtime resets the state each time.
    np.testing.assert_allclose(runtime.predict_proba(TEXTS), runtime.predict_proba(TEXTS))


def test_translation_signatures_are_named(translation):
    run, folder = translation
    model = json.loads((run / "config.json").read_text())["model"]
    units, vocabulary = model["units"], model["target_vocab_size"]
    encoder = _interpreter(folder / "encoder.tflite")
    assert encoder.get_signature_list() == {
        "serving_default": {"inputs": ["source_ids"], "outputs": ["encoder_outputs"]}}
    runner = encoder.get_signature_runner()
    assert runner.get_input_details()["source_ids"]["shape_signature"].tolist() == [1, -1]
    assert (runner.get_output_details()["encoder_outputs"]["shape_signature"].tolist()
            == [1, -1, units])
    decoder = _interpreter(folder / "decoder.tflite")
    signature = decoder.get_signature_list()["serving_default"]
    assert sorted(signature["inputs"]) == ["encoder_outputs", "source_mask", "token"]
    assert sorted(signature["outputs"]) == ["attention", "logits"]
    details = decoder.get_signature_runner()
    inputs, outputs = details.get_input_details(), details.get_output_details()
    assert inputs["token"]["shape_signature"].tolist() == [1, 1]
    assert inputs["encoder_outputs"]["shape_signature"].tolist() == [1, -1, units]
    assert inputs["source_mask"]["dtype"] == np.bool_
    assert outputs["logits"]["shape_signature"].tolist() == [1, vocabulary]
    assert outputs["attention"]["shape_signature"].tolist() == [1, -1]


def test_translation_state_tensors_have_meaningful_names(translation):
    _, folder = translation
    spec = json.loads((folder / "metadata.json").read_text())["artifacts"]["tflite"]
    for network in ("encoder", "decoder"):
        names = {"h": f"{network}_hidden_state", "c": f"{network}_cell_state"}
        assert spec[network]["state_tensors"] == names
        tensors = {t["name"]: t for t in _interpreter(folder / f"{network}.tflite")
                   .get_tensor_details()}
        for name in names.values():
            assert tensors[name]["shape"].tolist() == [1, 8]


def test_encoder_runner_and_its_named_state_equal_keras(translation):
    from keras_lstm.inference import Translator

    run, folder = translation
    translator = Translator(run)
    interpreter = _interpreter(folder / "encoder.tflite")
    interpreter.allocate_tensors()
    runner = interpreter.get_signature_runner()
    state = {t["name"]: t["index"] for t in interpreter.get_tensor_details()}
    for row in translator.encode(["3:30 PM", "Tuesday, March 3, 2026", "$1,234.50"]):
        ids = np.asarray(row)[np.asarray(row) != 0].astype(np.int32)[None, :]
        outputs, h, c = (np.asarray(t) for t in translator.encoder_model(ids, training=False))
        interpreter.reset_all_variables()
        result = runner(source_ids=ids)
        np.testing.assert_allclose(result["encoder_outputs"], outputs, atol=1e-5)
        np.testing.assert_allclose(interpreter.get_tensor(state["encoder_hidden_state"]), h,
                                   atol=1e-5)
        np.testing.assert_allclose(interpreter.get_tensor(state["encoder_cell_state"]), c,
                                   atol=1e-5)


def test_name_lstm_state_refuses_two_lstms_and_a_taken_name(sentiment, translation):
    from export.tflite import name_lstm_state

    bidirectional = (sentiment[1] / "model_float32.tflite").read_bytes()  # preset "fast"
    with pytest.raises(ValueError, match="expected one fused UNIDIRECTIONAL_SEQUENCE_LSTM op, "
                                         "found 2"):
        name_lstm_state(bidirectional, "hidden_state", "cell_state")
    encoder = (translation[1] / "encoder.tflite").read_bytes()
    with pytest.raises(ValueError, match="already has a tensor named "
                                         "'serving_default_source_ids:0'"):
        name_lstm_state(encoder, "serving_default_source_ids:0", "cell_state")
