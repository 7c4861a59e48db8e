"""Export of a translation run: encoder and one-step decoder to ONNX and TFLite, and a
SavedModel that translates strings to strings.

ONNX and TFLite hold the two networks; the decoding loop stays in Python
(`export.translation_runtime`), so the same greedy and beam search serve Keras,
onnxruntime and the TFLite interpreter. The SavedModel holds the greedy loop
itself (`translate` signature), tokenization and detokenization included.

TFLite: the fused `UNIDIRECTIONAL_SEQUENCE_LSTM` op cannot output its final
state, but it keeps `(h, C)` in two variable tensors. The TFLite graphs
therefore output only the sequence, and the runtime reads the encoder's final
state from those tensors after `invoke()` and writes the decoder's state into
them before each step. They are named `encoder_hidden_state`,
`encoder_cell_state`, `decoder_hidden_state` and `decoder_cell_state`
(`metadata.json` records the names). Both models run one sentence at a time
(batch 1, the fused op's static batch) through one `serving_default`
signature: the encoder `source_ids` → `encoder_outputs`, the decoder `token`
(+ `encoder_outputs`, `source_mask` with attention) → `logits` (+ `attention`).
"""

import tempfile
from pathlib import Path

import tensorflow as tf

from keras_lstm.layers import graph_target

__all__ = [
    "FILES",
    "FORMATS",
    "TRANSLATE_SIGNATURE",
    "export_translation",
    "lstm_state_tensors",
    "sizes",
]

FORMATS = ("onnx", "tflite", "saved_model")
FILES = {"onnx": ("encoder.onnx", "decoder.onnx"),
         "tflite": ("encoder.tflite", "decoder.tflite"),
         "saved_model": ("saved_model",)}
TRANSLATE_SIGNATURE = "translate"


def export_translation(translator, work, formats=FORMATS, opset=17):
    """Writes the formats asked for, the vocabularies and metadata.json into the folder `work`.

    Args:
        translator: The run's `keras_lstm.inference.Translator`.
        work: A fresh folder (`export.publish` moves it into place once
            every runtime is verified).
    """
    from keras_lstm.core.errors import ConfigError
    from keras_lstm.core.schemas import write_metadata
    from keras_lstm.models.seq2seq import Seq2Seq, Seq2SeqConfig

    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ConfigError(f"--formats: unknown {', '.join(unknown)} for translation; expected "
                          f"some of {', '.join(FORMATS)}")
    # The project's layer in place of keras.layers.LSTM (same weights): its
    # graph_target graphs are the ones tf2onnx and the TFLite converter fuse.
    seq2seq = Seq2Seq(Seq2SeqConfig(**{**translator.config["model"], "lstm": "custom"}))
    seq2seq.training_model().set_weights(translator.model.get_weights())
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    artifacts = {}
    with tf.device("/CPU:0"):
        if "onnx" in formats:
            artifacts["onnx"] = {"backend": "onnx", **_export_onnx(seq2seq, work, opset)}
        if "tflite" in formats:
            artifacts["tflite"] = {"backend": "tflite", **_export_tflite(seq2seq, work)}
        if "saved_model" in formats:
            artifacts["saved_model"] = {"backend": "saved_model", **_export_saved_model(
                translator, work / "saved_model")}
    metadata = {
        "task": "translation",
        "preprocessors": {name: p.save(work) for name, p in translator.preprocessors.items()},
        "max_output_length": translator.max_output_length,
        "attention": translator.config["model"]["attention"],
        "artifacts": artifacts,
    }
    write_metadata(work, metadata)
    return work


