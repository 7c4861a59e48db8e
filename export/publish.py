"""Layer 4, `keras-lstm export RUN`: a run's model to every format, verified before it replaces anything.

`publish` has the artifacts written into a fresh folder beside `RUN/export`,
runs each one against the Keras model, and only then moves it into place
(`export_run` calls it with the task's exporter below).
A failed verification keeps the previous `RUN/export` untouched and leaves
the failed artifacts beside it as `RUN/export.failed` for inspection.
"""

import json
import shutil
import time
from pathlib import Path

import numpy as np

from keras_lstm.core import files, schemas
from keras_lstm.core.errors import ExportError
from keras_lstm.core.reporter import Reporter

__all__ = [
    "EXPORT_DIR",
    "FAILED_DIR",
    "TRANSLATION_AGREEMENT",
    "export_run",
    "export_sentiment",
    "export_translation",
    "publish",
    "write_contract",
]

EXPORT_DIR = "export"
FAILED_DIR = "export.failed"
TRANSLATION_AGREEMENT = 0.99
# Where the export steps go unless a caller says (the CLI passes its own reporter's).
_SAY = Reporter().message


def export_run(run_dir: str | Path, formats=None, quantize=None, max_examples: int | None = None,
               progress=None) -> dict:
    """Exports RUN's model to RUN/export/, verified against Keras before it replaces anything.

    Args:
        run_dir: A finished run folder of either task.
        formats: Some of "saved_model", "tflite", "onnx"; default: all.
        quantize: Sentiment's TFLite variants ("float32", "float16", "int8"...).
        max_examples: Held-out examples each artifact is verified on
            (default: 500 texts for sentiment, 200 pairs for translation).
        progress: Called with each line of progress (default: a
            `keras_lstm.core.reporter.Reporter`'s `message`, to stderr).

    Returns:
        The report (`publish`).
    """
    task = schemas.read_config(run_dir)["task"]
    progress = progress or _SAY
    if task == "sentiment":
        return publish(run_dir, lambda work: export_sentiment(
            run_dir, work, formats, quantize, max_examples or 500, progress))
    return publish(run_dir, lambda work: export_translation(
        run_dir, work, formats, max_examples or 200, progress))


def publish(run_dir, build):
    """Runs `build(work)` in a fresh folder beside RUN/export; moves it into place if it verifies.

    Args:
        build: Writes the artifacts into `work`, verifies them, and returns a
            report dict whose "problems" list the failed checks.

    Returns:
        The report, with "folder" set to RUN/export.

    Raises:
        ExportError: a check failed; RUN/export (if any) is left as it was and
            the failed artifacts stay beside it in RUN/export.failed.
    """
    run_dir = Path(run_dir)
    final, failed = run_dir / EXPORT_DIR, run_dir / FAILED_DIR
    with files.atomic_directory(final) as work:
        report = build(work)
        problems = report.get("problems", [])
        if problems:  # kept for inspection; the block raising leaves `final` as it was
            shutil.rmtree(failed, ignore_errors=True)
            work.rename(failed)
            raise ExportError(f"{failed}: verification failed, {final} left as it was: "
                              + "; ".join(problems) + " (see export_report.md there)")
    shutil.rmtree(failed, ignore_errors=True)
    report["folder"] = str(final)
    return report


def write_contract(work, sides, texts, web, progress=_SAY):
    """The tokenizer contract beside the models, and the in-browser page where there is ONNX.

    For each side (`{file prefix: (preprocessor, role)}`): `tokenizer.json`,
    every rule of text → ids as data (docs/tokenizer.md), and
    `tokenizer_tests.jsonl`, golden ids of `texts` and of hard cases, for a
    port (phone, browser) to test itself against.
    """
    from lstm_text.contract import tokenizer_document, write_tokenizer_files

    for prefix, (preprocessor, role) in sides.items():
        document = tokenizer_document(preprocessor.tokenizer_config, preprocessor.vocabulary,
                                      preprocessor.max_length, role=role)
        write_tokenizer_files(work, document, texts if role != "target" else (), prefix=prefix)
    if web:
        from export.web import write_web_page

        _, note = write_web_page(work)
        if note:
            progress(f"web page written without onnxruntime-web: {note}")


