"""metadata.json: what an app needs beside the artifacts, for both tasks.

```
{"format_version": 2, "task": "sentiment" | "translation",
 "preprocessors": {NAME: {"tokenizer": {...}, "max_length": N | null,
                          "start_end": bool, "vocabulary": "FILE"}},
 "labels": [...],                                    sentiment
 "max_output_length": N, "attention": bool,          translation
 "artifacts": {NAME: {"backend": "onnx" | "tflite" | "saved_model", ...}}}
```

Sentiment has one preprocessor, "text"; translation has "source" and
"target". Each artifact names its file(s) relative to the export folder;
nothing may lead outside it. Version 1 (before both tasks shared this layout)
is read and converted in memory. TensorFlow-free: the runtimes read it.
"""

from pathlib import Path

from keras_lstm.errors import ArtifactError
from keras_lstm.runs import FORMAT_VERSION, check_version, read_json, require

METADATA_FILE = "metadata.json"
VOCABULARY_FILE = "vocabulary.txt"

__all__ = ["ArtifactError", "METADATA_FILE", "FORMAT_VERSION", "read_metadata"]


def read_metadata(folder):
    """Reads EXPORT/metadata.json (any format version, as version 2).

    Raises:
        ArtifactError: not an export folder, not JSON, a version this
            keras-lstm cannot read, or a missing field.
    """
    path = Path(folder) / METADATA_FILE
    if not Path(folder).is_dir() or not path.is_file():
        raise ArtifactError(f"{folder}: not an export folder (no {METADATA_FILE})")
    metadata = read_json(path, ArtifactError)
    check_version(metadata.get("format_version", 1), path, ArtifactError)
    task = require(metadata, "task", path, ArtifactError)
    if task not in ("sentiment", "translation"):
        raise ArtifactError(f"{path}: unknown task {task!r}")
    if metadata.get("format_version", 1) == 1:
        metadata = _from_version_1(metadata, path)
    for field in ("preprocessors", "artifacts", *(("labels",) if task == "sentiment" else
                                                  ("max_output_length", "attention"))):
        require(metadata, field, path, ArtifactError)
    return metadata


def _from_version_1(metadata, path):
    """A version-1 metadata.json as version 2."""
    new = dict(metadata, format_version=FORMAT_VERSION)
    if metadata["task"] == "sentiment":
        new["preprocessors"] = {"text": {
            "tokenizer": require(metadata, "tokenizer", path, ArtifactError),
            "max_length": require(metadata, "max_length", path, ArtifactError),
            "start_end": False, "vocabulary": metadata.get("vocabulary", VOCABULARY_FILE)}}
        require(metadata, "artifacts", path, ArtifactError)
        return new
    new["preprocessors"] = {
        "source": {"tokenizer": require(metadata, "source_tokenizer", path, ArtifactError),
                   "max_length": None, "start_end": False,
                   "vocabulary": "source_vocabulary.txt"},
        "target": {"tokenizer": require(metadata, "target_tokenizer", path, ArtifactError),
                   "max_length": None, "start_end": True, "vocabulary": "target_vocabulary.txt"}}
    new["artifacts"] = {fmt: {"backend": fmt, **metadata[fmt]}
                        for fmt in metadata.get("formats", ["onnx"]) if fmt in metadata}
    return new
