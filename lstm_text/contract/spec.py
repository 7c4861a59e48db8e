"""The tokenizer contract's constants (format version, kind, roles, file names) and its error."""

from __future__ import annotations

from keras_lstm.core.errors import ArtifactError  # one error family: the CLI prints it as one line

__all__ = ["FORMAT_VERSION", "GOLDEN_FILE", "KIND", "ROLES", "TOKENIZER_FILE", "ContractError"]

FORMAT_VERSION = 1
KIND = "keras-lstm-tokenizer"
ROLES = ("text", "source", "target")
TOKENIZER_FILE = "tokenizer.json"
GOLDEN_FILE = "tokenizer_tests.jsonl"


class ContractError(ArtifactError):
    """A tokenizer.json (or its golden file, or a JSON Lines input) is malformed or unsupported."""