def export_sentiment(run_dir, work, formats=None, quantize=None, max_examples=500,
                     progress=_SAY):
    """Writes a sentiment run's artifacts into `work` and verifies each against Keras."""
    from export import verify
    from export.artifacts import FORMATS, artifact_table, export_model
    from export.tflite import VARIANTS
    from keras_lstm.data import readers
    from keras_lstm.inference import SentimentClassifier

    formats = tuple(formats or FORMATS)
    quantize = tuple(quantize or VARIANTS)
    classifier = SentimentClassifier(run_dir)
    table = readers.read_labelled_file(Path(run_dir) / schemas.SPLITS_DIR / "validation.jsonl",
                                       limit=max_examples)
    texts, labels = table.texts, table.labels
    label_ids = [classifier.labels.index(label) for label in labels]
    calibration = Path(run_dir) / schemas.SPLITS_DIR / "calibration.jsonl"
    # Runs without calibration.jsonl calibrate on validation texts (documented).
    calibration_texts = (readers.read_labelled_file(calibration).texts if calibration.is_file()
                         else texts[:100])
    representative = [row[row > 0] for row in classifier.encode(calibration_texts)]
    progress(f"exporting {', '.join(formats)} (TFLite: {', '.join(quantize)}) ...")
    artifacts = export_model(classifier.model, work, preprocessor=classifier.preprocessor,
                             labels=classifier.labels, formats=formats, variants=quantize,
                             representative_ids=representative)
    assert artifacts == artifact_table(formats, quantize)
    text_side = classifier.preprocessor
    write_contract(work, {"": (text_side, "text")}, calibration_texts, "onnx" in formats, progress)
    progress(f"verifying {len(artifacts)} artifacts against Keras on {len(texts)} texts ...")
    keras_probabilities = classifier.predict_proba(texts)
    rows = verify.verify(work, artifacts, texts, label_ids, keras_probabilities)
    text = verify.write_report(work, rows, len(texts))
    return {"rows": rows, "markdown": text, "problems": verify.failures(rows),
            "examples": len(texts),
            "keras_accuracy": float(np.mean(keras_probabilities.argmax(1) ==
                                            np.asarray(label_ids)))}


def export_translation(run_dir, work, formats=None, max_examples=200, progress=_SAY):
    """Writes a translation run's artifacts into `work`; checks every runtime against Keras.

    Each runtime translates the first `max_examples` sentences of the held-out
    test split greedily (`beam=1`, not the default beam search: the SavedModel's
    graph decodes greedily only, and every runtime is compared with the same
    decoding); the report gives its agreement with Keras' greedy translations,
    BLEU and chrF, milliseconds per sentence and size on disk.
    A runtime that agrees on fewer than 99 % of sentences fails the export.
    """
    from export.seq2seq import FORMATS, export_translation, sizes
    from keras_lstm import runtimes
    from keras_lstm.data.pairs import read_pairs
    from keras_lstm.evaluation import score_translations
    from keras_lstm.inference import Translator

    formats = tuple(f for f in (formats or FORMATS) if f != "keras")
    translator = Translator(run_dir)
    progress(f"exporting {', '.join(formats)} ...")
    export_translation(translator, work, formats=formats)
    pairs = read_pairs(Path(run_dir) / schemas.SPLITS_DIR / "test.tsv")
    held_out = read_pairs(Path(run_dir) / schemas.SPLITS_DIR / "validation.tsv")
    sides = {f"{name}_": (preprocessor, name) for name, preprocessor in
             translator.preprocessors.items()}
    write_contract(work, sides, (held_out.sources + pairs.sources)[:1000], "onnx" in formats,
                   progress)
    sources, references = pairs.sources[:max_examples], pairs.targets[:max_examples]
    sizes_on_disk = sizes(work)
    target_tokenizer = translator.preprocessors["target"].tokenizer
    progress(f"verifying {len(formats)} runtimes against Keras on {len(sources)} sentences ...")
    rows, expected = [], None
    for backend in ("keras", *formats):
        runtime = translator if backend == "keras" else runtimes.load(work, backend)
        runtime.translate(sources[:2], beam=1)  # warm up (tracing, allocation)
        start = time.perf_counter()
        hypotheses = runtime.translate(sources, beam=1)
        milliseconds = (time.perf_counter() - start) * 1000 / max(len(sources), 1)
        expected = hypotheses if expected is None else expected
        scores = score_translations(hypotheses, references, target_tokenizer)
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
    files.atomic_write_text(Path(work) / "export_report.md", text)
    files.atomic_write_text(Path(work) / "export_report.json", json.dumps(
        {"examples": len(sources), "rows": rows}, indent=2) + "\n")
    problems = [f"{row['runtime']} agrees with Keras on {row['agreement']:.1%} of sentences"
                for row in rows if row["agreement"] < TRANSLATION_AGREEMENT]
    return {"rows": rows, "markdown": text, "problems": problems}
