"""The task interface: what each application (sentiment, translation) knows how to do.

A `Task` ties together, for one application, the parts that keras-hub keeps
apart (preprocessor → backbone → task): its training config, its data, its
preprocessors, its model and loss, its evaluation and its exports. The one
training driver (`keras_lstm.training.train`) and the CLI's train, prepare,
evaluate and export commands call a task through this interface and never ask
which task it is.

What serves a trained model (`rows`, `tensors`, `infer`) is the other side:
the runtime of `keras_lstm.runtimes`, which neither the server nor
`keras-lstm predict` needs a task for.

TensorFlow-free at import: a task imports TensorFlow inside the methods that
train or export, so `keras-lstm --help` stays fast.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from keras_lstm.core.reporter import Reporter
from keras_lstm.tasks.config import TrainingConfig

__all__ = ["Splits", "Task", "default_split", "held_out", "unknown_share", "warn_if_unknown"]


@dataclasses.dataclass
class Splits:
    """A task's examples: `train`, `validation` and optionally `test`, each a tuple of lists.

    Sentiment: `(texts, labels)`; translation: `(sources, targets)`.
    """

    train: tuple
    validation: tuple
    test: tuple | None = None
    source: str = ""

    def sizes(self) -> dict:
        """Examples per split, for config.json."""
        return {name: len(split[0]) for name, split in
                (("train", self.train), ("validation", self.validation), ("test", self.test))
                if split is not None}


class Task:
    """One application of the LSTM. Subclasses fill in every method."""

    config_class: type[TrainingConfig] = TrainingConfig
    # The validation metric that picks the best model and drives early stopping.
    monitor: str = "val_loss"
    monitor_mode: str = "min"
    # The config fields `keras-lstm prepare` takes (none: the task reads its data in memory).
    prepare_fields: tuple = ()

    def __init__(self, name: str):
        self.name = name

    # ----- training (the driver calls these; TensorFlow is imported inside) -----

    def choose_preset(self, config: TrainingConfig) -> str:
        """The preset for this config's data when the user named none."""
        raise NotImplementedError

    def fixed_settings(self, config: TrainingConfig) -> dict:
        """Config fields the data fixes (prepared data was tokenized and split already)."""
        return {}

    def prepare_data(self, config, out, shards=None, verbose=1):
        """`keras-lstm prepare`: reads `config.data` into shards in the folder `out`."""
        raise NotImplementedError

    def load_data(self, config, verbose=0) -> Splits:
        """Reads, cleans and splits the data; one `DataError` line for unusable data."""
        raise NotImplementedError

    def build_preprocessors(self, config, splits: Splits) -> dict:
        """`{name: lstm_text.Preprocessor}` with vocabularies built from the training split."""
        raise NotImplementedError

    def augment(self, config, splits: Splits, run_dir, verbose=1) -> Splits:
        """The splits to train on: `splits`, or with examples added to its training split.

        Only the training split may change; what was added is recorded in `run_dir`.
        """
        return splits

    def prepare(self, config, preprocessors: dict, verbose=1):
        """Anything else to read before the run folder is written (passed to `build_model`)."""
        return None

    def run_facts(self, config, splits: Splits, preprocessors: dict, extra=None) -> dict:
        """Task-specific entries of config.json: the model config, labels, model file, ..."""
        raise NotImplementedError

    def write_splits(self, run_dir, config, splits: Splits) -> None:
        raise NotImplementedError

    def datasets(self, config, splits, preprocessors, facts, first_epoch, shards, shard):
        """`(train, validation, fit_kwargs)`: the `tf.data` pipelines and what fit() needs."""
        raise NotImplementedError

    def build_model(self, config, facts, extra=None):
        """The model to train (uncompiled), from config.json's facts and `prepare`'s result."""
        raise NotImplementedError

    def loss(self):
        raise NotImplementedError

    def metrics(self) -> list:
        raise NotImplementedError

    def loss_terms(self, y, outputs):
        """`(summed loss, count, correct, count)` of one batch, for the multi-worker loop."""
        raise NotImplementedError

    def save_model(self, model, path) -> None:
        raise NotImplementedError

    def finish(self, run_dir, config, splits: Splits, verbose=1) -> None:
        """What the run folder keeps beside the model, made once training is done
        (sentiment: its TF-IDF + logistic regression baseline)."""

    def held_out_report(self, run_dir) -> str | None:
        """What `keras-lstm train` prints as it ends: the trained model on its held-out
        split (None: nothing, where scoring would cost too much)."""
        return None

    # ----- scoring a trained model (TensorFlow-free over ONNX/TFLite runtimes) -----
    # Serving (`rows`, `tensors`, `infer`) is the runtime's side: `keras_lstm.runtimes`.

    def evaluate(self, runtime, data=None, **options) -> dict:
        """Metrics of `runtime` on `data` (default: the run's held-out test split)."""
        raise NotImplementedError

    def format_metrics(self, metrics: dict) -> str:
        raise NotImplementedError

    def unknown_flags(self, options: dict) -> list[str]:
        """Names of command-line options given that do not apply to this task."""
        return [f"--{name.replace('_', '-')}" for name, value in options.items()
                if value is not None and name not in self.options]

    # Options of predict/evaluate/export that apply to this task.
    options: tuple = ()


def unknown_share(preprocessor, texts, sample=2000):
    """The share of the tokens of (the first `sample`) `texts` that the vocabulary does not know."""
    from keras_lstm.data.pairs import unknown_token_share

    return unknown_token_share(list(texts[:sample]), preprocessor.tokenize,
                               preprocessor.vocabulary)


def warn_if_unknown(preprocessor, texts, path, reference=()):
    """Warns on stderr when most tokens of `texts` are unknown to the model.

    That is the sign of a wrong column or a wrong language (a run evaluated
    on the other side of its pairs scores near zero without it). `reference`
    texts (the run's own held-out split) tell how many unknown tokens are
    normal for this vocabulary; a file must have clearly more to be flagged.
    """
    share = unknown_share(preprocessor, texts)
    normal = unknown_share(preprocessor, list(reference), sample=500)
    if share > 0.5 and share > 2 * normal + 0.1:
        Reporter().warning(f"{path}: {share:.0%} of the tokens are unknown to the model "
                           f"({normal:.0%} in its held-out split): wrong column or language?")


def held_out(run_dir, name):
    """Texts of a run's held-out split (empty where there is none), for `warn_if_unknown`."""
    path = Path(run_dir or "") / "splits" / name
    if run_dir is None or not path.is_file():
        return []
    if name.endswith(".tsv"):
        from keras_lstm.data.pairs import read_pairs

        return read_pairs(path).sources
    from keras_lstm.data import readers

    return readers.read_labelled_file(path, limit=2000).texts


def default_split(run_dir, *names):
    from keras_lstm.core.errors import ConfigError

    if run_dir is None:
        raise ConfigError("an export folder has no held-out split: give --data")
    for name in names:
        path = Path(run_dir) / "splits" / name
        if path.is_file():
            return path
    raise ConfigError(f"{run_dir}: no held-out split in splits/ (give --data)")
