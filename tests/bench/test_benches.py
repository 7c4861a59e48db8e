"""The bench scripts import, build their flags, and read their settings from the presets.

No timing and no training here: each bench's own smoke run is in bench/README.md.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

from keras_lstm import presets, tasks

# Trains, exports or runs a subprocess per test: CI runs it; `pytest -m "not slow"` skips it.
pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[2] / "bench"
BENCHES = ("cli_startup", "input_pipeline", "int8_calibration", "runtimes", "serve_load",
           "sentiment_quality", "translation_quality", "scale", "corpus", "serve_http",
           "decoding", "install_size")


def load(name):
    """bench/NAME.py as a module (bench/ is a folder of scripts, not a package)."""
    if f"bench_{name}" in sys.modules:
        return sys.modules[f"bench_{name}"]
    if str(BENCH) not in sys.path:  # as when a bench runs: its siblings import by name
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", BENCHES)
def test_bench_builds_its_parser(name):
    module = load(name)
    parser = module.build_parser()
    assert parser.description == module.__doc__.splitlines()[0]
    assert callable(module.main)


def test_parsers_take_the_smoke_run_flags():
    args = load("input_pipeline").build_parser().parse_args(
        ["--repeats", "1", "--epochs", "2", "--max-examples", "300"])
    assert (args.repeats, args.epochs, args.max_examples) == (1, 2, 300)
    args = load("int8_calibration").build_parser().parse_args(["RUN", "--calibration", "test"])
    assert (args.run, args.calibration, args.sizes) == ("RUN", "test", "100,200,500,1000")
    args = load("translation_quality").build_parser().parse_args([])
    assert args.epochs is None and args.units is None  # the preset's, through configure
    args = load("cli_startup").build_parser().parse_args([])
    assert args.runs == 7 and args.export is None
    args = load("serve_http").build_parser().parse_args(["--client", "wrk", "--seconds", "2"])
    assert (args.client, args.seconds, args.repeats, args.concurrency) == ("wrk", 2, 3, "1,8,64")


def test_decoding_bench_scores_greedy_once_and_marks_the_default(monkeypatch):
    from keras_lstm import presets

    bench = load("decoding")
    args = bench.build_parser().parse_args([])
    assert (args.beams, args.length_penalties, args.data) == ("1,2,4,8", "0,0.6,1.0", "cmn-eng")
    assert bench.decodings([1, 4], [0.0, 0.6]) == [(1, None), (4, 0.0), (4, 0.6)]
    monkeypatch.setitem(presets.DECODING, "beam", 4)
    monkeypatch.setitem(presets.DECODING, "length_penalty", 0.6)
    assert bench.is_default(4, 0.6) and not bench.is_default(4, 1.0)
    assert not bench.is_default(1, None)


def run_main(module, argv, monkeypatch):
    monkeypatch.setattr(sys, "argv", [f"{module.__name__}.py", *argv])
    with pytest.raises(SystemExit) as raised:
        module.main()
    return raised.value.code


def test_unknown_names_are_refused_before_any_training(monkeypatch, capsys):
    assert run_main(load("input_pipeline"), ["--tasks", "sentiment,poetry"], monkeypatch) == 2
    assert "--tasks: unknown task 'poetry'; expected some of translation, sentiment" in \
        capsys.readouterr().err
    assert run_main(load("input_pipeline"), ["--epochs", "1"], monkeypatch) == 2
    assert "--epochs: at least 2" in capsys.readouterr().err
    assert run_main(load("sentiment_quality"), ["--models", "custom,lstm"], monkeypatch) == 2
    assert "--models: unknown 'lstm'" in capsys.readouterr().err
    assert run_main(load("sentiment_quality"), ["--variants", "preset,irony"], monkeypatch) == 2
    assert "--variants irony: unknown avenue 'irony'" in capsys.readouterr().err


def test_sentiment_quality_settings_are_the_presets_with_the_models_flags(tmp_path):
    from keras_lstm.training import configure

    module = load("sentiment_quality")
    task = tasks.get("sentiment")
    for name, (preset, settings, language) in module.DATASETS.items():
        assert len(module.minimal_pairs.load_suite(language)) >= 150, name
        for lstm, bidirectional in module.MODELS.values():
            for variant in ("preset", "plain", "lexicon+negation+contrast", "wide+last"):
                avenue = module.variant_settings(variant)
                config = configure(task, dict(settings, out=str(tmp_path), lstm=lstm,
                                              bidirectional=bidirectional, **avenue), preset,
                                   verbose=0)
                expected = {**presets.get("sentiment", preset), **settings,
                            "lstm": lstm, "bidirectional": bidirectional, **avenue}
                assert {k: getattr(config, k) for k in expected} == expected, (name, variant)
    reviews = module.DATASETS["reviews"]
    assert reviews == ("reviews-zh", {}, "zh")
    assert module.DATASETS["airline"][0] == "tweets-en"
    assert module.variant_settings("preset") == {}
    assert module.variant_settings("negation+contrast+lexicon") == dict(
        augment="negation+contrast", lexicon=True, wide=False)
    assert module.variant_settings("plain") == dict(augment="none", lexicon=False, wide=False)
    with pytest.raises(ValueError, match="unknown avenue 'sarcasm'"):
        module.variant_settings("negation+sarcasm")


def test_translation_quality_and_input_pipeline_presets_exist():
    assert load("translation_quality").PRESET in presets.names("translation")
    for task_name, (preset, _) in load("input_pipeline").SETTINGS.items():
        assert preset in presets.names(task_name)


def test_cli_startup_reads_importtime_output(tmp_path):
    module = load("cli_startup")
    (tmp_path / "outer.py").write_text("import inner\n")
    (tmp_path / "inner.py").write_text("")
    code = f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import outer"
    modules = module.imported_modules(["-c", code], env=None)
    assert modules["outer"][1] is False  # imported at top level
    assert modules["inner"][1] is True  # nested inside outer's import
    assert modules["outer"][0] >= modules["inner"][0]  # cumulative µs
    labels = [label for label, _, _ in module.commands(tmp_path, "好")]
    assert labels == ["python -c pass", 'python -c "import tensorflow"', "keras-lstm --help",
                      "keras-lstm predict --runtime onnx", "keras-lstm predict --runtime tflite"]


def test_the_scale_corpus_is_seeded_and_made_in_blocks(tmp_path):
    import csv

    corpus = load("corpus")
    a, b, c = (tmp_path / name for name in ("a.csv", "b.csv", "c.csv"))
    for path, seed in ((a, 3), (b, 3), (c, 4)):
        corpus.write_corpus(path, 500, seed=seed)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    with a.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["text", "label"] and len(rows) == 501
    assert {label for _, label in rows[1:]} == set(corpus.LABELS)
    # Each block has its own seed: a larger corpus starts with the smaller one.
    def texts(n):
        return [t for block, _, _ in corpus.blocks(n, 3, block_rows=100) for t in block]

    assert texts(300)[:200] == texts(200)
