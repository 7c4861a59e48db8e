"""Serving under load: 8 threads share one runtime and send 10 000 requests.

Usage: python bench/serve_load.py [--requests 10000] [--threads 8]

A small sentiment model is trained on the embedded reviews (the "fast" preset,
what `keras-lstm demo --fast` trains) and exported in a temporary folder; then onnxruntime and TFLite runtimes are
each shared by the threads, every answer is checked against a serial run, and
the throughput and p50/p99 latency are printed as a Markdown table.
"""

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from export.publish import export_run  # noqa: E402
from keras_lstm import (
    runtimes,  # noqa: E402
    tasks,  # noqa: E402
)
from keras_lstm.data.default_reviews import load_default_reviews  # noqa: E402
from keras_lstm.training import configure, train  # noqa: E402


def load_test(runtime, texts, threads, requests):
    serial = {text: runtime.predict_proba([text])[0] for text in set(texts)}
    latencies, mismatches, lock = [], [0], threading.Lock()
    per_thread = requests // threads

    def worker(k):
        own = []
        for i in range(per_thread):
            text = texts[(k * per_thread + i) % len(texts)]
            start = time.perf_counter()
            result = runtime.predict_proba([text])[0]
            own.append((time.perf_counter() - start) * 1000)
            if not np.allclose(result, serial[text], atol=1e-6):
                with lock:
                    mismatches[0] += 1
        with lock:
            latencies.extend(own)

    start = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    seconds = time.perf_counter() - start
    return (len(latencies) / seconds, statistics.median(latencies),
            float(np.percentile(latencies, 99)), mismatches[0], len(latencies))


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=8)
    return parser


def main():
    parser = build_parser()
    args = parser.parse_args()
    texts, _ = load_default_reviews()
    texts = texts[:500]
    with tempfile.TemporaryDirectory() as folder:
        run = Path(folder) / "run"
        task = tasks.get("sentiment")
        train(task, configure(task, {"out": str(run), "seed": 0}, "fast", verbose=0), verbose=0)
        export_run(run, formats=("tflite", "onnx"), quantize=("float32",))  # steps: stderr
        print(f"\n{args.threads} threads, {args.requests} requests of one text each "
              "(reviews, up to 40 tokens)\n")
        print("| runtime | requests/s | p50 ms | p99 ms | answers differing from serial | requests |")
        print("|---|---|---|---|---|---|")
        for backend in ("onnx", "tflite"):
            runtime = runtimes.load(run / "export", backend=backend)
            rate, p50, p99, wrong, n = load_test(runtime, texts, args.threads, args.requests)
            print(f"| {backend} | {rate:,.0f} | {p50:.2f} | {p99:.2f} | {wrong} | {n} |")


if __name__ == "__main__":
    main()
