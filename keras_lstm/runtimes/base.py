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

Serving is the runtime's side of a task (keras-hub keeps its Task apart from
its Preprocessor the same way; the training side is `keras_lstm.tasks`):
`rows` gives what `keras-lstm predict` prints and the server's `/predict`
answers, `tensors` and `infer` the Open Inference Protocol (KServe v2)
outputs, and `options` says which of `rows`' options apply. The CLI's predict
path and the server reach a model through these alone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from keras_lstm.core.errors import ArtifactError, ConfigError, load_or_raise
from lstm_text.preprocessor import Preprocessor, check_texts, inside

__all__ = ["RUNTIMES", "Runtime", "SentimentRuntime", "TranslationRuntime", "attention_row",
           "id_batch", "register"]

RUNTIMES: dict[tuple[str, str], type] = {}


def register(cls: type) -> type:
    """Class decorator: makes `cls` the runtime of its `(task, backend)` for `load`."""
    RUNTIMES[(cls.task, cls.backend)] = cls
    return cls


class Runtime:
    """Shared by every backend of every task.

    Args:
        folder: The export folder (or the run folder, for the keras backend).
        metadata: Its metadata.json, as `keras_lstm.core.schemas.read_metadata` gives it.
        run_dir: The run folder around the export, or None.
        training: The run's training config (config.json's "training"), or None.
    """

    task = ""
    backend = ""
    # Which options of `rows` apply to this task's models (the CLI and the server refuse others).
    options: tuple[str, ...] = ()

    def __init__(self, folder: str | Path, metadata: dict, run_dir: str | Path | None = None,
                 training: dict | None = None):
        self.folder = Path(folder)
        self.metadata = metadata
        self.run_dir = run_dir
        self.training = training
        self.preprocessors = {name: Preprocessor.load(self.folder, spec)
                              for name, spec in metadata["preprocessors"].items()}
        self.lock = threading.Lock()

    def file(self, name: str, what: str = "artifact") -> Path:
        """A file of this export named in metadata.json (never outside the folder)."""
        return inside(self.folder, name, what)

    def load_model(self, loader: Callable[[str], object], path: str | Path, kind: str) -> object:
        """Runs `loader(str(path))`; a missing or damaged file is one `ArtifactError` line."""
        if not Path(path).exists():
            raise ArtifactError(f"{path}: missing")
        return load_or_raise(lambda: loader(str(path)), path, kind)

    # ----- serving: what `keras-lstm predict` and the server call -----

    def rows(self, texts: Sequence[str], beam: int | None = None, explain: bool = False,
             attention: bool = False) -> list[dict]:
        """One JSON-ready dict per text: what `keras-lstm predict` prints and `/predict` answers.

        Args:
            texts: The texts (a list of strings).
            beam: Translation: the beam size (1: greedy; None: the default,
                `keras_lstm.presets.DECODING`).
            explain: Sentiment: add each token's weight toward the row's label.
            attention: Translation: add the attention map (greedy decoding).

        Raises:
            ConfigError: an option that does not apply to this task (see `options`).
        """
        raise NotImplementedError

    def tensors(self) -> list[dict]:
        """The output tensors of the Open Inference Protocol (KServe v2) for this model:
        `{"name", "datatype", "shape"}`, shape `[-1, ...]` (-1: one row per text)."""
        raise NotImplementedError

    def infer(self, texts: Sequence[str], beam: int | None = None) -> list[dict]:
        """One `{tensor name: value}` per text: the values of `tensors`' rows."""
        raise NotImplementedError

    def refuse_options(self, **given: object) -> None:
        """One `ConfigError` line for a given option (not None, not False) of another task."""
        for name, value in given.items():
            if value is not None and value is not False and name not in self.options:
                raise ConfigError(f"{name} does not apply to a {self.task} model")


