"""Sentence-pair files, the CLDR default corpus, and splits by source."""

import pytest

from keras_lstm.core.errors import DataError
from keras_lstm.data.cldr_pairs import default_pairs, generate_pairs
from keras_lstm.data.pairs import read_pairs, split_by_source, unknown_token_share
from keras_lstm.data.rows import SKIP_HINT


def write(tmp_path, content):
    path = tmp_path / "pairs.tsv"
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def test_reads_pairs_ignores_extra_columns_dedupes_and_reverses(tmp_path):
    path = write(tmp_path, "Hi.\t嗨。\tCC-BY 2.0\nHi.\t嗨。\tCC-BY 2.0\nRun!\t跑！\n\n")
    pairs = read_pairs(path)
    assert (pairs.sources, pairs.targets, pairs.duplicates) == (["Hi.", "Run!"], ["嗨。", "跑！"], 1)
    assert read_pairs(path, reverse=True).sources == ["嗨。", "跑！"]


@pytest.mark.parametrize("content, message", [
    ("Hi.\t嗨。\nno tab here\n", "2: no tab (expected source<TAB>target)" + SKIP_HINT),
    ("Hi.\t\n", "1: empty target" + SKIP_HINT),
    (b"Hi.\t\xff\n", "1: not valid UTF-8 (byte 0xff at byte 5 of the line); save the file as "
                       "UTF-8" + SKIP_HINT),
])
def test_bad_lines_are_errors_naming_file_and_line(tmp_path, content, message):
    path = write(tmp_path, content)
    with pytest.raises(DataError) as error:
        read_pairs(path)
    assert str(error.value) == f"{path}:{message}"


def test_no_pairs_is_an_error_naming_the_file(tmp_path):
    path = write(tmp_path, "\n\n")
    with pytest.raises(DataError) as error:
        read_pairs(path)
    assert str(error.value) == f"{path}: no sentence pairs"


def test_skip_bad_rows_counts_them(tmp_path):
    path = write(tmp_path, b"Hi.\t\xe5\x97\xa8\nbroken\nRun!\t\n\xff\tx\nGo.\t\xe8\xb5\xb0\n")
    pairs = read_pairs(path, skip_bad_rows=True)
    assert (pairs.sources, pairs.bad_rows, pairs.read) == (["Hi.", "Go."], 3, 5)
    assert pairs.first_bad == f"{path}:2: no tab (expected source<TAB>target)"


def test_length_filter(tmp_path):
    pairs = read_pairs(write(tmp_path, "a b c d\tx\nshort\t短\n"), max_length=3)
    assert (pairs.sources, pairs.too_long) == (["short"], 1)


def test_split_by_source_keeps_each_source_in_one_split():
    sources = [f"s{i % 50}" for i in range(200)]
    targets = [f"t{i}" for i in range(200)]
    parts = split_by_source(sources, targets, seed=1)
    assert parts == split_by_source(sources, targets, seed=1)
    groups = [set(part[0]) for part in parts]
    assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])
    assert sum(len(part[0]) for part in parts) == 200


def test_cldr_pairs_are_real_localisations_deterministic_and_distinct():
    pairs = generate_pairs("zh", "en", n=3000, seed=5)
    assert pairs == generate_pairs("zh", "en", n=3000, seed=5)
    assert pairs != generate_pairs("zh", "en", n=3000, seed=6)
    assert len({s for s, _ in pairs}) == 3000  # one target per source
    table = dict(pairs)
    full_dates = [(s, t) for s, t in pairs if s.endswith(("星期一", "星期二", "星期三", "星期四",
                                                          "星期五", "星期六", "星期日"))]
    assert full_dates and all(t.split(",")[0] in {"Monday", "Tuesday", "Wednesday", "Thursday",
                                                  "Friday", "Saturday", "Sunday"}
                              for _, t in full_dates)
    assert any(t.endswith(("AM", "PM")) for t in table.values())