def _export_onnx(seq2seq, work, opset):
    import tf2onnx

    units = seq2seq.config.units
    encoder, decoder = seq2seq.encoder_model(), seq2seq.decoder_model()
    encoder_file, decoder_file = FILES["onnx"]
    with graph_target("onnx"):
        tf2onnx.convert.from_function(
            tf.function(lambda ids: encoder(ids, training=False)),
            input_signature=[tf.TensorSpec([None, None], tf.int32, name="source_ids")],
            opset=opset, output_path=str(work / encoder_file))
        tf2onnx.convert.from_function(
            tf.function(lambda token, h, c, outputs, mask: decoder(
                [token, h, c, outputs, mask], training=False)),
            input_signature=[tf.TensorSpec([None, 1], tf.int32, name="token"),
                             tf.TensorSpec([None, units], tf.float32, name="h"),
                             tf.TensorSpec([None, units], tf.float32, name="c"),
                             tf.TensorSpec([None, None, units], tf.float32,
                                           name="encoder_outputs"),
                             tf.TensorSpec([None, None], tf.bool, name="source_mask")],
            opset=opset, output_path=str(work / decoder_file))
    return {
        "encoder": {"file": encoder_file, "inputs": ["source_ids int32 (batch, time), "
                                                     "right-padded with 0"],
                    "outputs": ["encoder_outputs", "h", "c"]},
        "decoder": {"file": decoder_file,
                    "inputs": ["token", "h", "c", "encoder_outputs", "source_mask"],
                    "outputs": ["logits", "h", "c"] + (
                        ["attention"] if seq2seq.attention is not None else [])},
    }


def _without_state(lstm):
    """A copy of an LSTM layer that returns only its sequence (what TFLite fuses)."""
    from keras_lstm.layers import LSTM

    copy = LSTM.from_config({**lstm.get_config(), "return_state": False,
                             "name": lstm.name + "_sequence"})
    copy.build((1, None, lstm.kernel.shape[0]))
    copy.set_weights(lstm.get_weights())
    return copy


def _tflite_convert(layers, function, input_signature, network):
    """One `serving_default` signature; the LSTM state tensors named after `network`."""
    import keras

    from export.tflite import SIGNATURE_KEY, name_lstm_state, repair_lstm_ops

    with tempfile.TemporaryDirectory() as folder:
        archive = keras.export.ExportArchive()
        for layer in layers:
            archive.track(layer)
        archive.add_endpoint(SIGNATURE_KEY, function, input_signature=input_signature)
        archive.write_out(folder, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder, [SIGNATURE_KEY])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        return name_lstm_state(repair_lstm_ops(converter.convert()),
                               f"{network}_hidden_state", f"{network}_cell_state")


def _export_tflite(seq2seq, work):
    units = seq2seq.config.units
    encoder_lstm = _without_state(seq2seq.encoder_lstm)
    decoder_lstm = _without_state(seq2seq.decoder_lstm)
    attention = seq2seq.attention

    def encode(source_ids):
        # No Keras mask: one unpadded sentence, the fused op's form.
        return {"encoder_outputs": encoder_lstm(
            tf.gather(seq2seq.source_embedding.embeddings, source_ids))}

    def decode(token, encoder_outputs=None, source_mask=None):
        # The zero initial state becomes the op's state tensors, set by the runtime.
        outputs = decoder_lstm(tf.gather(seq2seq.target_embedding.embeddings, token))
        result = {}
        if attention is not None:
            outputs, weights = attention(outputs, encoder_outputs, source_mask)
            result["attention"] = weights[:, 0, :]
        result["logits"] = seq2seq.projection(outputs)[:, 0, :]
        return result

    decoder_signature = [tf.TensorSpec([1, 1], tf.int32, name="token")]
    if attention is not None:
        decoder_signature += [tf.TensorSpec([1, None, units], tf.float32, name="encoder_outputs"),
                              tf.TensorSpec([1, None], tf.bool, name="source_mask")]
    layers = [seq2seq.source_embedding, seq2seq.target_embedding, encoder_lstm, decoder_lstm,
              seq2seq.projection] + ([attention] if attention is not None else [])
    encoder_file, decoder_file = FILES["tflite"]
    with graph_target("tflite"):
        flatbuffers = {
            encoder_file: _tflite_convert(
                layers, encode, [tf.TensorSpec([1, None], tf.int32, name="source_ids")],
                "encoder"),
            decoder_file: _tflite_convert(layers, decode, decoder_signature, "decoder"),
        }
    for name, flatbuffer in flatbuffers.items():
        (work / name).write_bytes(flatbuffer)
    return {
        "encoder": {"file": encoder_file, "inputs": ["source_ids int32 (1, time), unpadded"],
                    "outputs": ["encoder_outputs"],
                    "state_tensors": lstm_state_tensors(flatbuffers[encoder_file])},
        "decoder": {"file": decoder_file, "inputs": [s.name for s in decoder_signature],
                    "outputs": ["logits"] + (["attention"] if attention is not None else []),
                    "state_tensors": lstm_state_tensors(flatbuffers[decoder_file])},
    }


