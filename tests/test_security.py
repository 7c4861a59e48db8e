"""Loading what a run folder holds runs no code from it: Keras safe mode on every model load
(a Lambda layer or an unregistered class is refused in one line, its code never runs), and
no pickle anywhere in the package."""

import ast
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.helpers import REPO, train_run

PACKAGES = ("keras_lstm", "export", "lstm_text")
PICKLING_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve"}


def python_files():
    files = [path for package in PACKAGES for path in sorted((REPO / package).rglob("*.py"))]
    assert len(files) > 20, files  # the scan below must not pass by finding nothing
    return files


def _dotted(node):
    """`keras.saving.load_model` for the expression `keras.saving.load_model`, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return inner and f"{inner}.{node.attr}"
    return None


def _keyword_is_true(call, name):
    return any(k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is True
               for k in call.keywords)


def pickle_uses(source, name="<source>"):
    """Every place `source` imports a pickling module or loads with allow_pickle=True."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"{name}:{node.lineno}: import {a.name}" for a in node.names
                      if a.name.split(".")[0] in PICKLING_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module and \
                node.module.split(".")[0] in PICKLING_MODULES:
            found.append(f"{name}:{node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            called = _dotted(node.func) or ""
            if any(k.arg == "allow_pickle" and not (isinstance(k.value, ast.Constant)
                                                    and k.value.value is False)
                   for k in node.keywords):
                found.append(f"{name}:{node.lineno}: {called}(allow_pickle=...)")
            if called.endswith(("read_pickle", "to_pickle")) or called == "__import__" and \
                    node.args and isinstance(node.args[0], ast.Constant) and \
                    str(node.args[0].value).split(".")[0] in PICKLING_MODULES:
                found.append(f"{name}:{node.lineno}: {called}")
    return found


def unsafe_keras_loads(source, name="<source>"):
    """`(loads, problems)`: Keras model loads in `source`, and those not in safe mode."""
    loads, problems = [], []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        called = _dotted(node.func) or ""
        if "enable_unsafe_deserialization" in called:
            problems.append(f"{name}:{node.lineno}: {called}()")
        if called in ("keras.saving.load_model", "keras.models.load_model", "saving.load_model",
                      "models.load_model", "tf.keras.models.load_model"):
            loads.append(f"{name}:{node.lineno}")
            if not _keyword_is_true(node, "safe_mode"):
                problems.append(f"{name}:{node.lineno}: {called} without safe_mode=True")
    return loads, problems


def test_the_scanners_find_what_they_look_for():
    bad = ("import pickle\nfrom joblib import load\nimport numpy as np\n"
           "x = np.load('a.npy', allow_pickle=True)\nimport pandas\npandas.read_pickle('f')\n")
    assert len(pickle_uses(bad)) == 4
    assert pickle_uses("import numpy as np\nnp.load('a.npy', allow_pickle=False)\n") == []
    loads, problems = unsafe_keras_loads(
        "import keras\nkeras.saving.load_model('m.keras')\n"
        "keras.models.load_model('m.keras', safe_mode=False)\n"
        "keras.saving.load_model('m.keras', safe_mode=True)\n"
        "keras.config.enable_unsafe_deserialization()\n")
    assert len(loads) == 3 and len(problems) == 3


def test_no_module_uses_pickle():
    found = [use for path in python_files()
             for use in pickle_uses(path.read_text(encoding="utf-8"), path.relative_to(REPO))]
    assert found == []


def test_every_keras_model_load_is_in_safe_mode():
    loads, problems = [], []
    for path in python_files():
        file_loads, file_problems = unsafe_keras_loads(path.read_text(encoding="utf-8"),
                                                       path.relative_to(REPO))
        loads += file_loads
        problems += file_problems
    assert problems == []
    assert loads, "no keras load_model call found: did the loading move?"


# ----- a run folder whose model.keras asks for code -----


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("security")
    data = folder / "train.csv"
    data.write_text("text,label\n" + "".join(f"good film {i},positive\nbad plot {i},negative\n"
                                             for i in range(30)), encoding="utf-8")
    train_run("sentiment", out=str(folder / "run"), data=str(data), units=4, embedding_dim=4,
              epochs=1, min_count=1)
    return folder / "run"


def _with_model(run_folder, tmp_path, model_file):
    copy = tmp_path / "run"
    shutil.copytree(run_folder, copy)
    shutil.copy(model_file, copy / "model.keras")
    return copy


def _predict(run, extra_path=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "keras_lstm", "predict", str(run), "good film"],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=300)


