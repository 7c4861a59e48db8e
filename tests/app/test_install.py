"""The TensorFlow-free install: `pip install keras-lstm` (no extras) in a fresh venv.

A wheel of this checkout is installed with its declared dependencies only
(pip fetches them from the package index into its cache), then its
`keras-lstm` predicts, tokenizes and serves the committed small ONNX and
TFLite exports with the answers of the full install, refuses to train with
one line naming the extra, and cannot import TensorFlow. The venv's size is
printed and held to the issue's goal (bench/install_size.py measures both
installs for bench/README.md). Beside it, fast: in this environment with a module
of the extra made unimportable, a command that needs it says so in one line.
"""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import free_ports, wait_until_ready

ROOT = Path(__file__).resolve().parents[2]
LEGACY = ROOT / "tests" / "fixtures" / "legacy_73ab711"
TEXTS = ["great flight, friendly crew", "lost my bag and waited three hours", "ok"]
PAIRS = ["hello", "I am happy .", "where is the station ?"]
GOAL_MB = 400
# Run in a process where these cannot be imported, as in the TensorFlow-free install.
WITHOUT = textwrap.dedent('''
    import sys

    class Missing:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in sys.argv[1].split(","):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    sys.meta_path.insert(0, Missing())
    from keras_lstm.app.cli import main

    sys.exit(main(sys.argv[2:]))
''')


def _install_size():
    spec = importlib.util.spec_from_file_location("bench_install_size",
                                                  ROOT / "bench" / "install_size.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    install_size = _install_size()
    scratch = tmp_path_factory.mktemp("install")
    wheel = install_size.build_wheel(scratch)
    folder = install_size.make_venv(scratch / "venv", wheel)
    size = install_size.tree_bytes(folder)
    print(f"\nTensorFlow-free venv: {size / 1e6:.0f} MB ({folder})")
    return folder, size


def run(venv, *command, check=True):
    """`command` with the venv's programs first on PATH, outside the checkout (no stray imports)."""
    folder, _ = venv
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    environment["PATH"] = f"{folder / 'bin'}{os.pathsep}{environment.get('PATH', '')}"
    program = str(folder / "bin" / command[0])
    result = subprocess.run([program, *command[1:]], capture_output=True, text=True,
                            env=environment, cwd=folder, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr[-2000:]
    return result


def full_install(*arguments):
    """`keras-lstm ARGUMENTS` of the full install (this environment)."""
    result = subprocess.run([sys.executable, "-m", "keras_lstm", *arguments], cwd=ROOT,
                            capture_output=True, text=True, check=True, timeout=300)
    return result.stdout


@pytest.mark.slow
def test_the_venv_is_small_and_has_no_tensorflow(venv):
    _, size = venv
    assert size <= GOAL_MB * 1e6, f"the TensorFlow-free venv takes {size / 1e6:.0f} MB"
    result = run(venv, "python", "-c", "import tensorflow", check=False)
    assert result.returncode == 1 and "No module named 'tensorflow'" in result.stderr
    where = run(venv, "python", "-c", "import keras_lstm; print(keras_lstm.__file__)").stdout
    assert Path(where.strip()).is_relative_to(venv[0]), where  # the wheel's copy, not the tree's


@pytest.mark.slow
@pytest.mark.parametrize("task, texts", [("sentiment", TEXTS), ("translation", PAIRS)])
@pytest.mark.parametrize("runtime", ["onnx", "tflite"])
def test_predict_answers_as_the_full_install(venv, task, texts, runtime):
    arguments = ["predict", str(LEGACY / task / "export"), "--runtime", runtime, *texts]
    answers = run(venv, "keras-lstm", *arguments).stdout
    assert [json.loads(line)["text"] for line in answers.splitlines()] == texts
    assert answers == full_install(*arguments)


@pytest.mark.slow
def test_tokenize_answers_as_the_full_install(venv, tmp_path):
    lines = "".join(json.dumps({"text": text}) + "\n" for text in TEXTS)
    folder, _ = venv
    result = subprocess.run([str(folder / "bin" / "keras-lstm"), "tokenize",
                             str(LEGACY / "sentiment" / "export")], input=lines,
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    full = subprocess.run([sys.executable, "-m", "keras_lstm", "tokenize",
                           str(LEGACY / "sentiment" / "export")], input=lines, cwd=ROOT,
                          capture_output=True, text=True, check=True, timeout=300)
    assert result.stdout == full.stdout and len(result.stdout.splitlines()) == len(TEXTS)


@pytest.mark.slow
def test_training_commands_name_the_extra_in_one_line(venv, tmp_path):
    for command in (["train", "sentiment", "--out", str(tmp_path / "run")],
                    ["export", str(tmp_path / "run")], ["demo", "--out", str(tmp_path / "d")]):
        result = run(venv, "keras-lstm", *command, check=False)
        assert result.returncode == 2, result.stderr[-2000:]
        assert result.stderr == (f"keras-lstm: error: {command[0]} needs tensorflow, which this "
                                 "install lacks: pip install 'keras-lstm[train]'\n")
    assert not (tmp_path / "run").exists() and not (tmp_path / "d").exists()
    assert "train" in run(venv, "keras-lstm", "--help").stdout


def _get(url, body=None):
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, json.loads(response.read())


@pytest.mark.slow
def test_serve_answers_ready_and_predict(venv):
    folder, _ = venv
    port = free_ports()[0]
    export = LEGACY / "sentiment" / "export"
    process = subprocess.Popen([str(folder / "bin" / "keras-lstm"), "serve", str(export),
                                "--port", str(port)], cwd=folder,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, url)
        status, answer = _get(url + "/predict", {"texts": TEXTS})
        expected = full_install("predict", str(export), "--runtime", "onnx", *TEXTS)
        assert status == 200
        assert answer == {"predictions": [json.loads(line) for line in expected.splitlines()]}
    finally:
        process.terminate()
        process.communicate(timeout=30)


def _without(modules, *arguments):
    return subprocess.run([sys.executable, "-c", WITHOUT, ",".join(modules), *arguments],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("module, command", [
    ("tensorflow", ["train", "sentiment", "--out", "{tmp}/run"]),
    ("tensorflow", ["prepare", "sentiment", "--out", "{tmp}/run"]),
    ("tensorflow", ["predict", str(LEGACY / "sentiment" / "export"), "--runtime", "saved_model",
                    "ok"]),
    ("sklearn", ["evaluate", str(LEGACY / "sentiment" / "export"), "--runtime", "onnx", "--data",
                 "{tmp}/data.csv"]),
])
def test_a_module_of_the_train_extra_missing_is_one_line(tmp_path, module, command):
    (tmp_path / "data.csv").write_text("text,label\ngood,positive\nbad,negative\n")
    command = [part.replace("{tmp}", str(tmp_path)) for part in command]
    result = _without([module], *command)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"keras-lstm: error: {command[0]} needs {module}, which this install "
                             "lacks: pip install 'keras-lstm[train]'\n")
    assert not (tmp_path / "run").exists()


def test_any_other_missing_module_stays_a_traceback():
    result = _without(["onnxruntime"], "predict", str(LEGACY / "sentiment" / "export"),
                      "--runtime", "onnx", "ok")
    assert result.returncode == 1 and "Traceback" in result.stderr
    assert "No module named 'onnxruntime'" in result.stderr
