"""Training and inference speed of keras_lstm.layers.LSTM against keras.layers.LSTM.

Usage: python bench/layer_speed.py [--repeats 7] [--steps-per-repeat 10]

Both layers sit in the same model (Embedding(20 000, 128) → LSTM(128) →
Dense(3, softmax), Adam, batch 64, 100 steps) and are measured interleaved in
one process, so a slow moment of the machine hits both. Prints a Markdown
table of medians and the ratio custom/keras.
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_lstm.models.sentiment import SentimentModelConfig, build_sentiment_model  # noqa: E402

BATCH, STEPS, VOCAB, EMBEDDING, UNITS, CLASSES = 64, 100, 20_000, 128, 128, 3


def build(kind):
    keras.utils.set_random_seed(0)
    config = SentimentModelConfig(vocab_size=VOCAB, num_classes=CLASSES, embedding_dim=EMBEDDING,
                                  units=UNITS, lstm=kind, dropout=0.0)
    model = build_sentiment_model(config)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps-per-repeat", type=int, default=10)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    n = BATCH * args.steps_per_repeat
    ids = rng.integers(1, VOCAB, size=(n, STEPS)).astype("int32")
    labels = rng.integers(0, CLASSES, size=(n,)).astype("int32")
    one, batch = ids[:1], ids[:BATCH]

    models = {kind: build(kind) for kind in ("keras", "custom")}
    serve = {}
    for kind, model in models.items():
        model.fit(ids, labels, batch_size=BATCH, epochs=1, verbose=0)  # trace and warm up
        serve[kind] = tf.function(lambda x, m=model: m(x, training=False))
        serve[kind](one)
        serve[kind](batch)

    train_ms = {kind: [] for kind in models}
    infer1_ms = {kind: [] for kind in models}
    infer64_ms = {kind: [] for kind in models}
    for _ in range(args.repeats):
        for kind, model in models.items():
            start = time.perf_counter()
            model.fit(ids, labels, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
            train_ms[kind].append((time.perf_counter() - start) * 1000 / args.steps_per_repeat)
            for inputs, store in ((one, infer1_ms), (batch, infer64_ms)):
                times = []
                for _ in range(5):
                    start = time.perf_counter()
                    serve[kind](inputs).numpy()
                    times.append((time.perf_counter() - start) * 1000)
                store[kind].append(statistics.median(times))

    def row(name, store, tokens=None):
        keras_ms, custom_ms = statistics.median(store["keras"]), statistics.median(store["custom"])
        cells = [name, f"{keras_ms:.1f}", f"{custom_ms:.1f}"]
        if tokens:
            cells += [f"{tokens / keras_ms * 1000:,.0f}", f"{tokens / custom_ms * 1000:,.0f}"]
        else:
            cells += ["", ""]
        cells.append(f"{keras_ms / custom_ms:.2f}x")
        return "| " + " | ".join(cells) + " |"

    print(f"\nbatch {BATCH} x {STEPS} steps, embedding {EMBEDDING}, {UNITS} units, vocabulary {VOCAB}, "
          f"{CLASSES} classes, Adam; medians of {args.repeats} interleaved repeats; "
          f"tensorflow {tf.__version__}, keras {keras.__version__}\n")
    print("| measure | keras.layers.LSTM ms | keras_lstm LSTM ms | keras tokens/s | custom tokens/s | speed-up (keras/custom time) |")
    print("|---|---|---|---|---|---|")
    print(row("training step (batch 64)", train_ms, BATCH * STEPS))
    print(row("inference, batch 1 (tf.function)", infer1_ms, STEPS))
    print(row("inference, batch 64 (tf.function)", infer64_ms, BATCH * STEPS))


if __name__ == "__main__":
    main()
