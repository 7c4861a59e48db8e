"""keras_lstm.core.reporter: messages and progress on stderr (a bar on a terminal, plain lines in
a log), quiet with -q; results alone on stdout."""

import io

import pytest

from keras_lstm.core.reporter import Reporter


class Stream(io.StringIO):
    """A stream that says whether it is a terminal."""

    def __init__(self, terminal):
        super().__init__()
        self.terminal = terminal

    def isatty(self):
        return self.terminal


def test_a_log_gets_plain_lines_without_control_codes():
    log = Stream(terminal=False)
    reporter = Reporter(stream=log, every=0)  # a line at every update
    with reporter.progress("reading big.csv", total=3000, unit="rows") as progress:
        progress.update(1000)
        progress.note("2 labels")
        progress.update(2000)
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("reading big.csv: 1,000 of 3,000 rows (") and "rows/s)" in lines[0]
    assert lines[1].startswith("reading big.csv: 3,000 of 3,000 rows (") and \
        lines[1].endswith(", 2 labels)")
    assert lines[2].startswith("reading big.csv: 3,000 rows in ") and len(lines) == 3
    assert "\r" not in log.getvalue() and "\x1b" not in log.getvalue()


def test_a_log_gets_a_line_only_every_few_seconds():
    log = Stream(terminal=False)
    with Reporter(stream=log).progress("reading", summary=False) as progress:
        for _ in range(1000):
            progress.update()
    assert log.getvalue() == ""  # quicker than `every` (10 s), and no closing line asked for
    assert progress.count == 1000


def test_a_terminal_gets_a_bar_that_the_summary_replaces():
    terminal = Stream(terminal=True)
    with Reporter(stream=terminal).progress("epoch 1/2", total=4, unit="steps") as progress:
        for _ in range(4):
            progress.update()
        progress.close("epoch 1/2 (0.1 s): loss 0.6931")
    shown = terminal.getvalue()
    assert "\r" in shown and "epoch 1/2:   0%" in shown and "| 0/4 [" in shown  # tqdm's bar
    assert shown.endswith("epoch 1/2 (0.1 s): loss 0.6931\n")


def test_a_terminal_keeps_the_finished_bar_when_there_is_no_summary():
    terminal = Stream(terminal=True)
    progress = Reporter(stream=terminal).progress("predict", total=3 * 2**20, unit="B",
                                                  summary=False)
    progress.note("3000 rows")
    progress.update(3 * 2**20)
    progress.close("not shown")
    shown = terminal.getvalue()
    assert "predict: 100%" in shown and "3.00M" in shown and "3000 rows" in shown
    assert "not shown" not in shown and shown.endswith("3000 rows]\n")  # the bar stays


def test_bytes_are_counted_in_mebibytes_in_a_log():
    log = Stream(terminal=False)
    progress = Reporter(stream=log, every=0).progress("predict", total=2 * 2**20, unit="B")
    progress.update(2**20)
    assert log.getvalue().startswith("predict: 1.0 of 2.0 MiB (")


@pytest.mark.parametrize("terminal", [False, True])
def test_quiet_shows_only_warnings(terminal):
    stream = Stream(terminal)
    reporter = Reporter(verbosity=0, stream=stream, every=0)
    reporter.message("preset: fast")
    with reporter.progress("reading", total=10) as progress:
        progress.update(10)
    reporter.warning("skipped 3 bad rows")
    assert stream.getvalue() == "keras-lstm: warning: skipped 3 bad rows\n"
    assert progress.count == 10


def test_details_only_when_verbose():
    for verbosity, expected in [(1, "preset: fast\n"),
                                (2, "preset: fast\nfirst training step after 2.0 s\n")]:
        stream = Stream(terminal=False)
        reporter = Reporter(verbosity, stream=stream)
        reporter.message("preset: fast")
        reporter.message("first training step after 2.0 s", level=2)
        assert stream.getvalue() == expected


def test_the_default_stream_is_stderr_at_the_time_of_writing(capsys):
    reporter = Reporter()
    reporter.message("said")
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "said\n")


def write_labelled(path, count):
    rows = "".join(f"good film {i},positive\nbad plot {i},negative\n" for i in range(count))
    path.write_text("text,label\n" + rows, encoding="utf-8")
    return path


def test_the_cli_prints_results_on_stdout_and_the_rest_on_stderr(tmp_path, capsys):
    from keras_lstm.app.cli import main

    data = write_labelled(tmp_path / "train.csv", 60)
    capsys.readouterr()
    assert main(["prepare", "sentiment", "--data", str(data), "--out", str(tmp_path / "p"),
                 "--shards", "2", "--preset", "none"]) == 0
    out, err = capsys.readouterr()
    # stdout: the result, one line; stderr: the preset and the phases (plain: not a terminal).
    assert out.count("\n") == 1 and out.startswith("prepared 120 texts in "), out
    assert err.startswith("preset: none\n"), err
    assert f"reading {data}: 120 rows in " in err and "tokenizing and writing 2 shards: " in err
    assert "\r" not in err
    assert main(["prepare", "sentiment", "-q", "--data", str(data), "--out",
                 str(tmp_path / "q"), "--shards", "2"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("prepared 120 texts in ") and err == ""
