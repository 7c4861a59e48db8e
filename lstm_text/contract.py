"""tokenizer.json: the tokenizer contract as data, and the Python twin that reads only it.

An app that receives `model.onnx` or `model.tflite` needs to turn text into
the same ids the model was trained on. `tokenizer.json` holds every rule of
`lstm_text.PyTokenizer` plus the vocabulary as data (character classes as
explicit Unicode code-point ranges, the stop-word list, special tokens,
truncation), so that a port in any language can be written from it and from
`docs/tokenizer.md` alone, and tested against `tokenizer_tests.jsonl`.

`TextEncoder` is the reference implementation of the contract: it is built
from the document only (it does not read `TokenizerConfig` or
`lstm_text.rules`), so any rule missing from the document would show up as a
test failure against `PyTokenizer` and the tensorflow-text tokenizer.
`web/tokenizer.js` is the second implementation.

Unicode: NFKC and lower-casing depend on the Unicode version of the library
that implements them. The document records the version of the Python that
wrote it and the code points that were unassigned in that version; every
implementation passes those code points through normalisation and case
folding unchanged, so a platform with a newer Unicode (a browser, a phone)
gives the same result.
"""

from __future__ import annotations

import bisect
import functools
import json
import re
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

import numpy as np

from keras_lstm.core.errors import ArtifactError  # one error family: the CLI prints it as one line
from keras_lstm.core.files import atomic_write_text

FORMAT_VERSION = 1
KIND = "keras-lstm-tokenizer"
ROLES = ("text", "source", "target")
TOKENIZER_FILE = "tokenizer.json"
GOLDEN_FILE = "tokenizer_tests.jsonl"


class ContractError(ArtifactError):
    """A tokenizer.json (or its golden file, or a JSON Lines input) is malformed or unsupported."""


# --------------------------------------------------------------------------- writing


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


def tokenizer_document(config, vocabulary, max_length: int | None, *, role: str = "text") -> dict:
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


def write_tokenizer_json(path, document: dict) -> Path:
    """Writes `document` to `path` as UTF-8 JSON, through a temporary file and a rename.

    The document is validated first (a `ContractError` leaves no file).

    Returns:
        The path written.
    """
    path = Path(path)
    TextEncoder.from_json(document)  # validate before anything touches the disk
    atomic_write_text(path, json.dumps(document, ensure_ascii=False, indent=1) + "\n", newline="\n")
    return path


# --------------------------------------------------------------------------- reading


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

    >>> encoder = TextEncoder.from_json("export/tokenizer.json")  # doctest: +SKIP
    >>> encoder.encode("I don't like it!!")  # doctest: +SKIP
    [12, 88, 40, 9, 31, 31]
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
    def from_json(cls, path_or_dict) -> TextEncoder:
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


def encoder_for(target) -> TextEncoder:
    """The `TextEncoder` of a tokenizer.json file, an export folder or a run folder.

    A folder gives its `tokenizer.json` (sentiment) or `source_tokenizer.json`
    (translation: the side that takes text), looked for in the folder and
    then in its `export/` subfolder.

    Raises:
        ContractError: naming `target` when no tokenizer.json is found.
    """
    target = Path(target)
    if not target.is_dir():
        return TextEncoder.from_json(target)
    for folder in (target, target / "export"):
        for name in (TOKENIZER_FILE, f"source_{TOKENIZER_FILE}"):
            if (folder / name).is_file():
                return TextEncoder.from_json(folder / name)
    raise ContractError(f"{target}: no {TOKENIZER_FILE} or source_{TOKENIZER_FILE} "
                        f"(in the folder or its export/)")


# --------------------------------------------------------------------------- JSON Lines


