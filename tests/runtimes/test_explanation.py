"""Explanations by occlusion: the arithmetic on a model of known tokens, the kept tokens,
determinism, the same weights through every runtime, faithfulness on held-out reviews, and
what `predict --explain` prints (the server's answers and a translation model's one-line
error: tests/app/test_serve.py)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from export.publish import export_run
from keras_lstm.runtimes.explanation import explain, occluded
from lstm_text.preprocessor import Preprocessor
from lstm_text.tokenizer import TokenizerConfig
from lstm_text.vocabulary import Vocabulary
from tests.helpers import REPO, train_run

# Trains, exports or runs a subprocess per test: CI runs it; `pytest -m "not slow"` skips it.
pytestmark = pytest.mark.slow


def cli(*args):
    return subprocess.run([sys.executable, "-m", "keras_lstm", *map(str, args)],
                          capture_output=True, text=True, timeout=600, cwd=REPO)


# ----- a model whose answer depends on known tokens -----

VOCABULARY = Vocabulary(["[PAD]", "[UNK]", "good", "bad", "film", "not"])
SCORES = {2: 2.0, 3: -2.0, 4: 0.0, 5: -0.5}  # logit of "positive" per token id; [UNK] 0


def known_model(rows):
    """p(negative), p(positive) = softmax of (0, the sum of the tokens' scores)."""
    logits = np.array([sum(SCORES.get(i, 0.0) for i in row) for row in rows])
    positive = 1 / (1 + np.exp(-logits))
    return np.stack([1 - positive, positive], axis=1)


def test_occlusion_removes_each_id_once_and_fills_an_empty_text():
    assert occluded([5, 6, 7]) == [[5, 6, 7], [6, 7], [5, 7], [5, 6]]
    assert occluded([5]) == [[5], [1]]  # a text without its one token reads as [UNK]
    assert occluded([]) == [[1]]


def test_weights_are_the_drop_of_the_labels_probability():
    preprocessor = Preprocessor(TokenizerConfig(), VOCABULARY, max_length=4)
    found = explain(preprocessor, known_model, "Good film, not BAD film")
    # The kept tokens: the first four the model reads (lower case; "," is [UNK]).
    tokens = ["good", "film", ",", "not"]
    assert found["tokens"] == tokens
    ids = VOCABULARY.encode(tokens)
    full = known_model([ids])[0]
    assert found["label"] == int(np.argmax(full))
    expected = [full[found["label"]] - known_model([ids[:i] + ids[i + 1:]])[0][found["label"]]
                for i in range(len(ids))]
    np.testing.assert_allclose(found["weights"], expected, atol=1e-6)
    by_token = dict(zip(found["tokens"], found["weights"]))
    assert by_token["good"] > 0 and by_token["not"] < 0 and by_token["film"] == by_token[","] == 0
    # Toward the other label every weight changes sign.
    other = explain(preprocessor, known_model, "Good film, not BAD film", label=0)
    np.testing.assert_allclose(other["weights"], -np.array(found["weights"]), atol=2e-6)
    assert explain(preprocessor, known_model, "") == {"label": 0, "tokens": [], "weights": []}


# ----- a trained model, through every runtime -----

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The "fast" preset on 1 500 embedded reviews, exported to the SavedModel, ONNX and
    float32 TFLite; and 100 held-out reviews."""
    from keras_lstm import presets

    run = tmp_path_factory.mktemp("explain") / "run"
    train_run("sentiment", out=str(run), **{**presets.get("sentiment", "fast"),
                                            "max_examples": 1500, "preset": "fast"})
    export_run(run, formats=("saved_model", "onnx", "tflite"),
                                  quantize=("float32",),
                                  progress=lambda line: None)
    texts = [json.loads(line)["text"] for line in
             (run / "splits" / "test.jsonl").read_text(encoding="utf-8").splitlines()]
    return run, texts[:100]


def test_the_tokens_are_the_kept_ones_and_the_weights_repeat(trained):
    from keras_lstm import runtimes

    run, texts = trained
    runtime = runtimes.load(run / "export", backend="onnx")
    long_text = "".join(texts[:6])
    sample = [*texts[:5], long_text, "", "质量很好"]
    first = runtime.explain(sample)
    assert first == runtime.explain(sample)  # deterministic: identical, not close
    predicted = runtime.predict(sample)
    for text, row, prediction in zip(sample, first, predicted):
        kept = runtime.preprocessor.tokens(text)[: runtime.preprocessor.max_length]
        assert row["tokens"] == kept and len(row["weights"]) == len(kept)
        assert row["label"] == prediction["label"]
    assert len(first[5]["tokens"]) == runtime.preprocessor.max_length < len(
        runtime.preprocessor.tokenize(long_text))
    assert first[6]["tokens"] == []


def test_every_runtime_gives_the_same_weights(trained):
    from keras_lstm import runtimes

    run, texts = trained
    sample = texts[:8]
    labels = [row["label"] for row in runtimes.load(run, backend="keras").predict(sample)]
    found = {backend: runtimes.load(run if backend == "keras" else run / "export",
                                    backend=backend).explain(sample, labels)
             for backend in ("keras", "saved_model", "onnx", "tflite")}
    assert sum(len(row["tokens"]) for row in found["keras"]) > 50
    for backend in ("saved_model", "onnx", "tflite"):
        for reference, row in zip(found["keras"], found[backend]):
            assert row["tokens"] == reference["tokens"] and row["label"] == reference["label"]
            np.testing.assert_allclose(row["weights"], reference["weights"], atol=1e-4, rtol=0)


def test_removing_the_heaviest_tokens_lowers_the_label_more_than_random_ones(trained):
    """Faithfulness: on 100 held-out reviews, dropping the k tokens of largest weight lowers
    the predicted label's probability more, on average, than dropping k random tokens."""
    from keras_lstm import runtimes

    run, texts = trained
    runtime = runtimes.load(run / "export", backend="onnx")
    rng = np.random.default_rng(0)
    k, drops = 3, {"top": [], "random": []}
    for row in runtime.explain(texts):
        ids = runtime.preprocessor.vocabulary.encode(row["tokens"])
        if len(ids) <= k:
            continue
        label = runtime.labels.index(row["label"])
        chosen = {"top": np.argsort(row["weights"], kind="stable")[::-1][:k],
                  "random": rng.choice(len(ids), k, replace=False)}
        rows = [ids] + [[t for i, t in enumerate(ids) if i not in set(chosen[name].tolist())]
                        for name in ("top", "random")]
        p = runtime.predict_ids(rows)[:, label]
        drops["top"].append(p[0] - p[1])
        drops["random"].append(p[0] - p[2])
    assert len(drops["top"]) >= 80
    top, random = np.mean(drops["top"]), np.mean(drops["random"])
    print(f"mean drop of p(label), k={k}, {len(drops['top'])} texts: top {top:.4f}, "
          f"random {random:.4f}")
    assert top > random + 0.05, (top, random)


def test_predict_explain_prints_the_explanation(trained):
    from keras_lstm import runtimes

    run, texts = trained
    result = cli("predict", run, "--runtime", "onnx", "--explain", texts[0], "质量很好")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    runtime = runtimes.load(run / "export", backend="onnx")
    plain = runtime.predict([texts[0], "质量很好"])
    for row, text, prediction, explanation in zip(rows, [texts[0], "质量很好"], plain,
                                                  runtime.explain([texts[0], "质量很好"])):
        assert row == {"text": text, **prediction, "explanation": {
            "tokens": explanation["tokens"], "weights": explanation["weights"]}}
    result = cli("predict", run, "--explain", "--input", "-")
    assert (result.returncode, result.stderr) == (2, "keras-lstm: error: --explain: give TEXT "
                                                     "arguments; explanations are not written "
                                                     "to --input files\n")

