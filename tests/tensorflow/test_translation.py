"""Translation end to end: train on the CLDR pairs, decode, score; CLI round trip."""

import json

import pytest

from keras_lstm import runtimes, tasks
from keras_lstm.app.cli import main
from keras_lstm.evaluation import score_translations
from keras_lstm.inference import Translator
from lstm_text import PyTokenizer
from tests.helpers import LEGACY, train_run

# Trains, exports or runs a subprocess per test: CI runs it; `pytest -m "not slow"` skips it.
pytestmark = pytest.mark.slow

TRANSLATION = tasks.get("translation")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("translation") / "run"
    train_run("translation", out=str(out), max_examples=10000, epochs=6, units=96,
              embedding_dim=32, seed=0)
    return out


def test_a_small_model_learns_to_translate(run):
    keras_runtime = runtimes.load(run, "keras")
    greedy = TRANSLATION.evaluate(keras_runtime, max_examples=200, beam=1)
    assert greedy["bleu"] > 40 and greedy["exact_match"] > 0.2, greedy
    assert (greedy["beam"], greedy["length_penalty"]) == (1, None)
    beam = TRANSLATION.evaluate(keras_runtime, max_examples=200, beam=3)
    assert beam["bleu"] > 40 and beam["beam"] == 3, beam


def test_translator_batches_agree_with_single_sentences(run):
    translator = Translator(run)
    sources = ["2026年3月3日星期二", "15:30", "75%", "¥8,653.10"]
    batch = translator.translate(sources)
    assert batch == [translator.translate([s])[0] for s in sources]
    assert translator.translate([]) == []


def test_scores_are_exact_for_identical_text():
    tokenizer = PyTokenizer(lowercase=False, mark_spaces=True, split_digits=True)
    metrics = score_translations(["Tuesday, March 3, 2026"], ["Tuesday, March 3, 2026"],
                                 tokenizer)
    assert metrics["bleu"] == pytest.approx(100.0) and metrics["exact_match"] == 1.0


