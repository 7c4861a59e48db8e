"""Epoch times of real training runs with tf.data's autotuner on (the baseline) and off (ours).

Usage: python bench/input_pipeline.py [--repeats 2] [--tasks translation,sentiment]

Trains the demo's translation model (10 epochs, the embedded CLDR pairs) and
the demo's sentiment model (4 epochs, the embedded reviews, bigrams) with the
project's pipelines, once with `keras_lstm.data.pipeline.AUTOTUNE_INPUT = True`
(prefetch(AUTOTUNE), tf.data autotuning on, as most tf.data code does) and
once with the default (prefetch of 2 batches, autotuning off), alternating, in
one process. An epoch's time is its training part, from `on_epoch_begin` to
the start of validation, with no per-batch callback (which would make Keras
wait for every step). The first epoch also traces the model, so the table
shows it apart. Prints a Markdown table.
"""

import argparse
import contextlib
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from keras_lstm.data import pipeline  # noqa: E402
from keras_lstm.demo import REVIEWS_SETTINGS  # noqa: E402


class EpochTimer(keras.callbacks.Callback):
    """Seconds from each epoch's start to the start of its validation."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_test_begin(self, logs=None):  # fit() validates once at the end of each epoch
        self.seconds.append(time.perf_counter() - self.start)


@contextlib.contextmanager
def timed_fit(timer):
    """Adds `timer` to the callbacks of every `keras.Model.fit` call inside the block."""
    original = keras.Model.fit

    def fit(self, *args, callbacks=None, **kwargs):
        return original(self, *args, callbacks=[*(callbacks or []), timer], **kwargs)

    keras.Model.fit = fit
    try:
        yield
    finally:
        keras.Model.fit = original


def train(task, folder):
    if task == "translation":
        from keras_lstm.translation import TranslationTrainingConfig, train_translation

        train_translation(TranslationTrainingConfig(out=folder, epochs=10, units=128,
                                                    embedding_dim=32, patience=100), verbose=0)
    else:
        from keras_lstm.training import SentimentTrainingConfig, train_sentiment

        train_sentiment(SentimentTrainingConfig(out=folder, bidirectional=True, patience=100,
                                                **dict(REVIEWS_SETTINGS, epochs=4)), verbose=0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--tasks", default="translation,sentiment")
    args = parser.parse_args()

    results = {}
    for task in args.tasks.split(","):
        for repeat in range(args.repeats):
            for autotune in ((True, False) if repeat % 2 == 0 else (False, True)):
                pipeline.AUTOTUNE_INPUT = autotune
                timer = EpochTimer()
                with tempfile.TemporaryDirectory() as folder, timed_fit(timer):
                    train(task, folder + "/run")
                results.setdefault((task, autotune), []).append(timer.seconds)
                print(f"{task} autotune={autotune}: "
                      + " ".join(f"{s:.1f}" for s in timer.seconds), flush=True)
    pipeline.AUTOTUNE_INPUT = False

    print("\n| task | tf.data | first epoch s | later epochs: median s | slowest s "
          "| slow (> 1.5 × median) | all epochs s | speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    for task in args.tasks.split(","):
        totals = {}
        for autotune in (True, False):
            runs = results[(task, autotune)]
            first = statistics.median(run[0] for run in runs)
            later = [s for run in runs for s in run[1:]]
            median = statistics.median(later)
            slow = sum(s > 1.5 * median for s in later)
            totals[autotune] = statistics.median(sum(run) for run in runs)
            label = "autotune on, prefetch(AUTOTUNE)" if autotune else \
                f"autotune off, prefetch({pipeline.PREFETCH_BATCHES})"
            ratio = "1.00x" if autotune else f"{totals[True] / totals[False]:.2f}x"
            print(f"| {task} | {label} | {first:.1f} | {median:.1f} | {max(later):.1f} | "
                  f"{slow} of {len(later)} | {totals[autotune]:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
