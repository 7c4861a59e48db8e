"""`export_model`: a sentiment model in every format, with its metadata, into one folder."""

from keras_lstm.core.schemas import write_metadata

__all__ = ["FORMATS", "artifact_table", "export_model"]

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


def export_model(model, out_dir, *, preprocessor, labels, formats=FORMATS,
                 variants=("float32", "dynamic_range", "float16", "int8"),
                 representative_ids=None):
    """Writes SavedModel, TFLite and ONNX artifacts, the vocabulary and metadata.json to `out_dir`.

    `out_dir` is a fresh folder (`export.publish` moves it into place
    once every artifact is verified).

    Returns:
        The artifact table (see `artifact_table`).
    """
    from export.onnx import export_onnx
    from export.saved_model import export_saved_model
    from export.tflite import BATCH_SIZE, export_tflite
    from keras_lstm.core.errors import ConfigError

    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ConfigError(f"--formats: unknown {', '.join(sorted(unknown))}; expected some of "
                          f"{', '.join(FORMATS)}")
    work = out_dir
    work.mkdir(parents=True, exist_ok=True)
    table = artifact_table(formats, variants)
    if "saved_model" in formats:
        export_saved_model(model, work / "saved_model", preprocessor, labels)
    if "tflite" in formats:
        for variant in variants:
            flatbuffer = export_tflite(model, variant, representative_ids)
            (work / f"model_{variant}.tflite").write_bytes(flatbuffer)
    if "onnx" in formats:
        export_onnx(model, work / "model.onnx")
    metadata = {
        "task": "sentiment",
        "labels": list(labels),
        "preprocessors": {"text": preprocessor.save(work)},
        "artifacts": {name: {"backend": b, "file": f, "quantized": q}
                      for name, (b, f, q) in table.items()},
        "tflite": {"batch_size": BATCH_SIZE, "input": "token_ids int32 (1, length), "
                   "unpadded, length <= max_length; reset_all_variables() per sequence"},
        "onnx": {"input": "token_ids int32 (batch, time), right-padded with 0",
                 "output": "probabilities float32 (batch, classes)"},
        "saved_model": {"serving_default": "texts string (batch,) -> probabilities, labels",
                        "token_ids": "token_ids int32 (batch, time) -> probabilities"},
    }
    write_metadata(work, metadata)
    return table
