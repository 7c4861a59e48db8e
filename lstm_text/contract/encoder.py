"""`TextEncoder`: text → ids by a tokenizer.json document, and nothing else.

The reference implementation of the contract, a second encoder beside
`lstm_text.PyTokenizer`: it is built from the document only (it does not read
`TokenizerConfig` or `lstm_text.rules`), so any rule missing from the
document shows up as a test failure against `PyTokenizer` and the
tensorflow-text tokenizer.
"""

from __future__ import annotations

import bisect
import json
import os
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from lstm_text.contract.spec import FORMAT_VERSION, KIND, ROLES, ContractError

__all__ = ["TextEncoder"]


def _field(document: dict, name: str, kind, where: str):
    if name not in document:
        raise ContractError(f"{where}: field {name!r} is missing")
    value = document[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ContractError(f"{where}: field {name!r} has the wrong type "
                            f"({type(value).__name__})")
    return value


def _ranges(value, name: str, where: str) -> list[tuple[int, int]]:
    if not isinstance(value, list):
        raise ContractError(f"{where}: field {name!r} must be a list of [first, last] code points")
    out = []
    for item in value:
        if (not isinstance(item, list) or len(item) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in item)
                or not 0 <= item[0] <= item[1] <= 0x10FFFF):
            raise ContractError(f"{where}: field {name!r} holds a bad range {item!r}")
        out.append((item[0], item[1]))
    return out


def _char_class(ranges, negate: bool = False) -> str:
    body = "".join(f"\\U{a:08X}" if a == b else f"\\U{a:08X}-\\U{b:08X}" for a, b in ranges)
    return f"[{'^' if negate else ''}{body}]"


class _RangeSet:
    """Membership in sorted, disjoint [first, last] ranges by bisection."""

    def __init__(self, ranges):
        self._ranges = sorted(ranges)
        self._starts = [a for a, _ in self._ranges]

    def __contains__(self, cp: int) -> bool:
        i = bisect.bisect_right(self._starts, cp) - 1
        return i >= 0 and cp <= self._ranges[i][1]


