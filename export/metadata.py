"""metadata.json: what an app needs beside an artifact to tokenize and read outputs.

TensorFlow-free: the runtimes read it. Nothing in it is executed or used as a
path outside the export folder.
"""

import json
from pathlib import Path

METADATA_FILE = "metadata.json"
VOCABULARY_FILE = "vocabulary.txt"


class ArtifactError(ValueError):
    """An export folder or artifact is missing, damaged or not what was expected."""


def read_metadata(folder):
    path = Path(folder) / METADATA_FILE
    if not path.is_file():
        raise ArtifactError(f"{folder}: not an export folder (no {METADATA_FILE})")
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArtifactError(f"{path}: not valid JSON ({error})") from None
    for field in ("task", "labels", "max_length", "tokenizer", "artifacts"):
        if field not in metadata:
            raise ArtifactError(f"{path}: field {field!r} is missing")
    return metadata
