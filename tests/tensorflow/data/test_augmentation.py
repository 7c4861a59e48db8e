"""Negation augmentation and the lexicon valences: the rules, their safety, the run folder."""

import json

import numpy as np
import pytest

from keras_lstm.data import augmentation
from keras_lstm.data.augmentation import (
    augment_negation,
    negate_chinese,
    negate_english,
    token_valence,
)

EN = {"helpful": 1, "great": 1, "good": 1, "love": 1, "bad": -1, "rude": -1, "awful": -1,
      "late": -1}
ZH = {"满意": 1, "好用": 1, "不错": 1, "问题": -1, "差": -1, "失望": -1}


@pytest.mark.parametrize("text, label, expected", [
    ("the crew was helpful", "positive", "the crew was not helpful"),
    ("The seat is so awful!", "negative", "The seat is not so awful!"),
    ("I love this airline", "positive", "I don't love this airline"),
    ("@jet thanks, I love it", "positive", "@jet thanks, I don't love it"),
    ("the crew was not helpful", "negative", "the crew was helpful"),
    ("the gate agent wasn't very helpful", "negative", "the gate agent was very helpful"),
    ("never late, never rude", "positive", "late, rude"),
])
def test_english_rules(text, label, expected):
    assert negate_english(text, label, EN)[0] == expected


@pytest.mark.parametrize("text, label", [
    ("the crew was helpful but the food was great", "negative"),  # no word of its side
    ("great crew, the seat was good", "positive"),  # "great" would be left un-negated
    ("why do you love delays", "positive"),  # a question, not a statement
    ("the flight left at noon", "positive"),  # no lexicon word at all
    ("it is not good", "positive"),  # already negated: its side is not positive
])
def test_english_leaves_unsafe_texts_alone(text, label):
    assert negate_english(text, label, EN) is None


@pytest.mark.parametrize("text, label, expected", [
    ("对这次购物很满意。", "positive", "对这次购物很不满意。"),
    ("这款手机好用", "positive", "这款手机不好用"),
    ("没有问题，不差", "positive", "有问题，差"),
    ("质量差，很失望", "negative", "质量不差，很不失望"),
])
def test_chinese_rules(text, label, expected):
    assert negate_chinese(text, label, ZH)[0] == expected


def test_chinese_leaves_unsafe_texts_alone():
    assert negate_chinese("不错，很满意，满意，不错", "positive", ZH) is None  # more than MAX_RULES
    assert negate_chinese("质量一般", "negative", ZH) is None


def test_only_polar_texts_are_flipped_and_recorded():
    texts = ["the crew was helpful", "the seat was awful", "the crew was helpful today",
             "the flight is at noon"]
    labels = ["positive", "negative", "neutral", "neutral"]
    added = augment_negation(texts * 3, labels * 3, "en", max_share=1.0)
    assert added.texts[:2] == ["the crew was not helpful", "the seat was not awful"]
    assert added.labels[:2] == ["negative", "positive"]
    assert added.sources[:2] == [0, 1]
    assert set(added.texts) == {"the crew was not helpful", "the seat was not awful"}  # once each
    assert [row["rules"] for row in added.rows()][:2] == ["negate:helpful", "negate:awful"]


def test_a_word_the_training_split_contradicts_is_not_used():
    # "late" is negative in the lexicon, but here it comes with positive texts only.
    texts = [f"the crew was late {i}" for i in range(10)] + \
            [f"the seat was awful {i}" for i in range(10)]
    labels = ["positive"] * 10 + ["negative"] * 10
    added = augment_negation(texts, labels, "en", max_share=1.0)
    assert all("late" not in rule for rule in added.rules)
    assert len(added.texts) == 10


def test_the_share_added_is_capped_by_a_seeded_sample():
    texts = [f"the crew {i} was helpful" for i in range(40)] + [f"seat {i} was awful"
                                                                 for i in range(40)]
    labels = ["positive"] * 40 + ["negative"] * 40
    first = augment_negation(texts, labels, "en", max_share=0.25, seed=1)
    assert len(first.texts) == 20
    assert first.texts == augment_negation(texts, labels, "en", max_share=0.25, seed=1).texts
    assert first.texts != augment_negation(texts, labels, "en", max_share=0.25, seed=2).texts


