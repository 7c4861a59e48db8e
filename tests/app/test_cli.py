"""The keras-lstm command line: the main job, train/evaluate/predict/export, and bad input."""

import json
import os
import subprocess
import sys

import pytest

from keras_lstm.app.cli import main
from tests.helpers import kill_after_first_committed_epoch, train_args, write_csv

# Trains, exports or runs a subprocess per test: CI runs it; `pytest -m "not slow"` skips it.
pytestmark = pytest.mark.slow


def run_cli(*args, cwd=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "keras_lstm", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=900)


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    result = run_cli("demo", "--fast", "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    # TensorFlow's C++ start-up lines do not reach the user.
    for noise in ("cuda", "absl", "onednn", "I0000", "E0000"):
        assert noise not in result.stdout + result.stderr, noise
    return out / "sentiment", result.stdout


def test_demo_trains_evaluates_exports_and_verifies(demo_folder):
    run, stdout = demo_folder
    for name in ("config.json", "vocabulary.txt", "model.keras", "confusion_matrix.png",
                 "splits/calibration.jsonl",
                 "export/model.onnx", "export/model_int8.tflite", "export/saved_model",
                 "export/export_report.md", "export/metadata.json"):
        assert (run / name).exists(), name
    config = json.loads((run / "config.json").read_text())
    assert config["format_version"] == 2 and config["preset"] == "fast"
    assert config["preprocessors"]["text"]["tokenizer"]["cjk_bigrams"] is True
    # The full demo's architecture, so that the subprocess tests below load a max-pooling
    # bidirectional model in a fresh process, as `keras-lstm predict` does.
    assert config["model"]["pooling"] == "max" and config["model"]["bidirectional"] is True
    report = json.loads((run / "export" / "export_report.json").read_text())
    names = {row["artifact"] for row in report["artifacts"]}
    assert {"onnx", "saved_model", "tflite_float32", "tflite_int8"} <= names
    assert "accuracy" in stdout and "| onnx |" in stdout
    assert "baseline (TF-IDF + logistic regression, same training split): accuracy" in stdout
    assert not [p for p in run.parent.iterdir() if p.name.startswith(".sentiment")]


def test_everything_written_gets_the_modes_the_umask_gives(demo_folder, tmp_path):
    # Shared, not private: an export copied to a server that runs as another user must be
    # readable (before core.files, config.json, the vocabularies, best_score.json, the export
    # report and the export folder itself were 0600/0700, as tempfile makes them).
    run, _ = demo_folder
    mask = os.umask(0o022)
    os.umask(mask)
    source = tmp_path / "in.txt"
    source.write_text("质量很好\n", encoding="utf-8")
    result = run_cli("predict", run, "--runtime", "onnx", "--input", source, "--output",
                     tmp_path / "out.jsonl")
    assert result.returncode == 0, result.stderr[-2000:]
    wrong = [f"{oct(path.stat().st_mode & 0o777)} {path}"
             for path in [*run.parent.rglob("*"), tmp_path / "out.jsonl"]
             if path.stat().st_mode & 0o777 != (0o777 if path.is_dir() else 0o666) & ~mask]
    assert wrong == []


def test_evaluate_json_and_predict_with_every_runtime(demo_folder):
    run, _ = demo_folder
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    result = run_cli("evaluate", run, "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    # evaluate writes nothing into the run folder
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()} == before
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert 0.55 < metrics["accuracy"] <= 1 and len(metrics["confusion_matrix"]) == 2
    assert sum(map(sum, metrics["confusion_matrix"])) == metrics["examples"]
    assert set(metrics["baseline"]) == {"accuracy", "macro_f1"}
    outputs = {}
    for runtime in ("keras", "onnx", "tflite", "saved_model"):
        result = run_cli("predict", run, "--runtime", runtime, "质量很好，非常满意", "太差了")
        assert result.returncode == 0, result.stderr[-2000:]
        lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
        assert [line["text"] for line in lines] == ["质量很好，非常满意", "太差了"]
        outputs[runtime] = [line["probabilities"]["positive"] for line in lines]
    for runtime in ("onnx", "tflite", "saved_model"):
        assert outputs[runtime] == pytest.approx(outputs["keras"], abs=1e-4)


def test_train_on_a_csv_is_reproducible(tmp_path, small_csv):
    assert main(train_args(small_csv, tmp_path / "a")) == 0
    assert main(train_args(small_csv, tmp_path / "b")) == 0
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["labels"] == ["negative", "neutral", "positive"]
    from keras_lstm.runs import load_model

    a, b = load_model(tmp_path / "a"), load_model(tmp_path / "b")
    for left, right in zip(a.get_weights(), b.get_weights()):
        assert (left == right).all()


def test_cjk_bigram_run_exports_and_serves_the_same_tokens(tmp_path):
    rows = [(f"质量很好{i}，非常满意", "positive") for i in range(20)]
    rows += [(f"太差了{i}，很失望", "negative") for i in range(20)]
    data = write_csv(tmp_path / "zh.csv", rows)
    run = tmp_path / "run"
    assert main(train_args(data, run, "--cjk-bigrams", "--min-count", "1")) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["preprocessors"]["text"]["tokenizer"]["cjk_bigrams"] is True
    vocabulary = (run / "vocabulary.txt").read_text(encoding="utf-8").split("\n")
    assert "很好" in vocabulary and "很" not in vocabulary
    result = run_cli("export", run, "--quantize", "float32")
    assert result.returncode == 0, result.stderr[-2000:]
    outputs = {}
    for runtime in ("keras", "onnx", "tflite", "saved_model"):
        result = run_cli("predict", run, "--runtime", runtime, "质量很好", "太差了，失望")
        assert result.returncode == 0, result.stderr[-2000:]
        outputs[runtime] = [json.loads(line)["probabilities"]["positive"]
                            for line in result.stdout.strip().splitlines()]
    for runtime in ("onnx", "tflite", "saved_model"):
        assert outputs[runtime] == pytest.approx(outputs["keras"], abs=1e-5)


def test_sigkill_then_resume_reaches_the_same_weights(tmp_path):
    """Kill training (SIGKILL) after its first epoch; --resume ends where an uninterrupted run does."""
    from keras_lstm.runs import load_model

    rows = [(f"good great film number {i} " + "nice " * (i % 7), "positive") for i in range(600)]
    rows += [(f"bad awful plot number {i} " + "poor " * (i % 5), "negative") for i in range(600)]
    data = write_csv(tmp_path / "train.csv", rows)
    args = train_args(data, tmp_path / "whole", "--epochs", "6", "--patience", "9")
    assert run_cli(*args).returncode == 0
    interrupted = tmp_path / "interrupted"
    args = train_args(data, interrupted, "--epochs", "6", "--patience", "9")
    committed = kill_after_first_committed_epoch(args, interrupted)
    resumed = run_cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    # It went on from the committed epoch, not from scratch.
    assert f"resuming after epoch {committed}" in resumed.stderr
    epochs = [line.split()[1] for line in resumed.stderr.splitlines() if line.startswith("epoch ")]
    assert epochs == [f"{e}/6" for e in range(committed + 1, 7)]
    for left, right in zip(load_model(tmp_path / "whole").get_weights(),
                           load_model(interrupted).get_weights()):
        assert (left == right).all()


@pytest.mark.parametrize("args, message", [
    (["evaluate", "{tmp}/missing"], "missing: no such file or folder"),
    (["train", "sentiment", "--data", "{tmp}/none.csv", "--out", "{tmp}/r"], "none.csv: file not found"),
    (["train", "sentiment", "--data", "{tmp}/bad.csv", "--out", "{tmp}/r"], "bad.csv:3: field 'text': empty text"),
    (["train", "sentiment", "--data", "{tmp}/bad.csv", "--out", "{tmp}/r", "--text-column", "body"], "bad.csv:1: no column 'body' (found 'text', 'label')"),
    (["predict", "{tmp}/missing", "text"], "no such file or folder"),
])
def test_bad_input_gives_one_line_and_exit_code_2(tmp_path, capsys, args, message):
    (tmp_path / "bad.csv").write_text("text,label\nok,positive\n ,negative\n", encoding="utf-8")
    code = main([a.format(tmp=tmp_path) for a in args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "r" / "model.keras").exists()


def test_unknown_validation_label_is_reported(tmp_path, small_csv, capsys):
    val = write_csv(tmp_path / "val.csv", [("good", "positive"), ("meh", "mixed")])
    code = main(train_args(small_csv, tmp_path / "r", "--val-data", str(val)))
    assert code == 2
    assert "val.csv, row 2: label 'mixed' is not among the training labels" in capsys.readouterr().err


def test_truncated_model_file_is_one_line_error(demo_folder, tmp_path):
    import shutil

    run, _ = demo_folder
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    data = (copy / "model.keras").read_bytes()
    (copy / "model.keras").write_bytes(data[: len(data) // 2])
    result = run_cli("predict", copy, "good")
    assert result.returncode == 2
    assert "model.keras: cannot load the Keras model" in result.stderr
    assert "Traceback" not in result.stderr


def test_evaluate_with_an_unknown_label_names_file_and_row(demo_folder, tmp_path):
    run, _ = demo_folder
    data = tmp_path / "test.csv"
    data.write_text("text,label\n好,positive\n差,neutral\n", encoding="utf-8")
    result = run_cli("evaluate", run, "--data", data)
    assert result.returncode == 2
    assert f"{data}:3: label 'neutral' is not among the training labels" in result.stderr


def test_evaluate_skip_bad_rows_counts_and_skips_them(demo_folder, tmp_path):
    run, _ = demo_folder
    data = tmp_path / "test.csv"
    data.write_bytes("text,label\n好,positive\n ,negative\n差,negative,x\n".encode()
                     + b"\xff,positive\n" + "很好,positive\n".encode())
    result = run_cli("evaluate", run, "--data", data, "--json")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (f"keras-lstm: error: {data}:3: field 'text': "
                                              "empty text (--skip-bad-rows skips such rows)")
    result = run_cli("evaluate", run, "--data", data, "--json", "--skip-bad-rows")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"keras-lstm: warning: skipped 3 bad rows (first: {data}:3: field 'text': empty " \
           "text)" in result.stderr
    metrics = json.loads(result.stdout)
    assert (metrics["skipped_rows"], sum(map(sum, metrics["confusion_matrix"]))) == (3, 2)


@pytest.mark.parametrize("command", [["train", "translation", "--out", "r"],
                                     ["predict", "run", "--input", "in.csv"],
                                     ["evaluate", "run", "--data", "pairs.tsv"]])
def test_skip_bad_rows_is_the_flag_and_skip_bad_lines_its_hidden_alias(command, capsys):
    from keras_lstm.app.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(command).skip_bad_rows in (None, False)
    assert parser.parse_args([*command, "--skip-bad-rows"]).skip_bad_rows is True
    assert parser.parse_args([*command, "--skip-bad-lines"]).skip_bad_rows is True
    with pytest.raises(SystemExit):
        parser.parse_args([*command[:2], "--help"] if command[0] == "train"
                          else [command[0], "--help"])
    help_text = capsys.readouterr().out
    assert "--skip-bad-rows" in help_text and "--skip-bad-lines" not in help_text
