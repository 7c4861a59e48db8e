"""`keras-lstm predict TARGET --input FILE`: every format in and out, the rows equal to
`keras-lstm predict TEXT...`'s, bad rows named by line or skipped, stderr quiet when piped,
a progress bar on a terminal, no half-written output, memory flat in the file's length."""

import csv
import io
import json
import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# Trains, exports or runs a subprocess per test: CI runs it; `pytest -m "not slow"` skips it.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["质量很好", "太差了，不买", "物流很快, 包装也好", "一般般\n还行吧", "This was not good"]
SKIP_HINT = " (--skip-bad-rows skips such rows)"


def cli(*args, check=True, **kwargs):
    result = subprocess.run([sys.executable, "-m", "keras_lstm", *args], capture_output=True,
                            timeout=600, check=False, cwd=ROOT, **kwargs)
    if check:
        assert result.returncode == 0, result.stderr.decode()[-2000:]
    return result


def in_process(capsys, *args):
    """(exit code, stderr) of `keras-lstm ARGS` run in this process (quicker for errors)."""
    from keras_lstm.app.cli import main

    capsys.readouterr()
    code = main([str(arg) for arg in args])
    return code, capsys.readouterr().err


def predicted(target, texts, *args):
    """What `keras-lstm predict TARGET TEXT...` prints, by text."""
    output = cli("predict", str(target), "--runtime", "onnx", *args, "--", *texts).stdout
    return {row["text"]: row for row in map(json.loads, output.decode().splitlines())}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict_file")
    for task in ("sentiment", "translation"):
        cli("train", task, "--out", str(root / task), "--preset", "none", "--units", "4",
            "--embedding-dim", "4", "--epochs", "1", "--max-examples", "300")
        cli("export", str(root / task), "--formats", "onnx,tflite",
            *(["--quantize", "float32"] if task == "sentiment" else []))
    return root


def write_csv(path, header, rows, delimiter=","):
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter=delimiter, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def read_csv(path, delimiter=","):
    limit = csv.field_size_limit(2**31 - 1)  # the 1 MB field; the process's limit restored after
    try:
        with open(path, encoding="utf-8", newline="") as f:
            return list(csv.reader(f, delimiter=delimiter))
    finally:
        csv.field_size_limit(limit)


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_table_rows_get_the_label_and_probabilities(runs, tmp_path, fmt):
    delimiter = "," if fmt == "csv" else "\t"
    long_text = "质量很好 " * 80_000  # a 1 MB field
    texts = [*TEXTS, long_text]
    source = tmp_path / f"in.{fmt}"
    write_csv(source, ["id", "text", "label"],
              [[str(i), text, "positive"] for i, text in enumerate(texts)], delimiter)
    out = tmp_path / f"out.{fmt}"
    cli("predict", str(runs / "sentiment"), "--input", str(source), "--output", str(out),
        "--batch-size", "4")
    expected = predicted(runs / "sentiment", [*TEXTS, "质量很好 " * 1000])
    expected[long_text] = expected.pop("质量很好 " * 1000)  # both cut to the model's max length
    rows = read_csv(out, delimiter)
    # The input has a "label" column, so the added ones say "predicted_".
    assert rows[0] == ["id", "text", "label", "predicted_label",
                       "predicted_probability_negative", "predicted_probability_positive"]
    assert [row[:3] for row in rows[1:]] == [[str(i), t, "positive"] for i, t in enumerate(texts)]
    for row in rows[1:]:
        e = expected[row[1]]
        assert row[3:] == [e["label"], str(e["probabilities"]["negative"]),
                           str(e["probabilities"]["positive"])]


def test_a_one_column_table_and_the_other_runtime(runs, tmp_path):
    source = tmp_path / "reviews.csv"
    write_csv(source, ["review"], [[t] for t in TEXTS])
    out = tmp_path / "out.csv"
    cli("predict", str(runs / "sentiment"), "--runtime", "tflite", "--input", str(source),
        "--output", str(out))
    rows = read_csv(out)
    assert rows[0] == ["review", "label", "probability_negative", "probability_positive"]
    assert [row[0] for row in rows[1:]] == TEXTS
    # TFLite's probabilities are onnxruntime's to 1e-6.
    expected = predicted(runs / "sentiment", TEXTS)
    for row in rows[1:]:
        assert abs(float(row[2]) - expected[row[0]]["probabilities"]["negative"]) <= 2e-6


