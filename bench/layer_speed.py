"""Training and inference speed of keras_lstm.layers.LSTM against keras.layers.LSTM.

Usage: python bench/layer_speed.py [--repeats 7] [--steps-per-repeat 10]

Both layers sit in the same model (Embedding(20 000, 128) → LSTM(128) →
Dense(3, softmax), Adam, batch 64, 100 steps) and are measured interleaved in
one process, so a slow moment of the machine hits both. Training is timed
with three inputs: a cached `tf.data` pipeline of fixed length (as
`keras-lstm train` feeds it), the same with an unknown length (as bucketed
pipelines give), and NumPy arrays handed to `fit()`. A training step's time
is taken from the start to the end of training inside `fit()`, divided by
the batches, so it leaves out what `fit()` does after training (with NumPy
input Keras sometimes stalls about 0.3 s there; see the README). Batch-level
callbacks would make Keras wait for every step, so none is used. A model without an LSTM
(Embedding → mean → Dense) gives the cost that no LSTM changes. Prints a
Markdown table of medians and the ratio keras/custom.

A second table, from the same run, sets what the 1.5x target needs against
the matrix products that any LSTM's training step must compute: the 100
recurrent products of the forward pass and the 100 of the backward pass,
which depend on each other step by step, and the four large ones (the input
projection, the input gradient and the two weight gradients).
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


def build_without_lstm():
    """The same model minus the LSTM: what every training step costs anyway."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None,), dtype="int32")
    vectors = keras.layers.Embedding(VOCAB, EMBEDDING, mask_zero=True)(inputs)
    pooled = keras.layers.GlobalAveragePooling1D()(vectors)
    model = keras.Model(inputs, keras.layers.Dense(CLASSES, activation="softmax")(pooled))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


class TrainingTimer(keras.callbacks.Callback):
    """Wall time (ms) from `on_train_begin` to `on_train_end` of one fit()."""

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_train_end(self, logs=None):
        self.ms = (time.perf_counter() - self.start) * 1000


