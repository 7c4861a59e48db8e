"""Verification: every artifact against the Keras model on held-out texts."""

import json
import statistics
import time
from pathlib import Path

import numpy as np

__all__ = [
    "FLOAT_TOLERANCE",
    "QUANTIZED_ACCURACY_DROP",
    "failures",
    "markdown",
    "verify",
    "write_report",
]

FLOAT_TOLERANCE = 1e-4
QUANTIZED_ACCURACY_DROP = 0.01


def _latency_ms(predict, texts, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict(texts)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), float(np.percentile(times, 95))


def verify(folder, artifacts, texts, label_ids, keras_probabilities, latency_repeats=20):
    """Runs each artifact on `texts`; returns one report row per artifact.

    Args:
        folder: The export folder.
        artifacts: `{name: (backend, artifact_file, quantized)}`.
        texts, label_ids: Held-out texts and their true class ids.
        keras_probabilities: The Keras model's probabilities for `texts`.
    """
    from keras_lstm import runtimes

    label_ids = np.asarray(label_ids)
    keras_labels = keras_probabilities.argmax(axis=1)
    rows = [{
        "artifact": "keras", "file": "../model.keras", "size_bytes": None,
        "max_abs_diff": 0.0, "label_agreement": 1.0,
        "accuracy": float(np.mean(keras_labels == label_ids)), "quantized": False,
    }]
    for name, (backend, file, quantized) in artifacts.items():
        runtime = runtimes.load(folder, backend=backend, artifact=file)
        probabilities = runtime.predict_proba(texts)
        path = Path(folder) / file
        size = (sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
                if path.is_dir() else path.stat().st_size)
        one = texts[:1]
        batch = (texts * 32)[:32]
        p50_1, p95_1 = _latency_ms(runtime.predict_proba, one, latency_repeats)
        p50_32, p95_32 = _latency_ms(runtime.predict_proba, batch, max(3, latency_repeats // 4))
        rows.append({
            "artifact": name, "file": file, "size_bytes": size, "quantized": quantized,
            "max_abs_diff": float(np.abs(probabilities - keras_probabilities).max()),
            "label_agreement": float(np.mean(probabilities.argmax(axis=1) == keras_labels)),
            "accuracy": float(np.mean(probabilities.argmax(axis=1) == label_ids)),
            "latency_ms": {"batch1_p50": p50_1, "batch1_p95": p95_1,
                           "batch32_p50": p50_32, "batch32_p95": p95_32},
        })
    return rows


def failures(rows):
    """Messages for rows that break the limits (float: |Δp| ≤ 1e-4; quantized: ≤ 1 point)."""
    keras_accuracy = rows[0]["accuracy"]
    problems = []
    for row in rows[1:]:
        if not row["quantized"] and row["max_abs_diff"] > FLOAT_TOLERANCE:
            problems.append(f"{row['artifact']} differs from Keras by {row['max_abs_diff']:.2e} "
                            f"(limit {FLOAT_TOLERANCE:.0e})")
        if row["quantized"] and keras_accuracy - row["accuracy"] > QUANTIZED_ACCURACY_DROP:
            problems.append(f"{row['artifact']} loses {100 * (keras_accuracy - row['accuracy']):.1f} "
                            "points of accuracy (limit 1)")
    return problems


def markdown(rows, examples):
    lines = [f"Verified on {examples} held-out texts against the Keras model.", "",
             "| artifact | size | max abs Δp vs Keras | label agreement | accuracy | "
             "p50 / p95 ms, batch 1 | p50 / p95 ms, batch 32 |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        size = f"{row['size_bytes'] / 1024:,.0f} KiB" if row["size_bytes"] else ""
        latency = row.get("latency_ms")
        l1 = f"{latency['batch1_p50']:.2f} / {latency['batch1_p95']:.2f}" if latency else ""
        l32 = f"{latency['batch32_p50']:.1f} / {latency['batch32_p95']:.1f}" if latency else ""
        lines.append(f"| {row['artifact']} | {size} | {row['max_abs_diff']:.1e} | "
                     f"{row['label_agreement']:.4f} | {row['accuracy']:.4f} | {l1} | {l32} |")
    return "\n".join(lines)


def write_report(folder, rows, examples):
    from keras_lstm.core.files import atomic_write_text

    text = markdown(rows, examples)
    atomic_write_text(Path(folder) / "export_report.json",
                      json.dumps({"examples": examples, "artifacts": rows}, indent=2) + "\n")
    atomic_write_text(Path(folder) / "export_report.md", text + "\n")
    return text
