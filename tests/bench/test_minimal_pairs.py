"""The minimal-pair suites (bench/minimal_pairs/) and their scorer (bench/minimal_pairs.py)."""

import csv
import json
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

from keras_lstm.core.errors import DataError

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:  # as when a bench runs (and as tests/bench/test_benches.py does)
    sys.path.insert(0, str(BENCH))

import minimal_pairs  # noqa: E402

# Trains, exports or runs a subprocess per test: CI runs it; `pytest -m "not slow"` skips it.
pytestmark = pytest.mark.slow

CATEGORIES = {"negation", "contrast", "double_negation", "nothing_but", "could_not_be",
              "intensifier", "question", "negated_negative"}


def normalized(text):
    return re.sub(r"\s+", " ", text).strip().lower()


def sentences(pairs):
    return [sentence.text for pair in pairs for sentence in (pair.a, pair.b)]


@pytest.fixture(scope="module", params=minimal_pairs.LANGUAGES)
def suite(request):
    return request.param, minimal_pairs.load_suite(request.param)


def test_each_suite_is_large_balanced_and_well_formed(suite):
    language, pairs = suite
    assert len(pairs) >= 150
    ids = [pair.id for pair in pairs]
    assert len(set(ids)) == len(ids)
    assert all(pair_id.startswith(f"{language}-") for pair_id in ids)
    counts = Counter(pair.category for pair in pairs)
    assert set(counts) == CATEGORIES
    assert min(counts.values()) >= 15, counts
    assert all(pair.a.label != pair.b.label for pair in pairs)
    labels = Counter(sentence.label for pair in pairs for sentence in (pair.a, pair.b))
    assert labels["positive"] == labels["negative"] == len(pairs)
    texts = [normalized(text) for text in sentences(pairs)]
    assert len(set(texts)) == len(texts), [t for t, n in Counter(texts).items() if n > 1]
    for line in minimal_pairs.suite_path(language).read_text(encoding="utf-8").splitlines():
        assert set(json.loads(line)) == {"id", "category", "a", "b"}


def test_the_chinese_suite_is_chinese_and_the_english_one_has_no_mentions(suite):
    language, pairs = suite
    for text in sentences(pairs):
        if language == "zh":
            assert re.search(r"[\u4e00-\u9fff]", text), text
        else:
            assert "@" not in text and text.isascii(), text


def test_no_suite_sentence_is_in_the_embedded_reviews(suite):
    from keras_lstm.data.default_reviews import load_default_reviews

    reviews = {normalized(text) for text in load_default_reviews()[0]}
    assert not [text for text in sentences(suite[1]) if normalized(text) in reviews]


@pytest.mark.shared_data
def test_no_suite_sentence_is_in_the_airline_tweets(suite, shared_data):
    with open(shared_data / "airline-tweets.csv", encoding="utf-8", newline="") as f:
        tweets = {normalized(row["text"]) for row in csv.DictReader(f)}
    assert len(tweets) > 10_000
    assert not [text for text in sentences(suite[1]) if normalized(text) in tweets]


def test_score_of_constant_perfect_and_inverted_predictions():
    pairs = minimal_pairs.load_suite("en")
    truth = {sentence.text: sentence.label for pair in pairs for sentence in (pair.a, pair.b)}
    flip = {"positive": "negative", "negative": "positive"}

    always = minimal_pairs.score(lambda texts: ["positive"] * len(texts), pairs)
    assert (always["sentence_accuracy"], always["pair_accuracy"]) == (0.5, 0.0)
    assert always["sentences"] == 2 * always["pairs"] == 2 * len(pairs)
    assert len(always["errors"]) == len(pairs)
    assert all(c["sentence_accuracy"] == 0.5 and c["pair_accuracy"] == 0.0
               for c in always["categories"].values())

    perfect = minimal_pairs.score(lambda texts: [truth[t] for t in texts], pairs)
    assert (perfect["sentence_accuracy"], perfect["pair_accuracy"], perfect["errors"]) == \
        (1.0, 1.0, [])
    inverted = minimal_pairs.score(lambda texts: [flip[truth[t]] for t in texts], pairs)
    assert (inverted["sentence_accuracy"], inverted["pair_accuracy"]) == (0.0, 0.0)
    neutral = minimal_pairs.score(lambda texts: ["neutral"] * len(texts), pairs)
    assert neutral["sentence_accuracy"] == 0.0  # a third class is never right


def test_score_counts_per_category_by_hand():
    A, B = minimal_pairs.Sentence, minimal_pairs.Pair
    pairs = [B("1", "negation", A("good", "positive"), A("not good", "negative")),
             B("2", "negation", A("bad", "negative"), A("not bad", "positive")),
             B("3", "question", A("why so bad?", "negative"), A("why not?", "positive"))]
    said = {"good": "positive", "not good": "positive", "bad": "negative",
            "not bad": "positive", "why so bad?": "positive", "why not?": "negative"}
    result = minimal_pairs.score(lambda texts: [said[t] for t in texts], pairs)
    assert result["sentence_accuracy"] == pytest.approx(3 / 6)
    assert result["pair_accuracy"] == pytest.approx(1 / 3)
    assert result["categories"]["negation"] == {"sentences": 4, "pairs": 2,
                                                "sentence_accuracy": 0.75, "pair_accuracy": 0.5}
    assert result["categories"]["question"]["sentence_accuracy"] == 0.0
    assert [(e["id"], e["side"], e["predicted"]) for e in result["errors"]] == \
        [("1", "b", "positive"), ("3", "a", "positive"), ("3", "b", "negative")]
    with pytest.raises(ValueError, match="returned 1 labels for 6 texts"):
        minimal_pairs.score(lambda texts: ["positive"], pairs)

    table = minimal_pairs.format_table({"LSTM": result, "always positive": minimal_pairs.score(
        lambda texts: ["positive"] * len(texts), pairs)})
    lines = table.splitlines()
    assert lines[0] == ("| category | pairs | LSTM: sentences | LSTM: pairs | "
                        "always positive: sentences | always positive: pairs |")
    assert lines[2] == "| negation | 2 | 75.0 % | 50.0 % | 50.0 % | 0.0 % |"
    assert lines[-1] == "| **all** | 3 | 50.0 % | 33.3 % | 50.0 % | 0.0 % |"


