"""The TF-IDF + logistic regression baseline: the recipe, its pickle-free round trip, and
its line beside the LSTM's at the end of `train` and in `evaluate`."""

import contextlib
import csv
import io
import json
import random
import shutil

import numpy as np
import pytest

from keras_lstm import baseline
from keras_lstm.app.cli import main
from keras_lstm.core.errors import ConfigError

# Trains, exports or runs a subprocess per test: CI runs it; `pytest -m "not slow"` skips it.
pytestmark = pytest.mark.slow

WORDS = "the a flight crew seat gate bag delay time plane app call".split()


def cue_rows(count=120, seed=0):
    """Texts whose label is one cue word among a dozen fillers.

    A bag of words reads the cue at once; a 2-unit LSTM after one slow epoch
    does not, so the baseline is the better model here by construction.
    """
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        label = ("positive", "negative", "neutral")[i % 3]
        words = rng.choices(WORDS, k=12)
        words.insert(rng.randrange(13), {"positive": "good", "negative": "bad",
                                         "neutral": "okay"}[label])
        rows.append((" ".join(words) + f" {i}", label))
    return rows


def write_rows(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def sklearn_pipeline():
    """The recipe written out as scikit-learn's own pipeline (bench/sentiment_quality.py's)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    return make_pipeline(make_union(
        TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=1, sublinear_tf=True,
                        token_pattern=r"(?u)\b\w+\b"),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True),
    ), LogisticRegression(C=4.0, max_iter=2000))


@pytest.mark.parametrize("classes", [2, 3])
def test_saved_and_loaded_baseline_scores_as_the_fitted_one(tmp_path, classes):
    rows = [row for row in cue_rows(150) if row[1] != "neutral" or classes == 3]
    texts, labels = zip(*rows, strict=True)
    fitted = baseline.fit(texts[:100], labels[:100])
    fitted.save(tmp_path)
    assert sorted(p.name for p in (tmp_path / "baseline").iterdir()) == ["baseline.json",
                                                                         "weights.npz"]
    loaded = baseline.load(tmp_path)
    held_out = list(texts[100:]) + ["good bad okay", "", "never seen words ∑"]
    assert loaded.classes == fitted.classes and loaded.training_texts == 100
    assert loaded.predict(held_out) == fitted.predict(held_out)
    # Identical features and scores, not only the same argmax.
    assert (loaded.features(held_out) != fitted.features(held_out)).nnz == 0
    np.testing.assert_array_equal(loaded.classifier.decision_function(loaded.features(held_out)),
                                  fitted.classifier.decision_function(fitted.features(held_out)))
    assert loaded.score(texts[100:], labels[100:]) == fitted.score(texts[100:], labels[100:])


def test_the_recipe_is_scikit_learns_pipeline():
    rows = cue_rows(150, seed=1)
    texts, labels = (list(column) for column in zip(*rows, strict=True))
    ours = baseline.fit(texts[:90], labels[:90])
    theirs = sklearn_pipeline().fit(texts[:90], labels[:90])
    assert ours.predict(texts[90:]) == list(theirs.predict(texts[90:]))
    np.testing.assert_allclose(ours.classifier.decision_function(ours.features(texts[90:])),
                               theirs.decision_function(texts[90:]), rtol=0, atol=1e-12)


def test_a_run_folder_without_a_baseline_loads_none_and_a_broken_one_is_one_line(tmp_path):
    assert baseline.load(tmp_path) is None
    texts, labels = zip(*cue_rows(30), strict=True)
    baseline.fit(texts, labels).save(tmp_path)
    config = json.loads((tmp_path / "baseline" / "baseline.json").read_text())
    config["word_terms"] = config["word_terms"][:-1]
    (tmp_path / "baseline" / "baseline.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="weights.npz does not match baseline.json"):
        baseline.load(tmp_path)
    (tmp_path / "baseline" / "weights.npz").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="unreadable baseline"):
        baseline.load(tmp_path)


@pytest.mark.parametrize("model, expected", [
    ({"accuracy": 0.804, "macro_f1": 0.735},
     "— the LSTM is 2.0 points below it (macro-F1: 3.1 points below)"),
    ({"accuracy": 0.834, "macro_f1": 0.766}, "— the LSTM is 1.0 points above it (macro-F1: level)"),
    ({"accuracy": 0.824, "macro_f1": 0.77}, "— the LSTM is level with it in accuracy "
                                            "(macro-F1: 0.4 points above)"),
])
def test_the_comparison_says_which_side_of_the_baseline_the_lstm_is(model, expected):
    line = baseline.comparison(model, {"accuracy": 0.824, "macro_f1": 0.766})
    assert line == ("baseline (TF-IDF + logistic regression, same training split): accuracy "
                    "0.8240, macro-F1 0.7660 " + expected)


@pytest.fixture(scope="module")
def cue_run(tmp_path_factory):
    """A run on `cue_rows` (an LSTM that learns nothing), with train's printed output."""
    folder = tmp_path_factory.mktemp("cue")
    data = write_rows(folder / "data.csv", cue_rows())
    run = folder / "run"
    printed, said = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(said):
        code = main(["train", "sentiment", "--data", str(data), "--out", str(run), "--preset",
                     "none", "--units", "2", "--embedding-dim", "2", "--epochs", "1",
                     "--learning-rate", "0.0001", "--seed", "1"])
    assert code == 0, said.getvalue()
    return run, printed.getvalue(), said.getvalue()


def evaluate_json(capsys, *args):
    capsys.readouterr()
    assert main(["evaluate", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_train_ends_with_the_lstm_and_the_baseline_on_the_held_out_split(cue_run):
    run, printed, said = cue_run  # results on stdout, messages on stderr
    lines = printed.splitlines()
    assert lines[-1].startswith("run folder:")
    assert lines[-3].startswith("held-out test split (12 texts): LSTM accuracy ")
    assert lines[-2].startswith("baseline (TF-IDF + logistic regression, same training split): "
                                "accuracy 1.0000, macro-F1 1.0000 — the LSTM is ")
    assert "points below it" in lines[-2]
    assert any(line.startswith("baseline (TF-IDF + logistic regression) fitted on 96 training "
                               "texts in ") for line in said.splitlines())
    assert (run / "baseline" / "baseline.json").is_file()


def test_evaluate_scores_the_baseline_fitted_on_the_runs_training_split(cue_run, capsys):
    from keras_lstm import tasks
    from keras_lstm.core import schemas
    from keras_lstm.data import readers

    run, _, _ = cue_run
    task = tasks.get("sentiment")
    config = task.config_class.from_dict(schemas.read_config(run)["training"], "config.json")
    splits = task.load_data(config)
    expected = sklearn_pipeline().fit(list(splits.train[0]), list(splits.train[1]))
    for data in (None, run.parent / "data.csv"):
        metrics = evaluate_json(capsys, run, *(["--data", data] if data else []))
        scored = (readers.read_labelled_file(data) if data
                  else readers.read_labelled_file(run / "splits" / "test.jsonl"))
        predicted = expected.predict(scored.texts)
        from sklearn.metrics import accuracy_score, f1_score

        assert metrics["baseline"] == {
            "accuracy": pytest.approx(accuracy_score(scored.labels, predicted), abs=1e-12),
            "macro_f1": pytest.approx(f1_score(scored.labels, predicted, average="macro"),
                                      abs=1e-12)}
        assert metrics["examples"] == len(scored.texts)
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    text = capsys.readouterr().out
    assert "macro-F1  " in text and "points below it" in text


def test_a_run_made_before_baselines_says_so(cue_run, capsys, tmp_path):
    run, _, _ = cue_run
    old = tmp_path / "old"
    shutil.copytree(run, old, ignore=shutil.ignore_patterns("baseline"))
    metrics = evaluate_json(capsys, old)
    assert metrics["baseline"] is None and "accuracy" in metrics
    assert main(["evaluate", str(old)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[3] == (f"baseline (TF-IDF + logistic regression): none saved in {old} (a run "
                        "trained before keras-lstm kept one, or whose streamed source file was "
                        "gone); train again to get one")
