"""`export_model`: every format into one folder, written atomically."""

import json

from export.metadata import METADATA_FILE, VOCABULARY_FILE

FORMATS = ("saved_model", "tflite", "onnx")


def artifact_table(formats, variants):
    """`{name: (backend, file, quantized)}` of what `export_model` writes."""
    table = {}
    if "saved_model" in formats:
        table["saved_model"] = ("saved_model", "saved_model", False)
    if "tflite" in formats:
        for variant in variants:
            table[f"tflite_{variant}"] = ("tflite", f"model_{variant}.tflite",
                                          variant != "float32")
    if "onnx" in formats:
        table["onnx"] = ("onnx", "model.onnx", False)
    return table


def export_model(model, out_dir, *, tokenizer_config, vocabulary, labels, max_length,
                 formats=FORMATS, variants=("float32", "dynamic_range", "float16", "int8"),
                 representative_ids=None, task="sentiment"):
    """Writes SavedModel, TFLite and ONNX artifacts, vocabulary and metadata to `out_dir`.

    Everything is written to a temporary folder beside `out_dir` and renamed
    into place only when complete; an existing `out_dir` is replaced then.

    Returns:
        The artifact table (see `artifact_table`).
    """
    from export.onnx import export_onnx
    from export.saved_model import export_saved_model
    from export.tflite import BATCH_SIZE, export_tflite
    from keras_lstm.errors import ExportError
    from keras_lstm.runs import atomic_directory

    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ExportError(f"unknown export format(s) {sorted(unknown)}; expected {FORMATS}")
    with atomic_directory(out_dir) as work:
        vocabulary.save(work / VOCABULARY_FILE)
        table = artifact_table(formats, variants)
        if "saved_model" in formats:
            export_saved_model(model, work / "saved_model", tokenizer_config, vocabulary,
                               labels, max_length)
        if "tflite" in formats:
            for variant in variants:
                flatbuffer = export_tflite(model, variant, representative_ids)
                (work / f"model_{variant}.tflite").write_bytes(flatbuffer)
        if "onnx" in formats:
            export_onnx(model, work / "model.onnx")
        metadata = {
            "task": task,
            "labels": list(labels),
            "max_length": max_length,
            "tokenizer": tokenizer_config,
            "vocabulary": VOCABULARY_FILE,
            "artifacts": {name: {"backend": b, "file": f, "quantized": q}
                          for name, (b, f, q) in table.items()},
            "tflite": {"batch_size": BATCH_SIZE, "input": "token_ids int32 (1, length), "
                       "unpadded, length <= max_length; reset_all_variables() per sequence"},
            "onnx": {"input": "token_ids int32 (batch, time), right-padded with 0",
                     "output": "probabilities float32 (batch, classes)"},
            "saved_model": {"serving_default": "texts string (batch,) -> probabilities, labels",
                            "token_ids": "token_ids int32 (batch, time) -> probabilities"},
        }
        (work / METADATA_FILE).write_text(json.dumps(metadata, indent=2, ensure_ascii=False)
                                          + "\n", encoding="utf-8")
    return table
