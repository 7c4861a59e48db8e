"""Training across machines: MultiWorkerMirroredStrategy with a custom training loop.

Keras 3's `fit()` does not run under `tf.distribute.MultiWorkerMirroredStrategy`
(keras-team/keras#20585; measured here with Keras 3.15: it averages the first
integer batch and the scalar metrics with a MEAN reduction over axis 0, which
collective ops refuse). This loop does what `fit()` does for a classifier:
one `strategy.run` per step, in which the Keras optimizer all-reduces the
gradients across workers, then validation, the best model and early stopping.
The task gives each batch's summed loss and its count (`Task.loss_terms`):
the loss a replica differentiates is its sum over the count of the whole
global batch, so the summed gradients are the gradient of the global mean.

Every worker runs the same program with its own `TF_CONFIG`; each trains on its
own share of every epoch's batches (`Task.datasets(shards=, shard=)`),
so the effective batch is `workers × batch_size`. Only the chief writes the run
folder.
"""

import json

import numpy as np
import tensorflow as tf

__all__ = ["describe_cluster", "fit_custom", "worker_count_and_index"]


def worker_count_and_index(strategy):
    """`(number of workers, this worker's index)`; `(1, 0)` outside a cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return 1, 0
    spec = resolver.cluster_spec().as_dict()
    chiefs, workers = len(spec.get("chief", [])), len(spec.get("worker", []))
    index = 0 if resolver.task_type == "chief" else chiefs + resolver.task_id
    return chiefs + workers, index


def fit_custom(model, strategy, task, train_ds, val_ds, epochs, patience, best_model,
               log_dir=None, callbacks=()):
    """Trains a compiled model of `task` under `strategy`.

    Args:
        model: A Keras model compiled under `strategy.scope()`.
        task: Its `keras_lstm.tasks.Task` (loss terms, monitored metric).
        train_ds: This worker's batches, `steps_per_epoch` of them per epoch,
            the epochs back to back.
        val_ds: The validation batches (the same on every worker).
        epochs, patience: Most epochs; stop after `patience` epochs without a
            better monitored validation score.
        best_model: A `BestModel` callback (saves the best model).
        log_dir: TensorBoard scalars go here (None: none).
        callbacks: Keras callbacks that report (`training.EpochLine`,
            `FirstStep`); their epoch and train-batch hooks are called as
            `fit()` would.

    Returns:
        The history, `{"loss": [...], "accuracy": [...], "val_loss": [...], ...}`.
    """
    steps = train_ds.steps_per_epoch
    distributed = strategy.distribute_datasets_from_function(lambda _: train_ds)
    optimizer = model.optimizer
    variables = model.trainable_variables

    @tf.function(reduce_retracing=True)
    def train_step(iterator):
        def step(x, y):
            with tf.GradientTape() as tape:
                outputs = model(x, training=True)
                loss_sum, count, correct, seen = task.loss_terms(y, outputs)
                total = tf.distribute.get_replica_context().all_reduce("SUM", count)
                loss = loss_sum / tf.maximum(total, 1.0)
                if model.losses:
                    loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            return loss_sum, count, correct, seen

        results = strategy.run(step, args=next(iterator))
        return [strategy.reduce("SUM", value, axis=None) for value in results]

    @tf.function(reduce_retracing=True)
    def validation_step(x, y):
        return task.loss_terms(y, model(x, training=False))

    writer = tf.summary.create_file_writer(str(log_dir)) if log_dir else None
    history = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
    iterator = iter(distributed)
    waited = 0
    for epoch in range(epochs):
        for callback in callbacks:
            callback.on_epoch_begin(epoch)
        sums = np.zeros(4)
        for step in range(steps):
            sums += [float(v) for v in train_step(iterator)]
            for callback in callbacks:
                callback.on_train_batch_end(step, {"loss": sums[0] / max(sums[1], 1.0)})
        val_sums = np.zeros(4)
        for x, y in val_ds.take(getattr(val_ds, "steps_per_epoch", None)
                                or int(val_ds.cardinality())):
            val_sums += [float(v) for v in validation_step(x, y)]
        logs = {"loss": sums[0] / max(sums[1], 1.0), "accuracy": sums[2] / max(sums[3], 1.0),
                "val_loss": val_sums[0] / max(val_sums[1], 1.0),
                "val_accuracy": val_sums[2] / max(val_sums[3], 1.0)}
        for key, value in logs.items():
            history[key].append(value)
        if writer is not None:
            with writer.as_default():
                for key, value in logs.items():
                    tf.summary.scalar("epoch_" + key, value, step=epoch)
        for callback in callbacks:
            callback.on_epoch_end(epoch, logs)
        improved = best_model.improves(logs[task.monitor])
        best_model.on_epoch_end(epoch, logs)
        waited = 0 if improved else waited + 1
        if waited >= patience:
            break
    return history


def describe_cluster(strategy):
    """One line for the logs: workers and this one's place."""
    workers, index = worker_count_and_index(strategy)
    return json.dumps({"workers": workers, "index": index,
                       "replicas": strategy.num_replicas_in_sync})
