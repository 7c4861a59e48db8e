"""Minimal pairs: does a sentiment model read negation and contrast?

Usage: python bench/minimal_pairs.py RUN_OR_EXPORT [--language en|zh]
           [--runtime keras|onnx|tflite|saved_model] [--baseline-data FILE
           [--text-column text] [--label-column label]] [--show-errors N]

A suite (`bench/minimal_pairs/en.jsonl`, `zh.jsonl`) holds pairs of sentences
that differ minimally ("the crew was helpful" / "the crew was not helpful",
clauses swapped around "but", "not bad" / "not good"...) and carry opposite
labels. Each line is one pair:

    {"id": "en-001", "category": "negation",
     "a": {"text": "...", "label": "positive"}, "b": {"text": "...", "label": "negative"}}

A model is scored on its sentences (each labelled alone) and on its pairs
(both sentences right): a model that reads only the sentiment words gets
about half the sentences and few pairs. The suites were written for this
project and are never trained on; acceptance uses a separate hidden set of
the same kind.

The command scores a run folder or an export (`keras_lstm.runtimes.load`) and
prints a Markdown table, per category and overall. With --baseline-data
(a labelled CSV, TSV or JSONL file), a TF-IDF + logistic regression
(`keras_lstm.baseline`) fitted on that file is scored beside it; without it,
the run's own baseline (RUN/baseline/, fitted on its training split) is used
when the run has one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

SUITES = Path(__file__).resolve().parent / "minimal_pairs"
LANGUAGES = ("en", "zh")
LABELS = ("positive", "negative")


@dataclass(frozen=True)
class Sentence:
    text: str
    label: str


@dataclass(frozen=True)
class Pair:
    """Two sentences that differ minimally and carry opposite labels."""

    id: str
    category: str
    a: Sentence
    b: Sentence


def suite_path(language: str) -> Path:
    """The suite file of `language` ("en" or "zh")."""
    from keras_lstm.core.errors import ConfigError

    if language not in LANGUAGES:
        raise ConfigError(f"--language: expected one of {', '.join(LANGUAGES)}, got {language!r}")
    return SUITES / f"{language}.jsonl"


def load_suite(language: str = "en", path=None) -> list[Pair]:
    """Reads a minimal-pair suite.

    Args:
        language: "en" (airline customers, English) or "zh" (product reviews,
            Chinese): the suite shipped in `bench/minimal_pairs/`.
        path: Another suite file in the same format (overrides `language`).

    Returns:
        The pairs, in file order.

    Raises:
        DataError: A missing file, or a line that is not a well-formed pair
            (one line naming the file and line number), or a repeated id.

    Example:

    >>> pairs = load_suite("en")
    >>> pairs[0].a.label != pairs[0].b.label
    True
    """
    from keras_lstm.core.errors import DataError

    path = Path(path) if path is not None else suite_path(language)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read the suite ({error})") from None
    pairs, seen = [], {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            pair = _parse_pair(line)
        except ValueError as error:
            raise DataError(f"{path}:{number}: {error}") from None
        if pair.id in seen:
            raise DataError(f"{path}:{number}: id {pair.id!r} repeats line {seen[pair.id]}")
        seen[pair.id] = number
        pairs.append(pair)
    if not pairs:
        raise DataError(f"{path}: no pairs")
    return pairs


def _parse_pair(line: str) -> Pair:
    """One suite line as a `Pair`, or a `ValueError` saying what is wrong with it."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON ({error.msg})") from None
    if not isinstance(row, dict):
        raise ValueError("expected a JSON object")
    for field in ("id", "category"):
        if not isinstance(row.get(field), str) or not row[field].strip():
            raise ValueError(f"{field!r} must be a non-empty string")
    sentences = []
    for side in ("a", "b"):
        value = row.get(side)
        if not isinstance(value, dict):
            raise ValueError(f"{side!r} must be an object with 'text' and 'label'")
        text, label = value.get("text"), value.get("label")
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{side}.text must be a non-empty string")
        if label not in LABELS:
            raise ValueError(f"{side}.label must be one of {', '.join(LABELS)}, got {label!r}")
        sentences.append(Sentence(text, label))
    if sentences[0].label == sentences[1].label:
        raise ValueError("a and b carry the same label (a pair's labels differ)")
    return Pair(row["id"], row["category"], *sentences)


