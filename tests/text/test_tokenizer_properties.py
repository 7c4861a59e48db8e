"""Property tests: arbitrary Unicode never crashes the tokenizers and never splits the twins."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_lstm.text import PyTokenizer, TextTokenizer

# Any valid Unicode text (lone surrogates cannot be encoded as UTF-8 at all).
TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=60)
TF_TOKENIZER, PY_TOKENIZER = TextTokenizer(), PyTokenizer()
TF_MARKED = TextTokenizer(lowercase=False, mark_spaces=True, split_digits=True)
PY_MARKED = PyTokenizer(lowercase=False, mark_spaces=True, split_digits=True)
TF_BIGRAMS, PY_BIGRAMS = TextTokenizer(cjk_bigrams=True), PyTokenizer(cjk_bigrams=True)
# Mostly CJK, so that runs of ideographs are common.
CJK_TEXT = st.text(alphabet=st.one_of(st.sampled_from("质量很好不错日本語 ,!a1"),
                                      st.characters(exclude_categories=("Cs",))), max_size=40)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TEXT, min_size=1, max_size=8))
def test_twins_agree_on_arbitrary_unicode(texts):
    for tf_tokenizer, py_tokenizer in ((TF_TOKENIZER, PY_TOKENIZER), (TF_MARKED, PY_MARKED),
                                       (TF_BIGRAMS, PY_BIGRAMS)):
        in_graph = [[t.decode("utf-8") for t in row]
                    for row in tf_tokenizer.tokenize(texts).to_list()]
        assert in_graph == [py_tokenizer.tokenize(text) for text in texts]


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(CJK_TEXT, min_size=1, max_size=8))
def test_bigram_twins_agree_on_cjk_heavy_text(texts):
    in_graph = [[t.decode("utf-8") for t in row] for row in TF_BIGRAMS.tokenize(texts).to_list()]
    assert in_graph == [PY_BIGRAMS.tokenize(text) for text in texts]


@settings(max_examples=200, deadline=None)
@given(TEXT)
def test_tokens_are_non_empty_and_free_of_whitespace(text):
    for token in PY_TOKENIZER.tokenize(text):
        assert token and not any(ch.isspace() for ch in token)
