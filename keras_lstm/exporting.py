"""`keras-lstm export RUN`: a run folder's model to every format, verified against Keras."""

import json
from pathlib import Path

import numpy as np

from keras_lstm import runs
from keras_lstm.errors import ExportError

EXPORT_DIR = "export"


def export_run(run_dir, formats=("saved_model", "tflite", "onnx"),
               quantize=("float32", "dynamic_range", "float16", "int8"), max_examples=500):
    """Exports RUN/model.keras to RUN/export/ and verifies every artifact.

    Returns:
        `{"rows": [...], "markdown": str}`; also writes export_report.json/.md.

    Raises:
        ExportError: an artifact breaks the limits (float: |Δp| > 1e-4 vs Keras;
            quantized: more than 1 point of accuracy lost).
    """
    from export import verify
    from export.artifacts import artifact_table, export_model
    from keras_lstm.classifier import SentimentClassifier
    from keras_lstm.data import readers

    config = runs.read_config(run_dir, task="sentiment")
    classifier = SentimentClassifier.from_run(run_dir)
    split = Path(run_dir) / runs.SPLITS_DIR / "validation.jsonl"
    table = readers.read_labelled_file(split)
    texts, labels = table.texts[:max_examples], table.labels[:max_examples]
    label_ids = [classifier.labels.index(label) for label in labels]
    calibration = Path(run_dir) / runs.SPLITS_DIR / "calibration.jsonl"
    calibration_texts = (readers.read_labelled_file(calibration).texts if calibration.is_file()
                         else texts[:100])  # runs trained before calibration.jsonl existed
    representative = [row[row > 0] for row in classifier.encode(calibration_texts)]
    out = Path(run_dir) / EXPORT_DIR
    artifacts = export_model(
        classifier.model, out, tokenizer_config=config["tokenizer"],
        vocabulary=classifier.vocabulary, labels=classifier.labels,
        max_length=config["max_length"], formats=formats, variants=quantize,
        representative_ids=representative)
    assert artifacts == artifact_table(formats, quantize)
    keras_probabilities = classifier.predict_proba(texts)
    rows = verify.verify(out, artifacts, texts, label_ids, keras_probabilities)
    text = verify.write_report(out, rows, len(texts))
    problems = verify.failures(rows)
    if problems:
        raise ExportError(f"{out}: verification failed: " + "; ".join(problems)
                          + " (see export_report.md)")
    return {"rows": rows, "markdown": text, "report": json.loads(
        (out / "export_report.json").read_text())} | {"examples": len(texts),
                                                      "keras_accuracy": float(np.mean(
                                                          keras_probabilities.argmax(1) ==
                                                          np.asarray(label_ids)))}
