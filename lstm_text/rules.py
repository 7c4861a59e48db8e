"""The tokenization rules, as code-point ranges spelled out once for two regex dialects.

RE2 (tensorflow-text) and Python's `re` disagree on what `\\w`, `\\s` and
Unicode classes mean, and their Unicode tables differ in version, so the
rules use no named classes at all: every class is an explicit list of
ranges, rendered as `\\x{…}` for RE2 and `\\U…` for Python.

After NFKC normalisation and lower-casing, a text is cut into:
- one token per CJK ideograph or kana (Chinese and Japanese have no spaces);
- runs of word characters (letters and digits of the scripts below,
  combining marks, and the apostrophe, so that "don't" stays one token;
  apostrophes at either end of a token are stripped);
- one token per any other visible character (punctuation, symbols, emoji).
Control and zero-width characters are removed; whitespace separates tokens.

Optionally (`cjk_bigrams`), each run of two or more consecutive CJK tokens
becomes its overlapping bigrams ("质量很好" → 质量, 量很, 很好); a lone CJK
character stays a unigram. Chinese words are mostly two characters long, so
bigrams give the model word-like units without a segmenter.
"""

__all__ = ["CJK", "IGNORED", "SPACE", "SPACE_MARK", "SPACE_MARK_REPLACEMENT", "WORD", "patterns"]

# One token per character.
CJK = [
    (0x3040, 0x30FF),  # hiragana, katakana
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0x20000, 0x2FA1F),  # CJK extensions B-F, compatibility supplement
]

# Runs of these form words.
WORD = [
    (0x27, 0x27),  # apostrophe
    (0x30, 0x39),  # 0-9
    (0x61, 0x7A),  # a-z (upper case is folded before)
    (0x41, 0x5A),  # A-Z (kept where a tokenizer does not lower-case)
    (0xAA, 0xAA), (0xB5, 0xB5), (0xBA, 0xBA),
    (0xC0, 0xD6), (0xD8, 0xF6), (0xF8, 0x2AF),  # Latin-1 letters, Latin extended, IPA
    (0x300, 0x36F),  # combining diacritics
    (0x370, 0x3FF),  # Greek
    (0x400, 0x52F),  # Cyrillic
    (0x531, 0x587),  # Armenian
    (0x5D0, 0x5EA),  # Hebrew letters
    (0x620, 0x64A), (0x660, 0x669),  # Arabic letters and digits
    (0x900, 0x97F),  # Devanagari
    (0xE00, 0xE7F),  # Thai
    (0x1100, 0x11FF),  # Hangul jamo
    (0x1E00, 0x1FFF),  # Latin extended additional, Greek extended
    (0xAC00, 0xD7A3),  # Hangul syllables
]

# Separators.
SPACE = [(0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680),
         (0x2000, 0x200A), (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F),
         (0x3000, 0x3000)]

# Removed before anything else: controls, zero-width and format characters,
# variation selectors, surrogates and non-characters.
IGNORED = [(0x00, 0x08), (0x0E, 0x1F), (0x7F, 0x84), (0x86, 0x9F), (0xAD, 0xAD),
           (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0xFE00, 0xFE0F),
           (0xFEFF, 0xFEFF), (0xFFF0, 0xFFFF), (0xE0000, 0xE0FFF)]


# With `mark_spaces`, whitespace between tokens becomes this token.
SPACE_MARK = "\u2581"
SPACE_MARK_REPLACEMENT = " \u2581 "


def _cls(ranges, dialect, negate=False):
    def code(cp):
        return f"\\x{{{cp:X}}}" if dialect == "re2" else f"\\U{cp:08X}"

    body = "".join(code(a) if a == b else f"{code(a)}-{code(b)}" for a, b in ranges)
    return f"[{'^' if negate else ''}{body}]"


def patterns(dialect: str) -> dict[str, str]:
    """The regexes of the rules for `dialect` ("re2" or "python").

    Returns:
        A dict: `ignored` (remove), `single` (one token per match; to be
        surrounded by spaces), `space` (replace by one space), `edge_quotes`
        (strip from each token).
    """
    single = f"({_cls(CJK, dialect)}|{_cls(WORD + SPACE + CJK + IGNORED, dialect, negate=True)})"
    return {
        "ignored": _cls(IGNORED, dialect),
        "single": single,
        "space": _cls(SPACE, dialect) + "+",
        "edge_quotes": "^'+|'+$",
        "edge_space": f"^{_cls(SPACE, dialect)}+|{_cls(SPACE, dialect)}+$",
        "digit": "([0-9])",
        "cjk": _cls(CJK, dialect),
    }
