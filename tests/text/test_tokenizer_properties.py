"""Property tests: arbitrary Unicode never crashes the tokenizers and never splits the twins."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_lstm.text import PyTokenizer, TextTokenizer

# Any valid Unicode text (lone surrogates cannot be encoded as UTF-8 at all).
TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=60)
TF_TOKENIZER, PY_TOKENIZER = TextTokenizer(), PyTokenizer()
TF_MARKED = TextTokenizer(lowercase=False, mark_spaces=True, split_digits=True)
PY_MARKED = PyTokenizer(lowercase=False, mark_spaces=True, split_digits=True)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TEXT, min_size=1, max_size=8))
def test_twins_agree_on_arbitrary_unicode(texts):
    for tf_tokenizer, py_tokenizer in ((TF_TOKENIZER, PY_TOKENIZER), (TF_MARKED, PY_MARKED)):
        in_graph = [[t.decode("utf-8") for t in row]
                    for row in tf_tokenizer.tokenize(texts).to_list()]
        assert in_graph == [py_tokenizer.tokenize(text) for text in texts]


@settings(max_examples=200, deadline=None)
@given(TEXT)
def test_tokens_are_non_empty_and_free_of_whitespace(text):
    for token in PY_TOKENIZER.tokenize(text):
        assert token and not any(ch.isspace() for ch in token)
