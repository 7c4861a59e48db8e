"""The task interface: what each application (sentiment, translation) knows how to do.

A `Task` ties together, for one application, the parts that keras-hub keeps
apart (preprocessor → backbone → task): its training config, its data, its
preprocessors, its model and loss, its evaluation and its exports. The one
training driver (`keras_lstm.training.train`), the CLI and the runtimes call
a task through this interface and never ask which task it is.

TensorFlow-free at import: a task imports TensorFlow inside the methods that
train or export, so `keras-lstm --help` and serving ONNX/TFLite stay fast.
"""

from __future__ import annotations

import dataclasses

from keras_lstm.tasks.config import TrainingConfig


@dataclasses.dataclass
class Splits:
    """A task's examples: `train`, `validation` and optionally `test`, each a tuple of lists.

    Sentiment: `(texts, labels)`; translation: `(sources, targets)`.
    """

    train: tuple
    validation: tuple
    test: tuple | None = None
    source: str = ""


class Task:
    """One application of the LSTM. Subclasses fill in every method."""

    name: str = ""
    config_class: type[TrainingConfig] = TrainingConfig
    # The validation metric that picks the best model and drives early stopping.
    monitor: str = "val_loss"
    monitor_mode: str = "min"
    # The per-text output of `predict`, one JSON line per text.
    output_key: str = ""

    # ----- training (the driver calls these; TensorFlow is imported inside) -----

    def choose_preset(self, config: TrainingConfig) -> str:
        """The preset for this config's data when the user named none."""
        raise NotImplementedError

    def load_data(self, config) -> Splits:
        """Reads, cleans and splits the data; one `DataError` line for unusable data."""
        raise NotImplementedError

    def build_preprocessors(self, config, splits: Splits) -> dict:
        """`{name: lstm_text.Preprocessor}` with vocabularies built from the training split."""
        raise NotImplementedError

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

    # ----- using a trained model (TensorFlow-free over ONNX/TFLite runtimes) -----

    def predict(self, runtime, texts, **options) -> list[dict]:
        """One JSON-ready dict per text (what `keras-lstm predict` prints)."""
        raise NotImplementedError

    def evaluate(self, runtime, data=None, **options) -> dict:
        """Metrics of `runtime` on `data` (default: the run's held-out test split)."""
        raise NotImplementedError

    def format_metrics(self, metrics: dict) -> str:
        raise NotImplementedError

    def export(self, run_dir, formats, **options) -> dict:
        """Exports RUN/model to RUN/export/ and verifies every artifact against Keras."""
        raise NotImplementedError

    def unknown_flags(self, options: dict) -> list[str]:
        """Names of command-line options given that do not apply to this task."""
        return [f"--{name.replace('_', '-')}" for name, value in options.items()
                if value is not None and name not in self.options]

    # Options of predict/evaluate/export that apply to this task.
    options: tuple = ()
