"""Export of a translation run's encoder and one-step decoder to ONNX (fused LSTM ops).

The decoding loop stays in Python (`export.translation_runtime`), so the same
greedy and beam search serve Keras and onnxruntime.
"""

import json
import shutil
from pathlib import Path

import tensorflow as tf

from keras_lstm.layers import graph_target

ENCODER_FILE, DECODER_FILE = "encoder.onnx", "decoder.onnx"


def export_translation_onnx(run_dir, out_dir=None, opset=17):
    """Writes RUN/export/{encoder,decoder}.onnx, the vocabularies and metadata.json.

    Returns:
        The export folder.
    """
    import tf2onnx

    from keras_lstm.models.seq2seq import Seq2Seq, Seq2SeqConfig
    from keras_lstm.runs import atomic_directory
    from keras_lstm.translation import SOURCE_VOCABULARY, TARGET_VOCABULARY, Translator

    translator = Translator(run_dir)
    units = translator.config["model"]["units"]
    # The project's layer in place of keras.layers.LSTM (same weights): its
    # graph_target("onnx") graph is the one tf2onnx fuses, masks included.
    seq2seq = Seq2Seq(Seq2SeqConfig(**{**translator.config["model"], "lstm": "custom"}))
    seq2seq.training_model().set_weights(translator.model.get_weights())
    out_dir = Path(out_dir or Path(run_dir) / "export")
    with atomic_directory(out_dir) as work:
        encoder, decoder = seq2seq.encoder_model(), seq2seq.decoder_model()
        with tf.device("/CPU:0"), graph_target("onnx"):
            tf2onnx.convert.from_function(
                tf.function(lambda ids: encoder(ids, training=False)),
                input_signature=[tf.TensorSpec([None, None], tf.int32, name="source_ids")],
                opset=opset, output_path=str(work / ENCODER_FILE))
            tf2onnx.convert.from_function(
                tf.function(lambda token, h, c, outputs, mask: decoder(
                    [token, h, c, outputs, mask], training=False)),
                input_signature=[tf.TensorSpec([None, 1], tf.int32, name="token"),
                                 tf.TensorSpec([None, units], tf.float32, name="h"),
                                 tf.TensorSpec([None, units], tf.float32, name="c"),
                                 tf.TensorSpec([None, None, units], tf.float32,
                                               name="encoder_outputs"),
                                 tf.TensorSpec([None, None], tf.bool, name="source_mask")],
                opset=opset, output_path=str(work / DECODER_FILE))
        for name in (SOURCE_VOCABULARY, TARGET_VOCABULARY):
            shutil.copy(Path(run_dir) / name, work / name)
        metadata = {
            "task": "translation",
            "source_tokenizer": translator.config["source_tokenizer"],
            "target_tokenizer": translator.config["target_tokenizer"],
            "max_output_length": translator.max_output_length,
            "attention": translator.config["model"]["attention"],
            "encoder": {"file": ENCODER_FILE, "input": "source_ids int32 (batch, time), "
                        "right-padded with 0", "outputs": ["encoder_outputs", "h", "c"]},
            "decoder": {"file": DECODER_FILE, "inputs": ["token", "h", "c", "encoder_outputs",
                                                         "source_mask"],
                        "outputs": ["logits", "h", "c"] + (
                            ["attention"] if translator.config["model"]["attention"] else [])},
        }
        (work / "metadata.json").write_text(json.dumps(metadata, indent=2, ensure_ascii=False)
                                            + "\n", encoding="utf-8")
    return out_dir
