"""tf.distribute: MirroredStrategy over two logical CPU devices matches one device; two
MultiWorkerMirroredStrategy workers on 127.0.0.1 train in step."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_lstm.app.cli import main
from tests.helpers import REPO, free_ports

# Trains, exports or runs a subprocess per test: CI runs it; `pytest -m "not slow"` skips it.
pytestmark = pytest.mark.slow

SCRIPT = r"""
import json, sys
import numpy as np
from keras_lstm.training import split_cpu
split_cpu(2)
import tensorflow as tf
from keras_lstm.runs import load_model
from tests.helpers import train_run
assert len(tf.config.list_logical_devices("CPU")) == 2
data, out = sys.argv[1], sys.argv[2]
weights = {}
for strategy in ("default", "mirrored"):
    train_run("sentiment", out=f"{out}/{strategy}", data=data, units=8, embedding_dim=8,
              epochs=2, batch_size=16, dropout=0.0, strategy=strategy)
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
                            capture_output=True, text=True, env=env, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    # Not bit-identical: a batch of odd size is split unevenly over the two replicas, and
    # each replica's mean loss then weighs its examples slightly differently. Measured
    # (2026-11-26, Keras 3.15.1, TF 2.21): 1.9e-4. Summing the replicas' gradients instead
    # of averaging them (Keras' scale_loss_for_distribution made the identity) gives 4.6e-3:
    # Adam divides most of a gradient's scale away, so a sum shows only through Adam's
    # epsilon and the clipnorm, but 1e-3 tells the two apart with a margin on each side.
    assert json.loads(result.stdout.strip().splitlines()[-1])["max_diff"] < 1e-3


WORKER = r"""
import json, sys
import numpy as np
from keras_lstm.runs import load_model
from tests.helpers import train_run
data, out = sys.argv[1], sys.argv[2]
result = train_run("sentiment", out=out, data=data, units=8, embedding_dim=8, epochs=2,
                   batch_size=16, dropout=0.2, strategy="multi-worker")
weights = load_model(result["run_dir"]).get_weights()
print(json.dumps({"chief": result["chief"], "run_dir": result["run_dir"],
                  "weights": [w.tolist() for w in weights]}))
"""


def _launch_workers(command, tmp_path):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_CONFIG": tf_config}
        env["PYTHONPATH"] = str(REPO)
        processes.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True, env=env, cwd=tmp_path))
    results = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=300)
            assert process.returncode == 0, stderr[-3000:]
            results.append((stdout, stderr))
    finally:
        for process in processes:
            process.kill()
    return results


def _two_class_csv(tmp_path):
    rows = [(f"good great film number {i} " + "nice " * (i % 7), "positive") for i in range(200)]
    rows += [(f"bad awful plot number {i} " + "poor " * (i % 5), "negative") for i in range(200)]
    data = tmp_path / "train.csv"
    data.write_text("text,label\n" + "".join(f'"{t}",{y}\n' for t, y in rows), encoding="utf-8")
    return data


