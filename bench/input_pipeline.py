"""Epoch times of real training runs with tf.data's autotuner on (the baseline) and off (ours).

Usage: python bench/input_pipeline.py [--repeats 2] [--tasks translation,sentiment]

Trains the demo's translation model (preset "cldr-demo" with 10 epochs, the
embedded CLDR pairs) and the demo's sentiment model (preset "reviews-zh" with
4 epochs, the embedded reviews, bigrams) with the project's pipelines
(`keras_lstm.training.train`), once with `keras_lstm.data.pipeline.AUTOTUNE_INPUT = True`
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

from keras_lstm import tasks  # noqa: E402
from keras_lstm.data import pipeline  # noqa: E402
from keras_lstm.training import configure, train  # noqa: E402

# The demo's presets, with a fixed number of epochs and no early stopping.
SETTINGS = {"translation": ("cldr-demo", dict(epochs=10, patience=100)),
            "sentiment": ("reviews-zh", dict(epochs=4, patience=100))}


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


def train_once(task_name, folder, **overrides):
    preset, values = SETTINGS[task_name]
    task = tasks.get(task_name)
    config = configure(task, dict(values, out=folder, **overrides), preset, verbose=0)
    train(task, config, verbose=0)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--tasks", default="translation,sentiment")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs per run, at least 2 (default: translation 10, sentiment 4)")
    parser.add_argument("--max-examples", type=int, default=None,
                        help="train on this many examples (a quick smoke run; default: all)")
    return parser


def main():
    parser = build_parser()
    args = parser.parse_args()
    for name in args.tasks.split(","):
        if name not in SETTINGS:
            parser.error(f"--tasks: unknown task {name!r}; expected some of {', '.join(SETTINGS)}")
    if args.epochs is not None and args.epochs < 2:
        parser.error("--epochs: at least 2 (the first epoch, which traces, is shown apart)")
    overrides = {name: value for name, value in
                 (("epochs", args.epochs), ("max_examples", args.max_examples))
                 if value is not None}

    results = {}
    for task in args.tasks.split(","):
        for repeat in range(args.repeats):
            for autotune in ((True, False) if repeat % 2 == 0 else (False, True)):
                pipeline.AUTOTUNE_INPUT = autotune
                timer = EpochTimer()
                with tempfile.TemporaryDirectory() as folder, timed_fit(timer):
                    train_once(task, folder + "/run", **overrides)
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
