"""Training and inference speed of keras_lstm.layers.LSTM against keras.layers.LSTM and PyTorch.

Usage: python bench/layer_speed.py [--repeats 7] [--steps-per-repeat 10] [--no-torch]

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

PyTorch is optional (not a project dependency): when `torch` is importable,
`nn.LSTM` in the same model (Embedding → LSTM → last h → Linear, Adam, the
same batches) is timed in the same interleaved repeats (training step,
inference at batch 1 and 64 under `torch.inference_mode()`), beside our
layer's ONNX export run by onnxruntime. Without torch the bench says so and
prints the other rows. A last table gives each library's plain float32
matrix-product rate at the LSTM's sizes (TensorFlow, NumPy, PyTorch), so a gap
that belongs to a math library shows as such.
"""

import argparse
import importlib.util
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


class TorchSentiment:
    """PyTorch's nn.LSTM in the bench's model: Embedding → LSTM → last h → Linear, Adam."""

    def __init__(self):
        import torch

        self.torch = torch
        torch.manual_seed(0)
        self.embedding = torch.nn.Embedding(VOCAB, EMBEDDING, padding_idx=0)
        self.lstm = torch.nn.LSTM(EMBEDDING, UNITS, batch_first=True)
        self.dense = torch.nn.Linear(UNITS, CLASSES)
        modules = (self.embedding, self.lstm, self.dense)
        self.parameters = [p for m in modules for p in m.parameters()]
        self.optimizer = torch.optim.Adam(self.parameters, lr=1e-3)
        self.loss = torch.nn.CrossEntropyLoss()

    def logits(self, ids):
        _, (h, _) = self.lstm(self.embedding(ids))
        return self.dense(h[-1])

    def train_step(self, ids, labels):
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(self.logits(ids), labels)
        loss.backward()
        self.optimizer.step()
        return loss

    def predict(self, ids):
        with self.torch.inference_mode():
            return self.torch.softmax(self.logits(ids), dim=-1)


def torch_worker(connection, ids, labels, one, batch, steps_per_repeat, threads):
    """Runs in its own process: PyTorch's OpenMP threads and TensorFlow's pools
    never wait on each other's spinning threads; the parent alternates them."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    peer = TorchSentiment()
    batches = [(torch.from_numpy(ids[i:i + BATCH]).long(),
                torch.from_numpy(labels[i:i + BATCH]).long())
               for i in range(0, len(ids), BATCH)]
    inputs = {1: torch.from_numpy(one).long(), BATCH: torch.from_numpy(batch).long()}
    for x, y in batches[:2]:
        peer.train_step(x, y)  # warm up
    for size in inputs:
        peer.predict(inputs[size])
    connection.send(f"{torch.__version__}, {torch.get_num_threads()} threads")
    while True:
        command, argument = connection.recv()
        if command == "train":
            start = time.perf_counter()
            for x, y in batches:
                peer.train_step(x, y)
            connection.send((time.perf_counter() - start) * 1000 / steps_per_repeat)
        elif command == "infer":
            times = []
            for _ in range(5):
                start = time.perf_counter()
                peer.predict(inputs[argument])
                times.append((time.perf_counter() - start) * 1000)
            connection.send(statistics.median(times))
        elif command == "matmul":
            connection.send(matmul_rates(argument, {"PyTorch": torch_products(torch)}))
        else:
            return


class TorchPeer:
    """The parent's handle on `torch_worker`: each call runs there while this process waits."""

    def __init__(self, *data):
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe()
        self.process = context.Process(target=torch_worker, args=(child, *data), daemon=True)
        self.process.start()
        self.version = self.connection.recv()

    def ask(self, command, argument=None):
        self.connection.send((command, argument))
        return self.connection.recv()

    def close(self):
        self.connection.send(("stop", None))
        self.process.join()


def onnx_session(model):
    """Our layer's model as ONNX (one fused LSTM op) in an onnxruntime session."""
    import onnxruntime
    import tf2onnx

    from keras_lstm.layers import graph_target

    with graph_target("onnx"):
        proto, _ = tf2onnx.convert.from_function(
            tf.function(lambda ids: model(ids, training=False)),
            input_signature=[tf.TensorSpec([None, None], tf.int32, name="ids")], opset=17)
    ops = [node.op_type for node in proto.graph.node]
    assert ops.count("LSTM") == 1 and "Loop" not in ops, ops
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = os.cpu_count()
    return onnxruntime.InferenceSession(proto.SerializeToString(), options)


PRODUCT_SIZES = {
    "64×128 by 128×512 (recurrent, chain of 100)": (BATCH, UNITS, 4 * UNITS, STEPS),
    "6 400×128 by 128×512 (input projection)": (BATCH * STEPS, EMBEDDING, 4 * UNITS, 1),
}


def numpy_products(a, b, chain, k):
    def run():
        x = a
        for _ in range(chain):
            x = (x @ b)[:, :k]
        return x
    return run


def tensorflow_products(a, b, chain, k):
    ta, tb = tf.constant(a), tf.constant(b)

    @tf.function
    def run():
        x = ta
        for _ in range(chain):
            x = tf.matmul(x, tb)[:, :k]
        return x

    return lambda: run().numpy()


def torch_products(torch):
    def make(a, b, chain, k):
        pa, pb = torch.from_numpy(a), torch.from_numpy(b)

        def run():
            with torch.inference_mode():
                x = pa
                for _ in range(chain):
                    x = torch.matmul(x, pb)[:, :k]
                return x
        return run
    return make


