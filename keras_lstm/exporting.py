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


TRANSLATION_AGREEMENT = 0.99


def export_translation_run(run_dir, formats=("onnx", "tflite", "saved_model"), max_examples=200):
    """Exports a translation run to RUN/export/ and checks every runtime against Keras.

    Each runtime translates the first `max_examples` sentences of the held-out
    test split greedily; the report gives its agreement with Keras' greedy
    translations, BLEU and chrF, milliseconds per sentence and size on disk.

    Returns:
        `{"rows": [...], "markdown": str}`; also writes export_report.json/.md.

    Raises:
        ExportError: a runtime agrees with Keras on fewer than 99% of sentences.
    """
    import time

    from export.seq2seq import export_translation, sizes
    from export.translation_runtime import load_translator
    from keras_lstm.translation import Translator, read_test_pairs, score_translations

    runs.read_config(run_dir, task="translation")
    out = export_translation(run_dir, formats=tuple(formats))
    sources, references = read_test_pairs(Path(run_dir) / runs.SPLITS_DIR / "test.tsv")
    sources, references = sources[:max_examples], references[:max_examples]
    translator = Translator(run_dir)
    sizes_on_disk = sizes(out)
    rows, expected = [], None
    for backend in ("keras", *formats):
        runtime = translator if backend == "keras" else load_translator(out, backend)
        runtime.translate(sources[:2])  # warm up (tracing, allocation)
        start = time.perf_counter()
        hypotheses = runtime.translate(sources)
        milliseconds = (time.perf_counter() - start) * 1000 / max(len(sources), 1)
        expected = hypotheses if expected is None else expected
        scores = score_translations(hypotheses, references, translator.target_tokenizer)
        rows.append({"runtime": backend, "size_bytes": sizes_on_disk.get(backend),
                     "agreement": float(np.mean([a == b for a, b in zip(hypotheses, expected)])),
                     "bleu": scores["bleu"], "chrf": scores["chrf"],
                     "ms_per_sentence": milliseconds})
    lines = [f"# Translation export report\n\nGreedy decoding of {len(sources)} held-out test "
             "sentences by each runtime; agreement = identical translation to Keras.\n",
             "| runtime | size MB | agreement with Keras | BLEU | chrF | ms / sentence |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        size = "" if row["size_bytes"] is None else f"{row['size_bytes'] / 1e6:.2f}"
        lines.append(f"| {row['runtime']} | {size} | {row['agreement']:.1%} | {row['bleu']:.2f} "
                     f"| {row['chrf']:.2f} | {row['ms_per_sentence']:.2f} |")
    text = "\n".join(lines) + "\n"
    runs.atomic_write_text(out / "export_report.md", text)
    runs.atomic_write_text(out / "export_report.json", json.dumps(
        {"examples": len(sources), "rows": rows}, indent=2) + "\n")
    problems = [f"{row['runtime']} agrees with Keras on {row['agreement']:.1%} of sentences"
                for row in rows if row["agreement"] < TRANSLATION_AGREEMENT]
    if problems:
        raise ExportError(f"{out}: verification failed: " + "; ".join(problems)
                          + " (see export_report.md)")
    return {"rows": rows, "markdown": text, "folder": str(out)}
