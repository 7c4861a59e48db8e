"""Text → token ids: the one preprocessing step in front of every model, TensorFlow-free.

A `Preprocessor` is a tokenizer configuration, a vocabulary and the rules that
turn a text's tokens into the ids a model reads:

- the ids of its tokens (1 = OOV for a token not in the vocabulary);
- cut to the first `max_length` ids (`None`: keep all);
- with `start_end`, wrapped in the `[START]` and `[END]` ids (a decoder's
  target); otherwise an empty text becomes `[OOV]` (an LSTM needs one step);
- a batch is right-padded with 0.

`keras_lstm.text.GraphPreprocessor` does the same inside a TensorFlow graph
(the `tf.data` pipelines, Keras inference, the SavedModel); the runtimes use
this one. Both are built from the same `get_config()`, which the run folder
and the export's metadata.json keep.

Example:

>>> vocabulary = Vocabulary(["[PAD]", "[UNK]", "good", "film"])
>>> preprocessor = Preprocessor(TokenizerConfig(), vocabulary, max_length=3)
>>> preprocessor(["Good film!", ""])
array([[2, 3, 1],
       [1, 0, 0]], dtype=int32)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from lstm_text.tokenizer import PyTokenizer, TokenizerConfig
from lstm_text.vocabulary import OOV_ID, PAD_ID, Vocabulary

__all__ = ["END", "START", "Preprocessor", "check_texts", "inside", "pad"]

START, END = "[START]", "[END]"

# Where a long text may be cut for `Preprocessor.tokens`: before an ASCII space or a CJK
# unified ideograph. No rule looks across one: NFKC never composes it with what comes
# before (it is a starter that is no composition's second part) and leaves it as it is;
# lower-casing's one contextual rule (final sigma) treats it as the end of a word; it
# ends a token. So a prefix cut there has the text's tokens, up to its last one (which
# may differ: a CJK bigram with the next character, a trailing space mark).
_CUT = re.compile("[ \u4e00-\u9fff]")
_CUT_WINDOW = 1024  # characters searched for a cut, past a prefix's planned length


def inside(folder: str | os.PathLike, name: str, what: str = "file") -> Path:
    """`folder / name`, refusing a name that leads outside `folder` (`..`, an absolute path).

    Names come from metadata.json or config.json, which may be crafted: nothing
    read from them may reach outside their own folder.
    """
    from keras_lstm.core.errors import ArtifactError

    folder = Path(folder)
    if not isinstance(name, str) or not name:
        raise ArtifactError(f"{folder}: {what} name must be a non-empty string, got {name!r}")
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise ArtifactError(f"{folder}: {what} {name!r} is outside the folder")
    return folder / name


class Preprocessor:
    """Tokenizer + vocabulary + maximum length → right-padded int32 ids.

    Args:
        tokenizer: A `TokenizerConfig` (or its dict).
        vocabulary: A `Vocabulary`.
        max_length: Ids kept per text (the first ones); `None` keeps all.
        start_end: Wrap each text's ids in `[START]` … `[END]` (the
            vocabulary must hold both).
        vocabulary_file: The vocabulary's file name in a folder (run or export).
    """

    def __init__(self, tokenizer: TokenizerConfig | dict, vocabulary: Vocabulary, max_length: int | None = None,
                 start_end: bool = False, vocabulary_file: str = "vocabulary.txt"):
        if isinstance(tokenizer, dict):
            tokenizer = TokenizerConfig.from_dict(tokenizer)
        self.tokenizer_config = tokenizer
        self.tokenizer = PyTokenizer(tokenizer)
        self.vocabulary = vocabulary
        self.max_length = max_length
        self.start_end = start_end
        self.vocabulary_file = vocabulary_file
        self._chars_per_token = 1.0  # `tokens` plans its prefixes with it
        if start_end:
            self.start_id, self.end_id = vocabulary.index[START], vocabulary.index[END]

    def get_config(self) -> dict:
        """What rebuilds it beside its vocabulary file (saved in config.json / metadata.json)."""
        return {"tokenizer": self.tokenizer_config.to_dict(), "max_length": self.max_length,
                "start_end": self.start_end, "vocabulary": self.vocabulary_file}

    @classmethod
    def load(cls, folder: str | os.PathLike, config: dict) -> Preprocessor:
        """The preprocessor of `config` with its vocabulary read from `folder`."""
        path = inside(folder, config.get("vocabulary", "vocabulary.txt"), "vocabulary")
        return cls(config["tokenizer"], Vocabulary.load(path), config.get("max_length"),
                   bool(config.get("start_end", False)), path.name)

    def save(self, folder: str | os.PathLike) -> dict:
        """Writes the vocabulary file into `folder`; returns `get_config()`."""
        self.vocabulary.save(Path(folder) / self.vocabulary_file)
        return self.get_config()

    def tokenize(self, text: str) -> list[str]:
        """`text`'s tokens (all of them; `tokens` stops after `max_length`)."""
        return self.tokenizer.tokenize(text)

    def tokens(self, text: str) -> list[str]:
        """`text`'s tokens, or at least its first `max_length` ones (all that `encode` keeps).

        A long text is tokenized by a prefix (see `_CUT`), so the time goes with the kept
        tokens, not with the text (a 1 MB request). The prefix is planned from the
        characters per token of the texts seen so far, with a margin; its last token is
        dropped, and when fewer than `max_length` remain, a prefix planned from this text
        (at least twice as long) is tried, and so on up to the whole text. The plan
        changes only the time: the ids are the same either way (tested).
        """
        limit = self.max_length
        if limit is None:
            return self.tokenizer.tokenize(text)
        size = int(self._chars_per_token * (limit + 2) * 1.1) + 4
        while len(text) > size:
            cut = _CUT.search(text, size, size + _CUT_WINDOW)
            if cut is None:
                size *= 2
                continue
            tokens = self.tokenizer.tokenize(text[:cut.start()])[:-1]
            self._learn(cut.start(), len(tokens))
            if len(tokens) >= limit:
                return tokens
            size = max(2 * size, int(cut.start() / max(len(tokens), 1) * (limit + 2) * 1.25))
        tokens = self.tokenizer.tokenize(text)
        self._learn(len(text), len(tokens))
        return tokens

    def _learn(self, characters, tokens):
        """Follows the characters per token (a moving average; a lost update between
        threads costs nothing but a less good plan)."""
        if tokens:
            self._chars_per_token += (characters / tokens - self._chars_per_token) / 8

    def encode(self, text: str) -> list[int]:
        """One text's ids (cut, wrapped or OOV-filled as the class docstring says)."""
        if not isinstance(text, str):
            raise TypeError(f"expected a text (str), got {type(text).__name__}")
        ids = self.vocabulary.encode(self.tokens(text))[: self.max_length]
        if self.start_end:
            return [self.start_id, *ids, self.end_id]
        return ids or [OOV_ID]

    def encode_batch(self, texts: Iterable[str]) -> list[list[int]]:
        """Each text's ids (unpadded); a `TypeError` names a text that is not a string."""
        return [self.encode(text) for text in check_texts(texts)]

    def __call__(self, texts: Iterable[str]) -> np.ndarray:
        """A batch of texts → `(batch, longest)` int32 ids, right-padded with 0."""
        return pad(self.encode_batch(texts))

    def decode(self, ids: Iterable[int]) -> str:
        """Ids back to text (special tokens dropped; exact spacing with space marks)."""
        special = {PAD_ID, *((self.start_id, self.end_id) if self.start_end else ())}
        return self.tokenizer.detokenize(self.vocabulary.decode(
            [i for i in ids if i not in special]))


def check_texts(texts: Iterable[str]) -> list[str]:
    """`texts` as a list, or a `TypeError` naming the first item that is not a string."""
    if isinstance(texts, str):
        raise TypeError("expected a list of texts, not one string")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text {i} is {type(text).__name__}, expected str")
    return texts


def pad(rows: Sequence[Sequence[int]], length: int | None = None) -> np.ndarray:
    """Right-pads id lists with 0 to `length` (default: the longest)."""
    length = length or max((len(r) for r in rows), default=1)
    out = np.full((len(rows), length), PAD_ID, dtype=np.int32)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row[:length]
    return out