def test_json_lines_keep_every_field_and_text_lines_become_json_lines(runs, tmp_path):
    expected = predicted(runs / "sentiment", TEXTS)
    source = tmp_path / "in.jsonl"
    records = [{"id": i, "review": t, "meta": {"stars": [i, None]}} for i, t in enumerate(TEXTS)]
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
                      + "\n  \n", encoding="utf-8")  # blank lines are no rows
    result = cli("predict", str(runs / "sentiment"), "--input", str(source), "--text-column",
                 "review")
    assert result.stderr == b""
    rows = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert rows == [{**r, "label": expected[r["review"]]["label"],
                     "probabilities": expected[r["review"]]["probabilities"]} for r in records]

    text = tmp_path / "in.txt"
    text.write_text("".join(t.replace("\n", " ") + "\r\n" for t in TEXTS), encoding="utf-8")
    result = cli("predict", str(runs / "sentiment"), "--input", str(text))
    flat = [t.replace("\n", " ") for t in TEXTS]
    assert [json.loads(line) for line in result.stdout.decode().splitlines()] == \
        list(predicted(runs / "sentiment", flat).values())


def test_csv_to_json_lines_when_the_output_says_so(runs, tmp_path):
    source = tmp_path / "in.csv"
    write_csv(source, ["text", "n"], [[t, "1"] for t in TEXTS])
    cli("predict", str(runs / "sentiment"), "--input", str(source), "--output",
        str(tmp_path / "out.jsonl"))
    expected = predicted(runs / "sentiment", TEXTS)
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text("utf-8").splitlines()]
    assert rows == [{"text": t, "n": "1", "label": expected[t]["label"],
                     "probabilities": expected[t]["probabilities"]} for t in TEXTS]


def test_translation_over_a_tsv_file_with_beam(runs, tmp_path):
    sources = [line.split("\t")[0] for line in (runs / "translation" / "splits" / "test.tsv")
               .read_text("utf-8").splitlines()][:20]
    source = tmp_path / "pairs.tsv"
    write_csv(source, ["source", "note"], [[s, "x"] for s in sources], "\t")
    out = tmp_path / "out.tsv"
    cli("predict", str(runs / "translation"), "--runtime", "tflite", "--input", str(source),
        "--text-column", "source", "--beam", "2", "--output", str(out), "--batch-size", "7")
    expected = predicted(runs / "translation", sources, "--beam", "2")
    rows = read_csv(out, "\t")
    assert rows[0] == ["source", "note", "translation"]
    assert rows[1:] == [[s, "x", expected[s]["translation"]] for s in sources]


def test_stdin_to_stdout_says_nothing_on_stderr(runs):
    data = "".join(t.replace("\n", " ") + "\n" for t in TEXTS).encode()
    result = cli("predict", str(runs / "sentiment"), "--input", "-", input=data)
    assert result.stderr == b""
    flat = [t.replace("\n", " ") for t in TEXTS]
    assert [json.loads(line) for line in result.stdout.decode().splitlines()] == \
        list(predicted(runs / "sentiment", flat).values())
    result = cli("predict", str(runs / "sentiment"), "--input", "-", "--format", "csv",
                 input="text\n质量很好\n".encode())
    assert result.stdout.decode().splitlines()[0] == "text,label,probability_negative," \
                                                     "probability_positive"


BAD = [
    # (format, content, line, reason)
    ("txt", "好\n很好\n".encode() + b"\xff" + "坏\n".encode(), 3,
     "not valid UTF-8 (byte 0xff at byte 1 of the line); save the file as UTF-8"),
    ("txt", "好\n   \n很好\n".encode(), 2, "empty text"),
    ("csv", "id,text\n1,好\n2\n".encode(), 3, "missing column 'text' (the row has 1 of 2 fields)"),
    ("csv", 'id,text\n1,"好\n很好"\n2,""\n'.encode(), 4, "empty text in column 'text'"),
    ("csv", "id,text\n1,好\n".encode() + b"2,\xe5\xa5\n", 3,
     "not valid UTF-8 (byte 0xe5 at byte 3 of the line); save the file as UTF-8"),
    ("jsonl", b'{"text": "a"}\n[1]\n', 2, "expected a JSON object"),
    ("jsonl", b'{"text": "a"}\n{"texts": "b"}\n', 2, "no field 'text'"),
    ("jsonl", b'{"text": "a"}\n{"text": 5}\n', 2, "field 'text' is int, expected a string"),
    ("jsonl", b'{"text": "a"}\n{"text": "b"\n', 2,
     "not valid JSON (Expecting ',' delimiter at column 13)"),
]


