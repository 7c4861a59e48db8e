"""The product's seams: the task registry, the TensorFlow-free front door (import
hygiene: tests/test_layers.py), run-folder and export schemas, presets, validation and log-friendly output."""

import json
import os
import subprocess
import sys

import pytest

from keras_lstm import presets, tasks
from keras_lstm.app.cli import main
from tests.helpers import REPO, kill_after_first_committed_epoch

# Trains, exports or runs a subprocess per test: CI runs it; `pytest -m "not slow"` skips it.
pytestmark = pytest.mark.slow


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "keras_lstm", *map(str, args)],
                          capture_output=True, text=True, timeout=900, cwd=REPO,
                          env={**os.environ, **(env or {})})


def test_the_cli_dispatches_through_the_registry_without_asking_which_task():
    source = (REPO / "keras_lstm" / "app" / "cli.py").read_text(encoding="utf-8")
    assert '"translation"' not in source and '"sentiment"' not in source
    assert tasks.names() == ["sentiment", "translation"]


def _modules_loaded(code):
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


FRONT_DOOR = """
import sys, contextlib, io
from keras_lstm.app.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        code = main({args!r})
    except SystemExit as exit:
        code = exit.code
heavy = sorted(m for m in ("tensorflow", "keras", "tensorflow_text") if m in sys.modules)
print(repr((code, heavy, len(out.getvalue()))))
"""


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    run = tmp_path_factory.mktemp("front") / "run"
    data = run.parent / "train.csv"
    rows = [(f"good film {i}", "positive") for i in range(40)]
    rows += [(f"bad plot {i}", "negative") for i in range(40)]
    data.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows), encoding="utf-8")
    for args in (["train", "sentiment", "--data", data, "--out", run, "--preset", "none",
                  "--units", "4", "--embedding-dim", "4", "--epochs", "1"],
                 ["export", run, "--formats", "onnx,tflite", "--quantize", "float32"]):
        result = run_cli(*args)
        assert result.returncode == 0, result.stderr[-2000:]
    return run, data


@pytest.mark.parametrize("command", ["--help", "predict-onnx", "predict-tflite",
                                     "explain-tflite", "evaluate-onnx", "train-help"])
def test_the_front_door_never_imports_tensorflow(tiny_export, command):
    run, data = tiny_export
    args = {"--help": ["--help"], "train-help": ["train", "sentiment", "--help"],
            "predict-onnx": ["predict", str(run / "export"), "good film"],
            "predict-tflite": ["predict", str(run), "--runtime", "tflite", "good film"],
            "explain-tflite": ["predict", str(run), "--runtime", "tflite", "--explain",
                               "good film"],
            "evaluate-onnx": ["evaluate", str(run), "--runtime", "onnx", "--data", str(data),
                              "--json"]}[command]
    code, heavy, printed = eval(_modules_loaded(FRONT_DOOR.format(args=args)).strip()
                                .splitlines()[-1])
    assert code == 0 and printed > 0
    assert heavy == [], f"{command} imported {heavy}"


def test_tensorflow_start_up_lines_do_not_reach_the_user(tiny_export, tmp_path):
    run, data = tiny_export
    results = [run_cli("train", "sentiment", "--help"),
               run_cli("train", "sentiment", "--data", data, "--out", tmp_path / "r", "--preset",
                       "none", "--units", "4", "--embedding-dim", "4", "--epochs", "1"),
               run_cli("predict", run, "good film")]
    for result in results:
        assert result.returncode == 0, result.stderr[-2000:]
        text = (result.stdout + result.stderr).lower()
        for noise in ("cuda", "absl", "onednn", "i0000", "e0000", "cpu_feature_guard"):
            assert noise not in text, (noise, text[-2000:])


