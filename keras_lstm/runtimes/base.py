"""What every runtime shares, whatever its backend: `Runtime` and the two task bases.

One base, `Runtime`, holds the metadata, the preprocessors (text → ids,
`lstm_text.Preprocessor`), a lock, and the one place where a damaged artifact
becomes an `ArtifactError` line. `SentimentRuntime` adds `.predict_proba` /
`.predict` and `.explain` (token weights by occlusion,
`keras_lstm.runtimes.explanation`, through `.predict_ids`);
`TranslationRuntime` adds `.translate` (greedy or beam search in
`lstm_text.decoding`, the same code for every backend). Each backend
supplies only how its model runs (a sentiment backend: `run_ids`) and
registers its classes with `register`.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from keras_lstm.core.errors import ArtifactError, ConfigError, load_or_raise
from lstm_text.preprocessor import Preprocessor, check_texts, inside

__all__ = ["RUNTIMES", "Runtime", "SentimentRuntime", "TranslationRuntime", "id_batch",
           "register"]

RUNTIMES: dict[tuple[str, str], type] = {}


def register(cls: type) -> type:
    """Class decorator: makes `cls` the runtime of its `(task, backend)` for `load`."""
    RUNTIMES[(cls.task, cls.backend)] = cls
    return cls


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
        to the model in one `predict_ids` call (`keras_lstm.runtimes.explanation`).

        Args:
            texts: Texts (a list of strings).
            labels: One label name per text; default: the predicted ones.

        Returns:
            One `{"label", "tokens", "weights"}` per text: the model's kept
            tokens and, per token, p(label | text) - p(label | text without it).
        """
        from keras_lstm.runtimes.explanation import explain

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


def id_batch(ids) -> np.ndarray:
    """`ids` as the int32 `(batch, time)` array a model reads, or a `ValueError`."""
    ids = np.asarray(ids)
    if ids.ndim != 2 or ids.dtype.kind not in "iu":
        raise ValueError(f"token ids must be an integer array (batch, time), got "
                         f"{ids.dtype} {ids.shape}")
    return ids.astype(np.int32)
