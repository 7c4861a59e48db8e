"""Training state that BackupAndRestore does not keep: dropout seeds, EarlyStopping counters."""

import keras
import numpy as np

from keras_lstm.training import TrainingStateBackup


def _model():
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dropout(0.5, seed=1)(inputs))


def _stopper():
    return keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=3)


def _run_epochs(backup_dir, completed, epochs, scores):
    """Simulates fit()'s callback calls; returns the stopper and the model."""
    model, stopper = _model(), _stopper()
    backup = TrainingStateBackup(backup_dir, completed, stopper)
    for callback in (stopper, backup):
        callback.set_model(model)
        callback.on_train_begin()
    for epoch in range(completed, epochs):
        model(np.ones((2, 4), "float32"), training=True)  # advances the dropout seed
        for callback in (stopper, backup):
            callback.on_epoch_end(epoch, {"val_accuracy": scores[epoch]})
    return stopper, model


def test_resume_restores_early_stopping_counters_and_dropout_seeds(tmp_path):
    scores = [0.5, 0.7, 0.6, 0.65, 0.6]
    whole, whole_model = _run_epochs(tmp_path / "whole", 0, 5, scores)
    _run_epochs(tmp_path / "cut", 0, 3, scores)  # interrupted after 3 epochs
    resumed, resumed_model = _run_epochs(tmp_path / "cut", 3, 5, scores)
    assert (resumed.wait, resumed.best, resumed.best_epoch) == (whole.wait, whole.best,
                                                                 whole.best_epoch) == (3, 0.7, 1)
    assert resumed.model.stop_training and whole.model.stop_training
    seeds = [[np.asarray(g.state).tolist() for layer in m._flatten_layers()
              for g in getattr(layer, "_seed_generators", [])]
             for m in (whole_model, resumed_model)]
    assert seeds[0] == seeds[1] and seeds[0]


def test_an_epoch_not_yet_committed_is_ignored(tmp_path):
    scores = [0.5, 0.7, 0.6, 0.65]
    _run_epochs(tmp_path, 0, 3, scores)  # states saved for 1, 2 and 3 finished epochs
    # BackupAndRestore committed only 2 epochs when the process died: resume from 2.
    assert (_run_epochs(tmp_path, 2, 2, scores)[0].wait, _run_epochs(tmp_path, 3, 3, scores)[0].wait) \
        == (0, 1)