def test_train_output_for_logs_is_one_plain_line_per_epoch(tiny_export, tmp_path):
    _, data = tiny_export
    args = ["train", "sentiment", "--data", data, "--preset", "none", "--units", "4",
            "--embedding-dim", "4", "--epochs", "3", "--patience", "5"]
    result = run_cli(*args, "--out", tmp_path / "a")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "\x1b" not in result.stderr and "\r" not in result.stderr
    epochs = [line for line in result.stderr.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["1/3", "2/3", "3/3"]
    assert "val_accuracy" in epochs[0] and result.stderr.startswith("preset: none\n")
    # `train > out.txt` keeps the results only: the held-out report and the run folder.
    assert result.stdout.splitlines()[-1].startswith("run folder:")
    assert not any(line.startswith(("epoch ", "preset:", "baseline (TF-IDF + logistic "
                                    "regression) fitted"))
                   for line in result.stdout.splitlines())
    quiet = run_cli("-q", *args, "--out", tmp_path / "b")
    quiet_sub = run_cli(*args, "--out", tmp_path / "c", "-q")
    for result in (quiet, quiet_sub):
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.strip().splitlines() == [result.stdout.strip()]  # the result only
        assert result.stdout.startswith("run folder:") and not result.stderr.strip()


@pytest.mark.parametrize("flag, value, message", [
    ("--units", "0", "--units: expected at least 1, got 0"),
    ("--layers", "0", "--layers: expected at least 1, got 0"),
    ("--dropout", "1.5", "--dropout: expected in [0, 1), got 1.5"),
    ("--embedding-dim", "-1", "--embedding-dim: expected at least 1, got -1"),
    ("--batch-size", "0", "--batch-size: expected at least 1, got 0"),
    ("--max-length", "0", "--max-length: expected at least 1, got 0"),
    ("--val-fraction", "1.2", "--val-fraction: expected in [0, 1), got 1.2"),
    ("--learning-rate", "0", "--learning-rate: expected above 0, got 0.0"),
])
def test_bad_model_arguments_are_refused_before_anything_is_written(tmp_path, capsys, flag,
                                                                      value, message):
    data = tmp_path / "train.csv"
    data.write_text("text,label\ngood,positive\nbad,negative\n", encoding="utf-8")
    assert main(["train", "sentiment", "--data", str(data), "--out", str(tmp_path / "r"),
                 flag, value]) == 2
    err = capsys.readouterr().err.splitlines()
    # One error line, the last (the chosen preset is a message on stderr before it).
    assert [line for line in err if "error" in line] == [err[-1]] and message in err[-1]
    assert not (tmp_path / "r").exists()


def test_degenerate_data_is_refused_before_training(tmp_path, capsys):
    data = tmp_path / "train.csv"
    rows = "".join(f"text number {i},{'positive' if i % 2 else 'negative'}\n" for i in range(40))
    data.write_text("text,label\n" + rows, encoding="utf-8")
    assert main(["train", "sentiment", "--data", str(data), "--out", str(tmp_path / "r"),
                 "--preset", "none", "--min-count", "1000"]) == 2
    assert "vocabulary has no token besides the special ones" in capsys.readouterr().err
    one = tmp_path / "one.csv"
    one.write_text("text,label\n" + "".join(f"t{i},positive\n" for i in range(20)),
                   encoding="utf-8")
    assert main(["train", "sentiment", "--data", str(one), "--out", str(tmp_path / "r")]) == 2
    assert "at least two labels" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_the_preset_follows_the_data_and_flags_override_it(tmp_path, capsys):
    english, chinese = tmp_path / "en.csv", tmp_path / "zh.csv"
    english.write_text("text,label\n" + "".join(f"great flight {i},positive\nlost bag {i},"
                                                "negative\n" for i in range(30)), encoding="utf-8")
    chinese.write_text("text,label\n" + "".join(f"质量很好{i},positive\n太差了{i},negative\n"
                                                for i in range(30)), encoding="utf-8")
    from keras_lstm.training import configure

    sentiment, translation = tasks.get("sentiment"), tasks.get("translation")
    config = configure(sentiment, {"out": "x", "data": str(english)})
    assert config.preset == "tweets-en" and config.bidirectional and config.pooling == "max" \
        and config.lexicon
    assert "preset: tweets-en" in capsys.readouterr().err
    config = configure(sentiment, {"out": "x", "data": str(chinese), "units": 7})
    assert config.preset == "reviews-zh" and config.cjk_bigrams and config.units == 7
    assert "preset: reviews-zh (overridden: units)" in capsys.readouterr().err
    assert configure(sentiment, {"out": "x"}).preset == "reviews-zh"
    config = configure(translation, {"out": "x", "data": "pairs.tsv"}, verbose=0)
    assert (config.preset, config.units, config.epochs) == ("sentences", 256, 25)
    assert configure(translation, {"out": "x"}, verbose=0).preset == "cldr-demo"
    plain = configure(sentiment, {"out": "x", "data": str(english)}, "none", verbose=0)
    assert not plain.bidirectional and plain.pooling == "last"


def test_every_preset_is_a_valid_config():
    for task_name, named in presets.PRESETS.items():
        task = tasks.get(task_name)
        for settings in named.values():
            task.config_class(out="x", **settings).validate()


def test_flags_that_do_not_apply_are_refused(tiny_export, capsys):
    run, _ = tiny_export
    assert main(["predict", str(run / "export"), "--beam", "4", "good"]) == 2
    assert "--beam does not apply to a sentiment model" in capsys.readouterr().err


def _version_1(config):
    """A version-2 config.json written back in the layout of version 1."""
    old = {k: v for k, v in config.items()
           if k not in ("format_version", "preprocessors", "model_file", "preset")}
    if config["task"] == "sentiment":
        text = config["preprocessors"]["text"]
        return {**old, "tokenizer": text["tokenizer"], "max_length": text["max_length"]}
    return {**old, "source_tokenizer": config["preprocessors"]["source"]["tokenizer"],
            "target_tokenizer": config["preprocessors"]["target"]["tokenizer"]}


def test_a_version_1_run_folder_still_loads_and_predicts_the_same(tiny_export, tmp_path):
    import shutil

    run, _ = tiny_export
    copy = tmp_path / "old"
    shutil.copytree(run, copy)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps(_version_1(config)), encoding="utf-8")
    results = [run_cli("predict", path, "good film", "bad plot") for path in (run, copy)]
    assert results[0].returncode == results[1].returncode == 0, results[1].stderr[-2000:]
    assert results[0].stdout == results[1].stdout