def matmul_rates(repeats, makers):
    """GFLOP/s of one float32 product at the LSTM's two sizes, per library.

    The small product (the recurrent one) is timed as a chain of 100, as the
    recurrence runs it; the large one (the input projection) alone.
    """
    rng = np.random.default_rng(2)
    rates = {}
    for name, (m, k, n, chain) in PRODUCT_SIZES.items():
        a = (rng.normal(size=(m, k)) * 0.05).astype("float32")
        b = (rng.normal(size=(k, n)) * 0.05).astype("float32")
        runs = {library: make(a, b, chain, k) for library, make in makers.items()}
        samples = {library: [] for library in runs}
        for run in runs.values():
            run()
        for _ in range(repeats * 3):
            for library, run in runs.items():  # interleaved
                start = time.perf_counter()
                run()
                samples[library].append(time.perf_counter() - start)
        rates[name] = {library: 2.0 * m * k * n * chain / statistics.median(t) / 1e9
                       for library, t in samples.items()}
    return rates


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps-per-repeat", type=int, default=10)
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="PyTorch intra-op threads (default: PyTorch's own, one per core)")
    args = parser.parse_args()
    start_load = os.getloadavg()
    has_torch = not args.no_torch and importlib.util.find_spec("torch") is not None
    if not has_torch:
        print("PyTorch rows skipped: torch is not installed (optional, not a project "
              "dependency: pip install torch to compare)." if not args.no_torch else
              "PyTorch rows skipped (--no-torch).")

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

    session = onnx_session(models["custom"])
    onnx_serve = lambda x: session.run(None, {"ids": x})[0]  # noqa: E731
    for inputs in (one, batch):
        np.testing.assert_allclose(onnx_serve(inputs), serve["custom"](inputs), atol=1e-4)
    peer = TorchPeer(ids, labels, one, batch, args.steps_per_repeat, args.torch_threads) \
        if has_torch else None

    train_ms = {feed: {kind: [] for kind in models} for feed in feeds}
    baseline_ms = []
    infer1_ms = {kind: [] for kind in models}
    infer64_ms = {kind: [] for kind in models}
    peer_ms = {"torch train": [], "torch 1": [], "torch 64": [], "onnx 1": [], "onnx 64": []}
    for _ in range(args.repeats):
        baseline_ms.append(fit(baseline, static))
        for feed, pair in pairs.items():
            for kind, model in pair.items():
                train_ms[feed][kind].append(fit(model, feeds[feed]))
            if feed == "tf.data, fixed length" and peer is not None:
                peer_ms["torch train"].append(peer.ask("train"))
        for kind in models:
            for inputs, store in ((one, infer1_ms), (batch, infer64_ms)):
                times = [timed(lambda f, x: f(x).numpy(), serve[kind], inputs) for _ in range(5)]
                store[kind].append(statistics.median(times))
        for size, inputs in (("1", one), ("64", batch)):
            peer_ms[f"onnx {size}"].append(statistics.median(
                [timed(onnx_serve, inputs) for _ in range(5)]))
            if peer is not None:
                peer_ms[f"torch {size}"].append(peer.ask("infer", int(size)))

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
    floor = sum(products.values())
    print(f"| keras_lstm share / all six products | {share['custom'] / floor:.2f}x |")

    custom_step = statistics.median(train_ms["tf.data, fixed length"]["custom"])
    print("\n| against PyTorch and onnxruntime (same run) | ms | keras_lstm (TF) ms | ratio |")
    print("|---|---|---|---|")
    onnx1, onnx64 = (statistics.median(peer_ms[f"onnx {s}"]) for s in ("1", "64"))
    ours1, ours64 = statistics.median(infer1_ms["custom"]), statistics.median(infer64_ms["custom"])
    if peer is not None:
        torch_train = statistics.median(peer_ms["torch train"])
        torch1, torch64 = (statistics.median(peer_ms[f"torch {s}"]) for s in ("1", "64"))
        print(f"| PyTorch {peer.version} nn.LSTM training step (ours/torch time) | "
              f"{torch_train:.1f} | {custom_step:.1f} | {custom_step / torch_train:.2f}x |")
        print(f"| PyTorch inference, batch 1 (eager, inference_mode) | {torch1:.2f} | "
              f"{ours1:.2f} | {ours1 / torch1:.2f}x |")
        print(f"| PyTorch inference, batch 64 | {torch64:.1f} | {ours64:.1f} | "
              f"{ours64 / torch64:.2f}x |")
        print(f"| our ONNX (onnxruntime) batch 1 vs PyTorch batch 1 (onnx/torch time) | "
              f"{onnx1:.2f} | | {onnx1 / torch1:.2f}x |")
        print(f"| our ONNX (onnxruntime) batch 64 vs PyTorch batch 64 | {onnx64:.1f} | | "
              f"{onnx64 / torch64:.2f}x |")
    else:
        print("| PyTorch rows | skipped: torch not installed | | |")
        print(f"| our ONNX (onnxruntime) batch 1 / batch 64 | {onnx1:.2f} / {onnx64:.1f} | "
              f"{ours1:.2f} / {ours64:.1f} | |")

    rates = matmul_rates(args.repeats, {"TensorFlow": tensorflow_products, "NumPy": numpy_products})
    if peer is not None:
        for name, by_library in peer.ask("matmul", args.repeats).items():
            rates[name].update(by_library)
        peer.close()
    libraries = list(next(iter(rates.values())))
    print("\n| float32 matrix product, GFLOP/s | " + " | ".join(libraries) + " |")
    print("|---|" + "---|" * len(libraries))
    for name, by_library in rates.items():
        print(f"| {name} | " + " | ".join(f"{by_library[lib]:.0f}" for lib in libraries) + " |")
    load = ", ".join(f"{v:.1f}" for v in start_load), ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"\nload average (1, 5, 15 min): {load[0]} at the start, {load[1]} at the end, on "
          f"{os.cpu_count()} cores (above the core count, other processes shared the CPU)")


if __name__ == "__main__":
    main()