def test_two_workers_on_localhost_train_in_step_and_the_chief_saves_one_model(tmp_path):
    data, out = _two_class_csv(tmp_path), tmp_path / "run"
    outputs = _launch_workers([sys.executable, "-c", WORKER, str(data), str(out)], tmp_path)
    chief, worker = (json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs)
    assert chief["chief"] and not worker["chief"]
    assert chief["run_dir"] == str(out) and worker["run_dir"] != str(out)
    # Each worker trained on its own half of the batches: equal weights mean the
    # gradients were all-reduced at every step.
    for a, b in zip(chief["weights"], worker["weights"], strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
    assert sorted(p.name for p in out.glob("*.keras")) == ["model.keras"]
    assert (out / "config.json").is_file()


RECORDING_WORKER = r"""
import json, sys
import keras
import tensorflow as tf
from keras_lstm.runs import load_model
from keras_lstm.tasks.sentiment import SentimentTask
from tests.helpers import train_run

data, out, learning_rate = sys.argv[1], sys.argv[2], float(sys.argv[3])
# Plain SGD in place of Adam: Adam divides a gradient's scale away, so only SGD shows
# whether the workers' gradients were averaged or summed.
keras.optimizers.Adam = lambda learning_rate, clipnorm=None: keras.optimizers.SGD(learning_rate)
batches, initial = [], []
datasets, build_model = SentimentTask.datasets, SentimentTask.build_model


def recording_datasets(self, *args):
    train, validation, kwargs = datasets(self, *args)

    def record(x, y):
        batches.append([x.numpy().tolist(), y.numpy().tolist()])
        return 0

    def tap(x, y):  # every batch this worker trains on passes through here, in order
        done = tf.py_function(record, [x, y], tf.int32)
        with tf.control_dependencies([done]):
            return tf.identity(x), tf.identity(y)

    recorded = train.map(tap)
    recorded.steps_per_epoch = train.steps_per_epoch
    return recorded, validation, kwargs


def recording_build_model(self, *args):
    model = build_model(self, *args)
    initial.extend(w.tolist() for w in model.get_weights())
    return model


SentimentTask.datasets, SentimentTask.build_model = recording_datasets, recording_build_model
result = train_run("sentiment", out=out, data=data, units=8, embedding_dim=8, epochs=1,
                   batch_size=16, dropout=0.0, learning_rate=learning_rate, min_count=1,
                   strategy="multi-worker")
print(json.dumps({"chief": result["chief"], "batches": batches, "initial": initial,
                  "weights": [w.tolist() for w in load_model(result["run_dir"]).get_weights()]}))
"""


def _sgd_steps(model, initial, steps, learning_rate, loss):
    """`model` from `initial` after SGD on `steps`, each a list of `(ids, labels)` parts."""
    import tensorflow as tf

    model.set_weights([np.asarray(w, "float32") for w in initial])
    for parts in steps:
        with tf.GradientTape() as tape:
            value = loss(model, parts)
        gradients = tape.gradient(value, model.trainable_variables)
        for variable, gradient in zip(model.trainable_variables, gradients, strict=True):
            variable.assign_sub(learning_rate * tf.convert_to_tensor(gradient))
    return model.get_weights()


def _global_mean_loss(model, parts):
    """The plain mean loss of one batch made of every worker's batch (padded alike)."""
    import keras

    width = max(len(ids[0]) for ids, _ in parts)
    ids = np.concatenate([np.pad(np.asarray(ids), [(0, 0), (0, width - len(ids[0]))])
                          for ids, _ in parts])
    labels = np.concatenate([labels for _, labels in parts])
    return keras.ops.mean(keras.losses.sparse_categorical_crossentropy(
        labels, model(ids, training=True)))


def _summed_worker_losses(model, parts):
    """The wrong alternative: each worker's mean loss, summed (gradients summed, not averaged)."""
    import keras

    return sum(keras.ops.mean(keras.losses.sparse_categorical_crossentropy(
        np.asarray(labels), model(np.asarray(ids), training=True))) for ids, labels in parts)


@pytest.mark.slow
def test_two_workers_train_on_different_batches_and_average_their_gradients(tmp_path):
    from keras_lstm.runs import load_model

    data, out, learning_rate = _two_class_csv(tmp_path), tmp_path / "run", 0.2
    outputs = _launch_workers([sys.executable, "-c", RECORDING_WORKER, str(data), str(out),
                               str(learning_rate)], tmp_path)
    chief, worker = (json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs)
    assert chief["chief"] and not worker["chief"]

    # Each worker read its own batches: as many as the other, none sharing an example.
    assert len(chief["batches"]) == len(worker["batches"]) >= 5
    examples = [{tuple(i for i in row if i) for ids, _ in w["batches"] for row in ids}
                for w in (chief, worker)]
    assert not examples[0] & examples[1]
    assert len(examples[0]) == sum(len(ids) for ids, _ in chief["batches"])
    assert chief["initial"] == worker["initial"]

    # Each step's update is SGD on the mean loss over both workers' batches together.
    model = load_model(out)
    steps = [[tuple(a), tuple(b)] for a, b in zip(chief["batches"], worker["batches"])]
    averaged = _sgd_steps(model, chief["initial"], steps, learning_rate, _global_mean_loss)
    summed = _sgd_steps(model, chief["initial"], steps, learning_rate, _summed_worker_losses)
    trained = [np.asarray(w) for w in chief["weights"]]

    def distance(weights):
        return max(float(np.abs(a - b).max()) for a, b in zip(trained, weights, strict=True))

    print({"averaged": distance(averaged), "summed": distance(summed)})
    assert distance(averaged) < 1e-5
    assert distance(summed) > 1e-2


def test_cli_multi_worker_job_writes_one_run_folder(tmp_path):
    data, out = _two_class_csv(tmp_path), tmp_path / "run"
    command = [sys.executable, "-m", "keras_lstm", "train", "sentiment", "--data", str(data),
               "--out", str(out), "--units", "4", "--embedding-dim", "4", "--epochs", "1",
               "--strategy", "multi-worker"]
    (chief, _), (worker, _) = _launch_workers(command, tmp_path)  # stdout: the results
    assert f"run folder: {out}" in chief
    assert f"the chief wrote {out}" in worker
    assert (out / "model.keras").is_file()


def test_two_workers_on_prepared_data_each_read_only_their_shards(tmp_path):
    data, prepared, out = _two_class_csv(tmp_path), tmp_path / "prepared", tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "keras_lstm", "prepare", "sentiment", "--data",
                           str(data), "--out", str(prepared), "--shards", "4"],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    command = [sys.executable, "-m", "keras_lstm", "train", "sentiment", "--data", str(prepared),
               "--out", str(out), "--units", "4", "--embedding-dim", "4", "--epochs", "1",
               "--strategy", "multi-worker", "-v"]
    outputs = _launch_workers(command, tmp_path)
    read = {}
    for _, said in outputs:  # what the workers say goes to stderr
        line = next(line for line in said.splitlines() if " training shards: " in line)
        worker = int(line.split()[1])
        read[worker] = set(line.split(": ", 1)[1].split(", "))
    assert set(read) == {0, 1} and not read[0] & read[1]
    assert read[0] | read[1] == {f"train-0000{i}-of-00004.tfrecord" for i in range(4)}
    assert all("first training step after" in said for _, said in outputs)
    assert (out / "model.keras").is_file()


