"""Translation export: encoder and one-step decoder in ONNX and TFLite (decoded without
TensorFlow), and a SavedModel with the greedy loop in its `translate` signature."""

import json
import subprocess
import sys

import onnx
import pytest

from export.publish import export_run
from export.tflite import op_names
from keras_lstm import runtimes
from keras_lstm.app.cli import main
from keras_lstm.core.errors import ArtifactError, ConfigError
from keras_lstm.data.pairs import read_pairs
from keras_lstm.inference import Translator
from tests.helpers import in_threads, train_run

# Trains, exports or runs a subprocess per test: CI runs it; `pytest -m "not slow"` skips it.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=[("custom", True), ("keras", False)],
                ids=["custom-attention", "keras-plain"])
def exported(request, tmp_path_factory):
    lstm, attention = request.param
    run = tmp_path_factory.mktemp("tr") / "run"
    train_run("translation", out=str(run), max_examples=3000, epochs=3, units=32,
              embedding_dim=16, lstm=lstm, attention=attention)
    export_run(run, progress=lambda line: None)
    return run, run / "export"


def _test_sources(run, count=120):
    return read_pairs(run / "splits" / "test.tsv").sources[:count]


def test_onnx_has_one_fused_lstm_op_per_model_and_no_loop(exported):
    _, folder = exported
    for name in ("encoder.onnx", "decoder.onnx"):
        ops = [node.op_type for node in onnx.load(str(folder / name)).graph.node]
        assert ops.count("LSTM") == 1 and "Loop" not in ops, name


def test_tflite_is_builtins_only_with_one_fused_lstm_op_per_model(exported):
    from ai_edge_litert.interpreter import Interpreter

    _, folder = exported
    for name in ("encoder.tflite", "decoder.tflite"):
        content = (folder / name).read_bytes()
        ops = [op["op_name"] for op in Interpreter(model_content=content)._get_ops_details()]
        assert ops.count("UNIDIRECTIONAL_SEQUENCE_LSTM") == 1, (name, ops)
        assert "WHILE" not in ops and not any(op.startswith(("Flex", "Custom")) for op in ops)
        assert set(ops) <= set(op_names(content))


@pytest.mark.parametrize("backend, beam", [("onnx", 1), ("onnx", 3), ("tflite", 1),
                                           ("tflite", 3), ("saved_model", 1)])
def test_exported_translations_equal_keras_translations(exported, backend, beam):
    run, folder = exported
    sources = _test_sources(run)
    assert runtimes.load(folder, backend).translate(sources, beam=beam) == \
        Translator(run).translate(sources, beam=beam)


def test_tflite_state_tensors_carry_the_context_vector(exported):
    """The encoder's final (h, C) read from the fused op's state equal Keras' context vector."""
    import numpy as np

    run, folder = exported
    sources = _test_sources(run, 16)
    keras_translator, tflite = Translator(run), runtimes.load(folder, "tflite")
    ids = keras_translator.encode(sources)
    outputs, h, c = (np.asarray(v) for v in keras_translator.encoder(ids))
    tflite_outputs, tflite_h, tflite_c = tflite._encoder(ids)
    np.testing.assert_allclose(tflite_h, h, atol=1e-5)
    np.testing.assert_allclose(tflite_c, c, atol=1e-5)
    mask = ids != 0
    np.testing.assert_allclose(tflite_outputs[mask], outputs[mask], atol=1e-5)


@pytest.mark.parametrize("backend", ["keras", "onnx", "tflite", "saved_model"])
def test_every_translation_backend_is_thread_safe(exported, backend):

    run, folder = exported
    runtime = runtimes.load(run if backend == "keras" else folder, backend)
    sources = _test_sources(run, 24)
    # Batches of different sizes, each also translated serially.
    batches = [sources[start:start + size] for start, size in
               ((0, 1), (1, 5), (6, 2), (8, 9), (17, 7))]
    serial = [runtime.translate(batch) for batch in batches]
    results = in_threads(lambda k: [runtime.translate(batch) for batch in
                                    batches[k % len(batches):] + batches[:k % len(batches)]], 6)
    for k in range(6):
        shift = k % len(batches)
        assert results[k] == serial[shift:] + serial[:shift], k


def test_saved_model_refuses_beam_search(exported):
    _, folder = exported
    with pytest.raises(ConfigError, match="greedily"):
        runtimes.load(folder, "saved_model").translate(["15:30"], beam=4)


@pytest.mark.parametrize("backend", ["onnx", "tflite"])
def test_runtime_imports_neither_tensorflow_nor_keras(exported, backend):
    _, folder = exported
    code = (f"import sys\nfrom keras_lstm import runtimes\n"
            f"print(runtimes.load({str(folder)!r}, {backend!r}).translate(['15:30', '75%'], "
            "beam=2))\n"
            "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_bad_translation_exports_are_refused(exported, tmp_path):
    _, folder = exported
    with pytest.raises(ArtifactError, match="not an export folder"):
        runtimes.load(tmp_path, "onnx")
    broken = tmp_path / "broken"
    broken.mkdir()
    for item in folder.iterdir():
        if item.is_file():
            (broken / item.name).write_bytes(item.read_bytes())
    (broken / "decoder.tflite").write_bytes((folder / "decoder.tflite").read_bytes()[:1000])
    with pytest.raises(ArtifactError, match="decoder.tflite: cannot load the TFLite model"):
        runtimes.load(broken, "tflite")
    metadata = json.loads((broken / "metadata.json").read_text())
    artifacts = {"onnx": metadata["artifacts"]["onnx"]}
    (broken / "metadata.json").write_text(json.dumps({**metadata, "artifacts": artifacts}))
    with pytest.raises(ArtifactError, match="no tflite export"):
        runtimes.load(broken, "tflite")
    with pytest.raises(ConfigError, match="--runtime: expected one of"):
        runtimes.load(folder, "coreml")
    escape = {"onnx": {**artifacts["onnx"], "encoder": {"file": "../../encoder.onnx"}}}
    (broken / "metadata.json").write_text(json.dumps({**metadata, "artifacts": escape}))
    with pytest.raises(ArtifactError, match="outside the folder"):
        runtimes.load(broken, "onnx")


def test_cli_export_reports_every_runtime_and_predicts_with_each(exported, capsys):
    run, _ = exported
    assert main(["export", str(run)]) == 0
    report = json.loads((run / "export" / "export_report.json").read_text())
    assert [row["runtime"] for row in report["rows"]] == ["keras", "onnx", "tflite",
                                                          "saved_model"]
    assert all(row["agreement"] == 1.0 for row in report["rows"])
    assert "| tflite |" in capsys.readouterr().out
    for runtime in ("onnx", "tflite", "saved_model"):
        assert main(["predict", str(run), "--runtime", runtime, "15:30"]) == 0
        line = json.loads(capsys.readouterr().out.strip())
        assert line["text"] == "15:30"
        # The default decoding; the SavedModel's graph holds the greedy loop only.
        beam = 1 if runtime == "saved_model" else None
        assert line["translation"] == Translator(run).translate(["15:30"], beam=beam)[0]
