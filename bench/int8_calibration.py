"""How many calibration texts the int8 TFLite sentiment model needs.

Usage: python bench/int8_calibration.py RUN [--sizes 100,200,500,1000] [--texts 500]
                                            [--calibration calibration|test]

RUN is an exported sentiment run folder (`keras-lstm demo` writes one to
runs/demo/sentiment). Each model runs through the project's TFLite runtime
(`keras_lstm.runtimes`, with RUN/export's metadata and vocabulary). For each size, converts the
model to int8 TFLite calibrated on that many texts of one of the run's splits (by default
splits/calibration.jsonl, the training texts `keras-lstm export` calibrates on; `--calibration
test` takes the held-out test split), and runs it on the first `--texts` validation texts:
label agreement with Keras, the largest probability difference, and the conversion time. The
float32 TFLite model, converted in the same run, is the baseline. Prints a Markdown table.
"""

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from export.tflite import export_tflite  # noqa: E402
from keras_lstm import runtimes  # noqa: E402
from keras_lstm.data import readers  # noqa: E402
from keras_lstm.inference import SentimentClassifier  # noqa: E402

# The model artifacts of an export folder; the rest (metadata, vocabulary) is what a
# runtime needs beside a model.
ARTIFACTS = ("*.tflite", "*.onnx", "saved_model")


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--sizes", default="100,200,500,1000")
    parser.add_argument("--texts", type=int, default=500)
    parser.add_argument("--calibration", choices=("calibration", "test"), default="calibration",
                        help="the split the calibration texts come from (default: calibration, "
                             "what `keras-lstm export` uses)")
    return parser


def main():
    parser = build_parser()
    args = parser.parse_args()

    run = Path(args.run)
    splits = run / "splits"
    if not (run / "export" / "metadata.json").is_file():
        raise SystemExit(f"{run}/export: not found; run `keras-lstm export {run}` first")
    if not (splits / f"{args.calibration}.jsonl").is_file():
        raise SystemExit(f"{splits}/{args.calibration}.jsonl: not found (a run made before "
                         "that split existed? try --calibration test)")
    classifier = SentimentClassifier(run)
    texts = readers.read_labelled_file(splits / "validation.jsonl").texts[:args.texts]
    calibration = readers.read_labelled_file(splits / f"{args.calibration}.jsonl").texts
    keras = classifier.predict_proba(texts)

    with tempfile.TemporaryDirectory() as folder:
        # A copy of the export without its models: each flatbuffer is served from here.
        probe = Path(folder) / "export"
        shutil.copytree(run / "export", probe, ignore=shutil.ignore_patterns(*ARTIFACTS))

        def measure(variant, representative=None):
            start = time.perf_counter()
            flatbuffer = export_tflite(classifier.model, variant, representative_ids=representative)
            seconds = time.perf_counter() - start
            path = probe / f"model_{variant}.tflite"
            path.write_bytes(flatbuffer)
            probabilities = runtimes.load(path, backend="tflite").predict_proba(texts)
            return (np.mean(probabilities.argmax(1) == keras.argmax(1)),
                    np.abs(probabilities - keras).max(), seconds)

        print(f"{len(texts)} validation texts of {run}; calibration texts from its "
              f"{args.calibration} split ({len(calibration)} texts)\n")
        print("| model | calibration texts | label agreement with Keras | max abs Δp | convert s |")
        print("|---|---|---|---|---|")
        agreement, delta, seconds = measure("float32")
        print(f"| float32 (baseline) | | {agreement:.4f} | {delta:.1e} | {seconds:.1f} |")
        for size in (int(s) for s in args.sizes.split(",")):
            encoded = classifier.encode(calibration[:size])
            agreement, delta, seconds = measure("int8", [row[row > 0] for row in encoded])
            print(f"| int8 | {min(size, len(calibration))} | {agreement:.4f} | {delta:.1e} | "
                  f"{seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
