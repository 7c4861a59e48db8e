"""Serving trained models: `load(path, backend)` → a runtime with `.predict` or `.translate`.

One base, `Runtime`, holds what every backend of every task shares: the
metadata, the preprocessors (text → ids, `lstm_text.Preprocessor`), a lock,
and the one place where a damaged artifact becomes an `ArtifactError` line.
`SentimentRuntime` adds `.predict_proba`/`.predict` and `.explain` (token
weights by occlusion, `keras_lstm.explanation`, through `.predict_ids`);
`TranslationRuntime` adds `.translate` (greedy or beam search in
`lstm_text.decoding`, the same code for every backend). Each backend
supplies only how its model runs (a sentiment backend: `run_ids`).

The onnxruntime and TFLite backends import neither TensorFlow nor Keras.
Every runtime is safe to share between threads.

Example:

>>> runtime = load("runs/demo/sentiment/export", backend="onnx")
>>> runtime.predict(["质量很好"])
[{'label': 'positive', 'probabilities': {'negative': 0.02, 'positive': 0.98}}]
>>> load("runs/demo/translation/export", backend="tflite").translate(["15:30"], beam=4)
['3:30 PM']
"""

import threading
from pathlib import Path

import numpy as np

from keras_lstm.errors import ArtifactError, ConfigError, load_or_raise
from lstm_text.preprocessor import Preprocessor, check_texts, inside

BACKENDS = ("onnx", "tflite", "saved_model", "keras")


class Runtime:
    """Shared by every backend of every task."""

    task = ""
    backend = ""

    def __init__(self, folder, metadata, run_dir=None, training=None):
        self.folder = Path(folder)
        self.metadata = metadata
        self.run_dir = run_dir
        self.training = training
        self.preprocessors = {name: Preprocessor.load(self.folder, spec)
                              for name, spec in metadata["preprocessors"].items()}
        self.lock = threading.Lock()

    def file(self, name, what="artifact"):
        """A file of this export named in metadata.json (never outside the folder)."""
        return inside(self.folder, name, what)

    def load_model(self, loader, path, kind):
        """Runs `loader(str(path))`; a missing or damaged file is one `ArtifactError` line."""
        if not Path(path).exists():
            raise ArtifactError(f"{path}: missing")
        return load_or_raise(lambda: loader(str(path)), path, kind)