class SentimentRuntime(Runtime):
    """Texts → label probabilities; a backend implements `run_ids` (and may
    override `predict_proba` where it tokenizes in its graph)."""

    task = "sentiment"
    options = ("explain",)

    def __init__(self, folder: str | Path, metadata: dict, **kwargs: Any):
        super().__init__(folder, metadata, **kwargs)
        self.labels = list(metadata["labels"])
        self.preprocessor = self.preprocessors["text"]

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text (type-checked, cut to the maximum length, an empty text → [OOV])."""
        return self.preprocessor.encode_batch(texts)

    def run_ids(self, ids: np.ndarray) -> np.ndarray:
        """`(batch, time)` right-padded int ids → probabilities `(batch, labels)`."""
        raise NotImplementedError

    def predict_ids(self, rows: Sequence[Sequence[int]], batch_size: int = 64) -> np.ndarray:
        """Probabilities `(len(rows), labels)` of unpadded id lists (`batch_size` a call)."""
        from lstm_text.preprocessor import pad

        out = [self.run_ids(pad(rows[i:i + batch_size])) for i in range(0, len(rows), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)

    def predict_proba(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Probabilities `(len(texts), labels)`, in the order of `self.labels`."""
        return self.predict_ids(self.encode(texts), batch_size)

    def explain(self, texts: Sequence[str], labels: Sequence[str] | None = None) -> list[dict]:
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

    def predict(self, texts: Sequence[str]) -> list[dict]:
        """Label and probabilities (6 decimals) per text."""
        probabilities = self.predict_proba(texts)
        labels = self.labels
        # One argmax and one conversion to Python floats for the batch (not one per text).
        return [{"label": labels[best], "probabilities": {label: round(v, 6)
                                                          for label, v in zip(labels, row)}}
                for best, row in zip(probabilities.argmax(axis=1).tolist(),
                                     probabilities.tolist())]

    def rows(self, texts: Sequence[str], beam: int | None = None, explain: bool = False,
             attention: bool = False) -> list[dict]:
        """Rows `{"text", "label", "probabilities"}`; with `explain` also
        `"explanation": {"tokens": [...], "weights": [...]}`, each token's
        weight toward the row's label (`explain`)."""
        self.refuse_options(beam=beam, attention=attention)
        rows = [{"text": text, **row} for text, row in zip(texts, self.predict(texts))]
        if explain:
            found = self.explain(texts, [row["label"] for row in rows])
            for row, explanation in zip(rows, found):
                row["explanation"] = {"tokens": explanation["tokens"],
                                      "weights": explanation["weights"]}
        return rows

    def tensors(self) -> list[dict]:
        return [{"name": "labels", "datatype": "BYTES", "shape": [-1]},
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(self.labels)]}]

    def infer(self, texts: Sequence[str], beam: int | None = None) -> list[dict]:
        self.refuse_options(beam=beam)
        probabilities = self.predict_proba(texts)
        return [{"labels": self.labels[best], "probabilities": row}
                for best, row in zip(probabilities.argmax(axis=1).tolist(),
                                     probabilities.tolist())]


class TranslationRuntime(Runtime):
    """Texts → translations; a backend implements `_encoder` and `_decoder`."""

    task = "translation"
    options = ("beam", "attention")

    def __init__(self, folder: str | Path, metadata: dict, **kwargs: Any):
        super().__init__(folder, metadata, **kwargs)
        self.max_output_length = int(metadata["max_output_length"])
        self.attention = bool(metadata["attention"])
        self.spec = metadata["artifacts"].get(self.backend, {})

    @property
    def gives_attention(self) -> bool:
        """Whether `attention_map` works: the model has attention and the backend shows it."""
        return self.attention

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Source token ids `(batch, time)`, right-padded."""
        return self.preprocessors["source"](texts)

    def translate(self, texts: Sequence[str], beam: int | None = None,
                  length_penalty: float | None = None) -> list[str]:
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

    def attention_map(self, text: str) -> dict:
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

    def rows(self, texts: Sequence[str], beam: int | None = None, explain: bool = False,
             attention: bool = False) -> list[dict]:
        """Rows `{"text", "translation"}`, decoded with `beam` (`None`: the default,
        `keras_lstm.presets.DECODING`; 1: greedy). With `attention`, decoding is greedy
        (the map watches the greedy steps) and each row also has
        `"attention": {"source": tokens, "target": tokens, "weights": rows}`."""
        self.refuse_options(explain=explain)
        if attention:
            if (beam or 1) != 1:
                raise ConfigError("attention: the map is given for greedy decoding (beam 1) "
                                  f"only, not beam {beam}")
            return [attention_row(text, self.attention_map(text)) for text in texts]
        return [{"text": text, "translation": translation}
                for text, translation in zip(texts, self.translate(texts, beam=beam))]

    def tensors(self) -> list[dict]:
        return [{"name": "translations", "datatype": "BYTES", "shape": [-1]}]

    def infer(self, texts: Sequence[str], beam: int | None = None) -> list[dict]:
        return [{"translations": t} for t in self.translate(texts, beam=beam)]

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


def attention_row(text: str, found: dict) -> dict:
    """A `rows` row from `TranslationRuntime.attention_map`'s dict (weights to 6 decimals)."""
    return {"text": text, "translation": found["translation"],
            "attention": {"source": list(found["source"]), "target": list(found["target"]),
                          "weights": [[round(float(w), 6) for w in row]
                                      for row in found["weights"]]}}


def id_batch(ids: object) -> np.ndarray:
    """`ids` as the int32 `(batch, time)` array a model reads, or a `ValueError`."""
    ids = np.asarray(ids)
    if ids.ndim != 2 or ids.dtype.kind not in "iu":
        raise ValueError(f"token ids must be an integer array (batch, time), got "
                         f"{ids.dtype} {ids.shape}")
    return ids.astype(np.int32)
