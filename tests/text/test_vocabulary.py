"""lstm_text.Vocabulary: ids, file round trip, errors."""

import pytest

from lstm_text import Vocabulary
from lstm_text.vocabulary import VocabularyError

TOKENS = [["good", "film", "good"], ["bad", "film", "plot"], ["good"]]


def test_build_orders_by_count_then_token_and_reserves_pad_and_oov():
    vocab = Vocabulary.build(TOKENS, max_size=10, min_count=1)
    assert vocab.tokens == ["[PAD]", "[UNK]", "good", "film", "bad", "plot"]
    assert vocab.encode(["good", "plot", "unseen"]) == [2, 5, 1]
    assert vocab.decode([2, 3]) == ["good", "film"]


def test_max_size_and_min_count():
    assert Vocabulary.build(TOKENS, max_size=4).tokens == ["[PAD]", "[UNK]", "good", "film"]
    assert Vocabulary.build(TOKENS, min_count=2).tokens == ["[PAD]", "[UNK]", "good", "film"]
    assert Vocabulary.build(TOKENS, reserved=("[START]", "[END]")).tokens[:4] == [
        "[PAD]", "[UNK]", "[START]", "[END]"]


def test_file_round_trip(tmp_path):
    vocab = Vocabulary.build(TOKENS + [["质量", "👍"]])
    vocab.save(tmp_path / "vocabulary.txt")
    assert Vocabulary.load(tmp_path / "vocabulary.txt").tokens == vocab.tokens
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


@pytest.mark.parametrize("content, message", [
    (b"[PAD]\n[UNK]\ngood", "truncated"),
    (b"[PAD]\n[UNK]\n\ngood\n", "line 3: empty token"),
    (b"[PAD]\n[UNK]\n\xff\n", "line 3: not valid UTF-8"),
    (b"good\nbad\n", "starts with"),
    (b"[PAD]\n[UNK]\ngood\ngood\n", "each token once"),
])
def test_bad_files_name_the_file_and_line(tmp_path, content, message):
    path = tmp_path / "vocabulary.txt"
    path.write_bytes(content)
    with pytest.raises(VocabularyError, match=message) as error:
        Vocabulary.load(path)
    assert str(path) in str(error.value)


def test_missing_file(tmp_path):
    with pytest.raises(VocabularyError, match="not found"):
        Vocabulary.load(tmp_path / "nope.txt")