def encode_json_lines(encoder: TextEncoder, lines: Iterable[str], *,
                      source: str = "<stdin>") -> Iterator[str]:
    """`{"text": ...}` lines → `{"ids": [...]}` lines (the `keras-lstm tokenize` protocol).

    Blank lines are skipped. Output lines are compact JSON (no spaces), as
    `web/tokenizer.js` writes them.

    Raises:
        ContractError: naming `source` and the line, for a line that is not a
            JSON object with a string field "text".
    """
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ContractError(f"{source}, line {number}: not valid JSON ({error.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise ContractError(f"{source}, line {number}: field 'text' (a string) is missing")
        yield json.dumps({"ids": encoder.encode(record["text"])}, separators=(",", ":"))


def run_json_lines(encoder: TextEncoder, stdin: TextIO | None = None,
                   stdout: TextIO | None = None) -> int:
    """Runs `encode_json_lines` from `stdin` to `stdout`; returns the number of lines written."""
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    count = 0
    for line in encode_json_lines(encoder, stdin):
        stdout.write(line + "\n")
        count += 1
    stdout.flush()
    return count


# --------------------------------------------------------------------------- golden vectors


def golden_cases() -> list[str]:
    """Hard texts every port must get right (the 1 MB text is the last one).

    Emoji and ZWJ sequences, skin tones and flags, combining marks, full-width
    and compatibility forms, mixed and right-to-left scripts, control and
    format characters, case-mapping traps (final sigma, also next to letters
    whose Unicode properties changed after 14.0; dotted I, ß), CJK
    bigram edges, apostrophes, digits, whitespace of every kind, code points
    unassigned in Unicode 14 and a 1 MB text.
    """
    cases = [
        "", " ", "   \t\n ", "\u3000\u00a0\u2028\u2029\u0085", "\r\n\r\n",
        "I don't like it!! 质量很好 👍", "'Great' movie, NOT bad...", "''' '' ' x'y' 'tis rock'n'roll'",
        "👨‍👩‍👧‍👦 family", "🏳️‍🌈 flag 🇫🇷🇯🇵", "👍🏽 thumbs 👍🏿", "❤️ ❤︎ ☺", "a\u200db\u200cc\u2060d\ufeffe",
        "e\u0301 é cafe\u0301 Å Å", "ạ̈ q\u0323\u0307 Z̤̈", "\u0301leading combining", "x\u0308\u0308\u0308",
        "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ１２３！？", "ﬁ ﬂ ﬃ ㎏ ㍿ Ⅻ ½ ² ℌ ℡", "ｶﾀｶﾅ ﾊﾟ ｶﾞ", "①②③ ⑽",
        "ΣΑΣ ΟΔΟΣ. ΣΟΦΟΣ'Σ Σ", "İstanbul ı I i", "STRASSE Straße ẞ", "ǅ ǈ ǋ Ǳ", "ʼn ΐ ǰ",
        "Ａ\u0301 K Ω Å",
        "日本語のテキストと한국어 텍스트", "中文English混合123数字", "质量很好!好", "好", "很好很好",
        "𠀀𠀁 𪚥 丽 龜", "ｶ好", "一 二 三",
        "نص عربي و русский текст", "שָׁלוֹם עולם ١٢٣ ۴۵۶", "\u202eevil\u202c text \u200fRTL\u200e",
        "मानक हिन्दी", "ภาษาไทย", "Ελληνικά ἄλφα", "Հայերեն", "ქართული", "አማርኛ", "ᏣᎳᎩ ꮳꮃꭹ",
        "\x00\x07tab\tnew\nline\r\n", "\x1b[31mred\x1b[0m", "\x7f\x80\x9f\u00ad soft\u00adhyphen",
        "\ufe0f\ufe0e\U000e0001\U000e0067", "\ud7ff\ue000\uf8ff private \U000f0000",
        "@united thanks http://t.co/x #fly $5.99 50% 3:30pm", "1,000,000 3.14 -42 1e10 ０１２",
        "can't won't y'all o'clock rock'n'roll", "NOT not Not nOt", "don’t ‘quoted’ “double”",
        "a\u0378b \u0530 \U0001faf8 \U0001fae8 \U0001cc00 \U0001ccf0 \ua7cb \U000e0080",
        "ΑΣ\u0378 Σ\u0378Α", "ʕΣ ΑʕΣ ΑΣˤ ΑΣ\U0001171e ΑΣ\u0301 ΑΣ'Σ ΣΑ.Σ", "tabs\t\tand\u3000ideographic\u3000spaces", " ▁ marks ▁▁ ",
        "<b>html</b> &amp; [PAD] [UNK] [START] [END]", "￥１００ ＄５ €5 £3 ₹10",
        "🤷‍♀️🧑🏽‍🚀 👩‍❤️‍💋‍👨", "#️⃣ 1️⃣ *️⃣", "ℝ ℕ 𝔸𝕓𝒸 𝟘𝟙",
    ]
    pieces = ["The film was not bad at all, 质量很好 👍🏽 ", "Ｆｕｌｌ ΣΟΦΟΣ e\u0301 ",
              "نص عربي \u200f ", "don't\t'stop'\n", "123 456 ", "\u0000\u200b"]
    unit = "".join(pieces)
    cases.append((unit * (1_000_000 // len(unit) + 1))[:1_000_000])
    return cases


def golden_records(encoder: TextEncoder, texts: Iterable[str]) -> Iterator[dict]:
    """`{"text", "ids", "tokens"}` per text (tokens are for debugging a port)."""
    for text in texts:
        tokens = encoder.tokenize(text)
        yield {"text": text, "ids": encoder.ids(tokens), "tokens": tokens}


def write_golden_vectors(path, encoder: TextEncoder, texts: Iterable[str]) -> Path:
    """Writes tokenizer_tests.jsonl: one `{"text", "ids", "tokens"}` line per text.

    Lines are UTF-8 JSON separated by "\\n" only (texts may hold U+2028, so
    split on "\\n", not on every Unicode line break).

    Args:
        path: The file to write (through a temporary file and a rename).
        encoder: The `TextEncoder` of the tokenizer.json the file goes beside.
        texts: Texts to record; typically `golden_cases()` plus 1 000 or
            more training texts.

    Returns:
        The path written.
    """
    lines = (json.dumps(record, ensure_ascii=False, separators=(",", ":"))
             for record in golden_records(encoder, texts))
    atomic_write_text(path, "".join(line + "\n" for line in lines), newline="\n")
    return Path(path)


def write_tokenizer_files(folder, document: dict, texts: Iterable[str] = (), *,
                          prefix: str = "") -> tuple[Path, Path]:
    """Writes `{prefix}tokenizer.json` and its golden `{prefix}tokenizer_tests.jsonl` into `folder`.

    The golden file holds `texts` (give at least 1 000 training texts) then
    `golden_cases()`, encoded by the `TextEncoder` of the written file.

    Args:
        folder: The export folder.
        document: From `tokenizer_document`.
        texts: Training texts to record.
        prefix: "" for a classifier; "source_" / "target_" for translation.

    Returns:
        The two paths written.
    """
    folder = Path(folder)
    path = write_tokenizer_json(folder / f"{prefix}{TOKENIZER_FILE}", document)
    golden = write_golden_vectors(folder / f"{prefix}{GOLDEN_FILE}", TextEncoder.from_json(path),
                                  [*texts, *golden_cases()])
    return path, golden


def check_golden_vectors(path, encoder: TextEncoder) -> int:
    """Re-encodes every text of a golden file; returns the count or raises on the first mismatch.

    Raises:
        ContractError: naming the file and line of a malformed line or a mismatch.
    """
    path = Path(path)
    count = 0
    with path.open(encoding="utf-8", newline="\n") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                record = json.loads(line)
                text, ids = record["text"], record["ids"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise ContractError(f"{path}, line {number}: not a golden record") from None
            got = encoder.encode(text)
            if got != ids:
                raise ContractError(f"{path}, line {number}: ids {got[:8]}... differ from "
                                    f"{ids[:8]}...")
            count += 1
    return count

