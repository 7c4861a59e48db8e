"""Size of the sentiment TFLite models, the embedding's share of it, and accuracy against size.

Usage: python bench/tflite_size.py [--run RUN] [--no-variants] [--no-sweep]
           [--vocab-sizes 2000,8000,20000,60000] [--embedding-dims 16,64,128]
           [--epochs 2] [--max-examples 4000] [--seed 0]

1. Variants. For a trained sentiment run (default: one trained here on the
   embedded reviews with preset "fast"; `--run RUN` reads RUN/export, made by
   `keras-lstm export RUN`), every TFLite variant's file size and
   the part of it that is the embedding table: vocab × dim × bytes per weight,
   read from the flatbuffer (the table's own element type in that variant).
2. Sweep (`--sweep`, the default). For each `--vocab-sizes` × `--embedding-dims`
   pair, a model with preset "reviews-zh" (bidirectional, CJK bigrams) but
   `--epochs` epochs on `--max-examples` of the embedded reviews (0: all; the same
   seeded split for all), exported with `tasks.get("sentiment").export`; its
   held-out test accuracy (Keras and the dynamic_range TFLite model) against
   the float32 and dynamic_range file sizes. The vocabulary is what the
   training split holds up to the cap: "vocab (actual)" says how many rows the
   embedding got.

Prints Markdown tables.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from export.publish import export_run  # noqa: E402
from keras_lstm import (
    runtimes,  # noqa: E402
    tasks,  # noqa: E402
)
from keras_lstm.training import configure, train  # noqa: E402

VARIANTS = ("float32", "dynamic_range", "float16", "int8")
SWEEP_VARIANTS = ("float32", "dynamic_range")


def embedding_table(path, vocab_size, embedding_dim):
    """`(element type, bytes)` of the constant `(vocab_size, embedding_dim)` tensor in a model."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    types = {value: name.lower() for name, value in vars(schema.TensorType).items()
             if not name.startswith("_")}
    found = [(types[t.type], len(model.buffers[t.buffer].data))
             for subgraph in model.subgraphs for t in subgraph.tensors
             if t.shape is not None and list(t.shape) == [vocab_size, embedding_dim]
             and model.buffers[t.buffer].data is not None]
    if len(found) != 1:
        raise SystemExit(f"{path}: expected one ({vocab_size}, {embedding_dim}) constant, "
                         f"found {found}")
    return found[0]


def model_shape(run):
    import json

    model = json.loads((Path(run) / "config.json").read_text(encoding="utf-8"))["model"]
    return model["vocab_size"], model["embedding_dim"]


def export(run, variants):
    export_run(run, formats=["tflite"], quantize=list(variants),
                                  progress=lambda line: None)


def variants_table(run):
    folder = Path(run) / "export"
    missing = [v for v in VARIANTS if not (folder / f"model_{v}.tflite").is_file()]
    if missing:
        raise SystemExit(f"{folder}: no model_{missing[0]}.tflite; run "
                         f"`keras-lstm export {run}` first")
    vocab_size, dim = model_shape(run)
    print(f"\nRun {run}: vocabulary {vocab_size}, embedding dim {dim}\n")
    print("| variant | file size (KiB) | embedding type | embedding (KiB) | embedding share |")
    print("|---|---|---|---|---|")
    for variant in VARIANTS:
        path = folder / f"model_{variant}.tflite"
        size = path.stat().st_size
        kind, table = embedding_table(path, vocab_size, dim)
        print(f"| {variant} | {size / 1024:.1f} | {kind} | {table / 1024:.1f} "
              f"| {table / size:.0%} |", flush=True)


def sweep(vocab_sizes, dims, epochs, max_examples, seed):
    task = tasks.get("sentiment")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for vocab_size in vocab_sizes:
            for dim in dims:
                out = Path(folder) / f"v{vocab_size}_d{dim}"
                config = configure(task, dict(out=str(out), vocab_size=vocab_size,
                                              embedding_dim=dim, epochs=epochs,
                                              max_examples=max_examples, seed=seed),
                                   "reviews-zh", verbose=0)
                start = time.perf_counter()
                train(task, config, verbose=0)
                export(out, SWEEP_VARIANTS)
                seconds = time.perf_counter() - start
                accuracy = task.evaluate(runtimes.load(out, "keras"))["accuracy"]
                quantized = task.evaluate(runtimes.load(
                    out / "export", "tflite", artifact="model_dynamic_range.tflite"))
                sizes = [(out / "export" / f"model_{v}.tflite").stat().st_size
                         for v in SWEEP_VARIANTS]
                actual, _ = model_shape(out)
                rows.append((vocab_size, actual, dim, accuracy, quantized["accuracy"], *sizes,
                             quantized["examples"], seconds))
                print(f"vocab {vocab_size} ({actual}) dim {dim}: accuracy {accuracy:.4f}, "
                      f"float32 {sizes[0] / 1024:.0f} KiB ({seconds:.0f} s)", flush=True)
    print("\n| vocab (cap) | vocab (actual) | dim | test accuracy (Keras) "
          "| test accuracy (dynamic_range) | float32 size (KiB) | dynamic_range size (KiB) "
          "| test texts | train + export (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for cap, actual, dim, accuracy, quantized, f32, dr, n, seconds in rows:
        print(f"| {cap} | {actual} | {dim} | {accuracy:.4f} | {quantized:.4f} "
              f"| {f32 / 1024:.0f} | {dr / 1024:.0f} | {n} | {seconds:.0f} |")


def _ints(text):
    return [int(x) for x in text.split(",")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a trained sentiment run (default: train one, preset fast)")
    parser.add_argument("--variants", action=argparse.BooleanOptionalAction, default=True,
                        help="part 1: the variants of one run")
    parser.add_argument("--sweep", action=argparse.BooleanOptionalAction, default=True,
                        help="part 2: accuracy against size over vocabularies and widths")
    parser.add_argument("--vocab-sizes", type=_ints, default=[2000, 8000, 20000, 60000])
    parser.add_argument("--embedding-dims", type=_ints, default=[16, 64, 128])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-examples", type=int, default=4000,
                        help="sweep: reviews used (0: all 17 363); about 9 minutes for the "
                             "default grid at 4000 on 2 cores")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    if args.variants and args.run:
        variants_table(args.run)
    elif args.variants:
        with tempfile.TemporaryDirectory() as folder:
            task = tasks.get("sentiment")
            run = Path(folder) / "fast"
            train(task, configure(task, dict(out=str(run), seed=args.seed), "fast", verbose=0),
                  verbose=0)
            export(run, VARIANTS)
            variants_table(run)
    if args.sweep:
        sweep(args.vocab_sizes, args.embedding_dims, args.epochs, args.max_examples or None,
              args.seed)


if __name__ == "__main__":
    main()
