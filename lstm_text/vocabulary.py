"""Token ↔ id mapping, stored as a plain text file (line number = id)."""

from __future__ import annotations

import collections
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from keras_lstm.core.errors import DataError
from keras_lstm.core.files import atomic_write_text

__all__ = ["OOV", "OOV_ID", "PAD", "PAD_ID", "Vocabulary", "VocabularyError"]

PAD, OOV = "[PAD]", "[UNK]"
PAD_ID, OOV_ID = 0, 1


class VocabularyError(DataError):
    """A vocabulary file is missing or malformed."""


class Vocabulary:
    """Ids for tokens: 0 is padding, 1 is every token not in the vocabulary.

    Example:

    >>> vocab = Vocabulary.build([["good", "film"], ["bad", "film"]], max_size=10, min_count=1)
    >>> vocab.tokens
    ['[PAD]', '[UNK]', 'film', 'bad', 'good']
    >>> vocab.encode(["good", "plot"])
    [4, 1]
    """

    def __init__(self, tokens: Iterable[str]):
        tokens = list(tokens)
        if tokens[:2] != [PAD, OOV]:
            raise VocabularyError(f"a vocabulary starts with {PAD} and {OOV}, got {tokens[:2]}")
        self.tokens = tokens
        self.index = {token: i for i, token in enumerate(tokens)}
        if len(self.index) != len(tokens):
            raise VocabularyError("a vocabulary has each token once")

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def build(cls, token_lists: Iterable[Iterable[str]], max_size: int = 20_000,
              min_count: int = 1, reserved: Iterable[str] = ()) -> Vocabulary:
        """Counts tokens; keeps the `max_size` most frequent seen `min_count` times.

        Ties are broken by the token itself, so the result is deterministic.
        `reserved` tokens (e.g. start/end markers) come right after PAD and OOV.
        """
        counts = collections.Counter(token for tokens in token_lists for token in tokens)
        return cls.from_counts(counts, max_size, min_count, reserved)

    @classmethod
    def from_counts(cls, counts: Mapping[str, int], max_size: int = 20_000,
                    min_count: int = 1, reserved: Iterable[str] = ()) -> Vocabulary:
        """`build` from `{token: count}` (a corpus counted in one streaming pass)."""
        special = [PAD, OOV, *reserved]
        ranked = sorted((t for t, n in counts.items() if n >= min_count and t not in special),
                        key=lambda t: (-counts[t], t))
        return cls(special + ranked[: max(0, max_size - len(special))])

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """The ids of `tokens` (1, the OOV id, for a token not in the vocabulary)."""
        return [self.index.get(token, OOV_ID) for token in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """The tokens of `ids` (ids outside the vocabulary are skipped)."""
        return [self.tokens[i] for i in ids if 0 <= i < len(self.tokens)]

    def save(self, path: str | os.PathLike) -> None:
        """Writes one token per line, through a temporary file."""
        for token in self.tokens:
            if "\n" in token or "\r" in token:
                raise VocabularyError(f"token {token!r} holds a line break")
        atomic_write_text(path, "".join(token + "\n" for token in self.tokens), newline="\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocabulary:
        """The vocabulary of a file written by `save`; one `VocabularyError` line if damaged."""
        path = Path(path)
        try:
            text = path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            raise VocabularyError(f"{path}: vocabulary file not found") from None
        except UnicodeDecodeError as error:
            line = path.read_bytes()[: error.start].count(b"\n") + 1
            raise VocabularyError(f"{path}, line {line}: not valid UTF-8") from None
        if not text.endswith("\n"):
            raise VocabularyError(f"{path}: truncated (the last line has no newline)")
        tokens = text[:-1].split("\n")
        for number, token in enumerate(tokens, start=1):
            if token == "":
                raise VocabularyError(f"{path}, line {number}: empty token")
        try:
            return cls(tokens)
        except VocabularyError as error:
            raise VocabularyError(f"{path}: {error}") from None