@pytest.mark.parametrize("fmt, content, line, reason", BAD)
def test_a_bad_row_is_one_line_naming_it_and_leaves_no_output(runs, tmp_path, capsys, fmt,
                                                              content, line, reason):
    source = tmp_path / f"in.{fmt}"
    source.write_bytes(content)
    out = tmp_path / "out.jsonl"
    assert in_process(capsys, "predict", runs / "sentiment", "--input", source, "--output",
                      out) == (2, f"keras-lstm: error: {source}:{line}: {reason}{SKIP_HINT}\n")
    assert list(tmp_path.iterdir()) == [source]  # no output, no temporary file left


@pytest.mark.parametrize("flag", ["--skip-bad-rows", "--skip-bad-lines"])  # and its old name
def test_skip_bad_rows_counts_and_skips_them(runs, tmp_path, flag):
    source = tmp_path / "in.csv"
    source.write_bytes("id,text\n1,质量很好\n2\n3,\n".encode() + b"4,\xff\n"
                       + "5,太差了\n".encode())
    out = tmp_path / "out.csv"
    result = cli("predict", str(runs / "sentiment"), "--input", str(source), "--output",
                 str(out), flag)
    assert result.stderr.decode() == (
        f"keras-lstm: warning: skipped 3 bad rows (first: {source}:3: missing column 'text' "
        "(the row has 1 of 2 fields))\n")
    assert [row[:2] for row in read_csv(out)] == [["id", "text"], ["1", "质量很好"],
                                                   ["5", "太差了"]]


class EchoRuntime:
    """A sentiment runtime that labels every text "pos" (no model: the reading is under test)."""

    task, labels = "sentiment", ["pos"]

    def rows(self, texts, beam=None):
        return [{"label": "pos", "probabilities": {"pos": 1.0}} for _ in texts]


def test_a_huge_field_reads_and_the_csv_limit_is_scoped_to_the_reader(tmp_path):
    """predict_file used to raise the csv module's limit for the whole process, for good."""
    from keras_lstm.app.predict_file import predict_file

    huge = "好 " * 200_000  # 400 000 characters, 3 x csv's default field limit
    source = tmp_path / "in.csv"
    write_csv(source, ["id", "text"], [["1", huge], ["2", "short"]])
    limit = csv.field_size_limit()
    result = predict_file(EchoRuntime(), str(source), output=str(tmp_path / "out.jsonl"))
    assert result == {"rows": 2, "skipped": 0, "first_skipped": None}
    assert csv.field_size_limit() == limit
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [row["text"] for row in rows] == [huge, "short"]


def test_options_are_checked(runs, tmp_path, capsys):
    (tmp_path / "in.txt").write_text("好\n", encoding="utf-8")
    (tmp_path / "in.xml").write_text("<a/>", encoding="utf-8")
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    target = str(runs / "sentiment")
    for args, error in [
        (["--input", str(tmp_path / "in.txt"), "好"],
         "give TEXT arguments or --input FILE, not both"),
        ([], "give TEXT arguments or --input FILE"),
        (["好", "--output", "x.csv"], "--output needs --input"),
        (["--input", str(tmp_path / "in.xml")],
         f"{tmp_path / 'in.xml'}: unknown format; give --format csv, tsv, jsonl or txt"),
        (["--input", str(tmp_path / "in.txt"), "--text-column", "x"],
         "--text-column does not apply to plain text (one text per line)"),
        (["--input", str(tmp_path / "empty.csv")],
         f"{tmp_path / 'empty.csv'}: empty file (expected a header row)"),
        (["--input", str(tmp_path / "other.csv")],
         f"{tmp_path / 'other.csv'}:1: no column 'text' (columns: a, b); give --text-column"),
        (["--input", str(tmp_path / "missing.txt")],
         f"{tmp_path / 'missing.txt'}: file not found"),
        (["--input", str(tmp_path / "in.txt"), "--batch-size", "0"],
         "--batch-size: expected a positive number, got 0"),
        (["--input", str(tmp_path / "in.txt"), "--beam", "2"],
         "--beam does not apply to a sentiment model"),
    ]:
        assert in_process(capsys, "predict", target, *args) == (2, f"keras-lstm: error: {error}\n")


