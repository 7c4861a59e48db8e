"""Rewrites of a trained Keras model into the graph each converter fuses.

Keras 3's `keras.layers.LSTM` never becomes TFLite's fused LSTM op, and its
masked form becomes an ONNX `Loop`; `keras_lstm.layers.LSTM` traced under
`graph_target(...)` becomes the fused op in both. So every model is first
rebuilt from its config with the project's layer in place of Keras' (same
config, same weights): both layer kinds leave the project the same way.
"""


import keras_lstm.layers  # noqa: F401  (registers the project's layer)

__all__ = ["exportable"]

_KERAS_ONLY_ARGS = ("use_cudnn",)
_PROJECT_LSTM = {"module": "keras_lstm.layers.lstm", "class_name": "LSTM",
                 "registered_name": "keras_lstm>LSTM"}


def _rewrite(layer_config, mask):
    name = layer_config.get("class_name")
    if name == "LSTM" and layer_config.get("module", "").startswith("keras."):
        for arg in _KERAS_ONLY_ARGS:
            layer_config["config"].pop(arg, None)
        layer_config.update(_PROJECT_LSTM)
    elif name == "Bidirectional":
        _rewrite(layer_config["config"]["layer"], mask)
        if "backward_layer" in layer_config["config"]:
            _rewrite(layer_config["config"]["backward_layer"], mask)
    elif name == "Embedding" and mask is False:
        layer_config["config"]["mask_zero"] = False


def exportable(model, mask=True):
    """A copy of `model` with project LSTMs, the same weights, and optionally no mask.

    The copy is rebuilt from the model's config (a clone would keep the
    recorded mask ops of the original graph).

    Args:
        model: A functional Keras model.
        mask: Keep the embeddings' `mask_zero` (ONNX, SavedModel: padded
            batches). `False` removes it (TFLite: one unpadded sequence at a
            time, which the fused op needs).
    """
    config = model.get_config()
    for layer_config in config["layers"]:
        _rewrite(layer_config, mask)
        if mask is False:
            # Keras records the mask as an op feeding each layer's `mask` argument.
            for node in layer_config.get("inbound_nodes", []):
                node.get("kwargs", {}).pop("mask", None)
    copy = model.__class__.from_config(config)
    copy.set_weights(model.get_weights())
    return copy