def score(predict, pairs: list[Pair]) -> dict:
    """Sentence and pair accuracy of `predict` on `pairs`, overall and per category.

    Args:
        predict: A function from a list of texts to a list of labels (strings),
            called once with every sentence of the suite. A label other than
            "positive" or "negative" (a three-class model's "neutral") is wrong.
        pairs: The suite (`load_suite`).

    Returns:
        A dict: "sentences" and "pairs" (counts), "sentence_accuracy" and
        "pair_accuracy" (fractions), "categories" (category → the same four
        keys, in suite order) and "errors" (one dict per wrong sentence: id,
        side, text, label, predicted).

    Example:

    >>> pairs = load_suite("en")
    >>> result = score(lambda texts: ["positive"] * len(texts), pairs)
    >>> result["sentence_accuracy"], result["pair_accuracy"]
    (0.5, 0.0)
    """
    texts = [sentence.text for pair in pairs for sentence in (pair.a, pair.b)]
    predicted = [str(label) for label in predict(texts)]
    if len(predicted) != len(texts):
        raise ValueError(f"predict returned {len(predicted)} labels for {len(texts)} texts")
    groups, errors = {}, []
    for i, pair in enumerate(pairs):
        right = []
        for side, sentence, label in zip("ab", (pair.a, pair.b), predicted[2 * i:2 * i + 2]):
            right.append(label == sentence.label)
            if label != sentence.label:
                errors.append({"id": pair.id, "side": side, "text": sentence.text,
                               "label": sentence.label, "predicted": label})
        for key in ("all", pair.category):
            group = groups.setdefault(key, [0, 0, 0])  # pairs, sentences right, pairs right
            group[0] += 1
            group[1] += sum(right)
            group[2] += all(right)

    def summary(n, sentences_right, pairs_right):
        return {"sentences": 2 * n, "pairs": n, "sentence_accuracy": sentences_right / (2 * n),
                "pair_accuracy": pairs_right / n}

    overall = groups.pop("all", [0, 0, 0])
    result = summary(*overall) if overall[0] else {"sentences": 0, "pairs": 0,
                                                   "sentence_accuracy": 0.0, "pair_accuracy": 0.0}
    result["categories"] = {name: summary(*counts) for name, counts in groups.items()}
    result["errors"] = errors
    return result


def format_table(results: dict[str, dict]) -> str:
    """A Markdown table of `score` results side by side: a row per category, then all.

    Args:
        results: Model name → `score(...)` result, all on the same suite.

    Returns:
        The table: per model, the percentage of sentences right and of pairs
        with both sentences right.
    """
    names = list(results)
    first = results[names[0]]
    header = "| category | pairs | " + " | ".join(f"{name}: sentences | {name}: pairs"
                                                 for name in names) + " |"
    lines = [header, "|---|---|" + "---|---|" * len(names)]
    rows = [(category, counts["pairs"]) for category, counts in first["categories"].items()]
    for category, n in rows + [("**all**", first["pairs"])]:
        cells = []
        for name in names:
            part = (results[name] if category == "**all**"
                    else results[name]["categories"][category])
            cells.append(f"{100 * part['sentence_accuracy']:.1f} % | "
                         f"{100 * part['pair_accuracy']:.1f} %")
        lines.append(f"| {category} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def runtime_predict(runtime):
    """A `predict(texts) -> labels` of a sentiment runtime (`keras_lstm.runtimes.load`)."""
    return lambda texts: [row["label"] for row in runtime.predict(texts)]


def baseline_predict(path, text_column="text", label_column="label"):
    """A `predict(texts) -> labels` of TF-IDF + logistic regression fitted on a labelled file."""
    from keras_lstm import baseline
    from keras_lstm.data.readers import read_labelled_file

    data = read_labelled_file(path, text_column, label_column)
    return baseline.fit(data.texts, data.labels).predict


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", help="a sentiment run folder, export folder or artifact")
    parser.add_argument("--language", default="en", choices=LANGUAGES,
                        help="which suite (default: en)")
    parser.add_argument("--suite", help="another suite file in the same format")
    parser.add_argument("--runtime", default=None,
                        help="keras, onnx, tflite or saved_model (default: keras for a run "
                             "folder, onnx for an export)")
    parser.add_argument("--baseline-data",
                        help="a labelled file to fit TF-IDF + logistic regression on "
                             "(default: the run's own baseline, if it has one)")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--show-errors", type=int, default=0, metavar="N",
                        help="also list the first N sentences the model got wrong")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from keras_lstm import runtimes
    from keras_lstm.core.errors import ConfigError, KerasLSTMError

    try:
        pairs = load_suite(args.language, args.suite)
        runtime = runtimes.load(args.target, args.runtime)
        if runtime.task != "sentiment":
            raise ConfigError(f"{args.target}: a {runtime.task} model; minimal pairs score "
                              "sentiment models")
        name = f"LSTM ({runtime.backend})"
        results = {name: score(runtime_predict(runtime), pairs)}
        if args.baseline_data:
            predict = baseline_predict(args.baseline_data, args.text_column, args.label_column)
            results["TF-IDF + LR"] = score(predict, pairs)
        elif runtime.run_dir is not None:
            from keras_lstm import baseline

            own = baseline.load(runtime.run_dir)
            if own is not None:
                results["TF-IDF + LR (run's split)"] = score(own.predict, pairs)
    except KerasLSTMError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{args.suite or suite_path(args.language)}: {len(pairs)} pairs, "
          f"{2 * len(pairs)} sentences\n")
    print(format_table(results))
    for error in results[name]["errors"][:args.show_errors]:
        print(f"- {error['id']}{error['side']} {error['text']!r}: {error['label']}, "
              f"predicted {error['predicted']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
