"""Translation export: encoder and one-step decoder in ONNX, decoded without TensorFlow."""

import subprocess
import sys

import onnx
import pytest

from export.seq2seq import export_translation_onnx
from export.translation_runtime import OnnxTranslator
from keras_lstm.cli import main
from keras_lstm.translation import (
    TranslationTrainingConfig,
    Translator,
    read_test_pairs,
    train_translation,
)


@pytest.fixture(scope="module", params=[("custom", True), ("keras", False)],
                ids=["custom-attention", "keras-plain"])
def exported(request, tmp_path_factory):
    lstm, attention = request.param
    run = tmp_path_factory.mktemp("tr") / "run"
    train_translation(TranslationTrainingConfig(
        out=str(run), max_examples=3000, epochs=3, units=32, embedding_dim=16, lstm=lstm,
        attention=attention), verbose=0)
    return run, export_translation_onnx(run)


def test_one_fused_lstm_op_per_model_and_no_loop(exported):
    _, folder = exported
    for name in ("encoder.onnx", "decoder.onnx"):
        ops = [node.op_type for node in onnx.load(str(folder / name)).graph.node]
        assert ops.count("LSTM") == 1 and "Loop" not in ops, name


@pytest.mark.parametrize("beam", [1, 3])
def test_onnx_translations_equal_keras_translations(exported, beam):
    run, folder = exported
    sources, _ = read_test_pairs(run / "splits" / "test.tsv")
    sources = sources[:120]
    assert OnnxTranslator(folder).translate(sources, beam=beam) == \
        Translator(run).translate(sources, beam=beam)


def test_onnx_translator_imports_neither_tensorflow_nor_keras(exported):
    _, folder = exported
    code = ("import sys\nfrom export.translation_runtime import OnnxTranslator\n"
            f"print(OnnxTranslator({str(folder)!r}).translate(['15:30', '75%']))\n"
            "bad = [m for m in ('tensorflow', 'keras', 'keras_lstm') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_cli_export_and_predict_with_onnx(exported, capsys):
    run, _ = exported
    assert main(["export", str(run)]) == 0
    assert main(["predict", str(run), "--runtime", "onnx", "15:30"]) == 0
    assert '"text": "15:30"' in capsys.readouterr().out
