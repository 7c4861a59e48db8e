"""Translation with onnxruntime or the TFLite interpreter and the Python decoding loop.

No TensorFlow, no Keras: the tokenizers are `lstm_text`'s, the search is
`lstm_text.decoding`'s, the same code that decodes for Keras.
"""

import json
import threading
from pathlib import Path

import numpy as np

from export.metadata import ArtifactError
from lstm_text import PyTokenizer, TokenizerConfig, Vocabulary


class _ExportedTranslator:
    """Shared part: metadata, tokenizer, vocabularies, batching, the decoding loop."""

    format = None

    def __init__(self, folder):
        folder = Path(folder)
        try:
            metadata = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ArtifactError(f"{folder}: not a translation export ({error})") from None
        if metadata.get("task") != "translation":
            raise ArtifactError(f"{folder}: not a translation export")
        if self.format not in metadata.get("formats", ["onnx"]):
            raise ArtifactError(f"{folder}: no {self.format} export (formats: "
                                f"{', '.join(metadata.get('formats', ['onnx']))})")
        self.folder = folder
        self.metadata = metadata
        self.source_tokenizer = PyTokenizer(TokenizerConfig.from_dict(metadata["source_tokenizer"]))
        self.source_vocab = Vocabulary.load(folder / "source_vocabulary.txt")
        self.target_vocab = Vocabulary.load(folder / "target_vocabulary.txt")
        self._lock = threading.Lock()

    def _files(self):
        section = self.metadata.get(self.format, self.metadata)  # exports before formats existed
        return (self.folder / section["encoder"]["file"], self.folder / section["decoder"]["file"],
                section)

    def encode(self, texts):
        """Texts → right-padded `(batch, time)` int32 source ids (an empty text → [OOV])."""
        rows = [self.source_vocab.encode(self.source_tokenizer.tokenize(t)) or [1] for t in texts]
        ids = np.zeros((len(rows), max(map(len, rows))), np.int32)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
        return ids

    def translate(self, texts, beam=1, length_penalty=0.6):
        """Translations of `texts` (greedy for `beam=1`, else beam search)."""
        from lstm_text.decoding import translate_batch

        with self._lock:
            return translate_batch(list(texts), self.encode, self._encoder, self._decoder,
                                   self.target_vocab, self.metadata["max_output_length"], beam,
                                   length_penalty)


class OnnxTranslator(_ExportedTranslator):
    """Loads RUN/export of a translation run; `translate(texts, beam=1)` with onnxruntime."""

    format = "onnx"

    def __init__(self, folder):
        import onnxruntime

        super().__init__(folder)
        self.encoder, self.decoder = (_load(onnxruntime.InferenceSession, "ONNX", path,
                                            providers=["CPUExecutionProvider"])
                                      for path in self._files()[:2])

    def _encoder(self, source):
        return tuple(self.encoder.run(None, {"source_ids": source}))

    def _decoder(self, tokens, h, c, outputs, mask):
        return tuple(self.decoder.run(None, {"token": tokens, "h": h, "c": c,
                                             "encoder_outputs": outputs,
                                             "source_mask": mask}))[:3]


class TFLiteTranslator(_ExportedTranslator):
    """Loads RUN/export of a translation run; `translate(texts, beam=1)` with ai_edge_litert.

    The fused LSTM op keeps `(h, C)` in two variable tensors: the encoder's
    final state is read from them after `invoke()`, and the decoder's state
    is written into them before each step. Both models take one sentence (one
    beam) at a time, so a batch is run row by row.
    """

    format = "tflite"

    def __init__(self, folder):
        from ai_edge_litert.interpreter import Interpreter

        super().__init__(folder)
        encoder, decoder, section = self._files()
        self.encoder = _StatefulModel(_load(Interpreter, "TFLite", encoder),
                                      section["encoder"]["state_tensors"], encoder)
        self.decoder = _StatefulModel(_load(Interpreter, "TFLite", decoder),
                                      section["decoder"]["state_tensors"], decoder)
        self.attention = self.metadata["attention"]

    def _encoder(self, source):
        rows = [self.encoder.run({"source_ids": row[row != 0][None, :]}) for row in source]
        outputs = np.zeros((*source.shape, rows[0][0]["encoder_outputs"].shape[-1]), np.float32)
        for i, (result, _, _) in enumerate(rows):
            sequence = result["encoder_outputs"][0]
            outputs[i, : len(sequence)] = sequence
        return (outputs, np.concatenate([h for _, h, _ in rows]),
                np.concatenate([c for _, _, c in rows]))

    def _decoder(self, tokens, h, c, outputs, mask):
        logits, hs, cs = [], [], []
        for i in range(len(tokens)):
            inputs = {"token": tokens[i: i + 1]}
            if self.attention:
                inputs |= {"encoder_outputs": outputs[i: i + 1], "source_mask": mask[i: i + 1]}
            result, h_i, c_i = self.decoder.run(inputs, h[i: i + 1], c[i: i + 1])
            logits.append(result["logits"])
            hs.append(h_i)
            cs.append(c_i)
        return np.concatenate(logits), np.concatenate(hs), np.concatenate(cs)


