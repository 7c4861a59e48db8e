"""Writing tokenizer.json: the rules of `PyTokenizer` and the vocabulary as data.

The character classes are written as explicit code-point ranges, and the
Unicode properties this Python's `str.lower()` uses for the final sigma are
read off `lower()` itself, so a port needs nothing but the document.
"""

from __future__ import annotations

import functools
import json
import os
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from keras_lstm.core.files import atomic_write_text
from lstm_text.contract.encoder import TextEncoder
from lstm_text.contract.spec import FORMAT_VERSION, KIND, ROLES

if TYPE_CHECKING:
    from lstm_text.tokenizer import TokenizerConfig
    from lstm_text.vocabulary import Vocabulary

__all__ = ["tokenizer_document", "write_tokenizer_json"]


def _to_ranges(code_points: Iterable[int]) -> tuple[tuple[int, int], ...]:
    ranges: list[list[int]] = []
    for cp in code_points:
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return tuple((a, b) for a, b in ranges)


@functools.cache
def _unassigned_ranges() -> tuple[tuple[int, int], ...]:
    """Code points unassigned (general category Cn) in this Python's Unicode tables."""
    return _to_ranges(cp for cp in range(0x110000) if unicodedata.category(chr(cp)) == "Cn")


@functools.cache
def _sigma_context() -> dict[str, tuple[tuple[int, int], ...]]:
    """The Cased and Case_Ignorable code points as this Python's `str.lower()` uses them.

    Python exposes neither property, so both are read off `lower()` itself:
    c is case-ignorable when "A" c "Σ" ends in final "ς" (c was skipped back to
    the cased "A") but "1" c "Σ" does not; c is cased (and not ignorable) when
    "1" c "Σ" ends in "ς". Only these two uses of the properties matter.
    """
    ignorable, cased = [], []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF or unicodedata.category(chr(cp)) == "Cn":
            continue
        char = chr(cp)
        after_digit = ("1" + char + "\u03a3").lower()[-1] == "\u03c2"
        if ("A" + char + "\u03a3").lower()[-1] == "\u03c2" and not after_digit:
            ignorable.append(cp)
        elif after_digit:
            cased.append(cp)
    return {"cased": _to_ranges(cased), "case_ignorable": _to_ranges(ignorable)}


def tokenizer_document(config: TokenizerConfig, vocabulary: Vocabulary, max_length: int | None,
                       *, role: str = "text") -> dict:
    """The tokenizer.json document of a tokenizer configuration and vocabulary.

    Args:
        config: The `lstm_text.TokenizerConfig` the model was trained with.
        vocabulary: Its `lstm_text.Vocabulary` (ids are positions in the list).
        max_length: Most tokens kept per text (the first ones; the end is
            cut), or `None` for no limit (translation).
        role: "text" (a classifier's input), "source" (a translation
            encoder's input) or "target" (a translation decoder's output:
            ids are wrapped in [START] ... [END], and an empty text stays
            empty).

    Returns:
        A JSON-serialisable dict (`format_version` 1), see docs/tokenizer.md.

    Example:

    >>> from lstm_text import TokenizerConfig, Vocabulary
    >>> vocab = Vocabulary(["[PAD]", "[UNK]", "good", "film"])
    >>> doc = tokenizer_document(TokenizerConfig(), vocab, max_length=100)
    >>> TextEncoder.from_json(doc).encode("A good film!")
    [1, 2, 3, 1]
    """
    from lstm_text import rules, stopwords
    from lstm_text.vocabulary import OOV, OOV_ID, PAD, PAD_ID

    if role not in ROLES:
        raise ValueError(f"role must be one of {list(ROLES)}, got {role!r}")
    if max_length is not None and (not isinstance(max_length, int) or max_length < 1):
        raise ValueError(f"max_length must be a positive integer or None, got {max_length!r}")
    tokens = list(vocabulary.tokens)
    special = {"pad": {"token": PAD, "id": PAD_ID}, "oov": {"token": OOV, "id": OOV_ID}}
    if role == "target":
        for name, token in (("start", "[START]"), ("end", "[END]")):
            if token not in vocabulary.index:
                raise ValueError(f"a target vocabulary holds {token}")
            special[name] = {"token": token, "id": vocabulary.index[token]}
    return {
        "format_version": FORMAT_VERSION,
        "kind": KIND,
        "role": role,
        "unicode": {"version": unicodedata.unidata_version, "unassigned": [list(r) for r in _unassigned_ranges()]},
        "normalization": "NFKC",
        "lowercase": bool(config.lowercase),
        "final_sigma": {name: [list(r) for r in ranges]
                        for name, ranges in _sigma_context().items()},
        "classes": {
            "removed": [list(r) for r in rules.IGNORED],
            "space": [list(r) for r in rules.SPACE],
            "word": [list(r) for r in rules.WORD],
            "cjk": [list(r) for r in rules.CJK],
            "digit": [[0x30, 0x39]],
        },
        "strip_from_word_edges": "'",
        "space_mark": rules.SPACE_MARK if config.mark_spaces else None,
        "split_digits": bool(config.split_digits),
        "cjk_bigrams": bool(config.cjk_bigrams),
        "stopwords": sorted(stopwords.resolve(config.stopwords)),
        "special_tokens": special,
        "vocabulary": tokens,
        "truncation": {"max_length": max_length, "cut": "end"},
        "empty_text_to_oov": role != "target",
        "add_start_end": role == "target",
        "padding": {"side": "right", "id": PAD_ID},
    }


def write_tokenizer_json(path: str | os.PathLike, document: dict) -> Path:
    """Writes `document` to `path` as UTF-8 JSON, through a temporary file and a rename.

    The document is validated first (a `ContractError` leaves no file).

    Returns:
        The path written.
    """
    path = Path(path)
    TextEncoder.from_json(document)  # validate before anything touches the disk
    atomic_write_text(path, json.dumps(document, ensure_ascii=False, indent=1) + "\n", newline="\n")
    return path
