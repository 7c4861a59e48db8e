"""The one training driver: a task's data, preprocessors and model → a run folder.

`train(task, config)` does for every task what a careful training script does:
it checks the config before anything is written, refuses to overwrite a run,
seeds everything, builds the vocabularies, writes the run folder (config,
vocabularies, held-out splits) atomically, trains with Adam and gradient
clipping under the chosen `tf.distribute` strategy, keeps the best model,
stops early, logs to TensorBoard, and can be killed and resumed (`resume=True`)
to the same weights as an uninterrupted run.
"""

import json
import os
import shutil
from pathlib import Path

import keras

from keras_lstm import presets, runs
from keras_lstm.core import files, schemas
from keras_lstm.core.errors import ConfigError, DataError
from keras_lstm.core.reporter import Reporter, process_seconds

__all__ = ["BestModel", "EpochLine", "FirstStep", "TrainingStateBackup", "configure", "is_chief",
           "make_strategy", "split_cpu", "train"]


def configure(task, values: dict, preset: str | None = None, verbose=1):
    """The training config of `values` (the flags given) on top of a preset.

    Without `preset`, the task chooses one for the data; "none" starts from
    the dataclass defaults. Every field is validated before anything is written.
    """
    values = {k: v for k, v in values.items() if v is not None}
    probe = task.config_class(**values)
    if preset is None:
        preset = task.choose_preset(probe)
    settings = {} if preset == "none" else presets.get(task.name, preset)
    fixed = task.fixed_settings(probe)
    for name, value in fixed.items():
        if name in values and values[name] != value:
            raise ConfigError(f"--{name.replace('_', '-')} {values[name]}: {probe.data} was "
                              f"prepared with {value!r}; prepare it again to change it")
    config = task.config_class(**{**settings, **values, **fixed, "preset": preset})
    given = sorted(set(values) & set(settings))
    Reporter(verbose).message(f"preset: {preset}"
                              + (f" (overridden: {', '.join(given)})" if given else ""))
    return config.validate()


def train(task, config, resume=False, verbose=1):
    """Trains `task`'s model as `config` says and writes the run folder `config.out`.

    Args:
        task: A `keras_lstm.tasks.Task`.
        config: Its validated training config.
        resume: Continue the interrupted run in `config.out` from its last
            committed epoch (same weights, optimizer state, data order and
            early-stopping counters as an uninterrupted run).
        verbose: 0 quiet; 1 what it does and a line per epoch (on a terminal,
            a progress bar during the epoch); 2 also details (the first
            step's time, the shards each worker reads). All on stderr.

    Returns:
        `{"run_dir", "epochs_run", "best", "monitor", "chief"}`; a multi-worker
        job's other workers train in a scratch folder, given as `run_dir`.
    """
    import tensorflow as tf

    from keras_lstm import distributed

    run_dir = Path(config.out)
    if resume:
        saved = schemas.read_config(run_dir, task=task.name)
        config = task.config_class.from_dict(saved["training"], f"{run_dir}/config.json")
        if not (run_dir / "backup").is_dir() and (run_dir / saved["model_file"]).is_file():
            raise ConfigError(f"{run_dir}: the run is complete (nothing to resume)")
    elif (run_dir / schemas.CONFIG_FILE).exists():
        raise ConfigError(f"{run_dir}: already holds a run; use --resume to continue it or "
                          "choose another --out")
    config.validate()
    if resume and config.strategy == "multi-worker":
        raise ConfigError("--resume is not supported with --strategy multi-worker; "
                          "start the job again")
    strategy = make_strategy(config.strategy)
    chief = is_chief(strategy)
    if not chief:
        import tempfile

        run_dir = Path(tempfile.mkdtemp(prefix="keras-lstm-worker-"))
    keras.utils.set_random_seed(config.seed)
    if config.strategy == "default":
        tf.config.experimental.enable_op_determinism()

    splits = task.load_data(config, verbose)
    preprocessors = task.build_preprocessors(config, splits)
    for name, preprocessor in preprocessors.items():
        if len(preprocessor.vocabulary) <= 2 + (2 if preprocessor.start_end else 0):
            raise DataError(f"{splits.source}: the {name} vocabulary has no token besides the "
                            f"special ones (lower --min-count, now {config.min_count}, or give "
                            "more data)")
    extra = task.prepare(config, preprocessors, verbose)
    facts = task.run_facts(config, splits, preprocessors, extra)

    run_dir.mkdir(parents=True, exist_ok=True)
    task.write_splits(run_dir, config, splits)
    schemas.write_config(run_dir, {
        "task": task.name,
        "preset": config.preset,
        "training": config.to_dict(),
        "preprocessors": {name: p.save(run_dir) for name, p in preprocessors.items()},
        **facts,
        "splits": splits.sizes(),
    })

    backup = run_dir / "backup"
    completed = _completed_epochs(backup)
    reporter = Reporter(verbose)
    if completed:
        reporter.message(f"resuming after epoch {completed}")
    # Augmentation adds to the training examples only, after the held-out splits are written.
    training_splits = task.augment(config, splits, run_dir, verbose)
    workers, worker_index = distributed.worker_count_and_index(strategy)
    train_ds, val_ds, fit_kwargs = task.datasets(config, training_splits, preprocessors, facts,
                                                 completed, workers, worker_index)
    if hasattr(train_ds, "files"):
        reporter.message(f"worker {worker_index} of {workers} reads {len(train_ds.files)} "
                         "training shards: " + ", ".join(Path(f).name for f in train_ds.files),
                         level=2)
    with strategy.scope():
        model = task.build_model(config, facts, extra)
        model.compile(optimizer=keras.optimizers.Adam(config.learning_rate,
                                                      clipnorm=config.clipnorm),
                      loss=task.loss(), metrics=task.metrics())
    best_model = BestModel(run_dir / facts["model_file"], task.monitor, task.monitor_mode,
                           task.save_model)
    # What people see of the epochs, the same under fit() and the custom loop.
    shown = [FirstStep(reporter), EpochLine(config.epochs, fit_kwargs.get("steps_per_epoch"),
                                            reporter)]
    if config.strategy == "multi-worker":
        best_model.set_model(model)
        history = distributed.fit_custom(model, strategy, task, train_ds, val_ds, config.epochs,
                                         config.patience, best_model, run_dir / "logs",
                                         callbacks=shown)
        if chief:
            task.finish(run_dir, config, splits, verbose)
        return {"run_dir": str(run_dir), "epochs_run": len(history["loss"]),
                "best": best_model.best, "monitor": task.monitor, "chief": chief}
    # BackupAndRestore comes last: its metadata file is the commit point of an
    # epoch, written after the best model, the random states and the early
    # stopping counters of that epoch.
    early_stopping = keras.callbacks.EarlyStopping(monitor=task.monitor, mode=task.monitor_mode,
                                                   patience=config.patience,
                                                   restore_best_weights=False)
    callbacks = [
        *shown,
        best_model,
        early_stopping,
        TrainingStateBackup(backup, completed, early_stopping),
        keras.callbacks.TensorBoard(str(run_dir / "logs"), write_graph=False),
        keras.callbacks.BackupAndRestore(str(backup), double_checkpoint=True),
    ]
    # The datasets shuffle themselves (seeded); fit() must not try to. Keras' own progress
    # bar writes to stdout, which is for results: EpochLine draws one on stderr instead.
    history = model.fit(train_ds, validation_data=val_ds, epochs=config.epochs,
                        callbacks=callbacks, verbose=0, shuffle=False,
                        **fit_kwargs)
    # Before the backup goes: a run killed here resumes to this step, not to a
    # "complete" run without what `finish` writes.
    task.finish(run_dir, config, splits, verbose)
    shutil.rmtree(backup, ignore_errors=True)
    return {"run_dir": str(run_dir), "epochs_run": len(history.history.get("loss", [])),
            "best": best_model.best, "monitor": task.monitor, "chief": chief}




