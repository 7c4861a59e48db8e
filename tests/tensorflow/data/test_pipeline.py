"""The tf.data pipeline and the preprocessors: ids, padding, bucketing, determinism, and
the in-graph preprocessor against its pure-Python twin."""

import numpy as np
import pytest
import tensorflow as tf

from keras_lstm.data.default_reviews import load_default_reviews
from keras_lstm.data.pipeline import make_dataset, make_pair_dataset
from keras_lstm.text import (
    GraphPreprocessor,
    Preprocessor,
    PyTokenizer,
    TokenizerConfig,
    Vocabulary,
)

TEXTS = ["good film", "不好", "", "bad bad film film film", "ok !"] * 8
LABELS = [0, 1, 0, 1, 0] * 8


def build(max_length=3, **kwargs):
    vocab = Vocabulary.build([PyTokenizer().tokenize(t) for t in TEXTS], reserved=("[START]",
                                                                                   "[END]"))
    return Preprocessor(TokenizerConfig(), vocab, max_length, **kwargs)


def batches(seed, max_length=3):
    dataset = make_dataset(TEXTS, LABELS, GraphPreprocessor(build(max_length)), batch_size=4,
                           seed=seed)
    return [(x.numpy(), y.numpy()) for x, y in dataset]


def test_batches_are_right_padded_cut_and_cover_every_example():
    got = batches(seed=1)
    assert sum(len(y) for _, y in got) == len(TEXTS)
    expected = {tuple(row[row > 0]) for row in build(3)(TEXTS)}
    for ids, _ in got:
        assert ids.dtype == np.int32 and ids.shape[1] <= 3
        for row in ids:
            length = int((row > 0).sum())
            assert np.all(row[:length] > 0) and np.all(row[length:] == 0)  # right-padded
            assert tuple(row[:length]) in expected
        assert (ids > 0).sum(axis=1).max() == ids.shape[1]  # padded to the longest only


def test_seed_fixes_the_order_and_the_epoch_reshuffles():
    first, again, other = batches(1), batches(1), batches(2)
    flat = lambda bs: [tuple(r) for x, _ in bs for r in x]  # noqa: E731
    assert flat(first) == flat(again)
    assert flat(first) != flat(other)


@pytest.mark.parametrize("config", [dict(max_length=50), dict(max_length=None),
                                    dict(max_length=7, start_end=True)])
def test_python_preprocessor_equals_graph_preprocessor_on_default_texts(config):
    texts, _ = load_default_reviews()
    texts = texts[:3000]
    vocab = Vocabulary.build([PyTokenizer().tokenize(t) for t in texts], max_size=3000,
                             reserved=("[START]", "[END]"))
    python = Preprocessor(TokenizerConfig(), vocab, **config)
    np.testing.assert_array_equal(GraphPreprocessor(python)(tf.constant(texts)).numpy(),
                                  python(texts))


def test_empty_text_becomes_one_oov_token_and_a_target_only_its_markers():
    assert build(5)(["", "   "]).tolist() == [[1], [1]]
    assert GraphPreprocessor(build(5))(tf.constant(["", "   "])).numpy().tolist() == [[1], [1]]
    target = build(5, start_end=True)
    start, end = target.start_id, target.end_id
    assert target(["", "good"]).tolist() == [[start, end, 0], [start, target.vocabulary.index[
        "good"], end]]


def test_preprocessor_config_round_trips_through_its_folder(tmp_path):
    preprocessor = build(4)
    config = preprocessor.save(tmp_path)
    again = Preprocessor.load(tmp_path, config)
    assert again.get_config() == config and again(TEXTS).tolist() == preprocessor(TEXTS).tolist()


@pytest.mark.parametrize("name", ["../vocabulary.txt", "/etc/passwd", ""])
def test_a_vocabulary_path_outside_the_folder_is_refused(tmp_path, name):
    from keras_lstm.core.errors import ArtifactError

    config = {**build(4).save(tmp_path / "inner"), "vocabulary": name}
    with pytest.raises(ArtifactError, match="outside the folder|non-empty string"):
        Preprocessor.load(tmp_path / "inner", config)


def test_autotuning_is_off_and_changes_no_batch(monkeypatch):
    """The pipelines run without tf.data's autotuner (bench/input_pipeline.py); same batches."""
    from keras_lstm.data import pipeline

    graph = GraphPreprocessor(build(100))
    dataset = make_dataset(TEXTS, LABELS, graph, batch_size=4, seed=1)
    pairs = make_pair_dataset(["good film", "bad"] * 6, ["ok !", "film"] * 6, graph,
                              GraphPreprocessor(build(100, start_end=True)), batch_size=2,
                              shuffle=True, seed=1)
    assert dataset.options().autotune.enabled is False
    assert pairs.options().autotune.enabled is False
    monkeypatch.setattr(pipeline, "AUTOTUNE_INPUT", True)
    assert make_dataset(TEXTS, LABELS, graph, batch_size=4,
                        seed=1).options().autotune.enabled is not False
    flat = lambda bs: [tuple(r) for x, _ in bs for r in np.asarray(x)]  # noqa: E731
    assert flat(dataset) == flat(batches(seed=1, max_length=100))


def test_a_resumed_pair_dataset_sees_the_batches_of_the_later_epochs():
    graph = GraphPreprocessor(build(100))
    target = GraphPreprocessor(build(100, start_end=True))
    sources = [f"good {'film ' * (i % 6)}" for i in range(40)]

    def epochs(first_epoch):
        dataset = make_pair_dataset(sources, ["ok"] * 40, graph, target, 4, True, 7,
                                    epochs=4, first_epoch=first_epoch)
        flat = [tuple(np.asarray(x[0]).sum(axis=1)) for x, _ in dataset]
        steps = dataset.steps_per_epoch
        return [flat[i:i + steps] for i in range(0, len(flat), steps)]

    whole = epochs(0)
    assert len(whole) == 4 and whole[0] != whole[1]
    assert epochs(2) == whole[2:]
