"""`Preprocessor.encode` tokenizes a long text by a prefix: the ids must be those of the whole text."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lstm_text.preprocessor import OOV_ID, Preprocessor
from lstm_text.tokenizer import PyTokenizer, TokenizerConfig
from lstm_text.vocabulary import Vocabulary

CONFIGS = [TokenizerConfig(), TokenizerConfig(cjk_bigrams=True),
           TokenizerConfig(lowercase=False, mark_spaces=True, split_digits=True),
           TokenizerConfig(cjk_bigrams=True, stopwords="chinese"),
           TokenizerConfig(stopwords="english")]
# Characters next to which a cut could go wrong: the cut points themselves (space, CJK),
# final sigma, combining marks, apostrophes, compatibility forms NFKC rewrites (full-width
# comma, "ﬁ", "①", "㍱", U+FDFA, which NFKC turns into four words), ignored and other spaces.
PIECES = st.sampled_from([" ", "  ", "质", "量", "很", "好", "不", "的", "日本語", "ΟΔΟΣ", "Σ", "σ",
                          "e\u0301", "\u0301", "'", "don't", "，", "ﬁ", "①", "㍱", "\ufdfa",
                          "\u200b", "\u3000", "\t", "the", "not", "a", "1", "23", "!", "é",
                          "\u1100\u1161", "あ", "👍", "x"])
TEXT = st.lists(PIECES, min_size=20, max_size=400).map("".join)


def reference(preprocessor, text):
    """The ids of the whole text's tokens, cut as `encode` cuts them."""
    ids = preprocessor.vocabulary.encode(preprocessor.tokenizer.tokenize(text))
    ids = ids[: preprocessor.max_length]
    if preprocessor.start_end:
        return [preprocessor.start_id, *ids, preprocessor.end_id]
    return ids or [OOV_ID]


def preprocessor_for(config, texts, max_length, start_end=False):
    """A vocabulary with every token of `texts` (so that a wrong token shows as a wrong id)."""
    tokenizer = PyTokenizer(config)
    tokens = sorted({token for text in texts for token in tokenizer.tokenize(text)})
    special = ["[START]", "[END]"] if start_end else []
    vocabulary = Vocabulary(["[PAD]", "[UNK]", *special, *tokens])
    return Preprocessor(config, vocabulary, max_length, start_end=start_end)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXT, st.integers(1, 40), st.sampled_from(CONFIGS), st.booleans(), st.floats(0.05, 20))
def test_a_prefix_gives_the_ids_of_the_whole_text(text, max_length, config, start_end, plan):
    preprocessor = preprocessor_for(config, [text], max_length, start_end)
    preprocessor._chars_per_token = plan  # what earlier texts taught it: only the time changes
    assert preprocessor.encode(text) == reference(preprocessor, text)
    # Stronger than the ids: what a prefix gives starts the whole text's tokens.
    whole, tokens = preprocessor.tokenizer.tokenize(text), preprocessor.tokens(text)
    assert tokens == whole[: len(tokens)] and len(tokens) >= min(max_length, len(whole))


# Texts where the token before a cut differs from the whole text's: a lone CJK character
# (a bigram with the next one), a space mark, a final sigma, a composed accent.
BOUNDARIES = ["x" * 20 + "!好质量" * 30, "好 " * 60, "a  b " * 40, "ΟΔΟΣ 好" * 40,
              "e\u0301好" * 50, "don't 不好 " * 30, "\ufdfa好" * 40, "①② 好" * 40]


@pytest.mark.parametrize("config", CONFIGS, ids=["default", "bigrams", "marked", "zh", "en"])
def test_every_length_at_the_cut_boundaries(config):
    tokenizer = PyTokenizer(config)
    for text in BOUNDARIES:
        whole = tokenizer.tokenize(text)
        preprocessor = preprocessor_for(config, [text], None)
        for max_length in range(1, 41):
            preprocessor.max_length = max_length
            tokens = preprocessor.tokens(text)
            assert tokens == whole[: len(tokens)], (text[:12], max_length)
            assert len(tokens) >= min(max_length, len(whole))
            assert preprocessor.encode(text) == reference(preprocessor, text)


@pytest.mark.parametrize("max_length", [8, 40, 200])
@pytest.mark.parametrize("config", CONFIGS[:3], ids=["default", "bigrams", "marked"])
def test_default_reviews_give_the_same_ids(config, max_length, monkeypatch):
    from keras_lstm.data.default_reviews import load_default_reviews

    texts = load_default_reviews()[0][:400]
    preprocessor = preprocessor_for(config, texts, max_length)
    lengths = []
    tokenize = preprocessor.tokenizer.tokenize
    monkeypatch.setattr(preprocessor.tokenizer, "tokenize",
                        lambda text: lengths.append(len(text)) or tokenize(text))
    assert preprocessor.encode_batch(texts) == [reference(preprocessor, t) for t in texts]
    if max_length < 200:  # the prefix path ran (a reference call sees the whole text)
        assert sum(1 for n, text in zip(lengths, texts) if n < len(text)) > len(texts) // 2


@pytest.mark.parametrize("text", ["质量很好" * 250_000, "good film " * 100_000,
                                  "a" * 999_999 + " b"], ids=["cjk", "words", "no-cut"])
def test_a_1_mb_text_is_tokenized_by_a_prefix(text, monkeypatch):
    preprocessor = preprocessor_for(TokenizerConfig(cjk_bigrams=True),
                                    [text[:5000], text[-5000:]], 40)
    seen = []
    tokenize = preprocessor.tokenizer.tokenize
    monkeypatch.setattr(preprocessor.tokenizer, "tokenize",
                        lambda text: seen.append(len(text)) or tokenize(text))
    ids = preprocessor.encode(text)
    if text.startswith("a"):  # no cut point in reach: the whole text, one long token
        assert seen == [len(text)] and ids == [OOV_ID, preprocessor.vocabulary.index["b"]]
        return
    assert sum(seen) < 2_000  # characters tokenized, of a million
    assert ids == reference(preprocessor, text)