@pytest.mark.parametrize("tf_config, message", [
    (None, "needs TF_CONFIG"),
    ("{not json", "expected JSON"),
    ('{"cluster": []}', "must map task types"),
])
def test_multi_worker_without_a_valid_tf_config_is_refused(tmp_path, capsys, monkeypatch,
                                                           tf_config, message):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    data = tmp_path / "train.csv"
    data.write_text("text,label\ngood,positive\nbad,negative\n", encoding="utf-8")
    code = main(["train", "sentiment", "--data", str(data), "--out", str(tmp_path / "r"),
                 "--strategy", "multi-worker"])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


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


def test_translation_trains_under_both_strategies(tmp_path):
    """`--strategy` applies to translation too: mirrored over two CPU devices, and two
    multi-worker workers on 127.0.0.1 that write one run folder."""
    common = ["train", "translation", "--preset", "none", "--max-examples", "400", "--epochs",
              "1", "--units", "8", "--embedding-dim", "8"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    mirrored = subprocess.run([sys.executable, "-m", "keras_lstm", *common, "--out",
                               str(tmp_path / "mirrored"), "--strategy", "mirrored",
                               "--cpu-devices", "2"], capture_output=True, text=True, env=env,
                              timeout=600, cwd=REPO)
    assert mirrored.returncode == 0, mirrored.stderr[-3000:]
    assert (tmp_path / "mirrored" / "model.weights.h5").is_file()
    out = tmp_path / "workers"
    command = [sys.executable, "-m", "keras_lstm", *common, "--out", str(out), "--strategy",
               "multi-worker"]
    (chief, _), (worker, _) = _launch_workers(command, tmp_path)  # stdout: the results
    assert f"run folder: {out}" in chief and f"the chief wrote {out}" in worker
    assert (out / "model.weights.h5").is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("workers")) == ["workers"]
