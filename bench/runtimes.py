"""Inference latency of every way to serve a sentiment model, at batch 1 and 32, 100 tokens.

Usage: python bench/runtimes.py [--repeats 30]

One model (Embedding(20 000, 128) → LSTM(128) → Dense(3), random weights:
latency does not depend on training) is exported to every format in a
temporary folder and timed in this one run: Keras `model.predict`, a
`tf.function` call, the SavedModel, TFLite (each variant, and a WHILE-loop
TFLite converted without the fused op, as the baseline the fusion must beat)
and onnxruntime. TFLite runs batch 32 as 32 invocations (its batch is 1).
Prints a Markdown table of medians with sizes and ratios.
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from export.onnx import export_onnx  # noqa: E402
from export.tflite import export_tflite  # noqa: E402
from keras_lstm.models.sentiment import SentimentModelConfig, build_sentiment_model  # noqa: E402

VOCAB, STEPS = 20_000, 100


def median_ms(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def while_loop_tflite(model):
    """The baseline: the same model converted without the fused-op function (builtins WHILE)."""
    from export.graph import exportable

    model = exportable(model, mask=False)
    with tempfile.TemporaryDirectory() as folder:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serve", lambda ids: model(ids, training=False),
                             input_signature=[tf.TensorSpec([1, STEPS], tf.int32)])
        archive.write_out(folder, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        return converter.convert()


def tflite_runner(flatbuffer, ids):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, [1, ids.shape[1]])
    interpreter.allocate_tensors()
    output = interpreter.get_output_details()[0]["index"]

    def run(batch):
        for row in batch:
            interpreter.reset_all_variables()
            interpreter.set_tensor(index, row[None, :])
            interpreter.invoke()
            interpreter.get_tensor(output)

    return run


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    return parser


def main():
    parser = build_parser()
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    model = build_sentiment_model(SentimentModelConfig(vocab_size=VOCAB, num_classes=3))
    rng = np.random.default_rng(0)
    ids32 = rng.integers(2, VOCAB, size=(32, STEPS)).astype("int32")
    ids1 = ids32[:1]
    rows = []  # (name, size bytes, ms batch 1, ms batch 32)

    serve = tf.function(lambda x: model(x, training=False))
    rows.append(("Keras model.predict", None,
                 median_ms(lambda: model.predict(ids1, verbose=0), args.repeats),
                 median_ms(lambda: model.predict(ids32, verbose=0), args.repeats)))
    rows.append(("Keras tf.function", None, median_ms(lambda: serve(ids1).numpy(), args.repeats),
                 median_ms(lambda: serve(ids32).numpy(), args.repeats)))

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        from export.graph import exportable

        saved = exportable(model)
        archive = keras.export.ExportArchive()
        archive.track(saved)
        archive.add_endpoint("token_ids", lambda x: saved(x, training=False),
                             input_signature=[tf.TensorSpec([None, None], tf.int32)])
        archive.write_out(str(folder / "saved_model"), verbose=False)
        loaded = tf.saved_model.load(str(folder / "saved_model"))
        rows.append(("SavedModel", sum(p.stat().st_size for p in (folder / "saved_model").rglob("*")
                                       if p.is_file()),
                     median_ms(lambda: loaded.token_ids(ids1).numpy(), args.repeats),
                     median_ms(lambda: loaded.token_ids(ids32).numpy(), args.repeats)))

        representative = [row for row in ids32[:20]]
        for variant in ("float32", "dynamic_range", "float16", "int8"):
            flatbuffer = export_tflite(model, variant, representative)
            run = tflite_runner(flatbuffer, ids1)
            rows.append((f"TFLite {variant} (fused LSTM)", len(flatbuffer),
                         median_ms(lambda run=run: run(ids1), args.repeats),
                         median_ms(lambda run=run: run(ids32), max(5, args.repeats // 3))))
        loop = while_loop_tflite(model)
        run = tflite_runner(loop, ids1)
        rows.append(("TFLite float32 WHILE loop (baseline)", len(loop),
                     median_ms(lambda: run(ids1), args.repeats),
                     median_ms(lambda: run(ids32), max(5, args.repeats // 3))))

        import onnxruntime

        export_onnx(model, folder / "model.onnx")
        session = onnxruntime.InferenceSession(str(folder / "model.onnx"),
                                               providers=["CPUExecutionProvider"])
        rows.append(("onnxruntime (fused LSTM)", (folder / "model.onnx").stat().st_size,
                     median_ms(lambda: session.run(None, {"token_ids": ids1}), args.repeats),
                     median_ms(lambda: session.run(None, {"token_ids": ids32}), args.repeats)))

    reference = rows[1][2]
    float_size = next(r[1] for r in rows if r[0].startswith("TFLite float32 (fused"))
    print(f"\n{STEPS} tokens, vocabulary {VOCAB}, embedding 128, LSTM 128, medians of "
          f"{args.repeats}; ratios against the Keras tf.function at batch 1 and the float32 "
          "TFLite size\n")
    print("| runtime | size | batch 1 ms | batch 32 ms | batch 1 / tf.function | size / TFLite float32 |")
    print("|---|---|---|---|---|---|")
    for name, size, one, many in rows:
        size_text = f"{size / 1e6:.2f} MB" if size else ""
        ratio = f"{size / float_size:.2f}" if size and name.startswith("TFLite") else ""
        print(f"| {name} | {size_text} | {one:.2f} | {many:.1f} | {one / reference:.2f} | {ratio} |")


if __name__ == "__main__":
    main()