GOOD = '{"id": "x-1", "category": "negation", "a": {"text": "good", "label": "positive"}, ' \
       '"b": {"text": "not good", "label": "negative"}}'


@pytest.mark.parametrize("line, message", [
    ("{not json", "not JSON"),
    ("[1, 2]", "expected a JSON object"),
    (GOOD.replace('"category": "negation"', '"category": ""'), "'category' must be"),
    (GOOD.replace('"negative"', '"neutral"'), "b.label must be one of positive, negative"),
    (GOOD.replace('"negative"', '"positive"'), "a and b carry the same label"),
    (GOOD.replace('"text": "good"', '"text": " "'), "a.text must be a non-empty string"),
    (GOOD.replace(', "b": {"text": "not good", "label": "negative"}', ""), "'b' must be"),
    (GOOD, "id 'x-1' repeats line 1"),
])
def test_a_bad_line_is_one_error_naming_the_file_and_line(tmp_path, line, message):
    path = tmp_path / "suite.jsonl"
    path.write_text(GOOD + "\n\n" + line + "\n", encoding="utf-8")
    with pytest.raises(DataError) as raised:
        minimal_pairs.load_suite(path=path)
    text = str(raised.value)
    assert text.startswith(f"{path}:3: ") and message in text and "\n" not in text


def test_unknown_language_and_missing_file_are_one_line_errors(tmp_path, capsys):
    from keras_lstm.core.errors import ConfigError

    with pytest.raises(ConfigError, match="--language: expected one of en, zh, got 'fr'"):
        minimal_pairs.load_suite("fr")
    with pytest.raises(DataError, match="cannot read the suite"):
        minimal_pairs.load_suite(path=tmp_path / "none.jsonl")
    assert minimal_pairs.main([str(tmp_path / "no-run")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'no-run'}: no such file or folder"


def test_baseline_predict_fits_on_a_labelled_file(tmp_path):
    pytest.importorskip("sklearn")
    path = tmp_path / "train.csv"
    rows = [("great crew", "positive"), ("lovely flight", "positive"),
            ("awful delay", "negative"), ("rude agent", "negative")] * 3
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([("text", "label"), *rows])
    predict = minimal_pairs.baseline_predict(path)
    assert predict(["great flight", "rude delay"]) == ["positive", "negative"]


class FakeRuntime:
    """What `keras_lstm.runtimes.load` returns, for the CLI's wiring: "not" makes it say negative."""

    backend = "onnx"
    run_dir = None

    def __init__(self, task="sentiment"):
        self.task = task

    def predict(self, texts):
        return [{"label": "negative" if re.search(r"\bnot\b|不", text) else "positive"}
                for text in texts]


def test_cli_scores_a_model_and_the_baseline_beside_it(tmp_path, monkeypatch, capsys):
    from keras_lstm import runtimes

    loaded = []
    monkeypatch.setattr(runtimes, "load", lambda target, backend: loaded.append(
        (target, backend)) or FakeRuntime())
    assert minimal_pairs.main(["RUN", "--language", "zh", "--runtime", "onnx"]) == 0
    assert loaded == [("RUN", "onnx")]
    out = capsys.readouterr().out
    expected = minimal_pairs.score(minimal_pairs.runtime_predict(FakeRuntime()),
                                   minimal_pairs.load_suite("zh"))
    assert "zh.jsonl: 168 pairs, 336 sentences" in out
    assert minimal_pairs.format_table({"LSTM (onnx)": expected}) in out

    pytest.importorskip("sklearn")
    path = tmp_path / "train.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([("review", "stars"), *[("good", "positive"),
                                                        ("bad", "negative")] * 3])
    assert minimal_pairs.main(["RUN", "--baseline-data", str(path), "--text-column", "review",
                               "--label-column", "stars", "--show-errors", "2"]) == 0
    out = capsys.readouterr().out
    assert "| TF-IDF + LR: sentences | TF-IDF + LR: pairs |" in out
    assert len([line for line in out.splitlines() if line.startswith("- en-")]) == 2


def test_cli_refuses_a_translation_model_in_one_line(monkeypatch, capsys):
    from keras_lstm import runtimes

    monkeypatch.setattr(runtimes, "load", lambda target, backend: FakeRuntime("translation"))
    assert minimal_pairs.main(["RUN"]) == 2
    assert capsys.readouterr().err == ("error: RUN: a translation model; minimal pairs score "
                                       "sentiment models\n")