def test_cli_evaluate_and_predict(run, capsys):
    assert main(["evaluate", str(run), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"bleu", "chrf", "exact_match"} <= set(metrics)
    assert main(["predict", str(run), "15:30"]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["text"] == "15:30" and line["translation"]


def test_sentiment_api_on_a_translation_run_is_refused(run):
    from keras_lstm.core.errors import ConfigError
    from keras_lstm.inference import SentimentClassifier

    with pytest.raises(ConfigError, match="is a translation run, expected a sentiment run"):
        SentimentClassifier(run)


@pytest.mark.parametrize("flag", [["--text-column", "x"], ["--plot", "x.png"]])
def test_sentiment_flags_on_a_translation_run_are_refused(run, capsys, flag):
    assert main(["evaluate", str(run), *flag]) == 2
    err = capsys.readouterr().err
    assert f"{flag[0]} does not apply to a translation model" in err and err.count("\n") == 1


def test_evaluate_data_follows_the_run_direction(run, tmp_path, capsys):
    """A file in the training file's layout is read in the run's direction (--reverse)."""
    from keras_lstm.data.pairs import read_pairs

    pairs = read_pairs(run / "splits" / "test.tsv")
    swapped = tmp_path / "swapped.tsv"  # target<TAB>source, as a --reverse run's data is laid out
    swapped.write_text("".join(f"{t}\t{s}\n" for s, t in zip(pairs.sources[:60],
                                                             pairs.targets[:60])),
                       encoding="utf-8")
    config = json.loads((run / "config.json").read_text())
    config["training"]["reverse"] = True
    (run / "config.json").write_text(json.dumps(config), encoding="utf-8")
    try:
        assert main(["evaluate", str(run), "--data", str(swapped), "--json"]) == 0
        right = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert main(["evaluate", str(run), "--data", str(swapped), "--no-reverse",
                     "--json"]) == 0
        wrong = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        words = tmp_path / "words.tsv"  # a source column in a language the model never saw
        words.write_text("the quick brown fox jumps\tx\nover the lazy dog\ty\n", encoding="utf-8")
        assert main(["evaluate", str(run), "--data", str(words), "--no-reverse"]) == 0
        captured = capsys.readouterr()
    finally:
        config["training"]["reverse"] = False
        (run / "config.json").write_text(json.dumps(config), encoding="utf-8")
    assert right["bleu"] > 40 and wrong["bleu"] < right["bleu"] / 4
    assert "of the tokens are unknown to the model" in captured.err and "wrong column" in captured.err


def test_without_attention_and_with_keras_layers(tmp_path):
    out = tmp_path / "plain"
    result = train_run("translation", out=str(out), max_examples=600, epochs=1, units=16,
                       embedding_dim=8, attention=False, lstm="keras")
    assert result["epochs_run"] == 1
    assert len(Translator(out).translate(["15:30", "75%"], beam=2)) == 2


@pytest.mark.parametrize("shuffle", [True, False])
def test_pair_datasets_know_their_number_of_batches(shuffle):
    # Without it Keras warns that the input "ran out of data" in every fit().
    from keras_lstm.data.pipeline import make_pair_dataset
    from keras_lstm.text import GraphPreprocessor, Preprocessor, TokenizerConfig, Vocabulary

    vocabulary = Vocabulary(["[PAD]", "[UNK]", "[START]", "[END]", "a", "b", "c"])
    source = GraphPreprocessor(Preprocessor(TokenizerConfig(), vocabulary))
    target = GraphPreprocessor(Preprocessor(TokenizerConfig(), vocabulary, start_end=True))
    sources = [" ".join("a" * (1 + i % 13)) for i in range(50)]
    dataset = make_pair_dataset(sources, ["b c"] * 50, source, target, batch_size=8,
                                shuffle=shuffle, seed=0)
    counted = sum(1 for _ in dataset)
    assert counted == (dataset.steps_per_epoch if shuffle else int(dataset.cardinality()))
    assert sum(int(batch[1].shape[0]) for batch in dataset) == 50


def test_a_run_written_with_skip_bad_lines_still_loads():
    """Runs made before the flag was renamed hold `skip_bad_lines` in config.json."""

    from keras_lstm.core import schemas
    from keras_lstm.tasks.config import TranslationConfig

    legacy = LEGACY / "translation"
    assert "skip_bad_lines" in json.loads((legacy / "config.json").read_text())["training"]
    training = schemas.read_config(legacy, task="translation")["training"]
    assert "skip_bad_lines" not in training and training["skip_bad_rows"] is False
    assert TranslationConfig.from_dict(training).skip_bad_rows is False
    old = {"out": "run", "skip_bad_lines": True}  # a dict not read through the schema
    assert TranslationConfig.from_dict(old).skip_bad_rows is True


def test_bad_pair_lines_stop_training_or_are_skipped_and_counted(tmp_path, capsys):
    data = tmp_path / "pairs.tsv"
    good = [f"{i} apples\t{i} 个苹果" for i in range(40)]
    data.write_text("\n".join([good[0], "no tab here", *good[1:20], "x\t", *good[20:]]) + "\n",
                    encoding="utf-8")
    args = ["train", "translation", "--data", str(data), "--preset", "none", "--units", "4",
            "--embedding-dim", "4", "--epochs", "1"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"keras-lstm: error: {data}:2: no tab (expected source<TAB>target) (--skip-bad-rows "
        "skips such rows)")
    assert main([*args, "--out", str(tmp_path / "b"), "--skip-bad-lines"]) == 0  # the old name
    assert (f"keras-lstm: warning: skipped 2 bad rows (first: {data}:2: no tab (expected "
            "source<TAB>target))") in capsys.readouterr().err
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["training"]["skip_bad_rows"] is True and "skip_bad_lines" not in config["training"]


def test_evaluate_skips_bad_pair_lines_when_asked(tmp_path, capsys):

    export = LEGACY / "translation" / "export"
    data = tmp_path / "pairs.tsv"
    data.write_bytes(b"15:30\t3:30 PM\nno tab\n\xff\tx\n75%\t75%\n")
    args = ["evaluate", str(export), "--runtime", "onnx", "--data", str(data), "--json"]
    assert main(args) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"keras-lstm: error: {data}:2: no tab (expected source<TAB>target) (--skip-bad-rows "
        "skips such rows)")
    assert main([*args, "--skip-bad-lines"]) == 0  # the old name
    out, err = capsys.readouterr()
    assert json.loads(out)["skipped_rows"] == 2
    assert (f"keras-lstm: warning: skipped 2 bad rows (first: {data}:2: no tab (expected "
            "source<TAB>target))") in err
