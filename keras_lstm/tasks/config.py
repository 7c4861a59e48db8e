"""Training configurations: one typed dataclass per task, saved in RUN/config.json.

TensorFlow-free: the CLI builds its flags from these fields, one flag a field.
"""

from __future__ import annotations

import dataclasses
import math

from keras_lstm.core.errors import ConfigError
from keras_lstm.core.schemas import RENAMED_FIELDS
from keras_lstm.presets import STRATEGIES

__all__ = [
    "AUGMENTATIONS",
    "LSTM_KINDS",
    "POOLINGS",
    "STOPWORDS",
    "STRATEGIES",
    "SentimentConfig",
    "TrainingConfig",
    "TranslationConfig",
]

LSTM_KINDS = ("custom", "keras")
POOLINGS = ("last", "max", "mean")
STOPWORDS = ("english", "chinese")
AUGMENTATIONS = ("negation", "contrast", "phrases")


@dataclasses.dataclass
class TrainingConfig:
    """What every task's training shares.

    Args:
        out: The run folder.
        data: The training file; `None` for the task's embedded default data.
        lstm: `"custom"` (keras_lstm.layers.LSTM) or `"keras"` (keras.layers.LSTM).
        units, embedding_dim, dropout: The model.
        max_length: Tokens kept per text (sentiment) or longest pair kept
            (translation).
        min_count: Vocabulary: keep tokens seen at least this often.
        batch_size, epochs, learning_rate, clipnorm, patience: Training with
            Adam; `clipnorm` clips the gradient norm (the notes warn of
            exploding gradients), `patience` is early stopping's.
        max_examples: Use at most this many examples (quick runs).
        seed: Makes the split, the initial weights, dropout and the data order
            reproducible.
        strategy: `tf.distribute` strategy: "default", "mirrored" or
            "multi-worker" (via TF_CONFIG).
        preset: The preset the run started from (see `keras_lstm.presets`).
    """

    out: str
    data: str | None = None
    lstm: str = "custom"
    units: int = 128
    embedding_dim: int = 128
    dropout: float = 0.2
    max_length: int = 100
    min_count: int = 1
    batch_size: int = 64
    epochs: int = 8
    learning_rate: float = 2e-3
    clipnorm: float = 1.0
    patience: int = 2
    max_examples: int | None = None
    seed: int = 0
    strategy: str = "default"
    preset: str | None = None

    def validate(self):
        """Checks every field before anything is written; one `ConfigError` line for the first bad one."""
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None:
                continue
            kind = _base_type(field.type)
            if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
                _bad(field.name, value, "a whole number")
            if kind == "float" and (isinstance(value, bool) or not isinstance(value, int | float)
                                    or not math.isfinite(value)):
                _bad(field.name, value, "a number")
        for name in ("units", "embedding_dim", "batch_size", "epochs", "max_length", "min_count"):
            if getattr(self, name) < 1:
                _bad(name, getattr(self, name), "at least 1")
        if self.max_examples is not None and self.max_examples < 1:
            _bad("max_examples", self.max_examples, "at least 1")
        if not 0 <= self.dropout < 1:
            _bad("dropout", self.dropout, "in [0, 1)")
        if not self.learning_rate > 0:
            _bad("learning_rate", self.learning_rate, "above 0")
        if not self.clipnorm > 0:
            _bad("clipnorm", self.clipnorm, "above 0")
        if self.patience < 0:
            _bad("patience", self.patience, "0 or more")
        if self.lstm not in LSTM_KINDS:
            _bad("lstm", self.lstm, f"one of {', '.join(LSTM_KINDS)}")
        if self.strategy not in STRATEGIES:
            _bad("strategy", self.strategy, f"one of {', '.join(STRATEGIES)}")
        if not self.out:
            raise ConfigError("--out: a run folder is required")
        return self

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> TrainingConfig:
        """A config from a saved dict: missing fields take their defaults; unknown ones are refused."""
        names = {field.name for field in dataclasses.fields(cls)}
        # Fields renamed since (a dict not read through `schemas.read_config`, which renames too).
        values = {RENAMED_FIELDS.get(name, name): value for name, value in values.items()}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"{source}: unknown training field {unknown[0]!r}")
        if "out" not in values:
            raise ConfigError(f"{source}: training field 'out' is missing")
        return cls(**values)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class SentimentConfig(TrainingConfig):
    """Everything `keras-lstm train sentiment` does (the shared fields: `TrainingConfig`).

    Args:
        val_data, test_data: Optional validation/test files; without them a
            seeded stratified split of `data` is used.
        text_column, label_column: Column (or JSON field) names.
        bidirectional, layers, pooling: The model (see `SentimentModelConfig`).
        vocab_size: Most tokens in the vocabulary.
        embeddings: Optional pre-trained word vectors (GloVe, word2vec or
            fastText text) that initialise the embedding rows they cover.
        stopwords: `None`, `"english"` or `"chinese"` (negations are kept).
        cjk_bigrams: Tokens are overlapping bigrams of consecutive CJK characters.
        val_fraction, test_fraction: Split fractions when no files are given.
        stream: Read `data` as a stream into TFRecord shards (see
            `keras_lstm.data.prepared`); `None`: for files of 64 MiB or more and
            for prepared folders.
        augment: Training examples to add (`keras_lstm.data.augmentation`), any
            of "negation" (negated copies of the training texts, labels flipped),
            "contrast" ("A but B" copies as "B but A", labels flipped) and
            "phrases" (the lexicon's words, alone and negated) joined by "+";
            `None` or `"none"`: nothing.
        lexicon: Feed the LSTM, beside each word vector, the word's frozen
            valence from a sentiment lexicon (see `SentimentModelConfig`).
        wide: Add a bag-of-words branch whose per-token class scores are
            averaged and added to the LSTM's logits (wide & deep).
    """

    val_data: str | None = None
    test_data: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    bidirectional: bool = False
    layers: int = 1
    pooling: str = "last"
    vocab_size: int = 20_000
    min_count: int = 2
    embeddings: str | None = None
    stopwords: str | None = None
    cjk_bigrams: bool = False
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    stream: bool | None = None
    augment: str | None = None
    lexicon: bool = False
    wide: bool = False

    def validate(self):
        super().validate()
        if self.augment not in (None, "none") and not set(self.augment.split("+")) <= set(
                AUGMENTATIONS):
            _bad("augment", self.augment, f"none, or some of {', '.join(AUGMENTATIONS)} "
                                          "joined by '+'")
        if self.layers < 1:
            _bad("layers", self.layers, "at least 1")
        if self.vocab_size < 3:
            _bad("vocab_size", self.vocab_size, "at least 3 ([PAD], [UNK] and one token)")
        if self.pooling not in POOLINGS:
            _bad("pooling", self.pooling, f"one of {', '.join(POOLINGS)}")
        if self.stopwords not in (None, *STOPWORDS):
            _bad("stopwords", self.stopwords, " or ".join(STOPWORDS))
        for name in ("val_fraction", "test_fraction"):
            if not 0 <= getattr(self, name) < 1:
                _bad(name, getattr(self, name), "in [0, 1)")
        if self.val_data is None and not 0 < self.val_fraction:
            _bad("val_fraction", self.val_fraction, "above 0 when no --val-data is given")
        if self.val_fraction + self.test_fraction >= 1:
            raise ConfigError(f"--val-fraction {self.val_fraction} + --test-fraction "
                              f"{self.test_fraction} leave nothing to train on; expected a sum "
                              "below 1")
        from keras_lstm.data import prepared

        if prepared.should_stream(self.data, self.stream):
            for name in ("val_data", "test_data", "max_examples", "augment"):
                if getattr(self, name) not in (None, "none"):
                    raise ConfigError(f"--{name.replace('_', '-')} does not apply to streamed "
                                      f"(prepared) data: {self.data} is split by its hashes")
            if self.strategy == "multi-worker" and not prepared.is_prepared(self.data):
                raise ConfigError(f"{self.data}: multi-worker training reads prepared shards; "
                                  f"run `keras-lstm prepare sentiment --data {self.data} --out "
                                  "PREPARED` once, then train every worker with --data PREPARED")
        return self


@dataclasses.dataclass
class TranslationConfig(TrainingConfig):
    """Everything `keras-lstm train translation` does (the shared fields: `TrainingConfig`).

    Args:
        reverse: Translate the second column into the first.
        skip_bad_rows: Count and skip malformed lines (`--skip-bad-rows`; runs
            written before it was renamed call it `skip_bad_lines`).
        attention: Luong attention over the encoder's outputs.
        max_output_length: Longest translation the decoders emit.
    """

    reverse: bool = False
    skip_bad_rows: bool = False
    max_length: int = 30
    attention: bool = True
    embedding_dim: int = 64
    dropout: float = 0.1
    epochs: int = 6
    learning_rate: float = 3e-3
    max_output_length: int = 40

    def validate(self):
        super().validate()
        if self.max_output_length < 1:
            _bad("max_output_length", self.max_output_length, "at least 1")
        return self


def _base_type(annotation) -> str:
    return str(annotation).replace("| None", "").strip()


def _bad(name, value, expected):
    raise ConfigError(f"--{name.replace('_', '-')}: expected {expected}, got {value!r}")