class SentimentRuntime(Runtime):
    """Texts → label probabilities; a backend implements `run_ids` (and may
    override `predict_proba` where it tokenizes in its graph)."""

    task = "sentiment"

    def __init__(self, folder, metadata, **kwargs):
        super().__init__(folder, metadata, **kwargs)
        self.labels = list(metadata["labels"])
        self.preprocessor = self.preprocessors["text"]

    def encode(self, texts):
        """Token ids per text (type-checked, cut to the maximum length, an empty text → [OOV])."""
        return self.preprocessor.encode_batch(texts)

    def run_ids(self, ids):
        """`(batch, time)` right-padded int ids → probabilities `(batch, labels)`."""
        raise NotImplementedError

    def predict_ids(self, rows, batch_size=64):
        """Probabilities `(len(rows), labels)` of unpadded id lists (`batch_size` a call)."""
        from lstm_text.preprocessor import pad

        out = [self.run_ids(pad(rows[i:i + batch_size])) for i in range(0, len(rows), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)

    def predict_proba(self, texts, batch_size=64):
        return self.predict_ids(self.encode(texts), batch_size)

    def explain(self, texts, labels=None):
        """Each text's tokens and their weights toward its label, by occlusion.

        Each text's n + 1 id sequences (all its ids, then without each one) go
        to the model in one `predict_ids` call (`keras_lstm.explanation`).

        Args:
            texts: Texts (a list of strings).
            labels: One label name per text; default: the predicted ones.

        Returns:
            One `{"label", "tokens", "weights"}` per text: the model's kept
            tokens and, per token, p(label | text) - p(label | text without it).
        """
        from keras_lstm.explanation import explain

        texts = check_texts(texts)
        if labels is not None and len(labels) != len(texts):
            raise ValueError(f"{len(labels)} labels for {len(texts)} texts")
        wanted = [None] * len(texts) if labels is None else [self.labels.index(label)
                                                             for label in labels]
        found = [explain(self.preprocessor, lambda rows: self.predict_ids(rows, len(rows)),
                         text, label) for text, label in zip(texts, wanted)]
        return [{**row, "label": self.labels[row["label"]]} for row in found]

    def predict(self, texts):
        """Label and probabilities (6 decimals) per text."""
        probabilities = self.predict_proba(texts)
        labels = self.labels
        # One argmax and one conversion to Python floats for the batch (not one per text).
        return [{"label": labels[best], "probabilities": {label: round(v, 6)
                                                          for label, v in zip(labels, row)}}
                for best, row in zip(probabilities.argmax(axis=1).tolist(),
                                     probabilities.tolist())]


class OnnxSentiment(SentimentRuntime):
    """onnxruntime on padded batches: the LSTM op's sequence_lens keeps them exact."""

    backend = "onnx"

    def __init__(self, folder, metadata, artifact="model.onnx", **kwargs):
        super().__init__(folder, metadata, **kwargs)
        self.session = _onnx_session(self, self.file(artifact))
        self.input_name = self.session.get_inputs()[0].name

    def run_ids(self, ids):
        return self.session.run(None, {self.input_name: _id_batch(ids)})[0]


class TFLiteSentiment(SentimentRuntime):
    """The TFLite interpreter (ai_edge_litert), one unpadded sequence per invocation.

    Runs the model's one signature the way a phone does: `token_ids`
    `(1, length)` in, `probabilities` out (`export.tflite`).
    """

    backend = "tflite"

    def __init__(self, folder, metadata, artifact="model_float32.tflite", **kwargs):
        super().__init__(folder, metadata, **kwargs)
        self.interpreter = _tflite_interpreter(self, self.file(artifact))
        self.interpreter.allocate_tensors()  # reset_all_variables() needs the state allocated
        self.runner = self.interpreter.get_signature_runner()
        self.input_name = next(iter(self.runner.get_input_details()))
        outputs = self.runner.get_output_details()
        # Exports made before the signature had names call the output `output_0`.
        self.output_name = "probabilities" if "probabilities" in outputs else next(iter(outputs))

    def run_ids(self, ids):
        ids = np.asarray(ids)
        if ids.ndim != 1 or ids.dtype.kind not in "iu" or len(ids) == 0:
            raise ValueError(f"token ids must be a non-empty 1-D integer array, got "
                             f"{ids.dtype} {ids.shape}")
        with self.lock:  # an interpreter is not thread-safe
            # The fused LSTM keeps its state in variables between invocations;
            # the runner re-allocates (and so zeroes them) only when the length changes.
            self.interpreter.reset_all_variables()
            outputs = self.runner(**{self.input_name: ids.astype(np.int32)[None, :]})
            return outputs[self.output_name][0].copy()

    def predict_ids(self, rows, batch_size=None):
        """One unpadded row an invocation (the fused LSTM op runs batch 1)."""
        if not rows:
            return np.zeros((0, len(self.labels)), np.float32)
        return np.stack([self.run_ids(row) for row in rows])


class SavedModelSentiment(SentimentRuntime):
    """The SavedModel's `serving_default` signature: raw strings in, tokenized in the graph."""

    backend = "saved_model"

    def __init__(self, folder, metadata, artifact="saved_model", **kwargs):
        super().__init__(folder, metadata, **kwargs)
        self.tf, model = _saved_model(self, self.file(artifact))
        self.serve = model.signatures["serving_default"]
        self.serve_ids = model.signatures.get("token_ids")  # ids → probabilities

    def run_ids(self, ids):
        if self.serve_ids is None:
            raise ArtifactError(f"{self.folder}: this SavedModel has no token_ids signature "
                                "(export it again)")
        ids = self.tf.constant(_id_batch(ids))
        return self.serve_ids(token_ids=ids)["probabilities"].numpy()

    def predict_proba(self, texts):
        texts = check_texts(texts)  # tokenized in the graph: only the type checks here
        if not texts:
            return np.zeros((0, len(self.labels)), np.float32)
        return self.serve(texts=self.tf.constant(texts))["probabilities"].numpy()


class KerasSentiment(SentimentRuntime):
    """The trained Keras model of a run folder (`keras_lstm.inference`)."""

    backend = "keras"

    def __init__(self, folder, metadata, artifact=None, **kwargs):
        super().__init__(folder, metadata, **kwargs)
        from keras_lstm.inference import SentimentClassifier

        self.classifier = SentimentClassifier(self.run_dir)

    def run_ids(self, ids):
        ids = _id_batch(ids)
        with self.lock:
            return np.asarray(self.classifier.model(ids, training=False))

    def predict_proba(self, texts, batch_size=64):
        texts = check_texts(texts)  # tokenized in the graph: only the type checks here
        with self.lock:
            return self.classifier.predict_proba(texts, batch_size)


class TranslationRuntime(Runtime):
    """Texts → translations; a backend implements `_encoder` and `_decoder`."""

    task = "translation"

    def __init__(self, folder, metadata, **kwargs):
        super().__init__(folder, metadata, **kwargs)
        self.max_output_length = int(metadata["max_output_length"])
        self.attention = bool(metadata["attention"])
        self.spec = metadata["artifacts"].get(self.backend, {})

    @property
    def gives_attention(self):
        """Whether `attention_map` works: the model has attention and the backend shows it."""
        return self.attention

    def encode(self, texts):
        return self.preprocessors["source"](texts)

    def translate(self, texts, beam=None, length_penalty=None):
        """Translations of `texts`: beam search, greedy for `beam=1`.

        `beam` and `length_penalty` default to `keras_lstm.presets.DECODING`,
        the best decoding measured (bench/README.md).
        """
        from lstm_text.decoding import translate_batch

        def decoder(*inputs):
            return self._decoder(*inputs)[:3]

        with self.lock:
            return translate_batch(list(texts), self.encode, self._encoder, decoder,
                                   self.preprocessors["target"], self.max_output_length, beam,
                                   length_penalty)

    def attention_map(self, text):
        """Greedy translation of one text with the attention weights of every output step.

        Returns:
            A dict: `translation` (what `translate([text])` gives), `source`
            and `target` (the tokens, as strings) and `weights`, a float32
            array `(len(target), len(source))` whose rows sum to 1.

        Raises:
            ConfigError: the model has no attention, or this backend gives no weights.
        """
        if not self.attention:
            raise ConfigError("attention: this translation model has no attention (it was "
                              "trained with --no-attention)")
        from lstm_text.decoding import greedy_attention

        with self.lock:
            return greedy_attention(text, self.encode, self._encoder, self._decoder,
                                    self.preprocessors, self.max_output_length)

    def _encoder(self, source):
        """`(batch, time)` source ids → `(encoder_outputs, h, c)`."""
        raise NotImplementedError

    def _decoder(self, tokens, h, c, outputs, mask):
        """One step → `(logits, h, c, attention weights)` (weights None without attention)."""
        raise NotImplementedError

    def _files(self):
        if not self.spec:
            raise ArtifactError(f"{self.folder}: no {self.backend} export (has "
                                f"{', '.join(self.metadata['artifacts']) or 'none'})")
        try:
            return tuple(self.file(self.spec[part]["file"]) for part in ("encoder", "decoder"))
        except (KeyError, TypeError):
            raise ArtifactError(f"{self.folder}/metadata.json: artifact {self.backend!r} needs "
                                "an encoder and a decoder file") from None


class OnnxTranslation(TranslationRuntime):
    """onnxruntime: the encoder and the one-step decoder on padded batches."""

    backend = "onnx"

    def __init__(self, folder, metadata, artifact=None, **kwargs):
        super().__init__(folder, metadata, **kwargs)
        self.encoder, self.decoder = (_onnx_session(self, path) for path in self._files())

    def _encoder(self, source):
        return tuple(self.encoder.run(None, {"source_ids": source}))

    def _decoder(self, tokens, h, c, outputs, mask):
        logits, h, c, *weights = self.decoder.run(None, {
            "token": tokens, "h": h, "c": c, "encoder_outputs": outputs, "source_mask": mask})
        return logits, h, c, (weights[0] if weights else None)


class TFLiteTranslation(TranslationRuntime):
    """ai_edge_litert: one sentence (one beam) at a time through the fused LSTM op.

    The fused op keeps `(h, C)` in two variable tensors: the encoder's final
    state is read from them after `invoke()`, and the decoder's state is
    written into them before each step (metadata.json names them).
    """

    backend = "tflite"

    def __init__(self, folder, metadata, artifact=None, **kwargs):
        super().__init__(folder, metadata, **kwargs)
        encoder, decoder = self._files()
        self.encoder = _StatefulModel(_tflite_interpreter(self, encoder),
                                      self.spec["encoder"].get("state_tensors", {}), encoder)
        self.decoder = _StatefulModel(_tflite_interpreter(self, decoder),
                                      self.spec["decoder"].get("state_tensors", {}), decoder)

    def _encoder(self, source):
        rows = [self.encoder.run({"source_ids": row[row != 0][None, :]}) for row in source]
        outputs = np.zeros((*source.shape, rows[0][0]["encoder_outputs"].shape[-1]), np.float32)
        for i, (result, _, _) in enumerate(rows):
            sequence = result["encoder_outputs"][0]
            outputs[i, : len(sequence)] = sequence
        return (outputs, np.concatenate([h for _, h, _ in rows]),
                np.concatenate([c for _, _, c in rows]))

    def _decoder(self, tokens, h, c, outputs, mask):
        logits, hs, cs, weights = [], [], [], []
        for i in range(len(tokens)):
            inputs = {"token": tokens[i: i + 1]}
            if self.attention:
                inputs |= {"encoder_outputs": outputs[i: i + 1], "source_mask": mask[i: i + 1]}
            result, h_i, c_i = self.decoder.run(inputs, h[i: i + 1], c[i: i + 1])
            logits.append(result["logits"])
            hs.append(h_i)
            cs.append(c_i)
            weights.append(result.get("attention"))
        return (np.concatenate(logits), np.concatenate(hs), np.concatenate(cs),
                np.concatenate(weights) if self.attention else None)


class SavedModelTranslation(TranslationRuntime):
    """The SavedModel's `translate` signature (the greedy loop in the graph); needs TensorFlow."""

    backend = "saved_model"
    gives_attention = False  # the signature gives translations only
    greedy_only = True  # the default decoding too: the graph holds the greedy loop only

    def __init__(self, folder, metadata, artifact=None, **kwargs):
        super().__init__(folder, metadata, **kwargs)
        if not self.spec:
            raise ArtifactError(f"{self.folder}: no saved_model export")
        path = self.file(self.spec.get("file") or self.spec.get("folder", "saved_model"))
        self.tf, model = _saved_model(self, path)
        self.signature = model.signatures[self.spec.get("signature", "translate")]

    def attention_map(self, text):
        raise ConfigError("attention: the saved_model runtime decodes in its graph and gives no "
                          "attention weights; use the onnx, tflite or keras runtime")

    def translate(self, texts, beam=None, length_penalty=None):
        """Greedy translations of `texts` (the signature has no beam search).

        Unlike the other runtimes, the default here is greedy: it is all the
        graph can do. An explicit `beam` over 1 is refused.
        """
        if beam not in (None, 1):
            raise ConfigError("--beam: the SavedModel's translate signature decodes greedily "
                              "(beam 1); use the onnx or tflite runtime for beam search")
        texts = list(texts)
        if not texts:
            return []
        result = self.signature(texts=self.tf.constant(texts, self.tf.string))
        return [t.decode("utf-8") for t in result["translations"].numpy()]


class KerasTranslation(TranslationRuntime):
    """The trained Keras encoder-decoder of a run folder (`keras_lstm.inference`)."""

    backend = "keras"

    def __init__(self, folder, metadata, artifact=None, **kwargs):
        super().__init__(folder, metadata, **kwargs)
        from keras_lstm.inference import Translator

        self.translator = Translator(self.run_dir)

    def translate(self, texts, beam=None, length_penalty=None):
        with self.lock:
            return self.translator.translate(texts, beam, length_penalty)

    def _encoder(self, source):
        return tuple(np.asarray(v) for v in self.translator.encoder(source))

    def _decoder(self, tokens, h, c, outputs, mask):
        logits, h, c, *weights = (np.asarray(v) for v in self.translator.decoder(
            tokens, h, c, outputs, mask))
        return logits, h, c, (weights[0] if weights else None)


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


def _id_batch(ids):
    """`ids` as the int32 `(batch, time)` array a model reads, or a `ValueError`."""
    ids = np.asarray(ids)
    if ids.ndim != 2 or ids.dtype.kind not in "iu":
        raise ValueError(f"token ids must be an integer array (batch, time), got "
                         f"{ids.dtype} {ids.shape}")
    return ids.astype(np.int32)


def _onnx_session(runtime, path):
    import onnxruntime

    # onnxruntime's intra-op threads spin after each run by default, taking the cores the
    # caller needs next (tokenizing, a server's event loop): on 2 cores that made a batch
    # of 32 texts cost more per text than one text (`python bench/serve_http.py`).
    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return runtime.load_model(lambda p: onnxruntime.InferenceSession(
        p, options, providers=["CPUExecutionProvider"]), path, "ONNX")


def _tflite_interpreter(runtime, path):
    from ai_edge_litert.interpreter import Interpreter

    from keras_lstm.console import quiet_stderr

    def load(p):
        interpreter = Interpreter(model_path=p)
        interpreter.allocate_tensors()  # where the interpreter announces its CPU delegate
        return interpreter

    with quiet_stderr():  # ... on stderr, which a piped `predict` keeps for errors
        return runtime.load_model(load, path, "TFLite")


def _saved_model(runtime, path):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops the signatures use)

    return tf, runtime.load_model(tf.saved_model.load, path, "SavedModel")


