"""The pure-Python tokenizer: the same tokens as `keras_lstm.text.TextTokenizer`, no TensorFlow."""

import bisect
import dataclasses
import re
import unicodedata
from collections.abc import Iterable, Mapping

from lstm_text import rules, stopwords

__all__ = ["PyTokenizer", "TokenizerConfig", "cjk_bigrams", "detokenize"]

_PY = {name: re.compile(pattern) for name, pattern in rules.patterns("python").items()}
# rules.CJK as sorted bounds [start, end + 1, ...]: a code point is CJK when `bisect`
# puts it at an odd position.
_CJK_BOUNDS = [bound for start, end in sorted(rules.CJK) for bound in (start, end + 1)]


@dataclasses.dataclass(frozen=True)
class TokenizerConfig:
    """What both tokenizers do; saved in the run folder.

    Args:
        lowercase: Fold case (after NFKC normalisation).
        stopwords: `None`, "english", "chinese" or a list of words to drop
            (negations such as "not", "不", "没" are always kept).
        mark_spaces: Keep each run of whitespace between tokens as a "▁"
            token, so that `detokenize` restores the text exactly (used for
            translation targets).
        split_digits: One token per digit (used for translation).
        cjk_bigrams: Replace each run of two or more consecutive CJK tokens
            by its overlapping bigrams; a lone CJK character stays as it is.
    """

    lowercase: bool = True
    stopwords: str | tuple | None = None
    mark_spaces: bool = False
    split_digits: bool = False
    cjk_bigrams: bool = False

    @classmethod
    def from_dict(cls, config: Mapping | None) -> "TokenizerConfig":
        """The config of a `to_dict()` (lists of stop words become tuples again)."""
        config = dict(config or {})
        if isinstance(config.get("stopwords"), list):
            config["stopwords"] = tuple(config["stopwords"])
        return cls(**config)

    def to_dict(self) -> dict:
        """A JSON-ready dict (what config.json and metadata.json keep)."""
        value = self.stopwords
        return {"lowercase": self.lowercase,
                "stopwords": list(value) if isinstance(value, tuple) else value,
                "mark_spaces": self.mark_spaces, "split_digits": self.split_digits,
                "cjk_bigrams": self.cjk_bigrams}


class PyTokenizer:
    """Splits text into tokens by the rules of `lstm_text.rules`.

    Example:

    >>> PyTokenizer().tokenize("I don't like it!! 质量很好 👍")
    ['i', "don't", 'like', 'it', '!', '!', '质', '量', '很', '好', '👍']
    """

    def __init__(self, config: TokenizerConfig | None = None, **kwargs: object):
        self.config = config or TokenizerConfig(**kwargs)
        self._stopwords = stopwords.resolve(self.config.stopwords)

    def tokenize(self, text: str) -> list[str]:
        """The tokens of `text` (after bigrams and stop words)."""
        text = _PY["ignored"].sub("", text)
        if not unicodedata.is_normalized("NFKC", text):  # a quick check, then the work
            text = unicodedata.normalize("NFKC", text)
        if self.config.lowercase:
            text = text.lower()
        text = _PY["ignored"].sub("", text)
        if self.config.mark_spaces:
            text = _PY["space"].sub(rules.SPACE_MARK_REPLACEMENT, _PY["edge_space"].sub("", text))
        # Spaces around each match, as `sub(r" \1 ")` would put them; joining the
        # pieces of a split on the (captured) pattern does it without a template per match.
        text = " ".join(_PY["single"].split(text))
        if self.config.split_digits:
            text = " ".join(_PY["digit"].split(text))
        pieces = _PY["space"].split(text)  # what sub(" ") and then split(" ") would give
        if "'" in text:  # edge_quotes
            tokens = [t for t in (piece.strip("'") for piece in pieces) if t]
        else:
            tokens = [t for t in pieces if t]
        if self.config.cjk_bigrams:
            tokens = cjk_bigrams(tokens)
        if not self._stopwords:
            return tokens
        return [t for t in tokens if t not in self._stopwords]

    def get_config(self) -> dict:
        """The `TokenizerConfig` as a dict (`from_config` rebuilds the tokenizer)."""
        return self.config.to_dict()

    def detokenize(self, tokens: Iterable[str]) -> str:
        """Tokens back to text: exact with `mark_spaces`, else joined by single spaces."""
        return detokenize(tokens, self.config.mark_spaces)

    @classmethod
    def from_config(cls, config: Mapping) -> "PyTokenizer":
        """The tokenizer of a `get_config()`."""
        return cls(TokenizerConfig.from_dict(config))


def cjk_bigrams(tokens: list[str]) -> list[str]:
    """Each run of ≥ 2 consecutive CJK tokens → its overlapping bigrams.

    >>> cjk_bigrams(["很", "好", "!", "好", "a"])
    ['很好', '!', '好', 'a']
    """
    cjk = [len(token) == 1 and bisect.bisect(_CJK_BOUNDS, ord(token)) % 2 == 1
           for token in tokens]
    out = []
    before = False
    for token, here, after, following in zip(tokens, cjk, cjk[1:] + [False], tokens[1:] + [""]):
        if here and after:
            out.append(token + following)
        elif not (here and before):
            out.append(token)
        before = here
    return out


def detokenize(tokens: Iterable[str], mark_spaces: bool = True) -> str:
    """Joins tokens; with space marks ("▁") the original spacing comes back."""
    if mark_spaces:
        return "".join(tokens).replace(rules.SPACE_MARK, " ")
    return " ".join(tokens)