def test_cldr_formats_the_notes_example():
    from keras_lstm.data import cldr_pairs

    formatters = cldr_pairs._formatters()
    import datetime

    value = {"date": datetime.date(2026, 3, 3)}
    assert formatters["date_full"](value, "zh") == "2026年3月3日星期二"
    assert formatters["date_full"](value, "en") == "Tuesday, March 3, 2026"


def test_default_pairs_size():
    assert len(default_pairs()) == 30_000


@pytest.mark.shared_data
def test_reads_the_real_tatoeba_file(shared_data):
    pairs = read_pairs(shared_data / "cmn-eng.tsv")
    assert pairs.read == 27_573 and len(pairs.sources) > 27_000
    parts = split_by_source(pairs.sources, pairs.targets)
    assert not set(parts[0][0]) & set(parts[2][0])


def test_split_by_source_is_not_in_file_order():
    """Tatoeba files are sorted by length; the first test pairs must not be the shortest."""
    sources = ["w " * (1 + i // 10) + str(i) for i in range(1000)]  # growing lengths
    parts = split_by_source(sources, list(sources), seed=0)
    for part_sources, _ in parts:
        head = [len(s) for s in part_sources[: len(part_sources) // 4]]
        assert max(head) > sorted(len(s) for s in part_sources)[len(part_sources) // 2]


def test_sentences_holding_splitlines_breaks_stay_one_pair(tmp_path):
    """Only \n ends a line; U+2028 and the like are text, as in the run's own splits/*.tsv."""
    inner = ["\u2028", "\u2029", "\x85", "\x1c", "\x1d", "\x1e", "\x0b", "\x0c"]
    sources = [f"s{i}{c}x" for i, c in enumerate(inner)]
    targets = [f"t{c}{i}" for i, c in enumerate(inner)]
    path = write(tmp_path, "".join(f"{s}\t{t}\n" for s, t in zip(sources, targets)))
    pairs = read_pairs(path)
    assert (pairs.sources, pairs.targets, pairs.read) == (sources, targets, len(inner))


def test_crlf_and_doubled_cr_endings_and_a_bom_are_accepted(tmp_path):
    path = write(tmp_path, b"\xef\xbb\xbfHi.\t\xe5\x97\xa8\r\nRun!\t\xe8\xb7\x91\r\r\n")
    pairs = read_pairs(path)
    assert (pairs.sources, pairs.targets) == (["Hi.", "Run!"], ["嗨", "跑"])


def test_classic_mac_line_endings_are_a_bad_line_not_one_garbled_pair(tmp_path):
    path = write(tmp_path, "Hi.\t嗨。\rRun!\t跑！\r")
    with pytest.raises(DataError) as error:
        read_pairs(path)
    assert str(error.value) == (f"{path}:1: a carriage return (\\r) inside a sentence "
                                "(lines end with \\n or \\r\\n)" + SKIP_HINT)
    pairs = read_pairs(write(tmp_path, "Hi.\t嗨。\na\rb\tc\n"), skip_bad_rows=True)
    assert (pairs.sources, pairs.bad_rows) == (["Hi."], 1)


def test_unknown_token_share():
    from lstm_text import PyTokenizer, Vocabulary

    tokenize = PyTokenizer().tokenize
    vocabulary = Vocabulary.build([tokenize("the film was good"), tokenize("the plot")])
    # 6 tokens ("the", "film", "was", "bad", "the", "acting"), 2 unknown.
    assert unknown_token_share(["The film was bad", "the acting"], tokenize,
                               vocabulary) == pytest.approx(2 / 6)
    # The padding and OOV entries are in the vocabulary but never known tokens.
    assert unknown_token_share(["[UNK] [PAD] film"], str.split, vocabulary) == pytest.approx(2 / 3)
    assert unknown_token_share(["这部电影很好"], tokenize, vocabulary) == 1.0
    assert unknown_token_share(["the film"], tokenize, vocabulary) == 0.0
    assert unknown_token_share(["", "  "], tokenize, vocabulary) == 0.0  # no tokens
    assert unknown_token_share(["a b c d"], str.split, {"a", "b", "c"}) == 0.25
