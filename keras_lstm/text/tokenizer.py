"""The in-graph tokenizer (tensorflow-text): the same tokens as `lstm_text.PyTokenizer`."""

import tensorflow as tf
import tensorflow_text as tf_text

from lstm_text import TokenizerConfig, rules, stopwords

__all__ = ["TextTokenizer"]

_RE2 = rules.patterns("re2")


def _cjk_bigrams(tokens):
    """`lstm_text.tokenizer.cjk_bigrams` on a `(batch, None)` ragged batch."""
    flat = tokens.flat_values
    n = tf.size(flat)
    rows = tokens.value_rowids()
    cjk = tf.strings.regex_full_match(flat, _RE2["cjk"])
    same_row = tf.equal(rows[1:], rows[:-1])
    # Whether the next / previous token (in the same text) is CJK.
    after = tf.concat([tf.logical_and(cjk[1:], same_row), [False]], 0)[:n]
    before = tf.concat([[False], tf.logical_and(cjk[:-1], same_row)], 0)[:n]
    following = tf.concat([flat[1:], [""]], 0)[:n]
    pair = tf.logical_and(cjk, after)
    merged = tokens.with_flat_values(tf.where(pair, tf.strings.join([flat, following]), flat))
    drop = tf.logical_and(cjk, tf.logical_and(tf.logical_not(after), before))
    return tf.ragged.boolean_mask(merged, tokens.with_flat_values(tf.logical_not(drop)))


class TextTokenizer(tf_text.Tokenizer):
    """Tokenizes a batch of strings inside a TensorFlow graph.

    Unicode NFKC normalisation, lower-casing, and the splitting rules of
    `lstm_text.rules` (CJK characters as tokens, words, one token per other
    visible character), then optional stop-word removal that keeps negations.
    Works in eager mode, in `tf.data` maps and in SavedModel signatures.

    Example:

    >>> TextTokenizer().tokenize(["I don't like it!", "质量很好"]).to_list()
    [[b'i', b"don't", b'like', b'it', b'!'], [b'\\xe8\\xb4\\xa8', ...]]
    """

    def __init__(self, config: TokenizerConfig | None = None, **kwargs):
        super().__init__()
        self.config = config or TokenizerConfig(**kwargs)
        self._stopwords = sorted(stopwords.resolve(self.config.stopwords))

    def tokenize(self, input):  # noqa: A002 (tf_text.Tokenizer's signature)
        """`(batch,)` strings → `tf.RaggedTensor` of string tokens, `(batch, None)`.

        A scalar string gives a 1-D tensor of its tokens.
        """
        text = tf.convert_to_tensor(input, dtype=tf.string)
        if text.shape.rank == 0:
            return self.tokenize(text[None])[0]
        # Controls go first: ICU's NFKC stops at a NUL byte.
        text = tf.strings.regex_replace(text, _RE2["ignored"], "")
        text = tf_text.normalize_utf8(text, "NFKC")
        if self.config.lowercase:
            text = tf.strings.lower(text, encoding="utf-8")
        text = tf.strings.regex_replace(text, _RE2["ignored"], "")
        if self.config.mark_spaces:
            text = tf.strings.regex_replace(text, _RE2["edge_space"], "")
            text = tf.strings.regex_replace(text, _RE2["space"], rules.SPACE_MARK_REPLACEMENT)
        text = tf.strings.regex_replace(text, _RE2["single"], r" \1 ")
        if self.config.split_digits:
            text = tf.strings.regex_replace(text, _RE2["digit"], r" \1 ")
        text = tf.strings.regex_replace(text, _RE2["space"], " ")
        tokens = tf.strings.split(text, sep=" ")
        tokens = tf.strings.regex_replace(tokens, _RE2["edge_quotes"], "")
        tokens = tf.ragged.boolean_mask(tokens, tf.strings.length(tokens) > 0)
        if self.config.cjk_bigrams:
            tokens = _cjk_bigrams(tokens)
        if self._stopwords:
            stop = tf.constant(self._stopwords)
            is_stop = tf.reduce_any(tf.equal(tokens.flat_values[:, None], stop[None, :]), axis=1)
            tokens = tf.ragged.boolean_mask(tokens, tokens.with_flat_values(tf.logical_not(is_stop)))
        return tokens

    def get_config(self):
        return self.config.to_dict()

    @classmethod
    def from_config(cls, config):
        return cls(TokenizerConfig.from_dict(config))
