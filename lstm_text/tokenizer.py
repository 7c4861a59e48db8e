"""The pure-Python tokenizer: the same tokens as `keras_lstm.text.TextTokenizer`, no TensorFlow."""

import dataclasses
import re
import unicodedata

from lstm_text import rules, stopwords

_PY = {name: re.compile(pattern) for name, pattern in rules.patterns("python").items()}


@dataclasses.dataclass(frozen=True)
class TokenizerConfig:
    """What both tokenizers do; saved in the run folder.

    Args:
        lowercase: Fold case (after NFKC normalisation).
        stopwords: `None`, "english", "chinese" or a list of words to drop
            (negations such as "not", "不", "没" are always kept).
    """

    lowercase: bool = True
    stopwords: str | tuple | None = None

    @classmethod
    def from_dict(cls, config):
        config = dict(config or {})
        if isinstance(config.get("stopwords"), list):
            config["stopwords"] = tuple(config["stopwords"])
        return cls(**config)

    def to_dict(self):
        value = self.stopwords
        return {"lowercase": self.lowercase,
                "stopwords": list(value) if isinstance(value, tuple) else value}


class PyTokenizer:
    """Splits text into tokens by the rules of `lstm_text.rules`.

    Example:

    >>> PyTokenizer().tokenize("I don't like it!! 质量很好 👍")
    ['i', "don't", 'like', 'it', '!', '!', '质', '量', '很', '好', '👍']
    """

    def __init__(self, config: TokenizerConfig | None = None, **kwargs):
        self.config = config or TokenizerConfig(**kwargs)
        self._stopwords = stopwords.resolve(self.config.stopwords)

    def tokenize(self, text: str) -> list[str]:
        text = _PY["ignored"].sub("", text)
        text = unicodedata.normalize("NFKC", text)
        if self.config.lowercase:
            text = text.lower()
        text = _PY["ignored"].sub("", text)
        text = _PY["single"].sub(r" \1 ", text)
        text = _PY["space"].sub(" ", text)
        tokens = (_PY["edge_quotes"].sub("", token) for token in text.split(" "))
        return [t for t in tokens if t and t not in self._stopwords]

    def get_config(self):
        return self.config.to_dict()

    @classmethod
    def from_config(cls, config):
        return cls(TokenizerConfig.from_dict(config))