def test_lexicons_ship_in_packages():
    english, chinese = augmentation.english_lexicon(), augmentation.chinese_lexicon()
    assert english["good"] == 1 and english["awful"] == -1 and "not" not in english
    assert chinese["满意"] == 1 and chinese["失望"] == -1
    assert not any("不" in word for word in chinese)


def test_token_valence():
    assert token_valence(["[PAD]", "[UNK]", "good", "flight", "awful"], "en") == \
        [0.0, 0.0, 0.475, 0.0, -0.5]
    values = token_valence(["[PAD]", "满意", "失望", "good", "的"], "zh")
    assert values[1] == 1.0 and values[2] == -1.0 and values[3] > 0 and values[4] == 0


@pytest.mark.slow
def test_training_augments_the_training_split_only_and_records_it(tmp_path):
    from keras_lstm import tasks
    from keras_lstm.training import configure, train

    task = tasks.get("sentiment")
    config = configure(task, {"out": str(tmp_path / "run"), "augment": "negation",
                              "lexicon": True, "epochs": 1}, "fast", verbose=0)
    train(task, config, verbose=0)
    run = tmp_path / "run"
    added = [json.loads(line) for line in
             (run / "splits" / "augmented.jsonl").read_text("utf-8").splitlines()]
    assert added and {row["label"] for row in added} == {"positive", "negative"}
    held_out = {json.loads(line)["text"] for name in ("validation", "test")
                for line in (run / "splits" / f"{name}.jsonl").read_text("utf-8").splitlines()}
    assert not held_out & {row["text"] for row in added}
    # The same split, and the same added texts, as augmenting the loaded split directly.
    splits = task.load_data(config)
    expected = augment_negation(*splits.train, "zh", seed=config.seed)
    assert [row["text"] for row in added] == expected.texts
    # The lexicon's valences are frozen: training left them as the vocabulary's lexicon says.
    import keras

    model = keras.models.load_model(run / "model.keras")
    tokens = (run / "vocabulary.txt").read_text("utf-8").splitlines()
    np.testing.assert_allclose(model.get_layer("valence").get_weights()[0][:, 0],
                               token_valence(tokens, "zh"), atol=1e-6)


def test_kinds_add_up_in_order():
    texts = ["the crew was helpful", "the seat was awful"] * 3
    labels = ["positive", "negative"] * 3
    negation = augment_negation(texts, labels, "en")
    phrases = augmentation.lexicon_phrases(texts, labels, "en")
    both = augmentation.augment(texts, labels, "en", ["negation", "phrases"])
    assert negation.texts and phrases.texts
    assert both.texts == negation.texts + phrases.texts
    assert both.labels == negation.labels + phrases.labels
    assert augmentation.augment(texts, labels, "en", []).texts == []


def test_pickled_word_lists_are_read_without_unpickling():
    import pickle  # noqa: F401  (the test may; the package may not: tests/test_security.py)

    data = pickle.dumps(["好", "满意 ", "x" * 300])
    assert augmentation.pickled_strings(data) == ["好", "满意 ", "x" * 300]

    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    with pytest.raises(ValueError, match="not a pickled list of strings"):
        augmentation.pickled_strings(pickle.dumps([Evil()]))


@pytest.mark.parametrize("value", ["negation+sarcasm", "", "Negation"])
def test_an_unknown_augmentation_is_one_config_error(value):
    from keras_lstm.core.errors import ConfigError
    from keras_lstm.tasks.config import SentimentConfig

    with pytest.raises(ConfigError, match="--augment: expected none, or some of negation, "
                                          "contrast, phrases joined by '\\+'"):
        SentimentConfig(out="run", augment=value).validate()
    assert SentimentConfig(out="run", augment="phrases+negation").validate()