def matrix_products_ms(repeats):
    """Medians (ms) of the products one LSTM training step computes, at this CPU's rates."""
    rng = np.random.default_rng(1)

    def tensor(*shape):
        return tf.constant(rng.normal(size=shape).astype("float32") * 0.05)

    rows, gates = BATCH * STEPS, 4 * UNITS
    x, h, dz = tensor(rows, EMBEDDING), tensor(rows, UNITS), tensor(rows, gates)
    h0 = tensor(BATCH, UNITS)
    kernel, recurrent, recurrent_t = tensor(EMBEDDING, gates), tensor(UNITS, gates), \
        tensor(gates, UNITS)

    @tf.function
    def forward_chain():
        h = h0
        for _ in range(STEPS):  # unrolled: no loop overhead, each product waits for the last
            h = tf.matmul(h, recurrent)[:, :UNITS]
        return h

    @tf.function
    def backward_chain():
        d = h0
        for _ in range(STEPS):
            d = tf.matmul(tf.concat([d, d, d, d], axis=1), recurrent_t)
        return d

    products = {
        "forward: 100 recurrent products h_{t-1}·U (64×128 by 128×512), in sequence": forward_chain,
        "backward: 100 recurrent products dz_t·Uᵀ (64×512 by 512×128), in sequence": backward_chain,
        "input projection x·W (6 400×128 by 128×512)": tf.function(lambda: tf.matmul(x, kernel)),
        "input gradient dz·Wᵀ (6 400×512 by 512×128)":
            tf.function(lambda: tf.matmul(dz, kernel, transpose_b=True)),
        "kernel gradient xᵀ·dz (128×6 400 by 6 400×512)":
            tf.function(lambda: tf.matmul(x, dz, transpose_a=True)),
        "recurrent kernel gradient hᵀ·dz (128×6 400 by 6 400×512)":
            tf.function(lambda: tf.matmul(h, dz, transpose_a=True)),
    }

    def loop(body):
        return tf.function(lambda: tf.while_loop(
            lambda t, h: t < STEPS, lambda t, h: (t + 1, body(h)), (0, h0))[1])

    # What a tf.while_loop adds around the same work.
    loops = {
        "100 tf.while_loop iterations, each one recurrent product":
            loop(lambda h: tf.matmul(h, recurrent)[:, :UNITS]),
        "100 tf.while_loop iterations, each a slice and a multiply":
            loop(lambda h: tf.concat([h, h], axis=1)[:, :UNITS] * 0.5),
    }

    def median_ms(function):
        function()
        samples = []
        for _ in range(repeats * 3):
            start = time.perf_counter()
            function().numpy()
            samples.append((time.perf_counter() - start) * 1000)
        return statistics.median(samples)

    return ({name: median_ms(f) for name, f in products.items()},
            {name: median_ms(f) for name, f in loops.items()})


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

    # A fresh pair of models per input kind, so that no model's train function
    # is traced for two input signatures.
    static = tf.data.Dataset.from_tensor_slices((ids, labels)).batch(BATCH).cache()
    # Unknown sequence length, as bucket_by_sequence_length pipelines give.
    dynamic = static.map(lambda x, y: (tf.reshape(x, [tf.shape(x)[0], -1]), y)).cache()
    feeds = {"tf.data, fixed length": static, "tf.data, variable length": dynamic,
             "NumPy arrays to fit()": (ids, labels)}
    pairs = {feed: {kind: build(kind) for kind in ("keras", "custom")} for feed in feeds}
    baseline = build_without_lstm()

    def fit(model, feed):
        """Trains one epoch (steps_per_repeat batches); returns the mean step time in ms."""
        timer = TrainingTimer()
        if isinstance(feed, tuple):
            model.fit(*feed, batch_size=BATCH, epochs=1, verbose=0, shuffle=False,
                      callbacks=[timer])
        else:
            model.fit(feed, epochs=1, verbose=0, shuffle=False, callbacks=[timer])
        return timer.ms / args.steps_per_repeat

    def timed(action, *args):
        start = time.perf_counter()
        action(*args)
        return (time.perf_counter() - start) * 1000

    fit(baseline, static)
    for feed, pair in pairs.items():
        for model in pair.values():
            fit(model, feeds[feed])  # trace and warm up
    models = pairs["tf.data, fixed length"]
    serve = {}
    for kind, model in models.items():
        serve[kind] = tf.function(lambda x, m=model: m(x, training=False))
        serve[kind](one)
        serve[kind](batch)

    train_ms = {feed: {kind: [] for kind in models} for feed in feeds}
    baseline_ms = []
    infer1_ms = {kind: [] for kind in models}
    infer64_ms = {kind: [] for kind in models}
    for _ in range(args.repeats):
        baseline_ms.append(fit(baseline, static))
        for feed, pair in pairs.items():
            for kind, model in pair.items():
                train_ms[feed][kind].append(fit(model, feeds[feed]))
        for kind in models:
            for inputs, store in ((one, infer1_ms), (batch, infer64_ms)):
                times = [timed(lambda f, x: f(x).numpy(), serve[kind], inputs) for _ in range(5)]
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
    base = statistics.median(baseline_ms)
    for feed in feeds:
        print(row(f"training step, {feed}", train_ms[feed], BATCH * STEPS))
        if feed == "tf.data, fixed length":
            lstm_only = {kind: [t - base for t in times]
                         for kind, times in train_ms[feed].items()}
            print(row(f"  the LSTM's share (step minus {base:.1f} ms without an LSTM)",
                      lstm_only, BATCH * STEPS))
    print(row("inference, batch 1 (tf.function)", infer1_ms, STEPS))
    print(row("inference, batch 64 (tf.function)", infer64_ms, BATCH * STEPS))

    keras_step = statistics.median(train_ms["tf.data, fixed length"]["keras"])
    share = {kind: statistics.median(times) for kind, times in lstm_only.items()}
    products, loops = matrix_products_ms(args.repeats)
    chains = sum(t for name, t in products.items() if "in sequence" in name)
    print("\n| the LSTM's share of a training step (fixed length) | ms |")
    print("|---|---|")
    print(f"| keras.layers.LSTM, measured above | {share['keras']:.1f} |")
    print(f"| keras_lstm LSTM, measured above | {share['custom']:.1f} |")
    print(f"| allowed for 1.5x: Keras' step / 1.5 minus {base:.1f} ms without an LSTM | "
          f"{keras_step / 1.5 - base:.1f} |")
    for name, ms in products.items():
        print(f"| {name} | {ms:.1f} |")
    print(f"| all six, one after another | {sum(products.values()):.1f} |")
    print(f"| the two recurrent chains alone (no core can shorten them) | {chains:.1f} |")
    for name, ms in loops.items():
        print(f"| {name} | {ms:.1f} |")


if __name__ == "__main__":
    main()
