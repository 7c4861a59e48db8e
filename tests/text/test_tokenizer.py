"""The in-graph tokenizer and its pure-Python twin give the same tokens."""

import subprocess
import sys

import pytest

from keras_lstm.data.default_reviews import load_default_reviews
from keras_lstm.text import PyTokenizer, TextTokenizer, TokenizerConfig

TRICKY = [
    "I don't like it!! 质量很好 👍",
    "'Great' movie, NOT bad...",
    "Ｆｕｌｌwidth ＡＢＣ１２３",
    "",
    "   \t\n ",
    "a\u200db\ufeffc",
    "ΣΑΣ ÖL İstanbul ß ﬁ",
    "\x00\x07tab\tnew\nline\r\n",
    "👨‍👩‍👧 e\u0301 ❤️",
    "@united thanks http://t.co/x #fly $5.99 50% 3:30pm",
    "日本語のテキストと한국어 텍스트",
    "نص عربي و русский текст",
    "''' '' ' x'y'",
]


def tf_tokens(tokenizer, texts):
    return [[t.decode("utf-8") for t in row] for row in tokenizer.tokenize(texts).to_list()]


@pytest.mark.parametrize("config", [
    TokenizerConfig(), TokenizerConfig(stopwords="english"), TokenizerConfig(stopwords="chinese"),
    TokenizerConfig(lowercase=False, mark_spaces=True, split_digits=True),
    TokenizerConfig(cjk_bigrams=True), TokenizerConfig(cjk_bigrams=True, stopwords="chinese"),
], ids=["plain", "english-stopwords", "chinese-stopwords", "cased-spaces-digits", "cjk-bigrams",
        "cjk-bigrams-stopwords"])
def test_twins_agree_on_every_default_text_and_tricky_strings(config):
    texts, _ = load_default_reviews()
    texts = texts + TRICKY
    expected = tf_tokens(TextTokenizer(config), texts)
    python = PyTokenizer(config)
    mismatches = [(t, e) for t, e in zip(texts, expected) if python.tokenize(t) != e]
    assert not mismatches, mismatches[:3]


@pytest.mark.parametrize("lowercase", [True, False])
def test_rules(lowercase):
    tokenizer = PyTokenizer(lowercase=lowercase)
    tokens = tokenizer.tokenize("I don't like 'it'!! 质量很好 👍 Café")
    word = "i" if lowercase else "I"
    cafe = "café" if lowercase else "Café"
    assert tokens == [word, "don't", "like", "it", "!", "!", "质", "量", "很", "好", "👍", cafe]
    assert tf_tokens(TextTokenizer(lowercase=lowercase),
                     ["I don't like 'it'!! 质量很好 👍 Café"])[0] == tokens


@pytest.mark.parametrize("text, expected", [
    ("质量很好!", ["质量", "量很", "很好", "!"]),
    ("好", ["好"]),
    ("好!坏", ["好", "!", "坏"]),
    ("ok 不错 ok 中", ["ok", "不错", "ok", "中"]),
    ("日本語のテキスト", ["日本", "本語", "語の", "のテ", "テキ", "キス", "スト"]),
    ("no cjk here", ["no", "cjk", "here"]),
    ("", []),
])
def test_cjk_bigrams(text, expected):
    assert PyTokenizer(cjk_bigrams=True).tokenize(text) == expected
    assert tf_tokens(TextTokenizer(cjk_bigrams=True), [text, "填充", ""])[0] == expected


def test_a_scalar_string_gives_its_tokens():
    tokenizer = TextTokenizer(cjk_bigrams=True, stopwords="chinese")
    text = "这个质量不是很好 ok"
    tokens = [t.decode("utf-8") for t in tokenizer.tokenize(text).numpy()]
    assert tokens == tf_tokens(tokenizer, [text])[0] == PyTokenizer(tokenizer.config).tokenize(text)


def test_stopwords_keep_negations():
    english = PyTokenizer(stopwords="english").tokenize("This is not the best, it is never good")
    assert english == ["not", "best", ",", "never", "good"]
    chinese = PyTokenizer(stopwords="chinese").tokenize("这个不是很好，我没有买")
    assert "不" in chinese and "没" in chinese and "这" not in chinese


def test_config_round_trip():
    tokenizer = TextTokenizer(stopwords=("foo", "bar"), lowercase=False, cjk_bigrams=True)
    again = TextTokenizer.from_config(tokenizer.get_config())
    assert again.config == tokenizer.config
    assert PyTokenizer.from_config(tokenizer.get_config()).config == tokenizer.config


def test_unknown_stopword_list_is_an_error():
    with pytest.raises(ValueError, match="stopwords must be one of"):
        PyTokenizer(stopwords="klingon")


def test_python_twin_and_vocabulary_do_not_import_tensorflow():
    code = ("import sys, lstm_text; from lstm_text import PyTokenizer, Vocabulary; "
            "PyTokenizer().tokenize('好 ok'); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("text", ["Tuesday, March 3, 2026", "2026年3月3日 15:30:00",
                                  "$1,234.50", "3:30 PM", "Ünïcode 文字 mixed"])
def test_marked_spaces_make_detokenize_exact(text):
    tokenizer = PyTokenizer(lowercase=False, mark_spaces=True, split_digits=True)
    assert tokenizer.detokenize(tokenizer.tokenize(text)) == text
    assert tf_tokens(TextTokenizer(tokenizer.config), [text])[0] == tokenizer.tokenize(text)
