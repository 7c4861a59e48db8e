"""Translation end to end: train on the CLDR pairs, decode, score; CLI round trip."""

import json

import pytest

from keras_lstm.cli import main
from keras_lstm.translation import (
    TranslationTrainingConfig,
    Translator,
    evaluate_translation,
    make_pair_dataset,
    score_translations,
    train_translation,
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("translation") / "run"
    train_translation(TranslationTrainingConfig(out=str(out), max_examples=10000, epochs=6,
                                                units=96, embedding_dim=32, seed=0), verbose=0)
    return out


def test_a_small_model_learns_to_translate(run):
    metrics = evaluate_translation(run, max_examples=200)
    assert metrics["bleu"] > 40 and metrics["exact_match"] > 0.2, metrics
    beam = evaluate_translation(run, max_examples=200, beam=3)
    assert beam["bleu"] > 40, beam


def test_translator_batches_agree_with_single_sentences(run):
    translator = Translator(run)
    sources = ["2026年3月3日星期二", "15:30", "75%", "¥8,653.10"]
    batch = translator.translate(sources)
    assert batch == [translator.translate([s])[0] for s in sources]
    assert translator.translate([]) == []


def test_scores_are_exact_for_identical_text():
    metrics = score_translations(["Tuesday, March 3, 2026"], ["Tuesday, March 3, 2026"])
    assert metrics["bleu"] == pytest.approx(100.0) and metrics["exact_match"] == 1.0


def test_cli_evaluate_and_predict(run, capsys):
    assert main(["evaluate", str(run), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"bleu", "chrf", "exact_match"} <= set(metrics)
    assert main(["predict", str(run), "15:30"]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["text"] == "15:30" and line["translation"]


def test_sentiment_api_on_a_translation_run_is_refused(run):
    from keras_lstm.cli import evaluate_run
    from keras_lstm.errors import ConfigError

    with pytest.raises(ConfigError, match="is a translation run, expected a sentiment run"):
        evaluate_run(run)


def test_without_attention_and_with_keras_layers(tmp_path):
    out = tmp_path / "plain"
    result = train_translation(TranslationTrainingConfig(
        out=str(out), max_examples=600, epochs=1, units=16, embedding_dim=8, attention=False,
        lstm="keras"), verbose=0)
    assert result["epochs_run"] == 1
    assert len(Translator(out).translate(["15:30", "75%"], beam=2)) == 2


@pytest.mark.parametrize("shuffle", [True, False])
def test_pair_datasets_know_their_number_of_batches(shuffle):
    # Without it Keras warns that the input "ran out of data" in every fit().
    sources = [[3] * (1 + i % 13) for i in range(50)]
    targets = [[1, 4, 5, 2]] * 50
    dataset = make_pair_dataset(sources, targets, batch_size=8, shuffle=shuffle, seed=0)
    counted = sum(1 for _ in dataset)
    assert int(dataset.cardinality()) == counted
    assert sum(int(batch[1].shape[0]) for batch in dataset) == 50