def on_terminal(*args):
    """(exit code, what the command wrote to its stderr, a terminal)."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "keras_lstm", *args], cwd=ROOT,
                               stderr=terminal)
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the process closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    return process.wait(timeout=120), shown.decode()


def test_a_progress_bar_only_on_a_terminal(runs, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("好\n" * 3000, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    code, shown = on_terminal("predict", str(runs / "sentiment"), "--input", str(source),
                              "--output", str(out))
    assert code == 0
    assert "predict: 100%" in shown and "3000 rows" in shown, shown
    assert len(out.read_text("utf-8").splitlines()) == 3000
    # -q: no bar, even on a terminal (piped, every other test checks stderr is empty).
    assert on_terminal("-q", "predict", str(runs / "sentiment"), "--input", str(source),
                       "--output", str(out)) == (0, "")


def temporary_files(folder):
    return [p.name for p in folder.iterdir() if ".tmp" in p.name]  # core.files: .NAME.XXXX.tmp.SUFFIX


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_an_interrupted_run_leaves_the_previous_output(runs, tmp_path, how):
    out = tmp_path / "out.jsonl"
    out.write_text("the previous output\n", encoding="utf-8")
    # ONNX: no TensorFlow to import, so the run reaches its second batch in seconds even on a
    # loaded CI machine (the Keras runtime once took more than the minute this test waits).
    process = subprocess.Popen([sys.executable, "-m", "keras_lstm", "predict",
                                str(runs / "sentiment"), "--runtime", "onnx", "--input", "-",
                                "--output", str(out), "--batch-size", "10"], cwd=ROOT,
                               stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                               # Ctrl-C as in a terminal: a test run in a background job (as CI
                               # may be) inherits SIGINT ignored, and Python then keeps it so.
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    process.stdin.write("好\n".encode() * 25)
    process.stdin.flush()
    deadline = time.monotonic() + 300
    # Two batches written (and flushed) to the temporary file: the run is half way.
    while not any((tmp_path / name).stat().st_size > 0 for name in temporary_files(tmp_path)):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.send_signal(getattr(signal, how))
    stderr = process.communicate(timeout=60)[1].decode()
    assert out.read_text("utf-8") == "the previous output\n"
    if how == "SIGINT":
        assert (process.returncode, stderr) == (130, "keras-lstm: interrupted\n")
        assert temporary_files(tmp_path) == []  # cleaned up
    else:
        assert process.returncode == -signal.SIGKILL


# The peak RSS of this process's own memory (VmHWM), in KiB. Not getrusage's ru_maxrss: Linux
# keeps that across fork and exec, so a child of a large pytest process reports the parent's.
RSS_SCRIPT = """
import sys
from keras_lstm.app.cli import main
code = main(sys.argv[1:])
with open("/proc/self/status") as status:
    print(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
"""


def test_memory_does_not_grow_with_the_file(runs, tmp_path):
    peaks = {}
    line = "质量很好 物流很快 but the box was bad\n"
    for lines in (4_000, 100_000):
        source = tmp_path / f"{lines}.txt"
        source.write_text(line * lines, encoding="utf-8")
        # The ONNX runtime: a small, steady process, so its peak shows what the file costs.
        result = subprocess.run([sys.executable, "-c", RSS_SCRIPT, "predict",
                                 str(runs / "sentiment"), "--runtime", "onnx", "--input",
                                 str(source), "--output", str(tmp_path / "out.jsonl")],
                                cwd=ROOT, capture_output=True, text=True, timeout=300,
                                check=True)
        peaks[lines] = int(result.stdout.split()[-1])  # KiB
        assert len((tmp_path / "out.jsonl").read_text("utf-8").splitlines()) == lines
    # 25x the lines (4 MB more input, 11 MB more output): the same peak, within 1 MB.
    assert peaks[100_000] - peaks[4_000] < 1024, peaks


def test_lines_split_at_newline_only(runs, tmp_path):
    # U+2028 and a lone \r are text inside a line, as in the data readers.
    source = tmp_path / "in.txt"
    source.write_bytes("好\u2028很好\n坏\r了\n".encode())
    out = io.StringIO(cli("predict", str(runs / "sentiment"), "--input", str(source))
                      .stdout.decode())
    assert [json.loads(line)["text"] for line in out] == ["好\u2028很好", "坏\r了"]