def _assert_refused(result, run, reason=None):
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stdout == ""
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert f"{run / 'model.keras'}: cannot load the Keras model" in result.stderr
    assert reason is None or reason in result.stderr


@pytest.mark.slow
def test_a_model_with_a_lambda_layer_is_refused_and_its_code_never_runs(run_folder, tmp_path):
    import keras

    marker = tmp_path / "the lambda ran"
    # The lambda leaves a file when it is called (building the model calls it): it runs
    # here, once, while the model is saved; loading it back must not run it again.
    function = eval(f"lambda t: (open({str(marker)!r}, 'w').close(), t)[1]")  # noqa: S307
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(40, 4)(token_ids)
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Lambda(function, name="lambda")(x)
    probabilities = keras.layers.Dense(2, activation="softmax")(x)
    keras.Model(token_ids, probabilities).save(tmp_path / "lambda.keras")
    with zipfile.ZipFile(tmp_path / "lambda.keras") as archive:
        assert '"Lambda"' in archive.read("config.json").decode()
    marker.unlink()

    run = _with_model(run_folder, tmp_path, tmp_path / "lambda.keras")
    result = _predict(run)
    _assert_refused(result, run, "Lambda")
    assert not marker.exists()


@pytest.mark.slow
def test_a_model_naming_an_unregistered_class_is_refused_and_its_module_never_imported(
        run_folder, tmp_path):
    # A module that would leave a file if anything imported it, on the predicting
    # process' path; the model's config names a class in it.
    modules = tmp_path / "modules"
    modules.mkdir()
    marker = tmp_path / "the module was imported"
    (modules / "backdoor_layers.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n"
        "import keras\n"
        "class Backdoor(keras.layers.Dense):\n"
        "    pass\n", encoding="utf-8")
    original = run_folder / "model.keras"
    forged = tmp_path / "forged.keras"
    with zipfile.ZipFile(original) as source, zipfile.ZipFile(forged, "w") as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(content)
                layer = next(layer for layer in config["config"]["layers"]
                             if layer["class_name"] == "Dense")
                layer.update(class_name="Backdoor", module="backdoor_layers",
                             registered_name="Backdoor")
                content = json.dumps(config).encode()
            target.writestr(item, content)

    run = _with_model(run_folder, tmp_path, forged)
    result = _predict(run, extra_path=modules)
    # (Keras' first line names the model, not the class: "<class Functional> could not be
    # deserialized properly"; the class is further down its message.)
    _assert_refused(result, run)
    assert not marker.exists()
    # The same folder with the untouched model predicts: the refusal is the forged class.
    shutil.copy(original, run / "model.keras")
    assert _predict(run).returncode == 0


def test_the_keras_runtime_loads_the_model_through_the_safe_loader(run_folder, monkeypatch):
    """`keras-lstm predict` and `runtimes.load(RUN, "keras")` reach keras through
    runs.load_model, the one safe-mode load the scan above checks."""
    import keras

    from keras_lstm import runtimes

    calls = []
    load_model = keras.saving.load_model

    def recording(*args, **kwargs):
        calls.append(kwargs.get("safe_mode"))
        return load_model(*args, **kwargs)

    monkeypatch.setattr(keras.saving, "load_model", recording)
    runtimes.load(run_folder, "keras").predict(["good film"])
    assert calls == [True]

