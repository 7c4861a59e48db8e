"""Resume and early stopping end to end: a run killed (SIGKILL) after its first committed
epoch and resumed with --resume stops early at the same epoch as the uninterrupted run,
with the same metrics every epoch and the same best model."""

import json
import os
import re
import subprocess
import sys

import pytest

from tests.helpers import REPO, kill_after_first_committed_epoch

# Trains, exports or runs a subprocess per test: CI runs it; `pytest -m "not slow"` skips it.
pytestmark = pytest.mark.slow

EPOCHS = 10


def run_cli(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "keras_lstm", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=900)


def epoch_lines(stderr):
    """`{epoch: "accuracy …, loss …, val_accuracy …, val_loss …"}` (the timing left out)."""
    lines = {}
    for line in stderr.splitlines():
        match = re.fullmatch(r"epoch (\d+)/\d+ \([\d.]+ s\): (.*)", line.strip())
        if match:
            lines[int(match[1])] = match[2]
    return lines


def _two_class_csv(path):
    rows = [(f"good great film number {i} " + "nice " * (i % 7), "positive") for i in range(200)]
    rows += [(f"bad awful plot number {i} " + "poor " * (i % 5), "negative") for i in range(200)]
    path.write_text("text,label\n" + "".join(f'"{t}",{y}\n' for t, y in rows), encoding="utf-8")
    return path


# Two schedules on the same data (validation accuracy reaches 1.0 and stays there):
# * "saturated-before-the-kill": 1.0 already after epoch 1, so the resumed run's first
#   epoch does not improve on the restored best score. It must stop right there
#   (EarlyStopping's best/wait restored) and keep the epoch-1 model (BestModel's score
#   restored); a resumed run that forgot either would train on or overwrite the model.
# * "improves-after-the-kill": 0.95 after epoch 1, 1.0 after epoch 2: the best model is
#   written by the resumed run, so its weights test the restored weights, optimizer
#   state, dropout states and data order.
# "streamed": the data read into shards in RUN/prepared (`--stream`), which the
# resumed run reads again instead of tokenizing the file.
@pytest.mark.slow
@pytest.mark.parametrize("learning_rate, stop_epoch, stream", [
    ("2e-3", 2, False), ("1e-3", 3, False), ("1e-3", 2, True)],
    ids=["saturated-before-the-kill", "improves-after-the-kill", "streamed"])
def test_sigkill_and_resume_stops_early_at_the_same_epoch_with_the_same_weights(
        tmp_path, learning_rate, stop_epoch, stream):
    from keras_lstm.runs import load_model

    data = _two_class_csv(tmp_path / "train.csv")

    def args(out):
        return ["train", "sentiment", "--data", data, "--out", out, "--preset", "none",
                "--units", "8", "--embedding-dim", "8", "--epochs", EPOCHS, "--batch-size", "16",
                "--seed", "3", "--patience", "1", "--learning-rate", learning_rate,
                "--stream" if stream else "--no-stream"]

    whole = run_cli(*args(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr[-2000:]
    whole_epochs = epoch_lines(whole.stderr)
    # Early stopping ended it well before --epochs.
    assert sorted(whole_epochs) == list(range(1, stop_epoch + 1)), whole.stderr

    interrupted = tmp_path / "interrupted"
    committed = kill_after_first_committed_epoch(args(interrupted), interrupted)
    assert committed < stop_epoch, f"killed after epoch {committed}, too late to test anything"
    resumed = run_cli(*args(interrupted), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming after epoch {committed}" in resumed.stderr
    assert (f"reading the shards prepared in {interrupted / 'prepared'}" in resumed.stderr) \
        == stream
    # The resumed run trained exactly the epochs the uninterrupted run had left, with the
    # same losses and accuracies, and stopped at the same epoch.
    assert epoch_lines(resumed.stderr) == {epoch: line for epoch, line in whole_epochs.items()
                                           if epoch > committed}
    assert not (interrupted / "backup").exists()
    assert json.loads((interrupted / "best_score.json").read_text()) == \
        json.loads((tmp_path / "whole" / "best_score.json").read_text())
    for left, right in zip(load_model(tmp_path / "whole").get_weights(),
                           load_model(interrupted).get_weights(), strict=True):
        assert (left == right).all()