def _load(loader, kind, path, **kwargs):
    if not path.is_file():
        raise ArtifactError(f"{path}: missing")
    try:
        return loader(str(path), **kwargs)
    except Exception as error:  # each runtime raises its own types for bad files
        raise ArtifactError(f"{path}: cannot load the {kind} model "
                            f"({str(error).splitlines()[0][:200]})") from None


class _StatefulModel:
    """A TFLite interpreter around one fused LSTM whose state tensors we set and read."""

    def __init__(self, interpreter, state_tensors, path):
        self.interpreter = interpreter
        self.path = path
        details = {t["name"]: t for t in interpreter.get_tensor_details()}
        try:
            self.state = [details[state_tensors[k]]["index"] for k in ("h", "c")]
        except KeyError as error:
            raise ArtifactError(f"{path}: no state tensor {error} named in metadata.json") from None
        runner = interpreter.get_signature_runner()  # its name → tensor maps; we invoke
        self.inputs = runner.get_input_details()
        self.outputs = {name: d["index"] for name, d in runner.get_output_details().items()}
        self.units = int(details[state_tensors["h"]]["shape"][-1])
        self.shapes = None

    def run(self, inputs, h=None, c=None):
        """One invocation from state `(h, c)` (zeros if None) → (outputs, final h, final c)."""
        interpreter = self.interpreter
        shapes = {name: value.shape for name, value in inputs.items()}
        if shapes != self.shapes:
            for name, value in inputs.items():
                interpreter.resize_tensor_input(self._input(name)["index"], value.shape)
            interpreter.allocate_tensors()
            self.shapes = shapes
        for name, value in inputs.items():
            interpreter.set_tensor(self._input(name)["index"], value)
        zeros = np.zeros((1, self.units), np.float32)
        interpreter.set_tensor(self.state[0], zeros if h is None else h)
        interpreter.set_tensor(self.state[1], zeros if c is None else c)
        interpreter.invoke()
        outputs = {name: interpreter.get_tensor(index) for name, index in self.outputs.items()}
        return (outputs, interpreter.get_tensor(self.state[0]).copy(),
                interpreter.get_tensor(self.state[1]).copy())

    def _input(self, name):
        try:
            return self.inputs[name]
        except KeyError:
            raise ArtifactError(f"{self.path}: no input {name!r} (has "
                                f"{', '.join(sorted(self.inputs))})") from None



class SavedModelTranslator:
    """The SavedModel's `translate` signature (greedy loop in the graph); needs TensorFlow."""

    format = "saved_model"

    def __init__(self, folder):
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers the tokenizer ops)

        folder = Path(folder)
        _ExportedTranslator.__init__(self, folder)
        self._tf = tf
        self._signature = tf.saved_model.load(
            str(folder / self.metadata["saved_model"]["folder"])).signatures[
            self.metadata["saved_model"]["signature"]]

    def translate(self, texts, beam=1, length_penalty=0.6):
        """Greedy translations of `texts` (the signature has no beam search)."""
        if beam != 1:
            raise ArtifactError("the SavedModel's translate signature decodes greedily (beam 1); "
                             "use the onnx or tflite runtime for beam search")
        texts = list(texts)
        if not texts:
            return []
        result = self._signature(texts=self._tf.constant(texts, self._tf.string))
        return [t.decode("utf-8") for t in result["translations"].numpy()]


TRANSLATORS = {"onnx": OnnxTranslator, "tflite": TFLiteTranslator,
               "saved_model": SavedModelTranslator}


def load_translator(folder, backend="onnx"):
    """The translator of one exported format (`onnx`, `tflite` or `saved_model`)."""
    if backend not in TRANSLATORS:
        raise ArtifactError(f"unknown translation runtime {backend!r}; expected one of "
                            f"{', '.join(TRANSLATORS)}")
    return TRANSLATORS[backend](folder)
