"""Training across machines: MultiWorkerMirroredStrategy with a custom training loop.

Keras 3's `fit()` does not run under `tf.distribute.MultiWorkerMirroredStrategy`
(keras-team/keras#20585; measured here with Keras 3.15: it averages the first
integer batch and the scalar metrics with a MEAN reduction over axis 0, which
collective ops refuse). This loop does what `fit()` does for a classifier:
one `strategy.run` per step, in which the Keras optimizer all-reduces the
gradients across workers, then validation, the best model and early stopping.

Every worker runs the same program with its own `TF_CONFIG`; each trains on its
own share of every epoch's batches (`make_dataset(num_shards=, shard_index=)`),
so the effective batch is `workers × batch_size`. Only the chief writes the run
folder.
"""

import json

import keras
import numpy as np
import tensorflow as tf


def worker_count_and_index(strategy):
    """`(number of workers, this worker's index)`; `(1, 0)` outside a cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return 1, 0
    spec = resolver.cluster_spec().as_dict()
    chiefs, workers = len(spec.get("chief", [])), len(spec.get("worker", []))
    index = 0 if resolver.task_type == "chief" else chiefs + resolver.task_id
    return chiefs + workers, index


def fit_custom(model, strategy, train_ds, val_ds, epochs, patience, best_model,
               log_dir=None, verbose=1):
    """Trains a compiled classifier (sparse labels, softmax outputs) under `strategy`.

    Args:
        model: A Keras model compiled under `strategy.scope()`.
        train_ds: This worker's batches, `steps_per_epoch` of them per epoch.
        val_ds: The validation batches (the same on every worker).
        epochs, patience: Most epochs; stop after `patience` epochs without a
            better validation accuracy.
        best_model: A `BestModel` callback (saves the best model).
        log_dir: TensorBoard scalars go here (None: none).

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
                probabilities = model(x, training=True)
                per_example = keras.losses.sparse_categorical_crossentropy(y, probabilities)
                loss = tf.nn.compute_average_loss(per_example)
                if model.losses:
                    loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            correct = tf.equal(tf.argmax(probabilities, -1, output_type=tf.int32), y)
            return (loss, tf.reduce_sum(tf.cast(correct, tf.float32)),
                    tf.cast(tf.size(y), tf.float32))

        results = strategy.run(step, args=next(iterator))
        return [strategy.reduce("SUM", value, axis=None) for value in results]

    @tf.function(reduce_retracing=True)
    def predict(x):
        return model(x, training=False)

    writer = tf.summary.create_file_writer(str(log_dir)) if log_dir else None
    history = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
    iterator = iter(distributed)
    waited = 0
    for epoch in range(epochs):
        losses, correct, seen = 0.0, 0.0, 0.0
        for _ in range(steps):
            loss, right, count = train_step(iterator)
            losses, correct, seen = losses + float(loss), correct + float(right), seen + float(count)
        val_losses, val_correct, val_seen = [], 0, 0
        for x, y in val_ds.take(val_ds.steps_per_epoch):
            probabilities = predict(x)
            val_losses.append(keras.losses.sparse_categorical_crossentropy(y, probabilities))
            val_correct += int(np.sum(np.argmax(probabilities, -1) == y.numpy()))
            val_seen += int(y.shape[0])
        logs = {"loss": losses / max(steps, 1), "accuracy": correct / max(seen, 1.0),
                "val_loss": float(np.mean(np.concatenate(val_losses))) if val_losses else 0.0,
                "val_accuracy": val_correct / max(val_seen, 1)}
        for key, value in logs.items():
            history[key].append(value)
        if writer is not None:
            with writer.as_default():
                for key, value in logs.items():
                    tf.summary.scalar("epoch_" + key, value, step=epoch)
        if verbose:
            print(f"Epoch {epoch + 1}/{epochs} - " + " - ".join(
                f"{key}: {value:.4f}" for key, value in logs.items()), flush=True)
        improved = logs["val_accuracy"] > best_model.best
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