def lstm_state_tensors(flatbuffer):
    """Names of the `(h, C)` variable tensors of the one fused LSTM op in a TFLite model."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    ops = [op for op in interpreter._get_ops_details()
           if op["op_name"] == "UNIDIRECTIONAL_SEQUENCE_LSTM"]
    if len(ops) != 1:
        raise ValueError(f"expected one fused UNIDIRECTIONAL_SEQUENCE_LSTM op, found {len(ops)}"
                         f" in {sorted({op['op_name'] for op in interpreter._get_ops_details()})}")
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    # Inputs 18 and 19 of the op are its output (h) and cell (C) state variables.
    return {"h": names[int(ops[0]["inputs"][18])], "c": names[int(ops[0]["inputs"][19])]}


class _Translate(tf.Module):
    """Strings → strings: tokenize, encode, greedy loop, detokenize, all in the graph."""

    def __init__(self, translator):
        super().__init__()
        from keras_lstm.text import GraphPreprocessor
        from lstm_text.rules import SPACE_MARK

        self.encoder = translator.encoder_model
        self.decoder = translator.decoder_model
        self.source = GraphPreprocessor(translator.preprocessors["source"])
        target = translator.preprocessors["target"]
        self.start, self.end = target.start_id, target.end_id
        self.target_tokens = tf.constant(target.vocabulary.tokens)
        self.max_output_length = translator.max_output_length
        self.space_mark = SPACE_MARK

    def __call__(self, texts):
        source = self.source(texts)
        # tf.identity drops the Keras masks, which the decoder model would warn about.
        outputs, h, c = (tf.identity(t) for t in self.encoder(source, training=False))
        mask = tf.not_equal(source, 0)
        batch = tf.shape(source)[0]

        def step(i, token, h, c, done, emitted):
            logits, h, c = self.decoder([token, h, c, outputs, mask], training=False)[:3]
            token = tf.argmax(logits, axis=-1, output_type=tf.int32)
            done = done | tf.equal(token, self.end)
            emitted = emitted.write(i, tf.where(done, "", tf.gather(self.target_tokens, token)))
            return i + 1, token[:, None], h, c, done, emitted

        _, _, _, _, _, emitted = tf.while_loop(
            lambda i, token, h, c, done, emitted: (i < self.max_output_length)
            & ~tf.reduce_all(done),
            step,
            (tf.constant(0), tf.fill([batch, 1], self.start), h, c, tf.zeros([batch], tf.bool),
             tf.TensorArray(tf.string, size=0, dynamic_size=True, element_shape=[None])))
        joined = tf.strings.reduce_join(tf.transpose(emitted.stack()), axis=1)
        return {"translations": tf.strings.regex_replace(joined, self.space_mark, " ")}


def _export_saved_model(translator, path):
    """A SavedModel whose `translate(texts: string (batch,))` → `translations` string (batch,).

    Greedy decoding, the same as `Translator.translate(texts)`. Load with
    `tf.saved_model.load(path)` after `import tensorflow_text`.
    """
    import keras

    module = _Translate(translator)
    archive = keras.export.ExportArchive()
    archive.track(translator.encoder_model)
    archive.track(translator.decoder_model)
    archive.track(module)
    archive.add_endpoint(TRANSLATE_SIGNATURE, module,
                         input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
    archive.write_out(str(path), verbose=False)
    return {"file": path.name, "signature": TRANSLATE_SIGNATURE,
            "inputs": ["texts string (batch,)"], "outputs": ["translations string (batch,)"],
            "decoding": "greedy"}


def sizes(folder):
    """Bytes on disk of each exported format in a translation export folder."""
    folder = Path(folder)
    result = {}
    for fmt, names in FILES.items():
        paths = [folder / name for name in names]
        if all(p.exists() for p in paths):
            result[fmt] = sum(f.stat().st_size for p in paths
                              for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file())
    return result