@pytest.mark.parametrize("change, message", [
    (lambda c: {**c, "format_version": 7}, "format_version 7 is not one this keras-lstm reads"),
    (lambda c: {k: v for k, v in c.items() if k != "preprocessors"},
     "config.json: field 'preprocessors' is missing"),
    (lambda c: {k: v for k, v in c.items() if k != "task"}, "config.json: field 'task' is missing"),
    (lambda c: {k: v for k, v in c.items() if k != "labels"},
     "config.json: field 'labels' is missing"),
    (lambda c: {**c, "training": {**c["training"], "colour": "blue"}},
     "unknown training field 'colour'"),
])
def test_unreadable_run_folders_are_one_line_errors(tiny_export, tmp_path, capsys, change,
                                                    message):
    import shutil

    run, _ = tiny_export
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps(change(config)), encoding="utf-8")
    command = (["train", "sentiment", "--out", str(copy), "--resume"] if "colour" in message
               else ["predict", str(copy), "--runtime", "onnx", "good"])
    assert main(command) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_failed_export_keeps_the_previous_one(tiny_export, tmp_path):
    import shutil

    from export.publish import publish
    from keras_lstm.core.errors import ExportError

    run, _ = tiny_export
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    before = {p.name: p.read_bytes() for p in (copy / "export").iterdir() if p.is_file()}

    def failing(work):
        (work / "model.onnx").write_bytes(b"broken")
        return {"problems": ["onnx differs from Keras by 1.0e+00 (limit 1e-04)"]}

    with pytest.raises(ExportError, match="verification failed.*left as it was"):
        publish(copy, failing)
    assert {p.name: p.read_bytes() for p in (copy / "export").iterdir() if p.is_file()} == before
    assert (copy / "export.failed" / "model.onnx").read_bytes() == b"broken"
    assert not list(copy.glob(".export.*"))
    report = publish(copy, lambda work: (work / "model.onnx").write_bytes(b"new") and {})
    assert report["folder"] == str(copy / "export")
    assert (copy / "export" / "model.onnx").read_bytes() == b"new"
    assert not (copy / "export.failed").exists()


def test_translation_resume_after_sigkill_continues_and_reaches_the_same_weights(tmp_path):
    """Kill translation training after its first committed epoch; --resume starts after it."""
    import numpy as np

    args = ["train", "translation", "--preset", "none", "--max-examples", "800", "--epochs",
            "4", "--units", "16", "--embedding-dim", "8", "--patience", "9", "--seed", "5"]
    whole = run_cli(*args, "--out", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr[-2000:]
    out = tmp_path / "cut"
    committed = kill_after_first_committed_epoch([*args, "--out", out], out)
    resumed = run_cli("train", "translation", "--out", out, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming after epoch {committed}" in resumed.stderr
    epochs = [line.split()[1] for line in resumed.stderr.splitlines() if line.startswith("epoch ")]
    assert epochs == [f"{e}/4" for e in range(committed + 1, 5)]  # not from scratch
    from keras_lstm.inference import Translator

    for left, right in zip(Translator(tmp_path / "whole").model.get_weights(),
                           Translator(out).model.get_weights(), strict=True):
        np.testing.assert_array_equal(left, right)


@pytest.mark.slow
def test_a_run_without_calibration_texts_exports_with_the_documented_fallback(tiny_export,
                                                                            tmp_path):
    """Runs made before splits/calibration.jsonl existed calibrate int8 on validation texts."""
    import shutil

    run, _ = tiny_export
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "splits" / "calibration.jsonl").unlink()
    result = run_cli("export", copy, "--formats", "tflite", "--quantize", "int8")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (copy / "export" / "model_int8.tflite").is_file()