def _backend_of(artifact):
    suffix = Path(artifact).suffix
    return "onnx" if suffix == ".onnx" else "tflite" if suffix == ".tflite" else "saved_model"


_RUNTIMES = {(cls.task, cls.backend): cls for cls in (
    OnnxSentiment, TFLiteSentiment, SavedModelSentiment, KerasSentiment,
    OnnxTranslation, TFLiteTranslation, SavedModelTranslation, KerasTranslation)}


def load(path, backend=None, artifact=None):
    """Loads a trained model for serving: the runtime of its task and backend.

    Args:
        path: An export folder (with metadata.json), one artifact in it
            (`model.onnx`, `model_int8.tflite`, `saved_model`, ...), or a run
            folder (its Keras model, or with another backend its `export/`).
        backend: "onnx", "tflite", "saved_model" or "keras"; default: guessed
            from an artifact's name, "keras" for a run folder, else "onnx".
        artifact: A sentiment artifact's file name in the folder (e.g.
            "model_int8.tflite"); translation exports have one per backend.

    Returns:
        A `SentimentRuntime` (`.predict`, `.predict_proba`) or a
        `TranslationRuntime` (`.translate`).

    Raises:
        ArtifactError, ConfigError: no such folder, not an export or run
            folder, a damaged artifact, or an unknown backend.
    """
    from export.metadata import METADATA_FILE, read_metadata
    from keras_lstm import runs

    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path}: no such file or folder")
    if backend is not None and backend not in BACKENDS:
        raise ConfigError(f"--runtime: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend is None and artifact:  # an artifact's name says its backend
        backend = _backend_of(artifact)
    if (path / runs.CONFIG_FILE).is_file():  # a run folder
        run_dir = path
        config = runs.read_config(run_dir)
        if backend in (None, "keras"):
            metadata = {"task": config["task"], "preprocessors": config["preprocessors"],
                        "artifacts": {}, "labels": config.get("labels"),
                        "max_output_length": config.get("max_output_length", config[
                            "training"].get("max_output_length", 40)),
                        "attention": config["model"].get("attention", False)}
            return _RUNTIMES[(config["task"], "keras")](run_dir, metadata, run_dir=run_dir,
                                                        training=config["training"])
        path = path / "export"
    folder = path
    if not (path / METADATA_FILE).is_file() and (path.parent / METADATA_FILE).is_file():
        folder, artifact = path.parent, path.name
        backend = backend or _backend_of(artifact)
    metadata = read_metadata(folder)
    backend = backend or "onnx"
    run_dir = folder.parent if (folder.parent / runs.CONFIG_FILE).is_file() else None
    training = runs.read_config(run_dir)["training"] if run_dir else None
    if backend == "keras" and run_dir is None:
        raise ArtifactError(f"{folder}: the keras runtime needs the run folder around the export")
    kwargs = {"artifact": artifact} if artifact else {}
    return _RUNTIMES[(metadata["task"], backend)](folder, metadata, run_dir=run_dir,
                                                  training=training, **kwargs)
