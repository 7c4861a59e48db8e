"""How many calibration texts the int8 TFLite sentiment model needs.

Usage: python bench/int8_calibration.py RUN [--sizes 100,200,500,1000] [--texts 500]

RUN is an exported sentiment run folder (`keras-lstm demo` writes one to
runs/demo/sentiment). Each model runs through the project's TFLite runtime
(`export.runtimes`, with RUN/export's metadata and vocabulary). For each size, converts the model to int8 TFLite
calibrated on that many texts of the run's held-out test split, and runs it on
the first `--texts` validation texts: label agreement with Keras, the largest
probability difference, and the conversion time. The float32 TFLite model,
converted in the same run, is the baseline. Prints a Markdown table.
"""

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from export import runtimes  # noqa: E402
from export.metadata import METADATA_FILE, VOCABULARY_FILE  # noqa: E402
from export.tflite import export_tflite  # noqa: E402
from keras_lstm.classifier import SentimentClassifier  # noqa: E402
from keras_lstm.data import readers  # noqa: E402


def tflite_probabilities(flatbuffer, export_dir, texts):
    """Runs a flatbuffer on `texts` through `export.runtimes`' TFLite backend."""
    with tempfile.TemporaryDirectory() as folder:
        for name in (METADATA_FILE, VOCABULARY_FILE):
            shutil.copy(export_dir / name, folder)
        path = Path(folder) / "model.tflite"
        path.write_bytes(flatbuffer)
        return runtimes.load(path, backend="tflite").predict_proba(texts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--sizes", default="100,200,500,1000")
    parser.add_argument("--texts", type=int, default=500)
    args = parser.parse_args()

    run = Path(args.run)
    classifier = SentimentClassifier.from_run(run)
    texts = readers.read_labelled_file(run / "splits" / "validation.jsonl").texts[:args.texts]
    calibration = readers.read_labelled_file(run / "splits" / "test.jsonl").texts
    keras = classifier.predict_proba(texts)

    def measure(variant, representative=None):
        start = time.perf_counter()
        flatbuffer = export_tflite(classifier.model, variant, representative_ids=representative)
        seconds = time.perf_counter() - start
        probabilities = tflite_probabilities(flatbuffer, run / "export", texts)
        return (np.mean(probabilities.argmax(1) == keras.argmax(1)),
                np.abs(probabilities - keras).max(), seconds)

    print(f"{len(texts)} validation texts of {run}; calibration texts from its test split\n")
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