class TextEncoder:
    """Text → token ids by a tokenizer.json document, and nothing else.

    The steps (docs/tokenizer.md gives them in full): remove the `removed`
    characters; NFKC; lower-case; remove again; with a space mark, strip
    whitespace at both ends and turn each whitespace run into " ▁ "; put
    spaces around each CJK character and each character that is none of
    word, space, CJK; with `split_digits`, around each digit; split on
    whitespace; strip apostrophes at token edges; drop empty tokens; CJK
    bigrams; drop stop words; look tokens up (unknown → [UNK]); keep the
    first `max_length`; an empty result becomes [[UNK]].

    Args:
        document: A parsed tokenizer.json.
        source: Where it came from, for error messages.

    Example:

    >>> from lstm_text import TokenizerConfig, Vocabulary
    >>> from lstm_text.contract import tokenizer_document
    >>> vocab = Vocabulary(["[PAD]", "[UNK]", "don't", "like", "it", "!"])
    >>> encoder = TextEncoder(tokenizer_document(TokenizerConfig(), vocab, max_length=100))
    >>> encoder.encode("I don't like it!!")
    [1, 2, 3, 4, 5, 5]
    >>> encoder.decode([2, 3, 4])
    "don't like it"

    An export's file: `TextEncoder.from_json("runs/demo/sentiment/export/tokenizer.json")`.
    """

    def __init__(self, document: dict, source: str = "tokenizer.json"):
        where = source
        if not isinstance(document, dict):
            raise ContractError(f"{where}: not a JSON object")
        version = _field(document, "format_version", int, where)
        if version != FORMAT_VERSION:
            raise ContractError(f"{where}: field 'format_version' is {version}; this reader "
                                f"supports {FORMAT_VERSION}")
        if document.get("kind") != KIND:
            raise ContractError(f"{where}: field 'kind' must be {KIND!r}")
        self.role = _field(document, "role", str, where)
        if self.role not in ROLES:
            raise ContractError(f"{where}: field 'role' must be one of {list(ROLES)}")
        unicode = _field(document, "unicode", dict, where)
        self.unicode_version = _field(unicode, "version", str, f"{where}: unicode")
        unassigned = _ranges(unicode.get("unassigned"), "unicode.unassigned", where)
        if _field(document, "normalization", str, where) != "NFKC":
            raise ContractError(f"{where}: field 'normalization' must be 'NFKC'")
        self.lowercase = _field(document, "lowercase", bool, where)
        sigma = _field(document, "final_sigma", dict, where)
        self._cased = _RangeSet(_ranges(sigma.get("cased"), "final_sigma.cased", where))
        self._ignorable = _RangeSet(_ranges(sigma.get("case_ignorable"),
                                            "final_sigma.case_ignorable", where))
        classes = _field(document, "classes", dict, where)
        names = ("removed", "space", "word", "cjk", "digit")
        ranges = {n: _ranges(classes.get(n), f"classes.{n}", where) for n in names}
        edge = _field(document, "strip_from_word_edges", str, where)
        mark = document.get("space_mark", None)
        if mark is not None and (not isinstance(mark, str) or len(mark) != 1):
            raise ContractError(f"{where}: field 'space_mark' must be one character or null")
        self.space_mark = mark
        self.split_digits = _field(document, "split_digits", bool, where)
        self.cjk_bigrams = _field(document, "cjk_bigrams", bool, where)
        self.stopwords = frozenset(_field(document, "stopwords", list, where))
        self.tokens = _field(document, "vocabulary", list, where)
        if not all(isinstance(t, str) and t for t in self.tokens):
            raise ContractError(f"{where}: field 'vocabulary' must hold non-empty strings")
        self.index = {token: i for i, token in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            raise ContractError(f"{where}: field 'vocabulary' holds a token twice")
        special = _field(document, "special_tokens", dict, where)
        self.special_ids = {}
        for name, entry in special.items():
            ok = (isinstance(entry, dict) and isinstance(entry.get("id"), int)
                  and 0 <= entry["id"] < len(self.tokens)
                  and self.tokens[entry["id"]] == entry.get("token"))
            if not ok:
                raise ContractError(f"{where}: field 'special_tokens.{name}' does not match "
                                    f"the vocabulary")
            self.special_ids[name] = entry["id"]
        for name in ("pad", "oov"):
            if name not in self.special_ids:
                raise ContractError(f"{where}: field 'special_tokens.{name}' is missing")
        truncation = _field(document, "truncation", dict, where)
        self.max_length = truncation.get("max_length")
        if self.max_length is not None and not (isinstance(self.max_length, int)
                                                and self.max_length >= 1):
            raise ContractError(f"{where}: field 'truncation.max_length' must be a positive "
                                f"integer or null")
        if truncation.get("cut") != "end":
            raise ContractError(f"{where}: field 'truncation.cut' must be 'end'")
        self.empty_text_to_oov = _field(document, "empty_text_to_oov", bool, where)
        self.add_start_end = _field(document, "add_start_end", bool, where)
        if self.add_start_end and not {"start", "end"} <= set(self.special_ids):
            raise ContractError(f"{where}: field 'special_tokens' needs 'start' and 'end' "
                                f"with add_start_end")
        padding = _field(document, "padding", dict, where)
        if padding.get("side") != "right" or padding.get("id") != self.special_ids["pad"]:
            raise ContractError(f"{where}: field 'padding' must be right padding with the "
                                f"pad id")
        self.document = document
        self.source = source

        self._unassigned = _RangeSet(unassigned)
        self._removed = re.compile(_char_class(ranges["removed"]))
        space = _char_class(ranges["space"])
        self._space = re.compile(space + "+")
        self._edge_space = re.compile(f"^{space}+|{space}+$")
        self._single = re.compile(f"({_char_class(ranges['cjk'])}|"
                                  f"{_char_class(ranges['word'] + ranges['space'] + ranges['cjk'] + ranges['removed'], negate=True)})")
        self._digit = re.compile(f"({_char_class(ranges['digit'])})")
        self._cjk = re.compile(_char_class(ranges["cjk"]))
        quote = re.escape(edge)
        self._edges = re.compile(f"^[{quote}]+|[{quote}]+$") if edge else None

    @classmethod
    def from_json(cls, path_or_dict: str | os.PathLike | dict) -> TextEncoder:
        """Builds the encoder from a tokenizer.json path or an already parsed document."""
        if isinstance(path_or_dict, dict):
            return cls(path_or_dict, source="tokenizer.json")
        path = Path(path_or_dict)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ContractError(f"{path}: file not found") from None
        except UnicodeDecodeError:
            raise ContractError(f"{path}: not valid UTF-8") from None
        except json.JSONDecodeError as error:
            raise ContractError(f"{path}, line {error.lineno}: not valid JSON ({error.msg})") from None
        return cls(document, source=str(path))

    def fold(self, text: str) -> str:
        """NFKC, then lower-casing (if the document says so), as docs/tokenizer.md defines them.

        Code points unassigned in the document's Unicode version pass through
        both unchanged. Lower-casing is the full per-code-point mapping, except
        that a capital sigma becomes final "ς" by the document's `final_sigma`
        sets (Unicode's Final_Sigma rule with the document's properties).
        """
        # Scanning a large text with a 700-range class is slow in `re`; the set
        # of distinct characters is small, so the stops are found through it.
        chars = set(text)
        unassigned = "".join(sorted(c for c in chars if ord(c) in self._unassigned))
        if unassigned:
            stops = re.compile(f"[{re.escape(unassigned)}]")
            parts, found = stops.split(text), stops.findall(text)
            text = "".join(unicodedata.normalize("NFKC", part) + stop
                           for part, stop in zip(parts, [*found, ""]))
        else:
            text = unicodedata.normalize("NFKC", text)
        if not self.lowercase:
            return text
        if "\u03a3" in text:
            unassigned += "\u03a3"
        if not unassigned:
            return text.lower()  # no context-dependent mapping can apply
        out, last = [], 0
        for match in re.finditer(f"[{re.escape(unassigned)}]", text):
            out.append(text[last:match.start()].lower())
            stop = match.group()
            out.append(self._sigma(text, match.start()) if stop == "\u03a3" else stop)
            last = match.end()
        out.append(text[last:].lower())
        return "".join(out)

    def _sigma(self, text: str, i: int) -> str:
        """Final "ς" if a cased letter precedes and none follows, case-ignorables skipped."""
        j = i - 1
        while j >= 0 and ord(text[j]) in self._ignorable:
            j -= 1
        if j < 0 or ord(text[j]) not in self._cased:
            return "\u03c3"
        j = i + 1
        while j < len(text) and ord(text[j]) in self._ignorable:
            j += 1
        return "\u03c3" if j < len(text) and ord(text[j]) in self._cased else "\u03c2"

    def tokenize(self, text: str) -> list[str]:
        """The tokens of `text` (after bigrams and stop words, before the vocabulary)."""
        text = self._removed.sub("", text)
        text = self.fold(text)
        text = self._removed.sub("", text)
        if self.space_mark is not None:
            text = self._space.sub(f" {self.space_mark} ", self._edge_space.sub("", text))
        text = self._single.sub(r" \1 ", text)
        if self.split_digits:
            text = self._digit.sub(r" \1 ", text)
        text = self._space.sub(" ", text)
        tokens = text.split(" ")
        if self._edges is not None:
            tokens = [self._edges.sub("", t) for t in tokens]
        tokens = [t for t in tokens if t]
        if self.cjk_bigrams:
            tokens = self._bigrams(tokens)
        return [t for t in tokens if t not in self.stopwords]

    def _bigrams(self, tokens: list[str]) -> list[str]:
        cjk = [bool(self._cjk.fullmatch(t)) for t in tokens]
        out = []
        for i, token in enumerate(tokens):
            after = i + 1 < len(tokens) and cjk[i + 1]
            if cjk[i] and after:
                out.append(token + tokens[i + 1])
            elif not (cjk[i] and i > 0 and cjk[i - 1]):
                out.append(token)
        return out

    def encode(self, text: str) -> list[int]:
        """The ids of `text`: cut to `max_length`, an empty text → [OOV] (or wrapped in START/END)."""
        return self.ids(self.tokenize(text))

    def ids(self, tokens: Iterable[str]) -> list[int]:
        """`encode` from tokens already made by `tokenize`."""
        oov = self.special_ids["oov"]
        ids = [self.index.get(token, oov) for token in tokens]
        if self.max_length is not None:
            ids = ids[: self.max_length]
        if not ids and self.empty_text_to_oov:
            ids = [oov]
        if self.add_start_end:
            ids = [self.special_ids["start"], *ids, self.special_ids["end"]]
        return ids

    def encode_batch(self, texts: Iterable[str]) -> np.ndarray:
        """`(batch, time)` int32 ids, right-padded with the pad id to the longest row."""
        rows = [self.encode(text) for text in texts]
        ids = np.full((len(rows), max((len(r) for r in rows), default=0)),
                      self.special_ids["pad"], np.int32)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Ids back to text: tokens joined, space marks → spaces (else joined by single spaces).

        Ids outside the vocabulary are skipped; special tokens are kept as
        they are (a decoder stops at [END] before calling this).
        """
        tokens = [self.tokens[i] for i in map(int, ids) if 0 <= i < len(self.tokens)]
        if self.space_mark is not None:
            return "".join(tokens).replace(self.space_mark, " ")
        return " ".join(tokens)