def make_strategy(name):
    """The `tf.distribute` strategy for `--strategy`.

    "mirrored": MirroredStrategy over this machine's GPUs, or over its logical
    CPU devices (see `split_cpu`). "multi-worker": MultiWorkerMirroredStrategy
    across the machines of `TF_CONFIG` (trained by `keras_lstm.distributed`'s
    loop, as Keras 3's fit() does not run under it).
    """
    import tensorflow as tf

    if name not in presets.STRATEGIES:
        raise ConfigError(f"--strategy: expected one of {', '.join(presets.STRATEGIES)}, got {name!r}")
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
        files.atomic_write_text(self.path, json.dumps(self.states))


class FirstStep(keras.callbacks.Callback):
    """Says, once, how long the command took to reach its first training step (`-v`)."""

    def __init__(self, reporter=None):
        super().__init__()
        self.reporter = reporter or Reporter()

    def on_train_batch_end(self, batch, logs=None):
        if not getattr(self, "said", False):
            self.said = True
            self.reporter.message(f"first training step after {process_seconds():.1f} s",
                                  level=2)


class BestModel(keras.callbacks.Callback):
    """Saves the model whenever the monitored validation score improves, atomically.

    The best score is kept in a file beside the model, so that a resumed run
    does not overwrite a better model of the epochs before the interruption.
    """

    def __init__(self, path, monitor="val_accuracy", mode="max", save=None):
        super().__init__()
        self.path = Path(path)
        self.monitor, self.mode = monitor, mode
        self.save = save or runs.save_model_atomic
        self.score_path = self.path.with_name("best_score.json")
        self.best = -float("inf") if mode == "max" else float("inf")
        if self.score_path.is_file() and self.path.is_file():
            self.best = json.loads(self.score_path.read_text())[monitor]

    def improves(self, score):
        return score > self.best if self.mode == "max" else score < self.best

    def on_epoch_end(self, epoch, logs=None):
        score = (logs or {}).get(self.monitor)
        if score is not None and self.improves(score):
            self.best = float(score)
            self.save(self.model, self.path)
            files.atomic_write_text(self.score_path, json.dumps({self.monitor: self.best,
                                                                "epoch": epoch + 1}))


class EpochLine(keras.callbacks.Callback):
    """One line per epoch with its time and metrics, through a `Reporter` (stderr).

    During the epoch, a progress bar over its steps on a terminal; in a log, a
    plain line every `every` seconds with the step and rate (no control codes).
    """

    def __init__(self, epochs, steps=None, reporter=None, every=30.0):
        super().__init__()
        self.epochs, self.steps, self.every = epochs, steps, every
        self.reporter = reporter or Reporter()
        self.progress = None

    def on_epoch_begin(self, epoch, logs=None):
        steps = self.steps or (getattr(self, "params", None) or {}).get("steps")
        self.progress = self.reporter.progress(f"epoch {epoch + 1}/{self.epochs}", total=steps,
                                               unit="steps", every=self.every)

    def on_train_batch_end(self, batch, logs=None):
        if self.progress is not None:
            self.progress.update(1)
            if logs and "loss" in logs and self.progress.bar is not None:
                self.progress.note(f"loss {float(logs['loss']):.4f}")

    def on_epoch_end(self, epoch, logs=None):
        if self.progress is None:
            return
        seconds = self.progress.seconds()
        self.progress.close(f"epoch {epoch + 1}/{self.epochs} ({seconds:.1f} s): " + ", ".join(
            f"{key} {float(value):.4f}" for key, value in (logs or {}).items()))
        self.progress = None
