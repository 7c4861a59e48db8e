"""tf.distribute: MirroredStrategy over two logical CPU devices matches one device."""

import json
import os
import subprocess
import sys

import pytest

from keras_lstm.cli import main

SCRIPT = r"""
import json, sys
import numpy as np
from keras_lstm.training import SentimentTrainingConfig, split_cpu, train_sentiment
split_cpu(2)
import tensorflow as tf
from keras_lstm.runs import load_model
assert len(tf.config.list_logical_devices("CPU")) == 2
data, out = sys.argv[1], sys.argv[2]
weights = {}
for strategy in ("default", "mirrored"):
    train_sentiment(SentimentTrainingConfig(out=f"{out}/{strategy}", data=data, units=8,
                    embedding_dim=8, epochs=2, batch_size=16, dropout=0.0, strategy=strategy),
                    verbose=0)
    weights[strategy] = load_model(f"{out}/{strategy}").get_weights()
diff = max(float(np.abs(a - b).max()) for a, b in zip(weights["default"], weights["mirrored"]))
print(json.dumps({"max_diff": diff}))
"""


def test_mirrored_over_two_cpu_devices_matches_single_device(tmp_path):
    rows = [(f"good great film number {i} " + "nice " * (i % 7), "positive") for i in range(200)]
    rows += [(f"bad awful plot number {i} " + "poor " * (i % 5), "negative") for i in range(200)]
    data = tmp_path / "train.csv"
    data.write_text("text,label\n" + "".join(f'"{t}",{y}\n' for t, y in rows), encoding="utf-8")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(data), str(tmp_path)],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    # Not bit-identical: a batch of odd size is split unevenly over the two replicas, and
    # each replica's mean loss then weighs its examples slightly differently.
    assert json.loads(result.stdout.strip().splitlines()[-1])["max_diff"] < 5e-3


def test_multi_worker_is_refused_with_a_clear_reason(tmp_path, capsys):
    data = tmp_path / "train.csv"
    data.write_text("text,label\ngood,positive\nbad,negative\n", encoding="utf-8")
    code = main(["train", "sentiment", "--data", str(data), "--out", str(tmp_path / "r"),
                 "--strategy", "multi-worker"])
    assert code == 2
    assert "keras-team/keras#20585" in capsys.readouterr().err


@pytest.mark.parametrize("strategy", ["mirrored"])
def test_cli_accepts_mirrored_with_cpu_devices(tmp_path, strategy):
    data = tmp_path / "train.csv"
    data.write_text("text,label\n" + "".join(f"word{i} good,positive\nword{i} bad,negative\n"
                                             for i in range(40)), encoding="utf-8")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-m", "keras_lstm", "train", "sentiment", "--data",
                             str(data), "--out", str(tmp_path / "r"), "--units", "4",
                             "--embedding-dim", "4", "--epochs", "1", "--strategy", strategy,
                             "--cpu-devices", "2"], capture_output=True, text=True, env=env,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "r" / "model.keras").is_file()
