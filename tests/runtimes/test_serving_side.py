"""The serving side of a task lives on its runtime: `rows`, `tensors`, `infer`, `options`.

Fake backends (a sentiment `run_ids`, a translation `translate`) over real
preprocessors: no model, no TensorFlow. The server and `keras-lstm predict`
need no task (`keras_lstm.tasks`) to answer.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_lstm.core.errors import ConfigError
from keras_lstm.runtimes import SentimentRuntime, TranslationRuntime
from lstm_text import TokenizerConfig
from lstm_text.preprocessor import END, START, Preprocessor
from lstm_text.vocabulary import Vocabulary

ROOT = Path(__file__).resolve().parents[2]


class FakeSentiment(SentimentRuntime):
    """p(positive) is 0.9 for a text with "good", else 0.25."""

    backend = "fake"

    def run_ids(self, ids):
        good = self.preprocessor.vocabulary.index["good"]
        positive = np.where((np.asarray(ids) == good).any(axis=1), 0.9, 0.25)
        return np.stack([1 - positive, positive], axis=1).astype(np.float32)


class FakeTranslation(TranslationRuntime):
    """Translates by upper-casing; records the beam it was asked for."""

    backend = "fake"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.beams = []

    def translate(self, texts, beam=None, length_penalty=None):
        self.beams.append(beam)
        return [text.upper() for text in texts]

    def attention_map(self, text):
        return {"translation": text.upper(), "source": text.split(), "target": ["X", "Y"],
                "weights": np.array([[1 / 3, 2 / 3], [0.5, 0.5]], np.float32)}


@pytest.fixture
def sentiment(tmp_path):
    vocabulary = Vocabulary(["[PAD]", "[UNK]", "good", "bad", "film"])
    spec = Preprocessor(TokenizerConfig(), vocabulary, 8).save(tmp_path)
    return FakeSentiment(tmp_path, {"preprocessors": {"text": spec},
                                    "labels": ["negative", "positive"], "artifacts": {}})


@pytest.fixture
def translation(tmp_path):
    source = Preprocessor(TokenizerConfig(), Vocabulary(["[PAD]", "[UNK]", "a", "b"]),
                          vocabulary_file="source_vocabulary.txt")
    target = Preprocessor(TokenizerConfig(), Vocabulary(["[PAD]", "[UNK]", START, END, "x"]),
                          start_end=True, vocabulary_file="target_vocabulary.txt")
    return FakeTranslation(tmp_path, {
        "preprocessors": {"source": source.save(tmp_path), "target": target.save(tmp_path)},
        "max_output_length": 5, "attention": True, "artifacts": {}})


def test_sentiment_rows_are_the_predictions_with_their_texts(sentiment):
    texts = ["good film", "bad film"]
    assert sentiment.rows(texts) == [
        {"text": "good film", "label": "positive",
         "probabilities": {"negative": pytest.approx(0.1), "positive": pytest.approx(0.9)}},
        {"text": "bad film", "label": "negative",
         "probabilities": {"negative": pytest.approx(0.75), "positive": pytest.approx(0.25)}}]
    assert [row["label"] for row in sentiment.rows(texts)] == \
        [row["label"] for row in sentiment.predict(texts)]


def test_sentiment_rows_explain_each_token_toward_the_label(sentiment):
    [row] = sentiment.rows(["good film"], explain=True)
    assert row["explanation"]["tokens"] == ["good", "film"]
    # Without "good" the text scores 0.25: its weight toward positive is 0.9 - 0.25.
    assert row["explanation"]["weights"] == pytest.approx([0.65, 0.0], abs=1e-6)


def test_sentiment_tensors_and_infer_follow_the_labels(sentiment):
    assert sentiment.tensors() == [{"name": "labels", "datatype": "BYTES", "shape": [-1]},
                                   {"name": "probabilities", "datatype": "FP32",
                                    "shape": [-1, 2]}]
    rows = sentiment.infer(["good", "film"])
    assert [row["labels"] for row in rows] == ["positive", "negative"]
    assert rows[0]["probabilities"] == pytest.approx([0.1, 0.9])


@pytest.mark.parametrize("options, message", [
    ({"beam": 4}, "beam does not apply to a sentiment model"),
    ({"attention": True}, "attention does not apply to a sentiment model"),
])
def test_sentiment_refuses_the_translation_options(sentiment, options, message):
    assert sentiment.options == ("explain",)
    with pytest.raises(ConfigError, match=f"^{message}$"):
        sentiment.rows(["good"], **options)


def test_translation_rows_infer_and_tensors(translation):
    assert translation.rows(["ab", "b"], beam=3) == [{"text": "ab", "translation": "AB"},
                                                     {"text": "b", "translation": "B"}]
    assert translation.infer(["a"]) == [{"translations": "A"}]
    assert translation.beams == [3, None]  # the beam reaches translate; None: the default
    assert translation.tensors() == [{"name": "translations", "datatype": "BYTES",
                                      "shape": [-1]}]


def test_translation_rows_with_attention_are_greedy_with_rounded_weights(translation):
    [row] = translation.rows(["a b"], beam=1, attention=True)
    assert row == {"text": "a b", "translation": "A B",
                   "attention": {"source": ["a", "b"], "target": ["X", "Y"],
                                 "weights": [[0.333333, 0.666667], [0.5, 0.5]]}}
    with pytest.raises(ConfigError, match="greedy decoding .beam 1. only, not beam 4"):
        translation.rows(["a"], beam=4, attention=True)
    with pytest.raises(ConfigError, match="^explain does not apply to a translation model$"):
        translation.rows(["a"], explain=True)


def test_the_server_and_the_predict_path_reach_no_task():
    """The server module and the runtimes import no `keras_lstm.tasks` (the training side)."""
    code = ("import sys, keras_lstm.app.serving, keras_lstm.app.predict_file, keras_lstm.runtimes;"
            "print(sorted(m for m in sys.modules if m.startswith(('keras_lstm.tasks', "
            "'tensorflow', 'keras.'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=120, check=True)
    assert result.stdout.strip() == "[]"


def test_the_server_calls_the_runtime(sentiment):
    from keras_lstm.app.serving import ModelServer

    server = ModelServer(sentiment, "fake", max_batch=1)
    version = server.version()  # the only model, its newest version
    try:
        assert (version.name, version.version, version.runtime) == ("fake", 1, sentiment)
        assert version.call(("predict", None), ["good"]) == sentiment.rows(["good"])
        assert version.call(("explain", None), ["good"]) == sentiment.rows(["good"], explain=True)
        assert version.call(("infer", None), ["good"]) == sentiment.infer(["good"])
        assert version.outputs() == sentiment.tensors()
    finally:
        server.executor.shutdown()


def test_backend_for_names_the_backend_load_uses():
    from keras_lstm.runtimes import backend_for

    run = Path(__file__).parents[1] / "fixtures" / "legacy_73ab711" / "sentiment"
    export = run / "export"
    assert backend_for(run) == "keras"  # a run folder: its Keras model
    assert backend_for(run, "tflite") == "tflite"  # the one given
    assert backend_for(export) == "onnx"  # an export folder
    assert backend_for(export / "model_float32.tflite") == "tflite"  # one artifact of an export
    assert backend_for(export / "saved_model") == "saved_model"
    assert backend_for(export, artifact="model_int8.tflite") == "tflite"
